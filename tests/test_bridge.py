"""The bridge: plain data in and out of a student's namespace, nothing else."""

from __future__ import annotations

import base64
import collections
import io
import json
import math
import zipfile

import numpy as np
import pytest

from autograder import bridge, kernel_side
from autograder.bridge import LocalSubmission, decode_npy, decode_response, encode_request
from autograder.exceptions import BridgeError, StudentCodeError, UnsafeModel


def _sub(tmp_path, namespace, **kw) -> LocalSubmission:
    return LocalSubmission(namespace, tmp_path / "scratch", **kw)


def _echo(tmp_path) -> LocalSubmission:
    return _sub(tmp_path, {"echo": lambda x: x, "pair": lambda a, b=0: (a, b)})


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        2**62,
        3.25,
        -0.0,
        1e-300,
        float("inf"),
        "",
        "héllo \u2603\n",
        None,
        True,
        False,
        (1, "a", None),
        [1.5, [2, (3,)]],
        {"a": 1, "b": [1, 2], "c": {"d": None}},
        (),
        [],
        {},
    ],
    ids=repr,
)
def test_plain_values_round_trip(tmp_path, value):
    got = _echo(tmp_path).call("echo", value)
    assert got == value
    assert type(got) is type(value)
    if isinstance(value, (tuple, list)) and value:
        assert [type(v) for v in got] == [type(v) for v in value]


def test_nan_round_trips_as_nan(tmp_path):
    got = _echo(tmp_path).call("echo", float("nan"))
    assert type(got) is float and math.isnan(got)


@pytest.mark.parametrize(
    "dtype",
    ["float64", "float32", "float16", "int8", "int16", "int32", "int64", "uint8", "uint64", "bool"],
)
def test_arrays_round_trip_with_their_dtype(tmp_path, dtype):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(3, 4, 2)) * 50).astype(dtype)
    got = _echo(tmp_path).call("echo", arr)
    assert type(got) is np.ndarray
    assert got.dtype == np.dtype(dtype) and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)


def test_empty_and_noncontiguous_arrays(tmp_path):
    sub = _echo(tmp_path)
    got = sub.call("echo", np.zeros((0, 3)))
    assert got.shape == (0, 3)
    x = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(sub.call("echo", x.T[::2]), x.T[::2])
    np.testing.assert_array_equal(sub.call("echo", np.asfortranarray(x)), x)


def test_zero_d_array_keeps_its_shape(tmp_path):
    got = _echo(tmp_path).call("echo", np.array(3.5))
    assert type(got) is np.ndarray and got.shape == () and float(got) == 3.5


def test_numpy_scalars_become_python_numbers(tmp_path):
    sub = _sub(tmp_path, {"f": lambda: (np.int64(4), np.float32(0.5), np.bool_(True))})
    got = sub.call("f")
    assert got == (4, 0.5, True)
    assert [type(v) for v in got] == [int, float, bool]


def test_kwargs_and_nested_arrays(tmp_path):
    sub = _echo(tmp_path)
    got = sub.call("pair", np.ones(2), b={"w": np.arange(3)})
    assert isinstance(got, tuple)
    np.testing.assert_array_equal(got[0], np.ones(2))
    np.testing.assert_array_equal(got[1]["w"], np.arange(3))


def test_arguments_are_copies(tmp_path):
    def mutate(x):
        x[0] = 99
        return x

    x = np.zeros(3)
    got = _sub(tmp_path, {"mutate": mutate}).call("mutate", x)
    assert x[0] == 0 and got[0] == 99


# -- refusals


class _Yes:
    def __eq__(self, other):
        return True

    __hash__ = None


class _Liar(np.ndarray):
    def __eq__(self, other):
        return True

    def __array_finalize__(self, obj):
        pass


