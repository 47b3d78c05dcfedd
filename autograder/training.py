"""The `accuracy` question: the grader trains the student's architecture itself.

`train_and_evaluate(model, config, workdir=...)`:

1. takes the model as a `StudentModel` (admitted from its config, built only in the
   capped model host), refuses one over `config.max_params`, and one whose input/output
   shapes do not fit the data set, before anything else;
2. picks the budget: `config.gpu` when a GPU is visible to the active Keras backend,
   else `config.cpu` (its label, e.g. "trained on CPU, quick budget", goes into feedback);
3. copies the student's archive (already vetted: built-in layers only, declared size
   within limits) to `workdir/model.keras`, and writes ONLY the training split there:
   `x_train.npy` (float32 in [0, 1], shape (N, H, W, C), subsampled deterministically to
   `budget.train_samples`) and `y_train.npy`, plus `recipe.json`;
4. runs `python -m autograder.train_worker` as a separate process (`_launch_worker`,
   cwd=workdir): it loads the model with safe_mode=True, compiles it with the recipe
   (optimizer by name with the configured learning rate, sparse categorical
   cross-entropy, seeds from `keras.utils.set_random_seed`, deterministic ops), draws
   fresh initial weights from the seed (the submitted weights are discarded), fits
   `budget.epochs` epochs with `budget.batch_size` and seeded shuffling, and writes
   `trained.keras` and `train_report.json`;
5. loads `trained.keras` in the submission's capped model host (autograder.model_host)
   and measures its accuracy on the held-out test split (subsampled to
   `budget.test_samples`): the host returns the outputs, the grader counts the hits.
   The worker never sees a test image, and the grader's process never builds a model.

Determinism. With the same seed, device, backend and thread count, two runs give
bit-identical trained weights and so the same accuracy, even when the models handed in
had different initial weights (the worker re-initialises them from the seed);
tests/test_training.py checks this with two runs of a tiny budget. On TensorFlow the worker
enables `tf.config.experimental.enable_op_determinism()`; XLA (jit_compile, 1.4-2x faster
on this CPU) gave the same accuracies as plain TensorFlow in calibration. Another CPU
(instruction set) or thread count may round differently, which acts like another seed:
over 5 seeds the reference model scored 0.7965-0.817 and the notebook's solution
0.796-0.8195 under the CPU quick budget (bench/results/calibration-cpu.json). Relative
grading (autograder.reference, autograder.accuracy_grade) compares each accuracy with the
reference's under the same seed, budget and device instead of with a fixed number.

Threads: the worker uses `threads` CPU threads (default: $AUTOGRADER_TRAIN_THREADS, else
the CPUs this process may use, at most 8), for TensorFlow's intra-op pool and OpenMP.
When grading several submissions in parallel, pass threads = cores // parallel jobs.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autograder.config import AccuracyConfig, TrainingBudget
from autograder.datasets import Dataset, load_dataset
from autograder.exceptions import AutograderError
from autograder.safeio import read_untrusted

MODEL_FILE = "model.keras"
TRAINED_FILE = "trained.keras"
X_FILE = "x_train.npy"
Y_FILE = "y_train.npy"
RECIPE_FILE = "recipe.json"
REPORT_FILE = "train_report.json"
MAX_REPORT_BYTES = 64 << 10
MAX_THREADS = 8
MAX_ACTIVATION = 16_000_000  # values per image one layer may output, as Limits' default
PROXY_VARS = {"http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy"}


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "gpu" | "cpu"
    name: str
    backend: str  # keras.backend.backend()


@dataclass(frozen=True)
class TrainingResult:
    accuracy: float
    device: str  # "gpu" | "cpu"
    backend: str
    budget: str  # the budget's label, shown in feedback
    epochs: int
    batch_size: int
    train_samples: int
    test_samples: int
    seconds: float  # the worker's fit() time
    images_per_second: float
    params: int
    seed: int
    device_name: str = ""
    dataset: str = ""
    dataset_note: str = ""
    threads: int = 0
    output: str = ""  # "probabilities" or "logits": how the loss read the model's output
    wall_seconds: float = 0.0  # the whole call: saving, worker start, training, evaluation
    cpu_seconds: float = 0.0  # CPU time of the worker's fit() (all threads)

    def summary(self) -> str:
        """The feedback note, e.g. 'trained on CPU, quick budget: accuracy 0.812 after ...'."""
        text = (
            f"{self.budget}: accuracy {self.accuracy:.3f} after {self.epochs} epoch(s), "
            f"{self.train_samples} images, {self.seconds:.1f} s"
        )
        if self.dataset_note:
            text += f" ({self.dataset_note})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- device ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def detect_device() -> DeviceInfo:
    """A GPU if the active Keras backend sees one, else the CPU."""
    import keras  # deferred: importing Keras costs seconds

    backend = keras.backend.backend()
    gpu_name = None
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                gpu_name = details.get("device_name") or gpus[0].name
        elif backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform in ("gpu", "cuda", "rocm")]
            if gpus:
                gpu_name = getattr(gpus[0], "device_kind", str(gpus[0]))
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                gpu_name = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a broken GPU stack means: train on the CPU
        gpu_name = None
    if gpu_name:
        return DeviceInfo("gpu", str(gpu_name), backend)
    return DeviceInfo("cpu", _cpu_name(), backend)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({_cpu_count()} CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({_cpu_count()} CPUs)"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_threads() -> int:
    env = os.environ.get("AUTOGRADER_TRAIN_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(MAX_THREADS, _cpu_count()))


def select_budget(config: AccuracyConfig, device: DeviceInfo) -> TrainingBudget:
    return config.gpu if device.kind == "gpu" else config.cpu


def budget_label(budget: TrainingBudget, device: DeviceInfo) -> str:
    return budget.label or f"trained on {device.kind.upper()}"


def tier_weights(
    thresholds: tuple[tuple[float, float], ...],
) -> list[tuple[float, float, float]]:
    """(threshold, fraction, weight) per tier, lowest threshold first.

    Checks weighted this way add up so that reaching tier i earns exactly its fraction
    (`points * sum(weights passed) / sum(weights)`): weight_i = fraction_i - fraction_{i-1}.
    A tier that a lower threshold already beats on fraction never changes the score and is
    dropped. When the best fraction is below 1, a final tier at threshold inf (never
    reached) carries the rest, so the total weight is 1.
    """
    tiers: list[tuple[float, float, float]] = []
    best = 0.0
    for threshold, fraction in sorted(thresholds):
        if fraction > best:
            tiers.append((threshold, fraction, fraction - best))
            best = fraction
    if best < 1.0:
        tiers.append((math.inf, 1.0, 1.0 - best))
    return tiers


def earned_fraction(accuracy: float, thresholds: tuple[tuple[float, float], ...]) -> float:
    return max((f for t, f in thresholds if accuracy >= t), default=0.0)


# -- data --------------------------------------------------------------------------------


def subsample(n_total: int, n: int | None, seed: int, stream: int) -> np.ndarray:
    """Sorted indices of a seeded sample of n out of n_total (all when n is None)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    rng = np.random.default_rng([seed, stream])
    return np.sort(rng.permutation(n_total)[:n])


