"""The Lab 4 source notebook: nbgrader structure, its solutions against TensorFlow, its data
loader, and a run of the whole notebook in quick mode.

The solutions are taken from the notebook itself (the code cells marked as nbgrader
solutions, with the BEGIN/END SOLUTION lines dropped) and executed together with the
notebook's setup cell; nothing of the solution is copied here.
"""

from __future__ import annotations

import ast
import copy
import gzip
import inspect
import io
import os
import pickle
import re
import shutil
import tarfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "assignments" / "lab4-cnn" / "lab4-cnn.ipynb"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Autograded questions: points, and the functions (with their signatures) students write.
AUTOGRADED = {
    "conv1d": (10, {"conv1d": "(x, w, stride=1, padding=0)"}),
    "conv2d": (15, {"conv2d": "(x, w, stride=1, padding=0)"}),
    "conv_arithmetic": (
        10,
        {
            "conv_output_size": "(n, k, stride=1, padding=0, dilation=1)",
            "same_padding": "(k)",
            "tf_output_size": "(n, k, stride=1, padding='valid')",
        },
    ),
    "pooling": (
        10,
        {
            "max_pool2d": "(x, pool_size=2, stride=None)",
            "avg_pool2d": "(x, pool_size=2, stride=None)",
        },
    ),
    "weight_sharing": (
        10,
        {
            "conv_matrix": "(w, input_shape)",
            "conv_vs_dense_params": "(input_shape, filters, kernel_size)",
        },
    ),
    "tf_conv": (
        10,
        {
            "tf_conv2d": "(images, kernels, stride=1, padding='VALID')",
            "sobel_edges": "(images)",
        },
    ),
    "build_model": (10, {"build_model": "(input_shape=(28, 28, 1), num_classes=10)"}),
    "deeper_model": (5, {"build_deeper_model": "(input_shape=(28, 28, 1), num_classes=10)"}),
    "tensorboard": (
        10,
        {
            "log_images": "(logdir, images, step=0, name='samples', max_outputs=9)",
            "filters_to_images": "(model)",
        },
    ),
}
MANUAL = {"experiments": 10, "dataset_comparison": 10}
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


# -- reading the notebook --------------------------------------------------------------------


def nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def by_id(nb):
    return {nbg(c)["grade_id"]: c for c in nb.cells}


def strip_markers(source: str) -> str:
    return "\n".join(ln for ln in source.splitlines() if ln.strip() not in MARKERS)


def run_cells(sources) -> dict:
    ns: dict = {"__name__": "lab4_notebook"}
    for src in sources:
        exec(compile(src, "<lab4 notebook cell>", "exec"), ns)  # noqa: S102
    return ns


@pytest.fixture(scope="module")
def sol(nb, by_id):
    """Namespace with the setup cell and every code solution cell executed."""
    answers = [
        strip_markers(c.source)
        for c in nb.cells
        if c.cell_type == "code" and nbg(c).get("solution")
    ]
    return run_cells([by_id["setup"].source, *answers])


