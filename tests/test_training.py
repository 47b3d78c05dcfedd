"""autograder.training and the lab's accuracy checks, on real Fashion-MNIST.

The lab's reference model must earn full marks under the CPU quick budget, a
deliberately weak one must not; unsafe, oversized or ill-shaped models are refused
before any training; seeded training is reproducible.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from autograder import train_worker, training
from autograder.bridge import LocalSubmission
from autograder.config import TrainingBudget, load_config
from autograder.datasets import load_dataset
from autograder.exceptions import AutograderError, DatasetUnavailable, UnsafeModel
from autograder.model_host import LocalModelHost
from autograder.plugin import run_checks
from autograder.reference import load_builder
from autograder.scoring import score

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = REPO / "assignments" / "lab4-cnn"
TINY = TrainingBudget(1, 32, ((0.5, 1.0),), 1000, 500, "tiny test budget")


# -- models ---------------------------------------------------------------------------------


# The lab's reference CNN (234,282 parameters): the very builder the grader trains.
reference_model = load_builder(ASSIGNMENT / "checks" / "_reference_model.py")


def weak_model(input_shape=(28, 28, 1), num_classes=10):
    """One 3x3 filter, a 4x4 pooling, 36 features: 380 parameters."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(1, 3, activation="relu"),
            layers.MaxPooling2D(4),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def small_cnn(input_shape=(28, 28, 1), num_classes=10, softmax=True):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax" if softmax else None),
        ]
    )


def lambda_model(input_shape=(28, 28, 1), num_classes=10):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Lambda(lambda t: t * 2.0),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def assignment():
    return load_config(ASSIGNMENT / "assignment.toml")


@pytest.fixture(scope="module")
def accuracy(assignment):
    return assignment.accuracy


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_dataset("fashion_mnist", download=False)
    except DatasetUnavailable as exc:
        pytest.skip(f"Fashion-MNIST is not available offline: {exc}")


@pytest.fixture(scope="module")
def cpu():
    return training.DeviceInfo("cpu", "test CPU", keras.backend.backend())


@pytest.fixture
def no_worker(monkeypatch):
    """Fail the test if anything tries to start a training worker."""
    calls = []

    def refuse(argv, workdir, timeout_s):
        calls.append(argv)
        raise AssertionError("the training worker was launched")

    monkeypatch.setattr(training, "_launch_worker", refuse)
    return calls


@pytest.fixture(scope="module")
def host():
    h = LocalModelHost()
    yield h
    h.close()


def student(host, model):
    """A Keras model as the grader sees one: saved, admitted, built in the model host."""
    folder = Path(host._root) / "given"
    folder.mkdir(exist_ok=True)
    path = folder / f"{len(list(folder.iterdir()))}.keras"
    model.save(path)
    return host.model(path, folder, "loading the model")


class SubmissionWithFiles(LocalSubmission):
    """A LocalSubmission that also hands in files (the protocol's submitted_file)."""

    def __init__(self, namespace, scratch, files):
        super().__init__(namespace, scratch)
        self.files = files

    def submitted_file(self, name):
        return self.files.get(name)


# -- fast: arithmetic and refusals ----------------------------------------------------------


def test_tier_weights_give_each_tier_exactly_its_fraction():
    thresholds = ((0.76, 1.0), (0.65, 0.5))
    tiers = training.tier_weights(thresholds)
    assert tiers == [(0.65, 0.5, 0.5), (0.76, 1.0, 0.5)]
    for acc in (0.0, 0.64, 0.65, 0.7, 0.76, 0.99):
        earned = sum(w for t, _, w in tiers if acc >= t) / sum(w for *_, w in tiers)
        assert earned == pytest.approx(training.earned_fraction(acc, thresholds))
    # a dominated tier is dropped; a best fraction below 1 leaves an unreachable remainder
    assert training.tier_weights(((0.9, 0.4), (0.8, 0.6))) == [
        (0.8, 0.6, 0.6),
        (float("inf"), 1.0, pytest.approx(0.4)),
    ]


def test_detect_device_here():
    device = training.detect_device()
    assert device.kind in ("cpu", "gpu") and device.backend == keras.backend.backend()
    assert device.name


