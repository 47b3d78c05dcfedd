"""The grader's end of the bridge into a student's kernel.

Checks call student functions through a `Submission`. Arguments are encoded
as JSON + .npy; results come back the same way and are decoded here with
hard limits: numbers, strings, numeric arrays (`allow_pickle=False`), tuples,
lists and string-keyed dicts, and Keras models loaded with `safe_mode=True`.
Anything else is refused, so an object with a rigged `__eq__`, an ndarray
subclass or an object array never reaches an assertion.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autograder import kernel_side
from autograder.exceptions import BridgeError, StudentCodeError, UnsafeModel
from autograder.safeio import read_untrusted

MAX_DEPTH = 16
MAX_ITEMS = 100_000
MAX_JSON_BYTES = 8 << 20
MAX_MODEL_BYTES = 64 << 20
SAFE_MODULE_PREFIXES = ("keras.", "keras")


class Submission(Protocol):
    """What a check sees: a way to call the student's functions, nothing more."""

    student: str

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any: ...

    def call_model(self, name: str, /, *args: Any, **kwargs: Any) -> Any: ...

    def call_with_model(
        self, name: str, /, *args: Any, kernel: np.ndarray, input_shape: tuple, **kwargs: Any
    ) -> Any: ...

    def has(self, name: str) -> bool: ...

    def scratch_path(self, name: str) -> Path: ...

    def submitted_file(self, name: str) -> Path | None: ...


def encode_request(
    calldir: Path, function: str, args: tuple, kwargs: dict, model: dict | None = None
) -> None:
    """Write a call's arguments (grader data, trusted) for the kernel to read.

    `model` (a dict with `kernel` and `input_shape`) asks the kernel to build a
    one-Conv2D Keras model with those weights and pass it as the first argument:
    models never travel into the kernel as files it would have to trust us on.
    """
    calldir.mkdir(parents=True, exist_ok=True)
    enc = kernel_side._Encoder(str(calldir), prefix="a")
    request = {
        "function": function,
        "args": enc(tuple(args)),
        "kwargs": enc(dict(kwargs)),
        "model": None if model is None else enc(model),
    }
    (calldir / "request.json").write_text(json.dumps(request))


