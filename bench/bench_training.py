"""Benchmark (and calibrate) the grader's training for the `accuracy` question.

    .venv/bin/python bench/bench_training.py              # 3 graded runs, median -> json
    .venv/bin/python bench/bench_training.py --calibrate  # budget grid x models -> json
    .venv/bin/python bench/bench_training.py --fair       # seeds x models, ratios -> json

The default mode grades the lab's reference model (Conv32-Conv32-MaxPool-Conv64-MaxPool-
Flatten-Dropout-Dense128-softmax, 234,282 parameters) three times with the assignment's
budget for this machine's device, exactly as the `accuracy` check does, and prints the
median seconds per graded submission and training images/second. Results go to
bench/results/training-<device>.json.

--calibrate trains several models (reference, the notebook's solution, a linear model,
a deliberately weak CNN) under candidate CPU budgets and across seeds, to choose
[accuracy.cpu] in assignment.toml; results go to bench/results/calibration-cpu.json.

--fair trains the assignment's reference architecture, the notebook's answer key, a small
CNN that meets every rule of build_model and the weak CNN under each seed (default 1234,
1, 2) with the assignment's budget for this device, and reports each model's accuracy,
its ratio to the reference under the same seed, the points that ratio earns and the
margin to the nearest tier; results go to bench/results/fair-accuracy-<device>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.config import TrainingBudget, load_config  # noqa: E402
from autograder.datasets import load_dataset  # noqa: E402
from autograder.reference import load_builder  # noqa: E402
from autograder.training import (  # noqa: E402
    default_threads,
    detect_device,
    earned_fraction,
    select_budget,
    train_and_evaluate,
)

RESULTS = REPO / "bench" / "results"
ASSIGNMENT = REPO / "assignments" / "lab4-cnn" / "assignment.toml"


# The reference CNN the grader trains (assignments/lab4-cnn/checks/_reference_model.py).
reference_model = load_builder(ASSIGNMENT.parent / "checks" / "_reference_model.py")


def notebook_solution(input_shape=(28, 28, 1), num_classes=10):
    """The solution cell of lab4-cnn.ipynb at the time of calibration (no Dense128)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def linear_model(input_shape=(28, 28, 1), num_classes=10):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def weak_model(input_shape=(28, 28, 1), num_classes=10):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(1, 3, activation="relu"),
            layers.MaxPooling2D(4),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def answer_key(input_shape=(28, 28, 1), num_classes=10):
    """The build_model of lab4-cnn.ipynb's answer key now (220,234 parameters)."""
    import keras
    from keras import layers

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


def small_cnn(input_shape=(28, 28, 1), num_classes=10):
    """Every rule of build_model (2 Conv2D, pooling, softmax) in 5,258 parameters."""
    import keras
    from keras import layers

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


MODELS = {
    "reference": reference_model,
    "notebook_solution": notebook_solution,
    "answer_key": answer_key,
    "small_cnn": small_cnn,
    "linear": linear_model,
    "weak": weak_model,
}
FAIR_MODELS = ("answer_key", "small_cnn", "weak")

CANDIDATES = {
    "tiny": TrainingBudget(1, 32, ((0.76, 1.0), (0.65, 0.5)), 1000, 500),
    "e1-b64-n6000": TrainingBudget(1, 64, ((0.76, 1.0), (0.65, 0.5)), 6000, 2000),
    "e1-b32-n8000": TrainingBudget(1, 32, ((0.76, 1.0), (0.65, 0.5)), 8000, 2000),
    "e1-b32-n12000": TrainingBudget(1, 32, ((0.76, 1.0), (0.65, 0.5)), 12000, 2000),
    "e2-b32-n6000": TrainingBudget(2, 32, ((0.76, 1.0), (0.65, 0.5)), 6000, 2000),
}


def _grade(builder, accuracy_config, dataset, device, threads):
    from autograder.model_host import LocalModelHost

    host = LocalModelHost()
    with tempfile.TemporaryDirectory(prefix="ag-bench-") as tmp:
        start = time.perf_counter()
        saved = Path(tmp) / "given.keras"
        builder().save(saved)
        model = host.model(saved, Path(tmp), "loading the model")  # as the grader sees it
        result = train_and_evaluate(
            model,
            accuracy_config,
            dataset=dataset,
            device=device,
            workdir=Path(tmp) / "train",
            threads=threads,
        )
        host.close()
        return result, time.perf_counter() - start


def _machine(device) -> dict:
    return {
        "device": device.kind,
        "device_name": device.name,
        "backend": device.backend,
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
        "gpu_note": "no GPU visible in this session; the CPU quick budget applies"
        if device.kind == "cpu"
        else "GPU visible",
    }