def test_subsamples_are_seeded_and_sorted():
    a = training.subsample(60_000, 100, 1234, 0)
    assert np.array_equal(a, training.subsample(60_000, 100, 1234, 0))
    assert not np.array_equal(a, training.subsample(60_000, 100, 1234, 1))
    assert np.all(np.diff(a) > 0) and len(a) == 100
    assert len(training.subsample(50, None, 0, 0)) == 50


def test_model_over_max_params_is_refused_before_training(
    accuracy, fashion, host, no_worker, tmp_path
):
    config = dataclasses.replace(accuracy, max_params=100_000)
    model = student(host, reference_model())
    with pytest.raises(AutograderError) as info:
        training.train_and_evaluate(model, config, dataset=fashion, workdir=tmp_path)
    assert str(info.value) == (
        "the model has 234,282 parameters, more than the 100,000 allowed for this question; "
        "use fewer filters or a smaller Dense layer"
    )
    assert not no_worker and not any(tmp_path.iterdir())


def test_lambda_model_is_refused_before_training(accuracy, host, no_worker, tmp_path):
    with pytest.raises(UnsafeModel, match="Lambda layer"):
        student(host, lambda_model())
    # the worker vets the archive it trains once more, whatever it is handed
    saved = tmp_path / "lambda.keras"
    lambda_model().save(saved)
    recipe = {"max_params": accuracy.max_params, "max_activation": 10**6}
    with pytest.raises(UnsafeModel, match="Lambda layer"):
        train_worker._load_vetted(saved, recipe)
    assert not no_worker


@pytest.mark.slow
def test_lambda_model_earns_zero_through_the_checks(assignment, fashion, no_worker, tmp_path):
    submission = LocalSubmission({"build_model": lambda_model}, tmp_path)
    results = run_checks(assignment.checks_dir, submission, assignment, only={"accuracy"})
    accuracy = assignment.accuracy
    assert len(results) == len(training.tier_weights(accuracy.tiers(accuracy.cpu)))
    for r in results:
        assert not r.passed and r.question == "accuracy"
        assert r.message.startswith(
            "the model from build_model(input_shape=(28, 28, 1), num_classes=10) cannot be "
            "trained by the grader: the model contains a Lambda layer"
        )
    assert score(assignment, results)["accuracy"].points == 0
    assert not no_worker


@pytest.mark.slow
def test_raising_or_missing_function_earns_zero(assignment, fashion, no_worker, tmp_path):
    def broken(input_shape=(28, 28, 1), num_classes=10):
        raise ValueError("not implemented yet")

    for namespace, expected in (
        ({"build_model": broken}, "build_model raised ValueError: not implemented yet"),
        ({}, "build_model is not defined: nothing to train"),
    ):
        sub = LocalSubmission(namespace, tmp_path / str(len(namespace)))
        results = run_checks(assignment.checks_dir, sub, assignment, only={"accuracy"})
        assert results and all(not r.passed for r in results)
        assert expected in results[0].message, results[0].message
    assert not no_worker