@pytest.mark.parametrize(
    "result, words",
    [
        (np.array([object(), 1], dtype=object), "dtype object"),
        (np.array([1 + 2j]), "complex128"),
        (np.array(["a", "b"]), "<U1"),
        (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "dtype"),
        (_Yes(), "_Yes"),
        ({1: "int key"}, "keys must be strings"),
        ({"a", "b"}, "set"),
        (b"bytes", "bytes"),
        (lambda: 1, "function"),
        (1 + 2j, "complex"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_refuses_what_is_not_plain_data(tmp_path, result, words):
    sub = _sub(tmp_path, {"f": lambda: result})
    with pytest.raises(BridgeError) as info:
        sub.call("f")
    assert not isinstance(info.value, StudentCodeError)
    assert words in str(info.value)
    assert "not plain data" in str(info.value)


def test_too_deep_nesting_is_refused(tmp_path):
    deep = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(BridgeError, match="nested"):
        _sub(tmp_path, {"f": lambda: deep}).call("f")


def test_ndarray_subclass_comes_back_as_plain_data(tmp_path):
    liar = np.zeros(3).view(_Liar)
    assert (liar == np.ones(3)) is True  # the rigged comparison, before the bridge
    got = _sub(tmp_path, {"f": lambda: liar}).call("f")
    assert type(got) is np.ndarray
    assert not np.array_equal(got, np.ones(3))
    np.testing.assert_array_equal(got, np.zeros(3))


def test_tuple_and_list_subclasses_are_refused(tmp_path):
    class Rigged(tuple):
        def __eq__(self, other):
            return True

    with pytest.raises(BridgeError, match="Rigged"):
        _sub(tmp_path, {"f": lambda: Rigged((1, 2))}).call("f")


def test_student_exception_is_reported_with_its_message(tmp_path):
    def broken(x):
        return helper(x)

    def helper(x):
        raise ValueError(f"cannot handle {x}")

    sub = _sub(tmp_path, {"broken": broken})
    with pytest.raises(StudentCodeError) as info:
        sub.call("broken", 7)
    text = str(info.value)
    assert text.startswith("broken raised ValueError: cannot handle 7")
    assert "in helper" in text


def test_missing_function(tmp_path):
    sub = _sub(tmp_path, {"x": 5})
    assert not sub.has("x") and not sub.has("nope")
    with pytest.raises(StudentCodeError, match="no function named 'nope'"):
        sub.call("nope")
    with pytest.raises(StudentCodeError, match="no function named 'x'"):
        sub.call("x")


# -- call_model: each call form runs; the same architecture is loaded once --------------------


def test_call_keys_are_the_call_as_written():
    key = bridge.call_key
    assert key("b", ((36, 30, 3), 5), {}) == key("b", ((36, 30, 3), 5), {})
    assert key("b", (), {"a": 1, "b": 2}) == key("b", (), {"b": 2, "a": 1})
    # By position and by keyword are two calls: only the kernel knows how they bind.
    assert key("b", ((36, 30, 3), 5), {}) != key("b", (), {"input_shape": (36, 30, 3)})
    # Arrays are keyed by their contents, not by a repr that elides the middle.
    one, other = np.zeros(5000), np.zeros(5000)
    other[2500] = 1
    assert key("f", (one,), {}) != key("f", (other,), {})
    assert key("f", (one,), {}) == key("f", (one.copy(),), {})


def test_call_model_runs_every_call_form_once(tmp_path):
    """What the kernel would say of a function's parameters is the student's to forge
    (a patched bridge claimed `(input_shape, num_classes)` for renamed ones): no call is
    skipped on its word."""
    calls = []

    def build(input_shape=(28, 28, 1), num_classes=10):
        calls.append((input_shape, num_classes))
        raise ValueError("no model")

    sub = _sub(tmp_path, {"build": build})
    forms = [
        (((36, 30, 3), 5), {}),
        ((), {"input_shape": (36, 30, 3), "num_classes": 5}),
        (((36, 30, 3), 5), {}),
    ]
    for args, kwargs in forms:
        with pytest.raises(StudentCodeError, match="no model"):
            sub.call_model("build", *args, **kwargs)
    assert calls == [((36, 30, 3), 5), ((36, 30, 3), 5)]


def test_system_exit_in_student_code_is_reported(tmp_path):
    def bye():
        raise SystemExit(3)

    with pytest.raises(StudentCodeError, match="SystemExit"):
        _sub(tmp_path, {"bye": bye}).call("bye")


def test_call_model_requires_a_model(tmp_path):
    with pytest.raises(BridgeError, match="not a Keras model"):
        _sub(tmp_path, {"f": lambda: [1]}).call_model("f")


def test_scratch_path_and_submitted_file(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "model.keras").write_bytes(b"x")
    (files / "link.keras").symlink_to(files / "model.keras")
    sub = _sub(tmp_path, {}, files=files)
    a, b = sub.scratch_path("out/../x y"), sub.scratch_path("out/../x y")
    assert a != b and a.is_dir() and b.is_dir()
    assert a.parent == sub.scratch / ".calls" and "/" not in a.name[:-2]
    assert sub.submitted_file("model.keras") == files / "model.keras"
    for name in ("link.keras", "../files/model.keras", ".hidden", "missing.keras"):
        assert sub.submitted_file(name) is None, name
    assert _sub(tmp_path, {}).submitted_file("model.keras") is None


# -- decode_response on hand-written (hostile) responses


@pytest.fixture
def calldir(tmp_path):
    d = tmp_path / "scratch" / ".calls" / "1"
    d.mkdir(parents=True)
    return d


def _decode(calldir, response, raw=None):
    path = calldir / "response.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(response))
    return decode_response(calldir, calldir.parent.parent, "f", 1 << 20)


def _ok(spec):
    return {"ok": True, "result": spec}


@pytest.mark.parametrize(
    "response, raw",
    [
        (None, b"{not json"),
        (None, b"\xff\xfe"),
        (None, b"[" * 100_000),
        ([1, 2], None),
        ("ok", None),
        (_ok(5), None),
        (_ok({"v": 1}), None),
        (_ok({"t": 5}), None),
        (_ok({"t": "pickle", "v": "gASV"}), None),
        (_ok({"t": "int", "v": "5"}), None),
        (_ok({"t": "int", "v": 5.0}), None),
        (_ok({"t": "int", "v": True}), None),
        (_ok({"t": "bool", "v": 1}), None),
        (_ok({"t": "str", "v": 5}), None),
        (_ok({"t": "float", "v": 1.5}), None),
        (_ok({"t": "float", "v": "abc"}), None),
        (_ok({"t": "float", "v": "1" * 41}), None),
        (_ok({"t": "list", "items": "abc"}), None),
        (_ok({"t": "dict", "items": [[1, {"t": "none"}]]}), None),
        (_ok({"t": "dict", "items": [["a"]]}), None),
        (_ok({"t": "array", "file": "../../outside.npy"}), None),
        (_ok({"t": "array", "file": "x.pkl"}), None),
        (_ok({"t": "array", "file": "a" * 70 + ".npy"}), None),
        (_ok({"t": "array", "file": "a\x00.npy"}), None),
        (_ok({"t": "array", "file": "missing.npy"}), None),
        (_ok({"t": "model", "file": "m.h5"}), None),
    ],
)
def test_malformed_responses_are_refused(calldir, response, raw):
    with pytest.raises(BridgeError):
        _decode(calldir, response, raw)


def test_deep_and_wide_results_are_refused(calldir, monkeypatch):
    spec = {"t": "none"}
    for _ in range(bridge.MAX_DEPTH + 2):
        spec = {"t": "list", "items": [spec]}
    with pytest.raises(BridgeError, match="nested too deeply"):
        _decode(calldir, _ok(spec))
    monkeypatch.setattr(bridge, "MAX_ITEMS", 10)
    with pytest.raises(BridgeError, match="too many items"):
        _decode(calldir, _ok({"t": "list", "items": [{"t": "none"}] * 20}))


def test_response_file_limits(calldir, tmp_path, monkeypatch):
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps(_ok({"t": "str", "v": "secret"})))
    (calldir / "response.json").symlink_to(outside)
    with pytest.raises(BridgeError):
        decode_response(calldir, calldir.parent.parent, "f", 1 << 20)
    (calldir / "response.json").unlink()
    monkeypatch.setattr(bridge, "MAX_JSON_BYTES", 100)
    with pytest.raises(BridgeError, match="limit"):
        _decode(calldir, _ok({"t": "str", "v": "x" * 200}))


def _npy(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_pickled_npy_is_refused_without_unpickling(calldir, tmp_path):
    canary = tmp_path / "canary"

    class Boom:
        def __reduce__(self):
            return (canary.touch, ())

    (calldir / "r1.npy").write_bytes(_npy(np.array([Boom()], dtype=object), allow_pickle=True))
    # Refused from the header's dtype, before any byte of the pickle is read.
    with pytest.raises(BridgeError, match="dtype object are not plain numbers"):
        _decode(calldir, _ok({"t": "array", "file": "r1.npy"}))
    assert not canary.exists()


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]),
        np.array([1 + 1j]),
        np.array(["x"]),
        np.array([1, 2], dtype="datetime64[s]"),
        np.zeros(3, dtype="V4"),
    ],
    ids=lambda a: str(a.dtype),
)
def test_npy_of_other_dtypes_is_refused(calldir, arr):
    (calldir / "r1.npy").write_bytes(_npy(arr))
    with pytest.raises(BridgeError, match="not plain numbers"):
        _decode(calldir, _ok({"t": "array", "file": "r1.npy"}))


