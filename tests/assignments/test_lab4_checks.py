"""The Lab 4 hidden checks are strong and fair, proved on mutants.

For each question in `assignments/lab4-cnn/mutants/<question>/`:
- every `# kind: alternative` answer (a different, correct way) gets full marks;
- every `# kind: mistake` answer (one real student mistake) fails at least one
  check of its own question, and no check crashes on it;
- a reference namespace (one alternative per question) gets full marks.

Submissions are trusted `LocalSubmission`s: the same encode/decode path as a
sandboxed call, without a kernel. The checks' own numpy references are also
compared with TensorFlow here, so the expected values are not a second guess.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from autograder.bridge import LocalSubmission
from autograder.config import load_config

from . import mutant_cases as cases
from .mutant_cases import failures, grade, header, run_source

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = REPO / "assignments" / "lab4-cnn"
MUTANTS = ASSIGNMENT / "mutants"
QUESTIONS = (
    "conv1d",
    "conv2d",
    "conv_arithmetic",
    "pooling",
    "weight_sharing",
    "tf_conv",
    "build_model",
    "deeper_model",
    "tensorboard",
)


def mutant_files(question: str, kind: str) -> list[Path]:
    return cases.mutant_files(MUTANTS, question, kind)


def params(kind: str) -> list:
    return cases.params(MUTANTS, QUESTIONS, kind)


def fresh_namespace() -> dict:
    """What the notebook's setup cell provides to answer cells."""
    return {"__name__": "__main__", "np": np, "tf": tf, "keras": keras}


@pytest.fixture(autouse=True)
def _fast_nested_pytest(monkeypatch):
    """Each run_checks is a nested pytest session, whose unraisable-exception plugin
    runs gc.collect() several times at exit: ~1.7 s each with TensorFlow loaded.
    Its findings do not matter here, so skip the collections."""
    import _pytest.unraisableexception as unraisable

    if hasattr(unraisable, "gc_collect_harder"):
        monkeypatch.setattr(unraisable, "gc_collect_harder", lambda iterations: None)


@pytest.fixture(scope="module")
def config():
    return load_config(ASSIGNMENT / "assignment.toml")


@pytest.fixture(scope="module")
def reference_namespace() -> dict:
    """One correct answer per question: the first alternative of each."""
    ns = fresh_namespace()
    for q in QUESTIONS:
        alternatives = mutant_files(q, "alternative")
        assert alternatives, f"{q}: no alternative answer to build the reference from"
        run_source(alternatives[0], ns)
    return ns


@pytest.mark.parametrize("question", QUESTIONS)
def test_question_has_mutants(question):
    cases.check_mutant_headers(MUTANTS, question)


def test_every_question_has_a_check_file():
    for q in QUESTIONS:
        assert (ASSIGNMENT / "checks" / f"test_{q}.py").is_file(), q


@pytest.mark.slow
@pytest.mark.parametrize("question", QUESTIONS)
def test_reference_gets_full_marks(config, reference_namespace, question, tmp_path):
    results = grade(config, reference_namespace, question, tmp_path)
    assert not failures(results), failures(results)
    assert sum(r.weight for r in results) >= 5, f"{question}: too few weighted checks"


@pytest.mark.slow
@pytest.mark.parametrize(("question", "path"), params("alternative"))
def test_alternative_gets_full_marks(config, reference_namespace, question, path, tmp_path):
    ns = run_source(path, dict(reference_namespace))
    results = grade(config, ns, question, tmp_path)
    assert not failures(results), f"{path.name} ({header(path)[1]}): {failures(results)}"


@pytest.mark.slow
@pytest.mark.parametrize(("question", "path"), params("mistake"))
def test_mistake_loses_points(config, reference_namespace, question, path, tmp_path):
    ns = run_source(path, dict(reference_namespace))
    results = grade(config, ns, question, tmp_path)
    assert failures(results), f"{path.name} ({header(path)[1]}) passed every check"
    for r in results:
        if not r.passed:
            assert r.message and len(r.message) <= 1500, r


# -- the checks' numpy references agree with TensorFlow ---------------------------------------


