"""The accuracy question on a GPU: the grader's training uses it, and the GPU budget holds.

Runs only where the active Keras backend sees a GPU (TensorFlow, JAX or PyTorch); elsewhere
it is skipped and says why. On a GPU machine, for each assignment with an `[accuracy]`
section, the reference model is trained with the GPU budget (`[accuracy.gpu]`) by the same
sandboxed worker as the students' models, in a fresh cache; the printed figures (device,
seconds per training, accuracy) are the ones the README asks for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder import reference, training
from autograder.config import load_assignment
from autograder.datasets import load_dataset

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("lab4-cnn", "cnn-intro")


@pytest.fixture(scope="module")
def gpu() -> training.DeviceInfo:
    device = training.detect_device()
    if device.kind != "gpu":
        pytest.skip(
            f"no GPU visible to Keras' {device.backend} backend on this machine "
            f"({device.name}); this test runs on a GPU grading machine"
        )
    return device


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_reference_trains_on_the_gpu_budget(gpu, name, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_REFERENCE_CACHE", str(tmp_path / "cache"))
    accuracy = load_assignment(REPO / "assignments" / name).accuracy
    assert accuracy is not None
    budget = training.select_budget(accuracy, gpu)
    assert budget == accuracy.gpu, "a GPU machine must train with the GPU budget"
    result = reference.reference_accuracy(
        accuracy, dataset=load_dataset(accuracy.dataset), device=gpu
    )
    print(
        f"{name}: reference {result.accuracy:.4f} on {result.device_name} ({result.backend}), "
        f"budget {result.budget!r}, seeds {result.seeds}"
    )
    assert result.device == "gpu"
    lowest = min(t for t, _ in accuracy.gpu.thresholds)
    assert result.accuracy >= lowest, (
        f"{name}: the reference reaches {result.accuracy:.4f} on the GPU budget, below even "
        f"the lowest absolute threshold {lowest}"
    )