def test_npy_that_is_not_npy_or_is_a_link(calldir, tmp_path):
    (calldir / "r1.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(BridgeError, match="not a valid .npy"):
        _decode(calldir, _ok({"t": "array", "file": "r1.npy"}))
    secret = tmp_path / "secret.npy"
    secret.write_bytes(_npy(np.arange(3)))
    (calldir / "r2.npy").symlink_to(secret)
    with pytest.raises(BridgeError):
        _decode(calldir, _ok({"t": "array", "file": "r2.npy"}))


def test_oversize_array_is_refused(calldir):
    (calldir / "r1.npy").write_bytes(_npy(np.zeros(1000)))
    (calldir / "response.json").write_text(json.dumps(_ok({"t": "array", "file": "r1.npy"})))
    with pytest.raises(BridgeError, match="limit"):
        decode_response(calldir, calldir.parent.parent, "f", 1000)


def test_one_file_named_many_times_counts_each_time(calldir):
    """A list of 100 references to one 64 MiB .npy filled the grader's memory: the files
    of one result are bounded together, not each on its own."""
    (calldir / "r1.npy").write_bytes(_npy(np.zeros(100)))  # 928 bytes
    one = {"t": "array", "file": "r1.npy"}
    (calldir / "response.json").write_text(json.dumps(_ok({"t": "list", "items": [one] * 2})))
    assert len(decode_response(calldir, calldir.parent.parent, "f", 2000)) == 2
    (calldir / "response.json").write_text(json.dumps(_ok({"t": "list", "items": [one] * 3})))
    with pytest.raises(BridgeError, match="in all"):
        decode_response(calldir, calldir.parent.parent, "f", 2000)


def test_npy_header_with_negative_dimensions_is_refused():
    buf = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (-2, -4)}
    np.lib.format.write_array_header_1_0(buf, header)
    with pytest.raises(BridgeError, match="declares shape"):
        decode_npy(buf.getvalue() + np.zeros(8, np.float32).tobytes())