def load_reference():
    spec = importlib.util.spec_from_file_location(
        "lab4_checks_reference", ASSIGNMENT / "checks" / "_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_conv2d_matches_tensorflow():
    ref = load_reference()
    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(4, 11, size=2))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        c_in, c_out = (int(v) for v in rng.integers(1, 4, size=2))
        stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
        padding = str(rng.choice(["SAME", "VALID"]))
        x = rng.normal(size=(2, h, w, c_in)).astype(np.float32)
        k = rng.normal(size=(kh, kw, c_in, c_out)).astype(np.float32)
        expected = tf.nn.conv2d(x, k, strides=stride, padding=padding).numpy()
        got = ref.conv2d_batch(x, k, stride, padding.lower())
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        # integer padding = explicit symmetric padding
        p = tuple(int(v) for v in rng.integers(0, 3, size=2))
        explicit = [[0, 0], [p[0], p[0]], [p[1], p[1]], [0, 0]]
        expected = tf.nn.conv2d(x, k, strides=stride, padding=explicit).numpy()
        np.testing.assert_allclose(ref.conv2d_batch(x, k, stride, p), expected, atol=1e-4)
        for n, kk, s in ((h, kh, stride[0]), (w, kw, stride[1])):
            assert ref.tf_output_size(n, kk, s, "same") == math.ceil(n / s)
        assert got.shape[1] == ref.tf_output_size(h, kh, stride[0], padding)
        assert got.shape[2] == ref.tf_output_size(w, kw, stride[1], padding)


def test_reference_pooling_and_sobel_match_tensorflow():
    ref = load_reference()
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.normal(size=(int(rng.integers(4, 10)), int(rng.integers(4, 10)), 2))
        pool = tuple(int(v) for v in rng.integers(1, 4, size=2))
        stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
        for op, fn in (("max", tf.nn.max_pool2d), ("avg", tf.nn.avg_pool2d)):
            expected = fn(x[None], pool, stride, "VALID").numpy()[0]
            np.testing.assert_allclose(ref.pool2d(x, pool, stride, op), expected, atol=1e-6)
    images = rng.random((2, 7, 6, 1)).astype(np.float32)
    kernels = np.stack([ref.SOBEL_X, ref.SOBEL_Y], -1)[:, :, None, :].astype(np.float32)
    expected = tf.nn.conv2d(images, kernels, 1, "SAME").numpy()
    np.testing.assert_allclose(ref.sobel_edges(images), expected, atol=1e-5)
    # conv_matrix reproduces the valid cross-correlation
    w = rng.normal(size=(2, 3))
    x = rng.normal(size=(5, 6))
    m = ref.conv_matrix(w, x.shape)
    np.testing.assert_allclose(m @ x.ravel(), ref.correlate_valid(x, w).ravel(), atol=1e-12)


def test_reference_params_match_keras():
    ref = load_reference()
    for shape, filters, k in (((28, 28, 1), 32, 3), ((10, 12, 2), 4, (3, 5))):
        conv = keras.layers.Conv2D(filters, k)
        conv.build((None, *shape))
        out = conv.compute_output_shape((None, *shape))
        dense = keras.layers.Dense(int(np.prod(out[1:])))
        dense.build((None, int(np.prod(shape))))
        assert ref.conv_vs_dense_params(shape, filters, k) == (
            conv.count_params(),
            dense.count_params(),
        )


# -- the parameter budget is charged once, by the accuracy question ------------------------

OVER_BUDGET = REPO / "tests" / "fixtures" / "lab4" / "mutants" / "over_parameter_budget.py"


@pytest.mark.slow
def test_parameter_budget_is_charged_once(config, reference_namespace, tmp_path):
    """A build_model over `[accuracy] max_params` keeps build_model's points and is refused
    by the accuracy question before any training (0 there, with the reason)."""
    from autograder import training
    from autograder.exceptions import AutograderError

    ns = run_source(OVER_BUDGET, dict(reference_namespace))
    results = grade(config, ns, "build_model", tmp_path)
    assert not failures(results), failures(results)
    submission = LocalSubmission(ns, tmp_path / "scratch-acc", student="budget")
    try:
        model = submission.call_model("build_model")
        with pytest.raises(AutograderError, match="parameters, more than the 300,000"):
            training.train_and_evaluate(model, config.accuracy, workdir=tmp_path / "train")
    finally:
        submission.close()
