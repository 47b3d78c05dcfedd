"""autograder.reference: the reference is trained once per seed, cached, and re-used.

Training is not the point here: a fake trainer stands in for the sandboxed worker and
records each call; the reference module itself is real (a tiny Keras model).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap

import numpy as np
import pytest

from autograder import reference, training
from autograder.config import AccuracyConfig, AccuracyMode, TrainingBudget
from autograder.datasets import Dataset
from autograder.exceptions import AutograderError, ReferenceModelError

BUDGET = TrainingBudget(1, 32, ((0.5, 1.0),), 100, 50, "tiny budget", ((0.9, 1.0),))
CPU = training.DeviceInfo("cpu", "test CPU (2 CPUs)", "tensorflow")

REFERENCE_SOURCE = """
def build_reference(input_shape=(28, 28, 1), num_classes=10):
    import keras

    return keras.Sequential(
        [keras.Input(shape=input_shape), keras.layers.Flatten(),
         keras.layers.Dense(num_classes, activation="softmax")]
    )
"""


def _dataset() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (20, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 20, dtype=np.uint8)
    return Dataset(name="fake_mnist", x_train=x, y_train=y, x_test=x, y_test=y, source="test")


class FakeTrainer:
    """Stands in for training.train_and_evaluate: accuracy 0.8 + seed / 1000."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, model, config, *, dataset, device, workdir, threads):
        self.calls.append(config.seed)
        assert model.count_params() == 7850  # the reference, as the model host sees it
        return training.TrainingResult(
            accuracy=0.8 + config.seed / 1000,
            device=device.kind,
            backend=device.backend,
            budget="tiny budget",
            epochs=1,
            batch_size=32,
            train_samples=100,
            test_samples=50,
            seconds=1.0,
            images_per_second=100.0,
            params=7850,
            seed=config.seed,
            device_name=device.name,
        )


@pytest.fixture
def config(tmp_path, monkeypatch) -> AccuracyConfig:
    monkeypatch.setenv("AUTOGRADER_REFERENCE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "ref.py"
    source.write_text(textwrap.dedent(REFERENCE_SOURCE))
    return AccuracyConfig(
        question="accuracy",
        max_params=300_000,
        gpu=BUDGET,
        cpu=BUDGET,
        mode=AccuracyMode.RELATIVE,
        reference=source,
        seeds=(1, 2, 3),
    )


def test_reference_is_trained_once_per_seed_then_cached(config, tmp_path):
    trainer = FakeTrainer()
    first = reference.reference_accuracy(
        config, dataset=_dataset(), device=CPU, threads=2, train=trainer
    )
    assert trainer.calls == [1, 2, 3] and not first.cached
    assert first.accuracies == (0.801, 0.802, 0.803)
    assert first.accuracy == pytest.approx(0.802)
    assert (first.device, first.device_name, first.budget) == ("cpu", CPU.name, "tiny budget")
    again = reference.reference_accuracy(
        config, dataset=_dataset(), device=CPU, threads=2, train=trainer
    )
    assert trainer.calls == [1, 2, 3], "a cached reference is not trained again"
    assert again.cached and again.accuracies == first.accuracies
    cached = json.loads((tmp_path / "cache" / f"{first.key}.json").read_text())
    assert cached["accuracies"] == [0.801, 0.802, 0.803]


@pytest.mark.parametrize(
    "change",
    [
        lambda c, d: (dataclasses.replace(c, seeds=(1, 2)), d),
        lambda c, d: (dataclasses.replace(c, cpu=dataclasses.replace(BUDGET, epochs=2)), d),
        lambda c, d: (c, dataclasses.replace(d, name="another GPU", kind="gpu")),
        lambda c, d: (dataclasses.replace(c, learning_rate=0.01), d),
    ],
    ids=["seeds", "budget", "device", "recipe"],
)
def test_cache_key_changes_with_what_changes_the_accuracy(config, change):
    base = reference.cache_key(config, CPU, _dataset(), 2)
    assert reference.cache_key(*change(config, CPU), _dataset(), 2) != base
    assert reference.cache_key(config, CPU, _dataset(), 1) != base  # threads round differently


def test_cache_key_changes_with_the_reference_source(config):
    base = reference.cache_key(config, CPU, _dataset(), 2)
    config.reference.write_text(config.reference.read_text() + "\n# edited\n")
    assert reference.cache_key(config, CPU, _dataset(), 2) != base


def test_a_corrupt_cache_file_is_retrained(config):
    trainer = FakeTrainer()
    key = reference.cache_key(config, CPU, _dataset(), 2)
    path = reference.cache_dir() / f"{key}.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    result = reference.reference_accuracy(
        config, dataset=_dataset(), device=CPU, threads=2, train=trainer
    )
    assert trainer.calls == [1, 2, 3] and not result.cached


def test_a_module_without_build_reference_is_the_graders_error(config):
    config.reference.write_text("x = 1\n")
    with pytest.raises(ReferenceModelError, match="defines no build_reference"):
        reference.reference_accuracy(
            config, dataset=_dataset(), device=CPU, threads=2, train=FakeTrainer()
        )


def test_a_failed_reference_training_names_the_reference(config):
    def broken(*args, **kwargs):
        raise AutograderError("training the model failed: boom")

    with pytest.raises(ReferenceModelError, match=r"reference model .*ref\.py.* boom"):
        reference.reference_accuracy(config, dataset=_dataset(), device=CPU, train=broken)


def test_cache_dir_follows_xdg_when_not_set(monkeypatch, tmp_path):
    monkeypatch.delenv("AUTOGRADER_REFERENCE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert reference.cache_dir() == tmp_path / "autograder" / "reference"