def test_a_result_holds_at_most_a_few_models(calldir):
    """Each model reference is admitted, copied and loaded: 2,000 of them wrote 2 GB."""
    (calldir / "m.keras").write_bytes(b"PK")
    loaded = []
    spec = _ok({"t": "list", "items": [{"t": "model", "file": "m.keras"}] * 5})
    (calldir / "response.json").write_text(json.dumps(spec))
    with pytest.raises(BridgeError, match="more than 4 models"):
        decode_response(calldir, calldir.parent.parent, "f", 1 << 20, loaded.append)
    assert len(loaded) == 4


def test_hand_written_valid_response(calldir):
    (calldir / "r1.npy").write_bytes(_npy(np.arange(4, dtype=np.int16)))
    spec = {
        "t": "tuple",
        "items": [
            {"t": "float", "v": "nan"},
            {"t": "array", "file": "r1.npy"},
            {"t": "dict", "items": [["k", {"t": "bool", "v": False}]]},
        ],
    }
    got = _decode(calldir, _ok(spec))
    assert math.isnan(got[0]) and got[2] == {"k": False}
    assert got[1].dtype == np.int16 and got[1].tolist() == [0, 1, 2, 3]


def test_error_responses(calldir):
    with pytest.raises(StudentCodeError) as info:
        _decode(calldir, {"ok": False, "error": "KeyError: 'x'", "where": ["line 3 in f", 7]})
    assert str(info.value) == "f raised KeyError: 'x' (line 3 in f, 7)"
    with pytest.raises(StudentCodeError, match="f raised failed"):
        _decode(calldir, {"ok": "yes"})
    with pytest.raises(BridgeError) as info:
        _decode(calldir, {"ok": False, "error": "f returned a set", "bad_type": True})
    assert not isinstance(info.value, StudentCodeError) and "not plain data" in str(info.value)
    with pytest.raises(StudentCodeError) as info:
        _decode(calldir, {"ok": False, "error": "E" * 10_000})
    assert len(str(info.value)) < 2100