class _Decoder:
    """Turn an untrusted response into plain Python/numpy values."""

    def __init__(self, calldir: Path, root: Path, max_array_bytes: int) -> None:
        self.calldir, self.root, self.max_array_bytes = calldir, root, max_array_bytes
        self.items = 0

    def __call__(self, spec: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise BridgeError("the result is nested too deeply")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise BridgeError("the result has too many items")
        if not isinstance(spec, dict) or not isinstance(spec.get("t"), str):
            raise BridgeError("malformed result")
        t = spec["t"]
        if t == "none":
            return None
        if t == "bool":
            return _typed(spec.get("v"), bool)
        if t == "int":
            v = spec.get("v")
            if type(v) is not int:
                raise BridgeError("malformed int")
            return v
        if t == "float":
            v = spec.get("v")
            if not isinstance(v, str) or len(v) > 40:
                raise BridgeError("malformed float")
            try:
                return float(v)
            except ValueError:
                raise BridgeError("malformed float") from None
        if t == "str":
            return _typed(spec.get("v"), str)
        if t in ("tuple", "list"):
            items = [self(v, depth + 1) for v in _typed(spec.get("items"), list)]
            return tuple(items) if t == "tuple" else items
        if t == "dict":
            out = {}
            for pair in _typed(spec.get("items"), list):
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                    raise BridgeError("malformed dict")
                out[pair[0]] = self(pair[1], depth + 1)
            return out
        if t == "array":
            return self.array(_filename(spec.get("file"), ".npy"))
        if t == "model":
            return load_model_safely(
                self.calldir / _filename(spec.get("file"), ".keras"), root=self.root
            )
        raise BridgeError(f"unsupported result type {t[:20]!r}")

    def array(self, name: str) -> np.ndarray:
        data = read_untrusted(self.calldir / name, self.root, self.max_array_bytes)
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any malformed file is a bad result
            raise BridgeError(f"the returned array is not a valid .npy file ({exc})") from None
        if type(arr) is not np.ndarray or arr.dtype.kind not in "biuf" or arr.dtype.fields:
            raise BridgeError(f"arrays of dtype {arr.dtype} are not plain numbers")
        return arr


def _typed(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise BridgeError(f"malformed {kind.__name__}")
    return value


def _filename(value: Any, suffix: str) -> str:
    if not isinstance(value, str) or "/" in value or not value.endswith(suffix) or len(value) > 64:
        raise BridgeError("malformed file reference")
    return value


def decode_response(calldir: Path, root: Path, function: str, max_array_bytes: int) -> Any:
    """Read the kernel's response.json and its files; raise on an error response."""
    raw = read_untrusted(calldir / "response.json", root, MAX_JSON_BYTES)
    try:
        response = json.loads(raw)
    except (ValueError, RecursionError):
        raise BridgeError(f"{function}: the kernel's response is not valid JSON") from None
    if not isinstance(response, dict):
        raise BridgeError(f"{function}: malformed response")
    if response.get("ok") is True:
        return _Decoder(calldir, root, max_array_bytes)(response.get("result"))
    error = str(response.get("error", "failed"))[:2000]
    where = response.get("where")
    where_text = ""
    if isinstance(where, list) and where:
        where_text = " (" + ", ".join(str(w)[:80] for w in where[-3:]) + ")"
    if response.get("bad_type"):
        raise BridgeError(f"{error}, which is not plain data (numbers, strings, arrays, tuples)")
    raise StudentCodeError(f"{function} raised {error}{where_text}")


def _check_keras_config(node: Any, depth: int = 0) -> None:
    """Refuse anything but Keras' own classes before Keras even reads the file."""
    if depth > 200:
        raise UnsafeModel("the model's config is nested too deeply")
    if isinstance(node, dict):
        cls = node.get("class_name")
        module = node.get("module")
        registered = node.get("registered_name")
        if cls in ("Lambda", "TFOpLambda"):
            raise UnsafeModel(f"the model contains a {cls} layer; only built-in layers are allowed")
        if isinstance(module, str) and not module.startswith(SAFE_MODULE_PREFIXES):
            raise UnsafeModel(f"the model uses {module}.{cls}, which is not part of Keras")
        if isinstance(registered, str) and registered != cls and not registered.startswith("keras"):
            raise UnsafeModel(f"the model uses the custom object {registered!r}")
        for value in node.values():
            _check_keras_config(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _check_keras_config(value, depth + 1)


def load_model_safely(path: Path, root: Path | None = None) -> Any:
    """Load a student's .keras file with safe_mode=True after vetting its config."""
    data = read_untrusted(path, root or path.parent, MAX_MODEL_BYTES)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise UnsafeModel("the saved model is not a valid .keras archive") from None
    _check_keras_config(config)
    import keras  # deferred: importing Keras costs seconds and only model checks need it

    tmpdir = Path(tempfile.mkdtemp(prefix="ag-model-"))
    try:
        copy = tmpdir / "model.keras"
        copy.write_bytes(data)
        try:
            model = keras.saving.load_model(copy, safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for refused models
            raise UnsafeModel(
                f"the model cannot be loaded safely ({type(exc).__name__}: {str(exc)[:300]})"
            ) from None
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    # Never compiled here (a loss or metric could name arbitrary code); how the student
    # compiled it is kept as plain, vetted data for checks to read.
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    object.__setattr__(
        model,
        "autograder_compile_config",
        compile_config if isinstance(compile_config, dict) else {},
    )
    return model


class BaseSubmission:
    """The check-facing methods, over one `_serve(calldir)` hook per transport."""

    student: str
    scratch: Path
    files: Path | None = None
    max_array_bytes: int = 1 << 30

    def __init__(self) -> None:
        self._calls = 0

    def _serve(self, calldir: Path, function: str) -> None:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def scratch_path(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "x"
        self._calls += 1
        path = self.scratch / "work" / f"{safe}-{self._calls}"
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        return path

    def submitted_file(self, name: str) -> Path | None:
        """A file the student handed in beside the notebook (e.g. a trained model.keras)."""
        if self.files is None or "/" in name or name.startswith("."):
            return None
        path = self.files / name
        return path if path.is_file() and not path.is_symlink() else None

    def _call(self, name: str, args: tuple, kwargs: dict, model: dict | None) -> Any:
        self._calls += 1
        calldir = self.scratch / ".calls" / str(self._calls)
        encode_request(calldir, name, args, kwargs, model)
        calldir.chmod(0o777)
        self._serve(calldir, name)
        return decode_response(calldir, self.scratch, name, self.max_array_bytes)

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, args, kwargs, None)

    def call_model(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        return _require_model(name, self._call(name, args, kwargs, None))

    def call_with_model(
        self, name: str, /, *args: Any, kernel: np.ndarray, input_shape: tuple, **kwargs: Any
    ) -> Any:
        model = {"kernel": np.asarray(kernel, dtype=np.float32), "input_shape": tuple(input_shape)}
        return self._call(name, args, kwargs, model)


class LocalSubmission(BaseSubmission):
    """Calls functions from a trusted in-process namespace (instructor tooling only).

    Results go through the same encode/decode path as a sandboxed call, so a
    check sees exactly the data types it would see from a real submission.
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        scratch: Path,
        student: str = "local",
        files: Path | None = None,
    ) -> None:
        super().__init__()
        self.namespace, self.scratch, self.student, self.files = (
            namespace,
            Path(scratch),
            student,
            files,
        )

    def has(self, name: str) -> bool:
        return callable(self.namespace.get(name))

    def _serve(self, calldir: Path, function: str) -> None:
        kernel_side.serve_call(str(calldir), self.namespace)


def _require_model(name: str, value: Any) -> Any:
    if not hasattr(value, "layers"):
        raise BridgeError(f"{name} returned {type(value).__name__}, not a Keras model")
    return value


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


CallFn = Callable[..., Any]


class KernelSubmission(BaseSubmission):
    """Calls into a student's sandboxed kernel (see autograder.session)."""

    def __init__(self, session: Any, student: str, files: Path | None = None) -> None:
        super().__init__()
        self.session, self.student, self.files = session, student, files
        self.scratch = session.sandbox.scratch
        self.max_array_bytes = session.limits.file_size_mib << 20

    def _serve(self, calldir: Path, function: str) -> None:
        self.session.serve(calldir, function, self.session.kernel.call_code(calldir))

    def has(self, name: str) -> bool:
        self._calls += 1
        calldir = self.scratch / ".calls" / str(self._calls)
        calldir.mkdir(parents=True, exist_ok=True)
        calldir.chmod(0o777)
        code = (
            f"__import__('sys').modules['__autograder_bridge__'].serve_has({str(calldir)!r}, "
            f"{name!r}, __import__('IPython').get_ipython().user_ns)"
        )
        try:
            self.session.serve(calldir, f"has:{name}", code)
            return decode_response(calldir, self.scratch, name, 1 << 10) is True
        except BridgeError:
            return False
