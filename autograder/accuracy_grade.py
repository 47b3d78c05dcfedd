"""A student's trained accuracy turned into a comparable score, over seeds.

`grade_accuracy` trains the student's model (a StudentModel) once per seed of
`[accuracy] seeds` with `training.train_and_evaluate` and takes the mean accuracy, so
one unlucky seed moves nobody across a tier. In relative mode it divides that mean by the
reference model's mean over the same seeds, budget and device (`autograder.reference`):
the score is the ratio and the budget's `ratios` give the points. In absolute mode the
mean accuracy meets the budget's `thresholds`, as before. `AccuracyGrade.note()` is the
feedback line: device, budget, seeds, the reference's accuracy, the student's and the ratio.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import reference as reference_module
from autograder import training
from autograder.config import AccuracyConfig, AccuracyMode
from autograder.datasets import Dataset
from autograder.exceptions import AutograderError


@dataclass(frozen=True)
class AccuracyGrade:
    """What the grader measured for one model, and the score its tiers are compared with."""

    runs: tuple[training.TrainingResult, ...]
    mode: AccuracyMode
    tiers: tuple[tuple[float, float], ...]
    reference: reference_module.ReferenceResult | None = None

    @property
    def accuracy(self) -> float:
        return statistics.fmean(r.accuracy for r in self.runs)

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.reference.accuracy <= 0:
            return None
        return self.accuracy / self.reference.accuracy

    @property
    def score(self) -> float:
        """The ratio in relative mode, the mean accuracy in absolute mode."""
        ratio = self.ratio
        return ratio if self.mode is AccuracyMode.RELATIVE and ratio is not None else self.accuracy

    @property
    def fraction(self) -> float:
        return training.earned_fraction(self.score, self.tiers)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.runs)

    def note(self) -> str:
        """The feedback line: device, budget, seeds, reference, accuracy and ratio."""
        first = self.runs[0]
        seeds = ", ".join(str(s) for s in self.seeds)
        per_seed = ", ".join(f"{r.accuracy:.3f}" for r in self.runs)
        text = (
            f"{first.budget} ({first.device.upper()}: {first.device_name}, {first.backend}): "
            f"{first.epochs} epoch(s) on {first.train_samples} images, tested on "
            f"{first.test_samples}, seed(s) {seeds}; your model's accuracy {self.accuracy:.3f}"
        )
        if len(self.runs) > 1:
            text += f" (per seed {per_seed})"
        if self.reference is not None and self.ratio is not None:
            text += (
                f"; the reference model, trained the same way, {self.reference.accuracy:.3f}; "
                f"ratio {self.ratio:.3f}"
            )
        if first.dataset_note:
            text += f" ({first.dataset_note})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "accuracy": self.accuracy,
            "ratio": self.ratio,
            "score": self.score,
            "fraction": self.fraction,
            "seeds": list(self.seeds),
            "reference": dataclasses.asdict(self.reference) if self.reference else None,
            "runs": [r.to_dict() for r in self.runs],
        }


def grade_accuracy(
    model: Any,
    config: AccuracyConfig,
    *,
    dataset: Dataset,
    device: training.DeviceInfo,
    workdir: Path,
    threads: int | None = None,
    train: Callable[..., training.TrainingResult] = training.train_and_evaluate,
    reference: reference_module.ReferenceResult | None = None,
) -> AccuracyGrade:
    """Train `model` once per seed; in relative mode, compare with `reference`'s mean.

    The caller gets the reference first (`reference.reference_accuracy`), so that a
    reference that cannot be trained is the grader's error, never the student's.
    """
    if config.mode is AccuracyMode.RELATIVE and reference is None:
        raise AutograderError(
            "relative accuracy grading needs the reference's result; pass "
            "reference=reference.reference_accuracy(...)"
        )
    threads = threads or training.default_threads()
    budget = training.select_budget(config, device)
    runs = tuple(
        train(
            model,
            dataclasses.replace(config, seed=seed),
            dataset=dataset,
            device=device,
            workdir=Path(workdir) / f"seed-{seed}",
            threads=threads,
        )
        for seed in config.training_seeds
    )
    return AccuracyGrade(
        runs=runs, mode=config.mode, tiers=config.tiers(budget), reference=reference
    )