def test_encode_request_writes_plain_json_and_npy(tmp_path):
    """Small arrays travel inline in the JSON; one past `INLINE_BYTES` as a .npy file."""
    calldir = tmp_path / "c"
    big = np.arange(kernel_side.INLINE_BYTES // 8 + 1, dtype=np.float64)
    encode_request(calldir, "g", (np.ones(2), 3, big), {"k": (1.5, None)})
    request = json.loads((calldir / "request.json").read_text())
    assert request["function"] == "g" and request["model"] is None
    assert request["args"]["t"] == "tuple"
    small = request["args"]["items"][0]
    assert (small["dtype"], small["shape"]) == ("<f8", [2])
    assert sorted(p.name for p in calldir.iterdir()) == ["a1.npy", "request.json"]
    np.testing.assert_array_equal(np.load(calldir / "a1.npy", allow_pickle=False), big)
    args = kernel_side.decode(request["args"], str(calldir))
    assert args[0].tolist() == [1.0, 1.0] and args[0].flags.writeable
    np.testing.assert_array_equal(args[2], big)


def test_arrays_past_the_inline_budget_travel_as_files(tmp_path):
    """A response inlines at most `INLINE_TOTAL` bytes of arrays: the rest go as files,
    so the JSON stays far below what the grader reads of it."""
    arr = np.ones(kernel_side.INLINE_BYTES // 8, dtype=np.float64)  # inline on its own
    count = kernel_side.INLINE_TOTAL // arr.nbytes + 3
    sub = _sub(tmp_path, {"many": lambda: [arr] * count})
    got = sub.call("many")
    assert len(got) == count and all(np.array_equal(a, arr) for a in got)
    files = sorted(p.name for p in (tmp_path / "scratch").rglob("r*.npy"))
    assert len(files) == 3


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"dtype": "|O", "shape": [1], "data": "AAAAAAAAAAA="}, "not plain numbers"),
        ({"dtype": "<c8", "shape": [1], "data": "AAAAAAAAAAA="}, "not plain numbers"),
        ({"dtype": "<f4,<f4", "shape": [1], "data": "AAAAAAAAAAA="}, "not plain numbers"),
        ({"dtype": "<i3", "shape": [1], "data": "AAAA"}, "not plain numbers"),
        ({"dtype": 4, "shape": [1], "data": "AAAA"}, "not plain numbers"),
        ({"dtype": "<f4", "shape": [-1], "data": "AAAA"}, "malformed array"),
        ({"dtype": "<f4", "shape": [True], "data": "AAAA"}, "malformed array"),
        ({"dtype": "<f4", "shape": [1.0], "data": "AAAA"}, "malformed array"),
        ({"dtype": "<f4", "shape": [1] * 65, "data": "AAAA"}, "malformed array"),
        ({"dtype": "<f4", "shape": 1, "data": "AAAA"}, "malformed array"),
        ({"dtype": "<f4", "shape": [1], "data": ["AAAA"]}, "malformed array"),
        ({"dtype": "<f4", "shape": [1], "data": "AA!A"}, "not valid base64"),
        ({"dtype": "<f4", "shape": [1], "data": "\u00e9AAA"}, "not valid base64"),
        ({"dtype": "<f4", "shape": [2], "data": "AAAA"}, "declares shape"),
        ({"dtype": "<f8", "shape": [10**9, 10**9], "data": "AAAA"}, "declares shape"),
    ],
)
def test_malformed_inline_arrays_are_refused(calldir, spec, words):
    with pytest.raises(BridgeError, match=words):
        _decode(calldir, _ok({"t": "array", **spec}))