def bench(runs: int) -> dict:
    config = load_config(ASSIGNMENT).accuracy
    device = detect_device()
    threads = default_threads()
    budget = select_budget(config, device)
    dataset = load_dataset(config.dataset)
    if device.kind == "cpu":
        print("No GPU is available in this session: grading uses the CPU quick budget.")
    print(
        f"device {device.kind} ({device.name}), backend {device.backend}, {threads} threads; "
        f"budget '{budget.label}': {budget.epochs} epoch(s), batch {budget.batch_size}, "
        f"{budget.train_samples} train / {budget.test_samples} test images"
    )
    rows = []
    for i in range(runs):
        result, wall = _grade(reference_model, config, dataset, device, threads)
        rows.append({**result.to_dict(), "wall_seconds": round(wall, 3)})
        print(
            f"run {i + 1}/{runs}: {result.summary()}; {result.images_per_second:.0f} images/s, "
            f"{wall:.1f} s per graded submission"
        )
    summary = {
        "what": "accuracy check on the lab's reference model, as graded",
        **_machine(device),
        "threads": threads,
        "budget": dataclasses.asdict(budget),
        "epochs": budget.epochs,
        "runs": runs,
        "median_training_seconds": statistics.median(r["seconds"] for r in rows),
        "median_images_per_second": statistics.median(r["images_per_second"] for r in rows),
        "median_training_cpu_seconds": statistics.median(r["cpu_seconds"] for r in rows),
        "load_note": "wall seconds grow with other jobs on the machine; CPU seconds do not",
        "median_seconds_per_graded_submission": statistics.median(r["wall_seconds"] for r in rows),
        "accuracies": [r["accuracy"] for r in rows],
        "deterministic": len({r["accuracy"] for r in rows}) == 1,
        "earned_fraction": earned_fraction(rows[0]["accuracy"], budget.thresholds),
        "run_details": rows,
    }
    print(
        f"median: {summary['median_seconds_per_graded_submission']:.1f} s per graded "
        f"submission, {summary['median_training_seconds']:.1f} s training, "
        f"{summary['median_images_per_second']:.0f} images/s; accuracy "
        f"{summary['accuracies']} (deterministic: {summary['deterministic']})"
    )
    return summary


def calibrate(candidates: list[str], models: list[str], seeds: list[int]) -> dict:
    config = load_config(ASSIGNMENT).accuracy
    device = detect_device()
    threads = default_threads()
    dataset = load_dataset(config.dataset)
    rows = []
    for cand in candidates:
        budget = CANDIDATES[cand]
        for model in models:
            for seed in seeds if model in ("reference", "notebook_solution") else seeds[:1]:
                cfg = dataclasses.replace(config, cpu=budget, seed=seed)
                result, wall = _grade(MODELS[model], cfg, dataset, device, threads)
                row = {
                    "candidate": cand,
                    "model": model,
                    "seed": seed,
                    "accuracy": result.accuracy,
                    "train_seconds": result.seconds,
                    "train_cpu_seconds": result.cpu_seconds,
                    "wall_seconds": round(wall, 2),
                    "images_per_second": result.images_per_second,
                    "params": result.params,
                    "load_average": round(os.getloadavg()[0], 2),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    return {
        "what": "candidate CPU budgets x models x seeds (Fashion-MNIST, adam 1e-3)",
        **_machine(device),
        "threads": threads,
        "candidates": {k: dataclasses.asdict(CANDIDATES[k]) for k in candidates},
        "rows": rows,
    }


def fair(seeds: list[int]) -> dict:
    """Per seed: the reference (the assignment's own module) and each model, as graded."""
    from autograder.reference import load_builder

    config = load_config(ASSIGNMENT).accuracy
    device = detect_device()
    threads = default_threads()
    budget = select_budget(config, device)
    tiers = config.tiers(budget)
    dataset = load_dataset(config.dataset)
    builder = load_builder(config.reference)
    rows = []
    for seed in seeds:
        cfg = dataclasses.replace(config, seed=seed, seeds=(seed,))
        ref, _ = _grade(builder, cfg, dataset, device, threads)
        for name in FAIR_MODELS:
            result, wall = _grade(MODELS[name], cfg, dataset, device, threads)
            ratio = result.accuracy / ref.accuracy
            row = {
                "seed": seed,
                "model": name,
                "accuracy": result.accuracy,
                "reference_accuracy": ref.accuracy,
                "ratio": round(ratio, 4),
                "fraction": earned_fraction(ratio, tiers),
                "margin": round(min(abs(ratio - t) for t, _ in tiers), 4),
                "train_cpu_seconds": result.cpu_seconds,
                "wall_seconds": round(wall, 2),
                "params": result.params,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {
        "what": "accuracy / the reference's accuracy under the same seed, budget and device",
        **_machine(device),
        "threads": threads,
        "budget": dataclasses.asdict(budget),
        "tiers": [list(t) for t in tiers],
        "seeds": seeds,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--fair", action="store_true")
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[1234])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.fair:
        seeds = args.seeds if args.seeds != [1234] else [1234, 1, 2]
        data = fair(seeds)
        out = args.out or RESULTS / f"fair-accuracy-{data['device']}.json"
    elif args.calibrate:
        data = calibrate(args.candidates, args.models, args.seeds)
        out = args.out or RESULTS / "calibration-cpu.json"
    else:
        data = bench(args.runs)
        out = args.out or RESULTS / f"training-{data['device']}.json"
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