def prepare_images(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images -> float32 in [0, 1], shaped (N, *shape)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    return x.reshape((len(x), *shape))


def model_input_shape(model: Any, dataset: Dataset) -> tuple[int, ...]:
    """The per-image shape to feed the model; raise if the model can't take these images."""
    natural = dataset.input_shape
    try:
        in_shape, out_shape = model.input_shape, model.output_shape
        if in_shape is None or out_shape is None:
            raise ValueError("not built")
    except (AttributeError, ValueError):
        raise AutograderError(
            f"the model has no defined input and output; start it with keras.Input(shape={natural})"
        ) from None
    if isinstance(in_shape, list) or isinstance(out_shape, list):
        raise AutograderError("the model must have exactly one input and one output")
    want = tuple(in_shape[1:])
    if None in want:
        if len(want) == len(natural) and all(
            w in (None, n) for w, n in zip(want, natural, strict=True)
        ):
            want = natural
        else:
            want = ()
    if not want or math.prod(want) != math.prod(natural):
        raise AutograderError(
            f"the model takes inputs of shape {tuple(in_shape[1:])}, but {dataset.name} "
            f"images are {natural}; build it with input_shape={natural}"
        )
    if len(out_shape) != 2 or out_shape[-1] != dataset.num_classes:
        raise AutograderError(
            f"the model's output has shape {tuple(out_shape)}; it must be "
            f"(None, {dataset.num_classes}): one score per class"
        )
    return want


def count_params(model: Any) -> int:
    """The model's parameters; an AutograderError, in words, when it is not built."""
    return int(model.count_params())


def evaluate_accuracy(model: Any, x: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> float:
    """Top-1 accuracy of `model` (run where it lives) on uint8 images `x`, scaled as trained."""
    probs = np.asarray(model.predict(prepare_images(x, shape)))
    if probs.shape != (len(x), probs.shape[-1]) or probs.ndim != 2:
        raise AutograderError(f"the model's predictions have shape {probs.shape}")
    probs = np.where(np.isfinite(probs), probs, -np.inf)
    return float(np.mean(np.argmax(probs, axis=1) == np.asarray(y)))


def held_out_split(dataset: Dataset, budget: TrainingBudget, seed: int) -> tuple[np.ndarray, ...]:
    idx = subsample(len(dataset.x_test), budget.test_samples, seed, 1)
    return dataset.x_test[idx], dataset.y_test[idx]


# -- the worker --------------------------------------------------------------------------


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env["PYTHONHASHSEED"] = "0"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _launch_worker(
    argv: list[str], workdir: Path, timeout_s: float | None
) -> subprocess.CompletedProcess:
    """Run the training worker in the sandbox: no network, its own uid, only `workdir`.

    The workdir holds the model and the training split; the test split never enters it.
    The worker needs the autograder package itself, which is bound read-only (the
    assignment, its checks and the grader's outputs are not). On a GPU machine the
    NVIDIA device nodes are passed through.
    """
    from autograder.config import Limits
    from autograder.sandbox import Sandbox

    package = Path(__file__).resolve().parent
    limits = Limits(
        memory_mib=int(os.environ.get("AUTOGRADER_TRAIN_MEMORY_MIB", "6144")),
        max_processes=512,  # TensorFlow and XLA start many threads; each counts as a pid
        cpu_time_s=int((timeout_s or 3600) * max(os.cpu_count() or 1, 1)) + 60,
        file_size_mib=1024,
    )
    env = {
        k: v
        for k, v in _worker_env().items()
        if k
        in (
            "PYTHONPATH",
            "PYTHONHASHSEED",
            "TF_CPP_MIN_LOG_LEVEL",
            "KERAS_BACKEND",
            "AUTOGRADER_TRAIN_THREADS",
            "XLA_FLAGS",
        )
    }
    env["PYTHONPATH"] = str(package.parent)
    if detect_device().kind == "gpu":
        env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
    gpu = detect_device().kind == "gpu"
    # No student code runs here (the model is data, loaded with safe_mode): the worker
    # writes its report in the scratch folder itself.
    with Sandbox(workdir, limits, readonly=[package], gpu=gpu, writable_top=True) as box:
        proc = box.run(argv, timeout=timeout_s or 3600, env=env, cwd=workdir)
    if proc.returncode == -9:
        raise AutograderError(
            f"training ran past its {timeout_s:.0f}-second limit and was stopped; "
            "a smaller model trains faster"
        )
    out = proc.stdout.decode(errors="replace") if isinstance(proc.stdout, bytes) else proc.stdout
    return subprocess.CompletedProcess(argv, proc.returncode, out, out)


def _read_report(workdir: Path) -> dict[str, Any]:
    try:
        raw = read_untrusted(workdir / REPORT_FILE, workdir, MAX_REPORT_BYTES)
        report = json.loads(raw)
    except (AutograderError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def _number(report: dict[str, Any], key: str) -> float:
    value = report.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


def train_and_evaluate(
    model: Any,
    config: AccuracyConfig,
    *,
    dataset: Dataset | None = None,
    device: DeviceInfo | None = None,
    workdir: Path,
    timeout_s: float | None = None,
    threads: int | None = None,
) -> TrainingResult:
    """Train `model` (a StudentModel) with the grader's recipe in a separate process; test it."""
    started = time.perf_counter()
    params = count_params(model)
    if params > config.max_params:
        raise AutograderError(
            f"the model has {params:,} parameters, more than the {config.max_params:,} "
            "allowed for this question; use fewer filters or a smaller Dense layer"
        )
    dataset = dataset if dataset is not None else load_dataset(config.dataset)
    shape = model_input_shape(model, dataset)
    device = device or detect_device()
    budget = select_budget(config, device)
    threads = threads or default_threads()

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, TRAINED_FILE, X_FILE, Y_FILE, RECIPE_FILE, REPORT_FILE):
        (workdir / name).unlink(missing_ok=True)
    shutil.copyfile(model.archive, workdir / MODEL_FILE)

    idx = subsample(len(dataset.x_train), budget.train_samples, config.seed, 0)
    np.save(workdir / X_FILE, prepare_images(dataset.x_train[idx], shape), allow_pickle=False)
    np.save(workdir / Y_FILE, dataset.y_train[idx].astype(np.int32), allow_pickle=False)
    recipe = {
        "model": MODEL_FILE,
        "x": X_FILE,
        "y": Y_FILE,
        "out": TRAINED_FILE,
        "report": REPORT_FILE,
        "max_params": config.max_params,
        "max_activation": MAX_ACTIVATION,
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "epochs": budget.epochs,
        "batch_size": budget.batch_size,
        "seed": config.seed,
        "threads": threads,
        "device": device.kind,
        "backend": device.backend,
    }
    (workdir / RECIPE_FILE).write_text(json.dumps(recipe, indent=1))

    argv = [sys.executable, "-m", "autograder.train_worker", RECIPE_FILE]
    limit = timeout_s if timeout_s is not None else config.timeout_s
    proc = _launch_worker(argv, workdir, limit)
    report = _read_report(workdir)
    if proc.returncode != 0 or report.get("ok") is not True:
        error = str(report.get("error") or "")[:800]
        if not error:
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            error = " | ".join(tail)[-800:] or f"exit status {proc.returncode}"
        raise AutograderError(f"training the model failed: {error}")

    trained = model.host.model(workdir / TRAINED_FILE, workdir, "loading the trained model")
    if count_params(trained) != params:
        raise AutograderError("the trained model does not match the submitted architecture")
    x_test, y_test = held_out_split(dataset, budget, config.seed)
    try:
        accuracy = evaluate_accuracy(trained, x_test, y_test, shape)
    except AutograderError:
        raise
    except Exception as exc:  # noqa: BLE001 - Keras raises many types
        raise AutograderError(
            f"evaluating the trained model failed ({type(exc).__name__}: {str(exc)[:300]})"
        ) from None

    seconds = _number(report, "seconds")
    n_train = len(idx)
    return TrainingResult(
        accuracy=accuracy,
        device=device.kind,
        backend=device.backend,
        budget=budget_label(budget, device),
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        train_samples=n_train,
        test_samples=len(y_test),
        seconds=round(seconds, 3),
        images_per_second=round(n_train * budget.epochs / seconds, 1) if seconds else 0.0,
        params=params,
        seed=config.seed,
        device_name=device.name,
        dataset=dataset.name,
        dataset_note=dataset.note,
        threads=threads,
        output=str(report.get("output", ""))[:20],
        wall_seconds=round(time.perf_counter() - started, 3),
        cpu_seconds=round(_number(report, "cpu_seconds"), 3),
    )