@pytest.fixture()
def loader(by_id, tmp_path, monkeypatch):
    """Setup + data loader cells, offline, with an empty Keras cache and no data dir."""
    monkeypatch.setenv("AUTOGRADER_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("AUTOGRADER_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return run_cells([by_id["setup"].source, by_id["data_loader"].source])


# -- nbgrader structure ----------------------------------------------------------------------


def test_notebook_validates_and_has_python3_kernel(nb):
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"] == {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    assert nb.metadata["language_info"]["name"] == "python"


def test_every_cell_has_nbgrader_metadata_and_unique_ids(nb):
    ids = []
    for i, cell in enumerate(nb.cells):
        meta = nbg(cell)
        assert meta.get("schema_version") == 3, f"cell {i} has no nbgrader schema 3 metadata"
        for key in ("grade", "grade_id", "locked", "solution", "task"):
            assert key in meta, (i, key)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", meta["grade_id"]), meta["grade_id"]
        assert meta["task"] is False
        if meta["grade"]:
            assert isinstance(meta.get("points"), int) and meta["points"] > 0, meta
        if not meta["solution"]:
            assert meta["locked"] is True, f"instructor cell {meta['grade_id']} is not locked"
        ids.append(meta["grade_id"])
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


def test_questions_points_and_cell_order(nb):
    cells = nb.cells
    answer_ids = [nbg(c)["grade_id"] for c in cells if c.cell_type == "code" and nbg(c)["solution"]]
    assert answer_ids == list(AUTOGRADED), answer_ids
    for gid, (points, _) in AUTOGRADED.items():
        idx = [i for i, c in enumerate(cells) if nbg(c)["grade_id"] == gid]
        assert len(idx) == 1
        answer, test = cells[idx[0]], cells[idx[0] + 1]
        assert nbg(answer) == {
            "grade": False,
            "grade_id": gid,
            "locked": False,
            "schema_version": 3,
            "solution": True,
            "task": False,
        }
        assert test.cell_type == "code"
        assert nbg(test) == {
            "grade": True,
            "grade_id": f"test_{gid}",
            "locked": True,
            "points": points,
            "schema_version": 3,
            "solution": False,
            "task": False,
        }
        # One source of truth: hidden tests live only in checks/ (README, "Hidden tests")
        assert "HIDDEN TESTS" not in test.source, f"{gid}: move hidden tests to checks/"
    for gid, points in MANUAL.items():
        (cell,) = [c for c in cells if nbg(c)["grade_id"] == gid]
        assert cell.cell_type == "markdown"
        assert nbg(cell) == {
            "grade": True,
            "grade_id": gid,
            "locked": False,
            "points": points,
            "schema_version": 3,
            "solution": True,
            "task": False,
        }
        assert "|" in cell.source and re.search(r"0\.\d{3}", cell.source), (
            f"{gid}: the reference answer should quote measured numbers in a table"
        )
    graded = sum(nbg(c).get("points", 0) for c in cells if nbg(c)["grade"])
    assert graded == 110  # + 10 for `accuracy`, which the grader scores from build_model


def test_solution_markers_leave_signatures_and_docstrings(nb, by_id):
    for gid, (_, functions) in AUTOGRADED.items():
        src = by_id[gid].source
        assert src.count(MARKERS[0]) == src.count(MARKERS[1]) == len(functions), gid
        # what nbgrader leaves for students: the code outside the solution regions
        outside = re.sub(
            r"### BEGIN SOLUTION.*?### END SOLUTION", "raise NotImplementedError()", src, flags=re.S
        )
        tree = ast.parse(outside)
        defs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
        assert set(defs) == set(functions), (gid, set(defs))
        for name, fn in defs.items():
            assert ast.get_docstring(fn), f"{name} has no docstring"


def test_release_version_keeps_the_api(nb, tmp_path):
    """nbgrader's own preprocessors: stubs keep each signature, hidden tests disappear."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    release = copy.deepcopy(nb)
    resources = {"language": "python"}
    release, resources = ClearSolutions().preprocess(release, resources)
    release, resources = ClearHiddenTests().preprocess(release, resources)
    ns = run_cells(
        [
            c.source
            for c in release.cells
            if c.cell_type == "code" and nbg(c)["grade_id"] in ("setup", *AUTOGRADED)
        ]
    )
    for _, functions in AUTOGRADED.values():
        for name, signature in functions.items():
            assert str(inspect.signature(ns[name])) == signature, name
    with pytest.raises(NotImplementedError):
        ns["conv1d"](np.ones(3), np.ones(2))
    for cell in release.cells:
        assert "BEGIN HIDDEN TESTS" not in cell.source
        assert "BEGIN SOLUTION" not in cell.source
        if nbg(cell)["grade_id"] in MANUAL:
            assert cell.source.strip() == "YOUR ANSWER HERE"


def test_solution_signatures(sol):
    for _, functions in AUTOGRADED.values():
        for name, signature in functions.items():
            assert str(inspect.signature(sol[name])) == signature, name


def test_expensive_cells_are_tagged_training_and_honour_quick(nb):
    setup = [c for c in nb.cells if nbg(c)["grade_id"] == "setup"][0]
    assert 'QUICK = os.environ.get("LAB4_QUICK", "0") == "1"' in setup.source
    training = [c for c in nb.cells if "training" in c.metadata.get("tags", [])]
    assert len(training) >= 6
    for cell in nb.cells:
        meta = nbg(cell)
        tagged = "training" in cell.metadata.get("tags", [])
        if cell.cell_type != "code" or meta["grade"] or meta["solution"]:
            assert not tagged, meta["grade_id"]  # graded cells always run
            continue
        if re.search(r"\.fit\(|load_data\(\"(mnist|cifar10)\"", cell.source):
            assert tagged, f"{meta['grade_id']} trains but is not tagged 'training'"
    for cell in training:
        uses = re.findall(r"\b(QUICK|EPOCHS)\b", cell.source)
        if ".fit(" in cell.source:
            assert uses, f"{nbg(cell)['grade_id']} trains without reading QUICK"
    assert "%load_ext tensorboard" in "".join(c.source for c in nb.cells)
    for cell in nb.cells:
        if cell.cell_type == "code":
            for line in cell.source.splitlines():
                assert not line.lstrip().startswith(("%", "!")), f"active magic: {line}"


# -- the solutions against TensorFlow --------------------------------------------------------


def test_conv1d_matches_tf(sol):
    conv1d = sol["conv1d"]
    rng = np.random.default_rng(101)
    for _ in range(60):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 8))
        s, p = int(rng.integers(1, 5)), int(rng.integers(0, 4))
        if n + 2 * p < k:
            continue
        x = rng.normal(size=n).astype(np.float32)
        w = rng.normal(size=k).astype(np.float32)
        expected = (
            tf.nn.conv1d(np.pad(x, p)[None, :, None], w[:, None, None], stride=s, padding="VALID")
            .numpy()
            .ravel()
        )
        got = np.asarray(conv1d(x, w, stride=s, padding=p))
        assert got.dtype.kind == "f"
        assert got.shape == ((n + 2 * p - k) // s + 1,)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_conv2d_matches_tf(sol):
    conv2d = sol["conv2d"]
    rng = np.random.default_rng(202)
    for trial in range(40):
        H, W = (int(v) for v in rng.integers(3, 14, size=2))
        c_in, c_out = (int(v) for v in rng.integers(1, 5, size=2))
        kh, kw = int(rng.integers(1, min(H, 6) + 1)), int(rng.integers(1, min(W, 6) + 1))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        x = rng.normal(size=(H, W, c_in)).astype(np.float32)
        w = rng.normal(size=(kh, kw, c_in, c_out)).astype(np.float32)
        pair = trial % 2 == 1
        stride, strides = ((sh, sw), [1, sh, sw, 1]) if pair else (sh, [1, sh, sh, 1])
        for pad in ("valid", "VALID", "same", "SAME", "Same"):
            expected = tf.nn.conv2d(x[None], w, strides=strides, padding=pad.upper())
            got = np.asarray(conv2d(x, w, stride=stride, padding=pad))
            assert got.shape == tuple(expected.shape[1:]), (x.shape, w.shape, stride, pad)
            np.testing.assert_allclose(got, expected.numpy()[0], rtol=1e-4, atol=1e-4)
        ph, pw = (int(v) for v in rng.integers(0, 4, size=2))
        padding, explicit = (
            ((ph, pw), [[0, 0], [ph, ph], [pw, pw], [0, 0]])
            if pair
            else (ph, [[0, 0], [ph, ph], [ph, ph], [0, 0]])
        )
        expected = tf.nn.conv2d(x[None], w, strides=strides, padding=explicit).numpy()[0]
        np.testing.assert_allclose(
            conv2d(x, w, stride=stride, padding=padding), expected, rtol=1e-4, atol=1e-4
        )
    # integer inputs give float results
    out = np.asarray(conv2d(np.ones((4, 4, 1), int), np.ones((2, 2, 1, 1), int)))
    assert out.dtype.kind == "f" and np.all(out == 4)


# Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", arXiv:1603.07285.
# Each number follows from Relationship 15: o = floor((i + 2p - k - (k-1)(d-1)) / s) + 1.
DUMOULIN_FIGURES = [
    # (figure, i, k, s, p, d, o)
    ("2.1 no padding, unit strides", 4, 3, 1, 0, 1, 2),  # (4-3)+1
    ("2.2 arbitrary padding, unit strides", 5, 4, 1, 2, 1, 6),  # (5-4)+2*2+1
    ("2.3 half padding, unit strides", 5, 3, 1, 1, 1, 5),  # o = i
    ("2.4 full padding, unit strides", 5, 3, 1, 2, 1, 7),  # i + (k-1)
    ("2.5 no padding, strides", 5, 3, 2, 0, 1, 2),  # floor(2/2)+1
    ("2.6 padding, strides", 5, 3, 2, 1, 1, 3),  # floor(4/2)+1
    ("2.7 padding, strides (odd)", 6, 3, 2, 1, 1, 3),  # floor(5/2)+1
    ("5.1 dilation", 7, 3, 1, 0, 2, 3),  # k_eff=5: 7-5+1
]


@pytest.mark.parametrize(
    "figure,i,k,s,p,d,o", DUMOULIN_FIGURES, ids=[f[0] for f in DUMOULIN_FIGURES]
)
def test_conv_output_size_dumoulin_figures(sol, figure, i, k, s, p, d, o):
    k_eff = k + (k - 1) * (d - 1)
    assert (i + 2 * p - k_eff) // s + 1 == o  # the paper's formula, independently
    got = sol["conv_output_size"](i, k, stride=s, padding=p, dilation=d)
    assert type(got) is int and got == o, figure
    # and TensorFlow agrees on the output shape
    y = tf.nn.conv2d(
        np.zeros((1, i, i, 1), np.float32),
        np.ones((k, k, 1, 1), np.float32),
        strides=s,
        padding=[[0, 0], [p, p], [p, p], [0, 0]],
        dilations=d,
    )
    assert y.shape[1] == o


def test_conv_output_size_and_tf_output_size_match_tf(sol):
    conv_output_size, tf_output_size = sol["conv_output_size"], sol["tf_output_size"]
    same_padding = sol["same_padding"]
    rng = np.random.default_rng(303)
    for _ in range(60):
        n, k = int(rng.integers(1, 33)), int(rng.integers(1, 8))
        s, p, d = int(rng.integers(1, 5)), int(rng.integers(0, 4)), int(rng.integers(1, 4))
        k_eff = k + (k - 1) * (d - 1)
        if n + 2 * p >= k_eff:
            dilated = np.zeros((k_eff, 1, 1, 1), np.float32)
            dilated[::d] = 1.0  # the dilated kernel written out, so strides > 1 work too
            y = tf.nn.conv2d(
                np.zeros((1, n, 1, 1), np.float32),
                dilated,
                strides=s,
                padding=[[0, 0], [p, p], [0, 0], [0, 0]],
            )
            got = conv_output_size(n, k, stride=s, padding=p, dilation=d)
            assert type(got) is int and got == y.shape[1], (n, k, s, p, d)
        if k <= n:
            for mode in ("valid", "VALID", "same", "SAME", "Same"):
                y = tf.nn.conv2d(
                    np.zeros((1, n, n + 1, 1), np.float32),
                    np.ones((k, k, 1, 1), np.float32),
                    strides=s,
                    padding=mode.upper(),
                )
                got = tf_output_size(n, k, stride=s, padding=mode)
                assert type(got) is int and got == y.shape[1], (n, k, s, mode)
    for k in range(1, 16, 2):
        p = same_padding(k)
        assert type(p) is int and p == k // 2
        y = tf.nn.conv2d(
            np.zeros((1, 20, 20, 1), np.float32),
            np.ones((k, k, 1, 1), np.float32),
            strides=1,
            padding=[[0, 0], [p, p], [p, p], [0, 0]],
        )
        assert y.shape[1:3] == (20, 20)


def test_pooling_matches_tf(sol):
    rng = np.random.default_rng(404)
    for trial in range(50):
        H, W = (int(v) for v in rng.integers(2, 16, size=2))
        C = int(rng.integers(1, 5))
        ph, pw = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
        ph, pw = min(ph, 4), min(pw, 4)
        sh, sw = (int(v) for v in rng.integers(1, 5, size=2))
        x = rng.normal(size=(H, W, C)).astype(np.float32)
        kind = trial % 3
        if kind == 0:  # int window, default stride
            args, ks, st = (ph, None), [ph, ph], [ph, ph]
            if ph > W:
                continue
        elif kind == 1:  # int window and stride
            args, ks, st = (ph, sh), [ph, ph], [sh, sh]
            if ph > W:
                continue
        else:  # pairs
            args, ks, st = ((ph, pw), (sh, sw)), [ph, pw], [sh, sw]
        for mine, theirs in (
            (sol["max_pool2d"], tf.nn.max_pool2d),
            (sol["avg_pool2d"], tf.nn.avg_pool2d),
        ):
            expected = theirs(x[None], ksize=ks, strides=st, padding="VALID").numpy()[0]
            got = np.asarray(mine(x, *args))
            assert got.shape == expected.shape, (mine.__name__, x.shape, args)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # defaults: 2x2 windows, stride 2
    x = rng.normal(size=(7, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(
        sol["max_pool2d"](x), tf.nn.max_pool2d(x[None], 2, 2, "VALID").numpy()[0], atol=1e-6
    )


def test_conv_matrix_matches_tf(sol):
    conv_matrix = sol["conv_matrix"]
    rng = np.random.default_rng(505)
    for _ in range(30):
        H, W = (int(v) for v in rng.integers(1, 10, size=2))
        kh, kw = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
        w = rng.normal(size=(kh, kw)).astype(np.float32)
        x = rng.normal(size=(H, W)).astype(np.float32)
        M = np.asarray(conv_matrix(w, (H, W)))
        assert M.shape == ((H - kh + 1) * (W - kw + 1), H * W)
        expected = tf.nn.conv2d(x[None, :, :, None], w[:, :, None, None], 1, "VALID")
        np.testing.assert_allclose(M @ x.ravel(), expected.numpy().ravel(), rtol=1e-4, atol=1e-4)
        assert np.all(np.count_nonzero(M, axis=1) <= kh * kw)


@pytest.mark.parametrize(
    "input_shape,filters,kernel_size",
    [
        ((28, 28, 1), 32, 3),
        ((8, 8, 1), 4, 3),
        ((9, 7, 3), 5, (2, 4)),
        ((6, 10, 2), 3, (3, 1)),
        ((5, 5, 3), 2, (3, 2)),
        ((12, 11, 4), 1, 5),
        ((4, 4, 1), 7, (4, 4)),
    ],
)
def test_conv_vs_dense_params_matches_keras(sol, input_shape, filters, kernel_size):
    conv, dense = sol["conv_vs_dense_params"](input_shape, filters, kernel_size)
    assert type(conv) is int and type(dense) is int
    conv_layer = keras.layers.Conv2D(filters, kernel_size)
    out = conv_layer(keras.Input(input_shape))
    assert conv == conv_layer.count_params()
    n_out = int(np.prod(out.shape[1:]))
    if np.prod(input_shape) * n_out > 5_000_000:  # too big to allocate for a test: count
        expected_dense = int(np.prod(input_shape)) * n_out + n_out
    else:
        dense_layer = keras.layers.Dense(n_out)
        dense_layer(keras.layers.Flatten()(keras.Input(input_shape)))
        expected_dense = dense_layer.count_params()
    assert dense == expected_dense


def test_tf_conv2d_and_sobel_match_tf(sol):
    tf_conv2d, sobel_edges = sol["tf_conv2d"], sol["sobel_edges"]
    rng = np.random.default_rng(606)
    for trial in range(20):
        N, H, W = int(rng.integers(1, 4)), int(rng.integers(4, 13)), int(rng.integers(4, 13))
        c_in, c_out = (int(v) for v in rng.integers(1, 4, size=2))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        images = rng.normal(size=(N, H, W, c_in))
        kernels = rng.normal(size=(kh, kw, c_in, c_out))
        if trial % 4 == 0:
            images = np.round(images * 3).astype(np.int64)  # integer input
        stride, strides = ((sh, sw), [1, sh, sw, 1]) if trial % 2 else (sh, [1, sh, sh, 1])
        for pad in ("VALID", "valid", "SAME", "same"):
            expected = tf.nn.conv2d(
                images.astype(np.float32), kernels.astype(np.float32), strides, pad.upper()
            ).numpy()
            got = np.asarray(tf_conv2d(images, kernels, stride=stride, padding=pad))
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    images = rng.random((3, 11, 9, 1)).astype(np.float32)
    mine = np.asarray(sobel_edges(images))
    assert mine.shape == (3, 11, 9, 2)
    ref = tf.image.sobel_edges(tf.constant(images)).numpy()  # [dy, dx], reflect padding
    np.testing.assert_allclose(mine[:, 1:-1, 1:-1, 0], ref[:, 1:-1, 1:-1, 0, 1], atol=1e-4)
    np.testing.assert_allclose(mine[:, 1:-1, 1:-1, 1], ref[:, 1:-1, 1:-1, 0, 0], atol=1e-4)
    gx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    zero_padded = tf.nn.conv2d(images, np.stack([gx, gx.T], -1)[:, :, None, :], 1, "SAME")
    np.testing.assert_allclose(mine, zero_padded.numpy(), atol=1e-4)


def _count(model, kind):
    return sum(isinstance(layer, kind) for layer in model.layers)


@pytest.mark.parametrize(
    "input_shape,num_classes",
    [((28, 28, 1), 10), ((32, 32, 3), 10), ((36, 30, 1), 3), ((32, 32, 3), 7)],
)
def test_models_follow_the_rules(sol, input_shape, num_classes, tmp_path):
    pools = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    base = sol["build_model"](input_shape=input_shape, num_classes=num_classes)
    deep = sol["build_deeper_model"](input_shape=input_shape, num_classes=num_classes)
    for model in (base, deep):
        assert isinstance(model, keras.Model) and model.compiled
        assert tuple(model.output_shape) == (None, num_classes)
        assert _count(model, keras.layers.Conv2D) >= 2 and _count(model, pools) >= 1
        if input_shape == (28, 28, 1):  # the notebook's rule is for the default input
            assert model.count_params() < 300_000
        assert all(type(layer).__module__.startswith("keras.src.layers") for layer in model.layers)
        assert model.layers[-1].activation is keras.activations.softmax
        probs = np.asarray(model(np.random.default_rng(0).random((2, *input_shape))))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert _count(deep, keras.layers.Conv2D) > _count(base, keras.layers.Conv2D)
    # the grader reloads the models with safe_mode=True: a .keras round trip must work
    for name, model in (("base", base), ("deep", deep)):
        model.save(tmp_path / f"{name}.keras")
        clone = keras.models.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        assert clone.count_params() == model.count_params()


def test_log_images_and_filters_to_images(sol, tmp_path):
    log_images, filters_to_images = sol["log_images"], sol["filters_to_images"]
    rng = np.random.default_rng(707)
    images = (rng.integers(0, 256, size=(12, 7, 5, 3)) / 255.0).astype(np.float32)
    cases = [({}, "samples", 0, 9), ({"step": 4, "name": "x/y", "max_outputs": 3}, "x/y", 4, 3)]
    for i, (kwargs, tag, step, count) in enumerate(cases):
        logdir = tmp_path / f"run{i}"
        log_images(str(logdir), images, **kwargs)
        found = []
        for event_file in logdir.glob("events.out.tfevents.*"):
            for record in tf.data.TFRecordDataset(str(event_file)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                found += [(event.step, v) for v in event.summary.value if v.tag == tag]
        assert len(found) == 1, (tag, found)
        got_step, value = found[0]
        assert got_step == step and value.metadata.plugin_data.plugin_name == "images"
        pngs = tf.make_ndarray(value.tensor)[2:]
        assert len(pngs) == count
        for j, png in enumerate(pngs):
            np.testing.assert_allclose(
                tf.io.decode_png(png).numpy() / 255.0, images[j], atol=0.6 / 255
            )
    # filters_to_images on Sequential and functional models, several input channels
    seq = keras.Sequential(
        [keras.Input((10, 10, 3)), keras.layers.Conv2D(6, (3, 2)), keras.layers.Conv2D(2, 3)]
    )
    kernel = rng.normal(size=(3, 2, 3, 6)).astype(np.float32)
    kernel[:, :, 0, 4] = -1.5  # constant filter
    seq.layers[0].set_weights([kernel, np.zeros(6, np.float32)])
    inp = keras.Input((8, 8, 1))
    hidden = keras.layers.Rescaling(2.0)(inp)
    hidden = keras.layers.Conv2D(4, 3, name="first")(hidden)
    func = keras.Model(inp, keras.layers.Conv2D(2, 3)(hidden))
    for model, k in ((seq, kernel), (func, np.asarray(func.get_layer("first").kernel))):
        f = np.asarray(filters_to_images(model))
        k0 = np.moveaxis(k[:, :, 0, :], -1, 0)
        assert f.shape == (*k0.shape, 1)
        for o in range(k0.shape[0]):
            span = k0[o].max() - k0[o].min()
            expected = np.zeros_like(k0[o]) if span == 0 else (k0[o] - k0[o].min()) / span
            np.testing.assert_allclose(f[o, :, :, 0], expected, atol=1e-6)
        assert np.all(np.isfinite(f)) and f.min() >= 0 and f.max() <= 1


@pytest.mark.slow
def test_build_model_learns_fashion_mnist(sol, by_id, monkeypatch, tmp_path):
    """The grader's CPU budget (1 epoch, 6,000 images, batch 64) clears 0.76 comfortably."""
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST (Debian package dataset-fashion-mnist) is not installed")
    monkeypatch.setenv("AUTOGRADER_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    ns = run_cells([by_id["setup"].source, by_id["data_loader"].source])
    (xa, ya), (xb, yb) = ns["load_data"]("fashion_mnist")
    rng = np.random.default_rng(1234)
    train, test = rng.permutation(len(xa))[:6000], rng.permutation(len(xb))[:2000]
    keras.utils.set_random_seed(1234)
    model = sol["build_model"]()
    model.compile(
        optimizer=keras.optimizers.Adam(0.001),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(xa[train, :, :, None] / 255.0, ya[train], epochs=1, batch_size=64, verbose=0)
    accuracy = model.evaluate(xb[test, :, :, None] / 255.0, yb[test], verbose=0)[1]
    assert accuracy >= 0.77, accuracy


# -- the data loader -----------------------------------------------------------------------


def _write_idx(folder: Path, n_train: int, n_test: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        a = a.astype(np.uint8)
        magic = (0x0803 if a.ndim == 3 else 0x0801).to_bytes(4, "big")
        header = magic + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
        with gzip.open(folder / name, "wb") as f:
            f.write(header + a.tobytes())
    return {name: a.astype(np.uint8) for name, a in arrays.items()}


def _cifar_batches(rng, n_per_batch):
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batches[name] = {
            b"data": rng.integers(0, 256, (n_per_batch, 3072)).astype(np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n_per_batch)],
        }
    return batches


def test_loader_reads_idx_from_lab4_data_dir(loader, tmp_path, monkeypatch):
    arrays = _write_idx(tmp_path / "data" / "mnist", 12, 5, seed=1)
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "data"))
    (xa, ya), (xb, yb) = loader["load_data"]("MNIST")
    assert xa.dtype == ya.dtype == xb.dtype == yb.dtype == np.uint8
    assert xa.shape == (12, 28, 28) and xb.shape == (5, 28, 28)
    np.testing.assert_array_equal(xa, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(yb, arrays["t10k-labels-idx1-ubyte.gz"])


def test_loader_reads_cifar_folder_and_archive(loader, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    batches = _cifar_batches(rng, 4)
    folder = tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch))
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "data"))
    (xa, ya), (xb, yb) = loader["load_data"]("cifar10")
    assert xa.shape == (20, 32, 32, 3) and xb.shape == (4, 32, 32, 3)
    assert xa.dtype == ya.dtype == np.uint8 and ya.shape == (20,)
    first = batches["data_batch_1"][b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(xa[0], first)
    np.testing.assert_array_equal(yb, batches["test_batch"][b"labels"])
    # the same data as Keras' download file, in the Keras cache
    shutil.rmtree(tmp_path / "data")
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    with tarfile.open(cache / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, batch in batches.items():
            data = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (xa2, _), (xb2, yb2) = loader["load_data"]("cifar10")
    np.testing.assert_array_equal(xa2, xa)
    np.testing.assert_array_equal(yb2, yb)


def test_loader_explains_what_is_missing(loader):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-python\.tar\.gz.*AUTOGRADER_DATA_DIR"):
        loader["load_data"]("cifar10")
    with pytest.raises(ValueError):
        loader["load_data"]("imagenet")


def test_loader_falls_back_to_a_fixed_split_of_the_mnist_test_set(loader, tmp_path, capsys):
    shared = tmp_path / "shared" / "datasets" / "mnist"  # next to the cwd, like the repo's
    arrays = _write_idx(shared, 3, 50, seed=3)
    for name in ("train-images-idx3-ubyte.gz",):
        (shared / name).unlink()
    (xa, ya), (xb, yb) = loader["load_data"]("mnist")
    assert "only the official test set" in capsys.readouterr().out
    assert len(xa) == 40 and len(xb) == 10
    x_all = arrays["t10k-images-idx3-ubyte.gz"]
    order = np.random.default_rng(0).permutation(50)
    np.testing.assert_array_equal(xa, x_all[order[:40]])
    np.testing.assert_array_equal(xb, x_all[order[40:]])
    np.testing.assert_array_equal(yb, arrays["t10k-labels-idx1-ubyte.gz"][order[40:]])
    (xa2, _), _ = loader["load_data"]("mnist")
    np.testing.assert_array_equal(xa2, xa)  # deterministic


@pytest.mark.skipif(
    not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_loader_reads_debian_fashion_mnist(loader):
    (xa, ya), (xb, yb) = loader["load_data"]("fashion-mnist")
    assert xa.shape == (60000, 28, 28) and xb.shape == (10000, 28, 28)
    assert ya.dtype == np.uint8 and set(np.unique(yb)) == set(range(10))


# -- the whole notebook ----------------------------------------------------------------------


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_in_quick_mode(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    work = tmp_path / "lab4"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    monkeypatch.setenv("LAB4_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("AUTOGRADER_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("AUTOGRADER_DATA_DIR", raising=False)
    nb = nbformat.read(work / NOTEBOOK.name, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        gid = nbg(cell)["grade_id"]
        assert not [o for o in cell.outputs if o.output_type == "error"], gid
        outputs[gid] = "".join(
            o.get("text", "")
            for o in cell.outputs
            if o.output_type == "stream" and o.name == "stdout"
        )
    for gid in AUTOGRADED:
        assert "visible tests passed" in outputs[f"test_{gid}"], gid
    assert "CNN: test accuracy" in outputs["train_model"]
    assert "| fashion_mnist |" in outputs["run_dataset_comparison"]
    assert (
        "Skipping cifar10" in outputs["run_dataset_comparison"]
        or "| cifar10 |" in outputs["run_dataset_comparison"]
    )
    assert list((work / "logs" / "lab4").rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in work.iterdir() if p.suffix == ".ipynb") == [NOTEBOOK.name]


def _assert_rubrics_shown(nb):
    from autograder.config import load_config

    config = load_config(
        Path(__file__).resolve().parents[2] / "assignments/lab4-cnn/assignment.toml"
    )
    prompts = {"experiments": "experiments_question", "dataset_comparison": "dataset_question"}
    cells = {nbg(c)["grade_id"]: c for c in nb.cells}
    for question, prompt in prompts.items():
        cell = cells[prompt]
        assert nbg(cell)["locked"]
        text = " ".join(cell.source.split())
        rubric = config.questions[question].rubric
        assert rubric, question
        for item in rubric:
            plural = "s" if item.points != 1 else ""
            assert f"{item.points:g} point{plural}: {' '.join(item.description.split())}" in text


def test_manual_questions_show_their_rubric(nb):
    """Students see what earns the points: every rubric item of assignment.toml, with its
    points, is in the question's prompt (a locked cell)."""
    _assert_rubrics_shown(nb)


@pytest.mark.slow
def test_released_notebook_shows_the_rubrics_and_the_checker():
    from autograder.config import load_config
    from autograder.release import release_notebook

    released = release_notebook(
        load_config(Path(__file__).resolve().parents[2] / "assignments/lab4-cnn/assignment.toml")
    )
    _assert_rubrics_shown(released)
    test_check_instructions_for_colab(released)


def test_check_instructions_for_colab(nb):
    """The second cell tells students how to install the light checker and run it."""
    cell = nb.cells[1]
    assert nbg(cell)["grade_id"] == "check_instructions" and nbg(cell)["locked"]
    assert "!pip install" in cell.source and "!autograder check lab4-cnn.ipynb" in cell.source
