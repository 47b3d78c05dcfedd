"""autograder.accuracy_grade: seeds, the mean, the ratio to the reference, the note.

Training is not the point: a fake trainer returns a fixed accuracy per seed.
"""

from __future__ import annotations

import dataclasses

import pytest

from autograder import training
from autograder.accuracy_grade import grade_accuracy
from autograder.config import AccuracyConfig, AccuracyMode, TrainingBudget
from autograder.exceptions import AutograderError
from autograder.reference import ReferenceResult

BUDGET = TrainingBudget(
    1, 32, ((0.76, 1.0), (0.65, 0.5)), 12000, 2000, "CPU quick budget", ((0.97, 1.0), (0.9, 0.5))
)
CPU = training.DeviceInfo("cpu", "test CPU (2 CPUs)", "tensorflow")
CONFIG = AccuracyConfig(
    question="accuracy", max_params=300_000, gpu=BUDGET, cpu=BUDGET, seeds=(1234, 1, 2)
)
REFERENCE = ReferenceResult(
    accuracies=(0.80, 0.82, 0.81),
    seeds=(1234, 1, 2),
    device="cpu",
    device_name=CPU.name,
    backend="tensorflow",
    budget="CPU quick budget",
    threads=2,
    key="k",
)


def fake_trainer(per_seed: dict[int, float], calls: list[int]):
    def train(model, config, *, dataset, device, workdir, threads):
        calls.append(config.seed)
        return training.TrainingResult(
            accuracy=per_seed[config.seed],
            device=device.kind,
            backend=device.backend,
            budget="CPU quick budget",
            epochs=1,
            batch_size=32,
            train_samples=12000,
            test_samples=2000,
            seconds=10.0,
            images_per_second=1200.0,
            params=1000,
            seed=config.seed,
            device_name=device.name,
        )

    return train


def _grade(config, per_seed, reference=None, calls=None):
    return grade_accuracy(
        object(),
        config,
        dataset=None,
        device=CPU,
        workdir="unused",
        threads=2,
        train=fake_trainer(per_seed, calls if calls is not None else []),
        reference=reference,
    )


def test_absolute_mode_takes_the_mean_over_seeds():
    calls: list[int] = []
    grade = _grade(CONFIG, {1234: 0.77, 1: 0.75, 2: 0.79}, calls=calls)
    assert calls == [1234, 1, 2]
    assert grade.accuracy == pytest.approx(0.77) and grade.score == grade.accuracy
    assert grade.ratio is None and grade.fraction == 1.0  # one seed under 0.76 changes nothing
    assert "seed(s) 1234, 1, 2" in grade.note() and "per seed 0.770, 0.750, 0.790" in grade.note()


def test_relative_mode_scores_the_ratio_of_the_means():
    config = dataclasses.replace(CONFIG, mode=AccuracyMode.RELATIVE)
    grade = _grade(config, {1234: 0.77, 1: 0.75, 2: 0.79}, REFERENCE)
    assert grade.ratio == pytest.approx(0.77 / 0.81)
    assert grade.score == grade.ratio and grade.tiers == BUDGET.ratios
    assert grade.fraction == 0.5  # 0.951 of the reference: the 0.90 tier, not the 0.97 one
    note = grade.note()
    for words in ("CPU quick budget", CPU.name, "tensorflow", "seed(s) 1234, 1, 2"):
        assert words in note
    assert "your model's accuracy 0.770" in note
    assert "the reference model, trained the same way, 0.810; ratio 0.951" in note
    assert tuple(grade.to_dict()["reference"]["accuracies"]) == (0.80, 0.82, 0.81)


@pytest.mark.parametrize(
    "accuracy, fraction", [(0.81, 1.0), (0.7858, 1.0), (0.7856, 0.5), (0.7291, 0.5), (0.7289, 0.0)]
)
def test_relative_tier_edges(accuracy, fraction):
    config = dataclasses.replace(CONFIG, mode=AccuracyMode.RELATIVE)
    grade = _grade(config, dict.fromkeys((1234, 1, 2), accuracy), REFERENCE)
    assert grade.fraction == fraction


def test_relative_mode_without_a_reference_is_refused():
    config = dataclasses.replace(CONFIG, mode=AccuracyMode.RELATIVE)
    with pytest.raises(AutograderError, match="needs the reference"):
        _grade(config, {1234: 0.8, 1: 0.8, 2: 0.8})
