"""The reference model's accuracy, trained exactly as students' models are, and cached.

Relative grading (`[accuracy] mode = "relative"`) compares a student's trained accuracy
with the accuracy of the assignment's reference architecture trained with the same
recipe, seeds and budget on the same kind of device. That cancels what the grading
machine and the seed do to both (a CPU quick budget scores lower than a GPU's full one;
one seed's data sample is harder than another's), which absolute thresholds cannot.

The reference comes from a trusted instructor module named by `[accuracy] reference`,
defining `build_reference(input_shape, num_classes)`. It is built here, saved to
`.keras`, loaded in a `LocalModelHost` (trusted code only) and trained by the same
sandboxed worker (`training.train_and_evaluate`) once per seed. Its accuracies are
cached in a JSON file per (device kind and name, backend, threads, budget, data set,
recipe, seeds, reference source, training code): `$AUTOGRADER_REFERENCE_CACHE`, else
`$XDG_CACHE_HOME/autograder/reference/` (`~/.cache/...`). A batch trains it once; the
grading workers of a batch wait on a file lock instead of training it twice.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import training
from autograder.config import AccuracyConfig
from autograder.datasets import Dataset
from autograder.exceptions import AutograderError, ReferenceModelError

log = logging.getLogger(__name__)

BUILDER = "build_reference"
CACHE_VERSION = 1
_TRAINING_CODE = ("training.py", "train_worker.py")

Trainer = Callable[..., training.TrainingResult]


@dataclass(frozen=True)
class ReferenceResult:
    """The reference's accuracy per seed, and where it was measured."""

    accuracies: tuple[float, ...]
    seeds: tuple[int, ...]
    device: str
    device_name: str
    backend: str
    budget: str
    threads: int
    key: str
    cached: bool = False

    @property
    def accuracy(self) -> float:
        """The mean over seeds: what a student's mean accuracy is compared with."""
        return statistics.fmean(self.accuracies)


def cache_dir() -> Path:
    env = os.environ.get("AUTOGRADER_REFERENCE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autograder" / "reference"


def cache_key(
    config: AccuracyConfig, device: training.DeviceInfo, dataset: Dataset, threads: int
) -> str:
    """A hash of everything that can change the reference's trained accuracy."""
    if config.reference is None:
        raise ReferenceModelError(
            'this [accuracy] section names no reference model; add reference = "...py"'
        )
    budget = training.select_budget(config, device)
    package = Path(training.__file__).resolve().parent
    code = hashlib.sha256()
    for name in _TRAINING_CODE:
        code.update((package / name).read_bytes())
    parts = {
        "version": CACHE_VERSION,
        "device": [device.kind, device.name, device.backend, threads],
        "budget": [budget.epochs, budget.batch_size, budget.train_samples, budget.test_samples],
        "dataset": [dataset.name, dataset.note, len(dataset.x_train), len(dataset.x_test)],
        "recipe": [config.optimizer, config.learning_rate, config.max_params],
        "seeds": list(config.training_seeds),
        "source": hashlib.sha256(config.reference.read_bytes()).hexdigest(),
        "code": code.hexdigest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def load_builder(path: Path) -> Callable[..., Any]:
    """`build_reference` from the instructor's module (trusted code, like the checks)."""
    spec = importlib.util.spec_from_file_location(f"_ag_reference_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ReferenceModelError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    builder = getattr(module, BUILDER, None)
    if not callable(builder):
        raise ReferenceModelError(
            f"{path} defines no {BUILDER}(input_shape, num_classes); add it, returning the "
            "reference Keras model"
        )
    return builder


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_cached(path: Path, key: str) -> ReferenceResult | None:
    try:
        data = json.loads(path.read_text())
        result = ReferenceResult(
            **{k: data[k] for k in data if k != "cached"}
            | {"accuracies": tuple(data["accuracies"]), "seeds": tuple(data["seeds"])}
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return dataclasses.replace(result, cached=True) if result.key == key else None


def _write_cached(path: Path, result: ReferenceResult) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(result) | {"cached": False}, indent=1))
    os.replace(tmp, path)


def reference_accuracy(
    config: AccuracyConfig,
    *,
    dataset: Dataset,
    device: training.DeviceInfo,
    threads: int | None = None,
    train: Trainer = training.train_and_evaluate,
) -> ReferenceResult:
    """The reference's accuracy per seed: from the cache, else trained now and cached."""
    threads = threads or training.default_threads()
    key = cache_key(config, device, dataset, threads)
    path = cache_dir() / f"{key}.json"
    with _locked(path):
        cached = _read_cached(path, key)
        if cached is not None:
            return cached
        assert config.reference is not None  # cache_key checked it
        log.info("training the reference model %s (cache %s)", config.reference.name, path)
        accuracies, budget = _train_reference(config, dataset, device, threads, train)
        result = ReferenceResult(
            accuracies=accuracies,
            seeds=config.training_seeds,
            device=device.kind,
            device_name=device.name,
            backend=device.backend,
            budget=budget,
            threads=threads,
            key=key,
        )
        _write_cached(path, result)
        return result


def _train_reference(
    config: AccuracyConfig,
    dataset: Dataset,
    device: training.DeviceInfo,
    threads: int,
    train: Trainer,
) -> tuple[tuple[float, ...], str]:
    from autograder.model_host import LocalModelHost

    assert config.reference is not None
    builder = load_builder(config.reference)
    work = Path(tempfile.mkdtemp(prefix="ag-reference-"))
    host = LocalModelHost()
    try:
        archive = work / "reference.keras"
        builder(input_shape=dataset.input_shape, num_classes=dataset.num_classes).save(archive)
        model = host.model(archive, work, "loading the reference model")
        results = [
            train(
                model,
                dataclasses.replace(config, seed=seed),
                dataset=dataset,
                device=device,
                workdir=work / f"seed-{seed}",
                threads=threads,
            )
            for seed in config.training_seeds
        ]
    except AutograderError as exc:
        raise ReferenceModelError(
            f"the reference model ({config.reference}) could not be trained: {exc}. "
            "Fix the reference module; no student is graded against a missing reference"
        ) from None
    finally:
        host.close()
        shutil.rmtree(work, ignore_errors=True)
    return tuple(r.accuracy for r in results), results[0].budget
