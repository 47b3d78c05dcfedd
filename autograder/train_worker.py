"""`python -m autograder.train_worker recipe.json`: train one model, in its own process.

Run by autograder.training with cwd = a work folder holding `model.keras` (a model
archive of built-in layers only, either form of `kernel_side.save_model`), the TRAINING
split `x_train.npy` / `y_train.npy` and `recipe.json`. It never receives test data. It
writes `trained.keras` and `train_report.json` ({"ok": true, "seconds": ...,
"images_per_second": ...} or {"ok": false, "error": ...}).

The model is re-initialised (`keras.models.clone_model` after seeding), so only its
architecture counts: the weights it arrived with, pre-trained or not, are discarded.
Thread counts, the Keras backend, determinism flags and GPU visibility are set from
the recipe BEFORE Keras is imported, since the backends read them once at start-up.
Training uses only `keras.*` APIs, so it runs on any backend; on TensorFlow it also
enables op determinism.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

MAX_RECIPE_BYTES = 64 << 10
PROBE_SAMPLES = 256


def _configure_environment(recipe: dict[str, Any]) -> None:
    threads = str(max(1, int(recipe.get("threads", 1))))
    os.environ["KERAS_BACKEND"] = str(recipe.get("backend", "tensorflow"))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = threads
    os.environ["TF_NUM_INTRAOP_THREADS"] = threads
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ["TF_DETERMINISTIC_OPS"] = "1"
    os.environ["TF_CUDNN_DETERMINISTIC"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYTHONHASHSEED"] = "0"
    if recipe.get("device") == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # the CPU budget trains on the CPU


def _backend_setup(keras, threads: int) -> None:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # already initialised: the environment variables applied


def _load_vetted(path: Path, recipe: dict[str, Any]):
    """The architecture to train: vetted and sized from its config, then built from it
    safely. Only the config counts (the weights are drawn again), so the archive's
    weights, in either form (`kernel_side.save_model`), are never read."""
    from autograder.model_side import build_from_config
    from autograder.modelsize import check_declared_size
    from autograder.modelspec import read_config, vet_config

    config = read_config(path.read_bytes())
    vet_config(config)
    check_declared_size(config, int(recipe["max_params"]), int(recipe["max_activation"]))
    return build_from_config(config)


def _outputs_probabilities(model, x) -> bool:
    """True when the model's outputs already are class probabilities (e.g. softmax)."""
    import numpy as np

    out = np.asarray(model.predict(x[:PROBE_SAMPLES], verbose=0), dtype=np.float64)
    return bool(
        np.all(np.isfinite(out))
        and np.all(out >= -1e-6)
        and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3)
    )


def _fit(recipe: dict[str, Any], x, y, jit_compile: bool) -> tuple[Any, float, bool, list]:
    import keras

    submitted = _load_vetted(Path(recipe["model"]), recipe)
    # The grader trains the ARCHITECTURE: fresh weights drawn from the recipe's seed, so
    # that neither the kernel's random state nor pre-trained weights change the result.
    keras.utils.set_random_seed(int(recipe["seed"]))
    model = keras.models.clone_model(submitted)
    probabilities = _outputs_probabilities(model, x)
    keras.utils.set_random_seed(int(recipe["seed"]))
    optimizer_class = type(keras.optimizers.get(str(recipe["optimizer"])))
    optimizer = optimizer_class(learning_rate=float(recipe["learning_rate"]))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities),
        jit_compile=jit_compile,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    history = model.fit(
        x,
        y,
        epochs=int(recipe["epochs"]),
        batch_size=int(recipe["batch_size"]),
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    recipe["_cpu_seconds"] = time.process_time() - cpu_start
    return model, seconds, probabilities, list(history.history.get("loss", []))


def train(recipe: dict[str, Any]) -> dict[str, Any]:
    import keras
    import numpy as np

    threads = int(recipe.get("threads", 1))
    _backend_setup(keras, threads)
    x = np.load(recipe["x"], allow_pickle=False)
    y = np.load(recipe["y"], allow_pickle=False)
    # XLA made CPU training 1.4-2x faster here with identical results; a model XLA cannot
    # compile is trained again from its initial weights without it.
    jit = keras.backend.backend() in ("tensorflow", "jax")
    try:
        model, seconds, probabilities, losses = _fit(recipe, x, y, jit)
    except Exception:  # noqa: BLE001 - retried without XLA; a real error recurs there
        if not jit:
            raise
        jit = False
        model, seconds, probabilities, losses = _fit(recipe, x, y, jit)
    model.save(recipe["out"])
    seconds = max(seconds, 1e-9)
    loss = float(losses[-1]) if losses else float("nan")
    return {
        "ok": True,
        "seconds": round(seconds, 4),
        "images_per_second": round(len(x) * int(recipe["epochs"]) / seconds, 1),
        "cpu_seconds": round(float(recipe.get("_cpu_seconds", 0.0)), 3),
        "train_samples": len(x),
        "output": "probabilities" if probabilities else "logits",
        "final_loss": loss if math.isfinite(loss) else None,
        "jit_compile": jit,
        "backend": keras.backend.backend(),
        "threads": threads,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    recipe_path = Path(argv[0] if argv else "recipe.json")
    report_path = Path("train_report.json")
    try:
        if recipe_path.stat().st_size > MAX_RECIPE_BYTES:
            raise ValueError("recipe too large")
        recipe = json.loads(recipe_path.read_text())
        report_path = Path(recipe.get("report", report_path))
        _configure_environment(recipe)
        report = train(recipe)
        code = 0
    except Exception as exc:  # noqa: BLE001 - every failure is reported, not raised
        report = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:1500]}"}
        code = 1
    report_path.write_text(json.dumps(report))
    return code


if __name__ == "__main__":
    sys.exit(main())
