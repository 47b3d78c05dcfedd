"""The accuracy question's check: the grader trains the student's architecture itself.

An assignment whose assignment.toml has an `[accuracy]` section uses it from a check
module of its own (`checks/test_accuracy.py`), which imports `graded`,
`pytest_generate_tests` and `test_trained_accuracy` from here and marks its question.

The function `[accuracy] function` names
 is called with the data set's shape
(`<function>(input_shape=(28, 28, 1), num_classes=10)`; (32, 32, 3) for CIFAR-10). The
returned model (loaded safely: built-in layers only) is trained with the grader's fixed
recipe and seed in a separate process that sees only training images
(autograder.training), then tested here on held-out images the student's code never sees.

The model is trained once per seed of `[accuracy] seeds` and its mean accuracy counts. In
relative mode (`mode = "relative"`) that mean is divided by the mean of the reference model
(`[accuracy] reference`) trained the same way on the same device (autograder.reference,
cached per device, budget and data), and the budget's `ratios` give the points; in absolute
mode the budget's `thresholds` do. One check per tier of the budget in assignment.toml
([accuracy.cpu] on a CPU, [accuracy.gpu] on a GPU). Tier i weighs fraction_i -
fraction_(i-1), so reaching tier i earns exactly its fraction of the points. Every check
carries the note of autograder.accuracy_grade (device, budget, seeds, the reference's
accuracy, the student's and the ratio). A function
that raises, a model that cannot be loaded safely, one over max_params or one that does
not fit the data earns 0 with a message saying why. A trained `model.keras` handed in
with the notebook is measured too, as a note only (no points).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autograder import reference, training
from autograder.accuracy_grade import AccuracyGrade, grade_accuracy
from autograder.checks import expect, fail
from autograder.config import (
    AccuracyConfig,
    AccuracyMode,
    TrainingBudget,
)
from autograder.datasets import load_dataset
from autograder.exceptions import (
    AutograderError,
    DatasetUnavailable,
    ReferenceModelError,
    UnsafeModel,
)
from autograder.plugin import assignment_config

INPUT_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
NUM_CLASSES = 10
SUBMITTED_MODEL = "model.keras"


# -- tiers: known at collection, from the assignment's config ------------------------------


def _accuracy(pytest_config: pytest.Config) -> AccuracyConfig | None:
    """The [accuracy] section of the config the grading plugin runs with."""
    config = assignment_config(pytest_config)
    return None if config is None else config.accuracy


def _tier_params(accuracy: AccuracyConfig | None) -> list:
    if accuracy is None:
        return [pytest.param((0, 1.0), id="tier1")]
    cpu = training.tier_weights(accuracy.tiers(accuracy.cpu))
    gpu = training.tier_weights(accuracy.tiers(accuracy.gpu))
    if [t[1:] for t in cpu] == [t[1:] for t in gpu]:
        tiers = cpu  # same fractions on both devices: no need to look for a GPU yet
    else:
        tiers = training.tier_weights(
            accuracy.tiers(training.select_budget(accuracy, training.detect_device()))
        )
    return [
        pytest.param((i, weight), marks=pytest.mark.points(weight), id=f"tier{i + 1}-{frac:.0%}")
        for i, (_, frac, weight) in enumerate(tiers)
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tier" in metafunc.fixturenames:
        metafunc.parametrize("tier", _tier_params(_accuracy(metafunc.config)))


# -- one grader training per submission ----------------------------------------------------


@dataclass
class Graded:
    budget: TrainingBudget | None = None
    label: str = ""
    result: AccuracyGrade | None = None
    error: str = ""
    submitted_note: str = ""
    notes: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def graded(submission, assignment) -> Graded:
    accuracy = assignment.accuracy
    if accuracy is None:
        return Graded(error="this assignment.toml has no [accuracy] section to grade with")
    # A missing data set is the grader's problem, not the student's: let it raise.
    dataset = load_dataset(accuracy.dataset)
    device = training.detect_device()
    budget = training.select_budget(accuracy, device)
    out = Graded(budget=budget, label=training.budget_label(budget, device))
    shape = INPUT_SHAPES[accuracy.dataset]
    call = f"{accuracy.function}(input_shape={shape}, num_classes={NUM_CLASSES})"
    workdir = Path(tempfile.mkdtemp(prefix="ag-accuracy-"))
    try:
        if not submission.has(accuracy.function):
            out.error = f"{accuracy.function} is not defined: nothing to train"
        else:
            model = submission.call_model(
                accuracy.function, input_shape=shape, num_classes=NUM_CLASSES
            )
            ref = None
            if accuracy.mode is AccuracyMode.RELATIVE:
                # trained once per device and budget, then cached; the grader's problem if
                # it fails (ReferenceModelError is raised, never blamed on the student)
                ref = reference.reference_accuracy(accuracy, dataset=dataset, device=device)
            out.result = grade_accuracy(
                model,
                accuracy,
                dataset=dataset,
                device=device,
                workdir=workdir / "train",
                reference=ref,
            )
    except (DatasetUnavailable, ReferenceModelError):
        raise
    except UnsafeModel as exc:
        out.error = f"the model from {call} cannot be trained by the grader: {exc}"
    except AutograderError as exc:
        out.error = f"{call}: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out.submitted_note = _submitted_model_note(submission, accuracy, dataset, budget)
    return out


def _submitted_model_note(submission, accuracy, dataset, budget) -> str:
    """The handed-in model.keras, tested on the same held-out images: a note, no points."""
    what = f"your submitted {SUBMITTED_MODEL}"
    try:
        model = submission.submitted_model(SUBMITTED_MODEL)
        if model is None:
            return ""
        params = training.count_params(model)
        if params > accuracy.max_params:
            return (
                f"{what} has {params:,} parameters, over the {accuracy.max_params:,} limit; "
                "it was not evaluated (no points either way)"
            )
        shape = training.model_input_shape(model, dataset)
        x, y = training.held_out_split(dataset, budget, accuracy.seed)
        acc = training.evaluate_accuracy(model, x, y, shape)
    except AutograderError as exc:
        return f"{what} could not be evaluated: {exc} (no points either way)"
    except Exception as exc:  # noqa: BLE001 - a note must never break grading
        return f"{what} could not be evaluated ({type(exc).__name__}; no points either way)"
    return (
        f"{what}, as you trained it, scores {acc:.3f} on the grader's {len(y)} held-out "
        "test images (pixels scaled to [0, 1]); for information only, no points"
    )


# -- the checks ------------------------------------------------------------------------------


def test_trained_accuracy(graded: Graded, tier: tuple[int, float], record_property: Any) -> None:
    """Reaching this tier's accuracy earns its share of the question's points."""
    index, weight = tier
    if graded.result is not None:
        record_property("note", graded.result.note())
    if index == 0 and graded.submitted_note:
        record_property("note", graded.submitted_note)
    if graded.error:
        fail(graded.error)
    result = graded.result
    if result is None:
        fail("the grader's training produced no result")
        return
    threshold, fraction, _ = training.tier_weights(result.tiers)[index]
    if threshold == float("inf"):
        fail(f"the remaining {weight:.0%} of this question's points are not autograded")
    acc = result.accuracy
    if (
        result.ratio is not None
        and result.reference is not None
        and result.mode is AccuracyMode.RELATIVE
    ):
        expect(
            result.score >= threshold,
            f"test accuracy {acc:.3f} after the grader's training ({graded.label}) is "
            f"{result.ratio:.3f} of the reference model's {result.reference.accuracy:.3f}; "
            f"{threshold:.2f} of it is needed for {fraction:.0%} of this question's points",
        )
        return
    expect(
        acc >= threshold,
        f"test accuracy {acc:.3f} after the grader's training ({graded.label}) is below "
        f"{threshold:.2f}, needed for {fraction:.0%} of this question's points",
    )