def test_shapes_that_do_not_fit_the_data_are_refused(
    accuracy, fashion, cpu, host, no_worker, tmp_path
):
    cases = [
        (reference_model((32, 32, 3)), "build it with input_shape=(28, 28, 1)"),
        (reference_model(num_classes=5), "must be (None, 10)"),
        (keras.Sequential([layers.Dense(10)]), "keras.Input(shape=...)"),
    ]
    roomy = dataclasses.replace(accuracy, max_params=10**6)  # the shape is what is tested here
    for model, expected in cases:
        given = student(host, model)
        with pytest.raises(AutograderError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            training.train_and_evaluate(given, roomy, dataset=fashion, device=cpu, workdir=tmp_path)
    flat = keras.Sequential([keras.Input((784,)), layers.Dense(10, activation="softmax")])
    assert training.model_input_shape(flat, fashion) == (784,)
    assert not no_worker


def test_worker_timeout_stops_it(tmp_path):
    start = time.perf_counter()
    with pytest.raises(AutograderError, match="ran past its 1-second limit"):
        training._launch_worker(
            [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, timeout_s=1
        )
    assert time.perf_counter() - start < 10


def test_worker_environment_has_no_proxies(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    code = "import os, json; print(json.dumps(dict(os.environ)))"
    proc = training._launch_worker([sys.executable, "-c", code], tmp_path, timeout_s=30)
    env = json.loads(proc.stdout)
    assert not {k for k in env if k.lower().endswith("_proxy")}
    assert env["PYTHONHASHSEED"] == "0"


# -- slow: real training -----------------------------------------------------------------------


@pytest.mark.slow
def test_reference_model_earns_full_marks_through_the_checks(assignment, fashion, tmp_path):
    handed_in = tmp_path / "model.keras"
    reference_model().save(handed_in)  # untrained: the note shows a chance-level score
    sub = SubmissionWithFiles(
        {"build_model": reference_model}, tmp_path / "scratch", {"model.keras": handed_in}
    )
    results = run_checks(assignment.checks_dir, sub, assignment, only={"accuracy"})
    budget = assignment.accuracy.cpu
    tiers = assignment.accuracy.tiers(budget)  # relative: ratios of the reference's accuracy
    assert [r.weight for r in results] == [w for *_, w in training.tier_weights(tiers)]
    assert all(r.passed for r in results), [r.message for r in results]
    assert score(assignment, results)["accuracy"].points == assignment.questions["accuracy"].points
    note = results[0].notes[0]
    assert note.startswith("trained on CPU, quick budget (CPU: ")
    assert f"{budget.epochs} epoch(s) on {budget.train_samples} images" in note
    assert "seed(s) 1234" in note and "the reference model, trained the same way, 0." in note
    # the reference architecture itself, trained with the same seed on the same device
    assert note.endswith("ratio 1.000"), note
    assert results[0].notes[1].startswith("your submitted model.keras, as you trained it, scores")
    assert "no points" in results[0].notes[1]


@pytest.mark.slow
def test_weak_model_fails_the_full_tier_and_the_worker_sees_only_training_data(
    accuracy, fashion, host, tmp_path
):
    model = student(host, weak_model())
    result = training.train_and_evaluate(model, accuracy, dataset=fashion, workdir=tmp_path)
    assert result.params == 380 and result.device == "cpu"
    top = max(t for t, _ in accuracy.cpu.thresholds)
    assert result.accuracy < top
    assert training.earned_fraction(result.accuracy, accuracy.cpu.thresholds) < 1.0
    # what the worker was given: the model, the recipe and a subsample of the TRAINING split
    given = {"model.keras", "x_train.npy", "y_train.npy", "recipe.json"}
    # (the sandbox's own empty folders, home/ tmp/ ..., sit beside them)
    files = {p.name for p in tmp_path.iterdir() if p.is_file()}
    assert files == given | {"trained.keras", "train_report.json"}
    x = np.load(tmp_path / "x_train.npy")
    idx = training.subsample(len(fashion.x_train), accuracy.cpu.train_samples, accuracy.seed, 0)
    assert x.shape == (accuracy.cpu.train_samples, 28, 28, 1) and x.dtype == np.float32
    assert np.array_equal(x, training.prepare_images(fashion.x_train[idx], (28, 28, 1)))


@pytest.mark.slow
def test_seeded_training_is_reproducible_whatever_the_initial_weights(
    accuracy, fashion, cpu, host, tmp_path
):
    config = dataclasses.replace(accuracy, cpu=TINY)
    results, weights = [], []
    for run, init_seed in enumerate((1, 2)):
        keras.utils.set_random_seed(init_seed)  # different weights as handed in
        model = student(host, small_cnn())
        workdir = tmp_path / f"run{run}"
        results.append(
            training.train_and_evaluate(model, config, dataset=fashion, device=cpu, workdir=workdir)
        )
        trained = keras.saving.load_model(workdir / "trained.keras", safe_mode=True)
        weights.append([np.asarray(w) for w in trained.get_weights()])
    a, b = results
    assert a.accuracy == b.accuracy, (a.accuracy, b.accuracy)
    assert all(np.array_equal(u, v) for u, v in zip(*weights, strict=True))
    assert a.train_samples == 1000 and a.test_samples == 500 and a.budget == "tiny test budget"
    assert a.accuracy > 0.5 and a.output == "probabilities"


@pytest.mark.slow
def test_logits_models_are_trained_from_logits(accuracy, fashion, cpu, host, tmp_path):
    config = dataclasses.replace(accuracy, cpu=TINY)
    result = training.train_and_evaluate(
        student(host, small_cnn(softmax=False)),
        config,
        dataset=fashion,
        device=cpu,
        workdir=tmp_path,
    )
    assert result.output == "logits" and result.accuracy > 0.5


def test_worker_errors_reach_the_message(accuracy, fashion, cpu, host, tmp_path, monkeypatch):
    """The worker's error report (or, without one, its stderr) becomes the message."""

    def failing_worker(argv, workdir, timeout_s):
        assert argv[1:] == ["-m", "autograder.train_worker", "recipe.json"]
        assert Path(workdir, "recipe.json").is_file() and not Path(workdir, "x_test.npy").exists()
        error = "ValueError: Could not interpret optimizer identifier: no_such_optimizer"
        Path(workdir, "train_report.json").write_text(json.dumps({"ok": False, "error": error}))
        return subprocess.CompletedProcess(argv, 1, "", "Traceback ...\nValueError: ...")

    monkeypatch.setattr(training, "_launch_worker", failing_worker)
    with pytest.raises(AutograderError) as info:
        training.train_and_evaluate(
            student(host, small_cnn()), accuracy, dataset=fashion, device=cpu, workdir=tmp_path
        )
    assert str(info.value) == (
        "training the model failed: ValueError: Could not interpret optimizer identifier: "
        "no_such_optimizer"
    )
    monkeypatch.setattr(
        training,
        "_launch_worker",
        lambda argv, workdir, t: subprocess.CompletedProcess(argv, -9, "", "a\nb\nKilled"),
    )
    with pytest.raises(AutograderError, match=r"training the model failed: a \| b \| Killed"):
        training.train_and_evaluate(
            student(host, small_cnn()), accuracy, dataset=fashion, device=cpu, workdir=tmp_path
        )


def test_worker_module_runs_as_a_program(tmp_path):
    """`python -m autograder.train_worker` reports a bad recipe instead of crashing."""
    (tmp_path / "recipe.json").write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.train_worker", "recipe.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    report = json.loads((tmp_path / "train_report.json").read_text())
    assert report["ok"] is False and report["error"].startswith("JSONDecodeError")


# -- slow: fair accuracy across seeds (issue #14) ---------------------------------------------


def answer_key_model(input_shape=(28, 28, 1), num_classes=10):
    """The build_model of lab4-cnn.ipynb's answer key (220,234 parameters)."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.25),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def small_rule_abiding_cnn(input_shape=(28, 28, 1), num_classes=10):
    """Every rule of build_model (2 Conv2D, a pooling layer, softmax), 5,258 parameters."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


FAIR_SEEDS = (1234, 1, 2)


@pytest.mark.slow
def test_points_do_not_depend_on_the_seed(assignment, fashion, cpu, host, tmp_path, monkeypatch):
    """The key, a small rule-abiding CNN and the weak model, graded relative to the
    reference on the CPU quick budget under three seeds: the same points under each.

    12 trainings (the reference once per seed, then cached): about 3 minutes on 2 cores.
    """
    from autograder.accuracy_grade import grade_accuracy
    from autograder.config import AccuracyMode
    from autograder.reference import reference_accuracy

    monkeypatch.setenv("AUTOGRADER_REFERENCE_CACHE", str(tmp_path / "cache"))
    base = assignment.accuracy
    assert base.mode is AccuracyMode.RELATIVE
    models = {
        "answer key": answer_key_model,
        "small CNN": small_rule_abiding_cnn,
        "weak": weak_model,
    }
    built = {name: student(host, build()) for name, build in models.items()}
    fractions: dict[str, list[float]] = {name: [] for name in models}
    lines = []
    for seed in FAIR_SEEDS:
        config = dataclasses.replace(base, seeds=(seed,))
        ref = reference_accuracy(config, dataset=fashion, device=cpu)
        for name, model in built.items():
            grade = grade_accuracy(
                model,
                config,
                dataset=fashion,
                device=cpu,
                workdir=tmp_path / f"{name}-{seed}",
                reference=ref,
            )
            fractions[name].append(grade.fraction)
            # the margin: distance of the ratio to the nearest tier boundary
            margin = min(abs(grade.score - t) for t, _ in grade.tiers)
            lines.append(
                f"seed {seed:>4}  {name:<10}  accuracy {grade.accuracy:.4f}  reference "
                f"{ref.accuracy:.4f}  ratio {grade.score:.4f}  fraction {grade.fraction:.1f}  "
                f"margin {margin:.4f}"
            )
    print("\n" + "\n".join(lines))
    assert fractions["answer key"] == [1.0] * 3, lines
    assert fractions["weak"] == [0.0] * 3, lines
    assert len(set(fractions["small CNN"])) == 1, lines