def test_inline_arrays_count_toward_the_results_bytes(calldir):
    """Inline arrays are bounded together with the files, before they are decoded."""
    data = base64.b64encode(np.zeros(100).tobytes()).decode()  # 800 bytes
    one = {"t": "array", "dtype": "<f8", "shape": [100], "data": data}
    (calldir / "response.json").write_text(json.dumps(_ok({"t": "list", "items": [one] * 2})))
    with pytest.raises(BridgeError, match="in all"):
        decode_response(calldir, calldir.parent.parent, "f", 1500)


def test_inline_arrays_come_back_writable_with_their_dtype(calldir):
    arr = np.arange(6, dtype=">i2").reshape(2, 3)
    data = base64.b64encode(arr.tobytes()).decode()
    got = _decode(calldir, _ok({"t": "array", "dtype": ">i2", "shape": [2, 3], "data": data}))
    assert got.dtype == np.dtype(">i2") and got.flags.writeable
    np.testing.assert_array_equal(got, arr)


# -- Keras models (slow: importing TensorFlow takes seconds)


@pytest.fixture(scope="module")
def keras():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return pytest.importorskip("keras")


def _sequential(keras, *layers):
    return keras.Sequential([keras.Input(shape=(4,)), *layers])


@pytest.mark.slow
def test_call_with_model_builds_a_conv_model(tmp_path, keras):
    def inspect(model, x):
        conv = model.layers[0]
        kernel, bias = conv.get_weights()
        return tuple(model.input_shape[1:]), kernel, np.asarray(model(x[None])[0])

    kernel = np.random.default_rng(1).normal(size=(3, 3, 2, 4)).astype(np.float32)
    x = np.random.default_rng(2).normal(size=(5, 6, 2)).astype(np.float32)
    shape, got_kernel, out = _sub(tmp_path, {"inspect": inspect}).call_with_model(
        "inspect", x, kernel=kernel, input_shape=(5, 6, 2)
    )
    assert shape == (5, 6, 2)
    np.testing.assert_array_equal(got_kernel, kernel)
    assert out.shape == (3, 4, 4)
    manual = sum(x[0:3, 0:3, c, None] * kernel[:, :, c, :] for c in range(2)).sum(axis=(0, 1))
    np.testing.assert_allclose(out[0, 0], manual, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_call_with_model_layers_before_and_after(tmp_path, keras):
    """A weightless layer in front and a second Conv2D behind: the first Conv2D is
    neither layer 0 nor the last layer, so a check can tell which one was used."""

    def inspect(model):
        return [type(layer).__name__ for layer in model.layers], [
            layer.get_weights()[0] for layer in model.layers if layer.get_weights()
        ]

    rng = np.random.default_rng(3)
    first = rng.normal(size=(3, 3, 1, 4)).astype(np.float32)
    second = rng.normal(size=(2, 2, 4, 5)).astype(np.float32)
    names, kernels = _sub(tmp_path, {"inspect": inspect}).call_with_model(
        "inspect",
        kernel=first,
        input_shape=(8, 8, 1),
        layers_before=(("Rescaling", {"scale": 0.5}),),
        kernels_after=(second,),
    )
    assert names == ["Rescaling", "Conv2D", "Conv2D"]
    np.testing.assert_array_equal(kernels[0], first)
    np.testing.assert_array_equal(kernels[1], second)


@pytest.mark.slow
def test_model_returned_through_the_bridge(tmp_path, keras):
    def make():
        return _sequential(keras, keras.layers.Dense(2, name="out"))

    def make_lambda():
        return _sequential(keras, keras.layers.Lambda(lambda t: t + 1))

    calls = []
    sub = _sub(tmp_path, {"make": lambda: calls.append(1) or make(), "make_lambda": make_lambda})
    model = sub.call_model("make")
    assert [layer.name for layer in model.layers] == ["out"]
    assert sub.call_model("make") is model and calls == [1]  # built once per submission
    with pytest.raises(UnsafeModel, match="Lambda"):
        sub.call_model("make_lambda")
    sub.close()


@pytest.mark.slow
def test_call_model_leaves_the_weights_behind_and_call_keeps_them(tmp_path, keras):
    """A model `call_model` gets is a fresh draw, so it travels as its config alone; a
    model returned by `call` (trained, say) comes with its weights."""

    def make():
        return _sequential(keras, keras.layers.Dense(2, name="out"))

    sub = _sub(tmp_path, {"make": make})
    try:
        fresh = sub.call_model("make")
        kept = sub.call("make")
        with zipfile.ZipFile(fresh.archive) as archive:
            assert archive.namelist() == ["config.json"]
        with zipfile.ZipFile(kept.archive) as archive:
            assert sorted(archive.namelist()) == ["config.json", "weights.npz"]
        x = np.ones((3, 4), "float32")
        assert fresh.predict(x).shape == kept.predict(x).shape == (3, 2)
    finally:
        sub.close()


@pytest.mark.slow
def test_call_model_leaves_a_fresh_draws_variables_unmade(tmp_path, keras):
    """A function `call_model` calls runs with the Keras variables it makes left unmade
    (its model is a fresh draw, sent as its config): the same model as a plain call's,
    compiled too. A model the notebook keeps outlives the call, so it is made."""
    made, kept, steps = [], [], []

    def make(units=2):  # every name given: Keras numbers the ones it makes up
        layers = [keras.Input(shape=(4,), name="x"), keras.layers.Dense(units, name="out")]
        model = keras.Sequential(layers, name="m")
        model.compile(optimizer=keras.optimizers.Adam(name="adam"), loss="mse")
        made.append(model.layers[0].kernel._value is not None)
        steps.append(type(model.optimizer.iterations._value).__name__)
        return model

    def make_and_keep():
        kept.append(make(3))
        return kept[-1]

    sub = _sub(tmp_path, {"make": make, "make_and_keep": make_and_keep})
    try:
        fresh, plain = sub.call_model("make"), sub.call("make")
        assert made == [False, True]
        # The optimizer's step count, made from a plain value: a constant meanwhile.
        assert steps == ["EagerTensor", "ResourceVariable"]
        assert (fresh.layers, fresh.count_params(), fresh.compile_config) == (
            plain.layers,
            plain.count_params(),
            plain.compile_config,
        )
        assert sub.call_model("make_and_keep").count_params() == 15
        assert made[-1] is False
        kernel = kept[0].layers[0].kernel
        assert kernel._value is not None  # made once the call was over
        kernel.assign(np.ones((4, 3), "float32"))
        assert float(kept[0](np.ones((1, 4), "float32"))[0, 0]) == 4.0
        step = kept[0].optimizer.iterations
        assert type(step._value).__name__ == "ResourceVariable"  # made, and writable
        step.assign_add(1)
        assert int(step.numpy()) == 1
    finally:
        sub.close()


@pytest.mark.slow
def test_a_fresh_draw_that_fails_on_unmade_variables_is_made_again(tmp_path, keras):
    """A function that writes its variables, or fails once it has made some, runs again
    plainly: what comes back is what a plain call gives. One that fails before making any
    runs once."""
    runs = collections.Counter()

    def set_weights():
        runs["set_weights"] += 1
        model = _sequential(keras, keras.layers.Dense(2, name="out"))
        model.layers[0].set_weights([np.ones((4, 2), "float32"), np.zeros(2, "float32")])
        return model

    def set_learning_rate():
        runs["set_learning_rate"] += 1
        model = _sequential(keras, keras.layers.Dense(2, name="out"))
        model.compile(optimizer="adam", loss="mse")
        model.optimizer.learning_rate.assign(0.5)  # a variable made from a plain value
        return model

    def swallows_the_write():
        runs["swallows_the_write"] += 1
        model = _sequential(keras, keras.layers.Dense(2, name="out"))
        model.compile(optimizer="adam", loss="mse")
        try:
            model.optimizer.learning_rate.assign(0.25)
        except Exception:  # noqa: BLE001 - what the call returns must not depend on this
            pass
        return model

    def fails_late():
        runs["fails_late"] += 1
        _sequential(keras, keras.layers.Dense(2))
        raise RuntimeError("late")

    def fails_early():
        runs["fails_early"] += 1
        raise RuntimeError("early")

    functions = (set_weights, set_learning_rate, swallows_the_write, fails_late, fails_early)
    sub = _sub(tmp_path, {f.__name__: f for f in functions})
    try:
        assert sub.call_model("set_weights").count_params() == 10
        assert sub.call_model("set_learning_rate").count_params() == 10
        optimizer = sub.call_model("swallows_the_write").compile_config["optimizer"]
        assert optimizer["config"]["learning_rate"] == 0.25  # as a plain call leaves it
        with pytest.raises(StudentCodeError, match="RuntimeError: late"):
            sub.call_model("fails_late")
        with pytest.raises(StudentCodeError, match="RuntimeError: early"):
            sub.call_model("fails_early")
        assert runs == {
            "set_weights": 2,
            "set_learning_rate": 2,
            "swallows_the_write": 2,
            "fails_late": 2,
            "fails_early": 1,
        }
    finally:
        sub.close()


def test_npy_header_declaring_more_than_the_file_holds_is_refused(calldir):
    """np.load would allocate the declared shape before noticing the data is short."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000, 100)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    (calldir / "r1.npy").write_bytes(buf.getvalue() + b"\0" * 64)
    with pytest.raises(BridgeError, match="header declares shape"):
        _decode(calldir, _ok({"t": "array", "file": "r1.npy"}))


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b'{"ok": true, "result": {"t": "str", "v": "plain ascii"}}', "plain ascii"),
        (
            b'{"ok": true, "result": {"t": "str", "v": "caf\\u00e9 \\ud83d\\ude00"}}',
            "caf\u00e9 \U0001f600",
        ),
        ('{"ok": true, "result": {"t": "str", "v": "caf\u00e9"}}'.encode(), "caf\u00e9"),
        (b'{"ok": true, "result": {"t": "str", "v": "x\\ud800y"}}', "x\\ud800y"),  # a lone escape
        (b'{"ok": true, "result": {"t": "str", "v": "x\\uDC80y"}}', "x\\udc80y"),
        (b'{"ok": true, "result": {"t": "str", "v": "x\xed\xa0\x80y"}}', "x\\ud800y"),  # raw
        (
            '{"ok": true, "result": {"t": "str", "v": "x\ud800y"}}'.encode(
                "utf-16", "surrogatepass"
            ),
            "x\\ud800y",
        ),
    ],
)
def test_every_string_of_a_response_is_encodable(calldir, raw, expected):
    """A lone surrogate, however the kernel wrote it (escaped, as raw bytes, in UTF-16), is
    stored and shown as its escape; a pair is the character it encodes."""
    got = _decode(calldir, None, raw)
    assert got == expected
    got.encode("utf-8")  # never raises
