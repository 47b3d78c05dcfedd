"""The grader's end of the bridge into a student's kernel.

Checks call student functions through a `Submission`. Arguments are encoded
as JSON + .npy; results come back the same way and are decoded here with
hard limits: numbers, strings, numeric arrays (`allow_pickle=False`), tuples,
lists and string-keyed dicts. A returned Keras model is never built here: it is
admitted from its config and built in the capped model host (autograder.model_host),
and the check gets a `StudentModel` (plain data, predictions by request). Anything
else is refused, so an object with a rigged `__eq__`, an ndarray subclass or an
object array never reaches an assertion.
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autograder import kernel_side
from autograder.cleantext import encodable_tree, without_ansi
from autograder.config import Limits
from autograder.exceptions import AutograderError, BridgeError, StudentCodeError
from autograder.model_host import KernelModelHost, LocalModelHost, StudentModel, warm_host
from autograder.safeio import read_untrusted
from autograder.sandbox import CALLS_DIR

MAX_DEPTH = 16
MAX_ITEMS = 100_000
MAX_JSON_BYTES = 8 << 20
MAX_MODELS = 4  # models in one result: each is admitted, copied and loaded in the host
MAX_NDIM = 64  # numpy's own limit
# The dtypes an inline array may name (`kernel_side.INLINE_BYTES`): plain numbers only.
_PLAIN_DTYPE = re.compile(r"[<>|=]?[biuf][0-9]{1,2}")


class Submission(Protocol):
    """What a check sees: a way to call the student's functions, nothing more."""

    student: str

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any: ...

    def call_model(self, name: str, /, *args: Any, **kwargs: Any) -> StudentModel: ...

    def call_with_model(
        self,
        name: str,
        /,
        *args: Any,
        kernel: np.ndarray,
        input_shape: tuple,
        layers_before: tuple[tuple[str, dict], ...] = (),
        kernels_after: tuple[np.ndarray, ...] = (),
        **kwargs: Any,
    ) -> Any: ...

    def has(self, name: str) -> bool: ...

    def scratch_path(self, name: str) -> Path: ...

    def submitted_file(self, name: str) -> Path | None: ...

    def submitted_model(self, name: str) -> StudentModel | None: ...


def encode_request(
    calldir: Path,
    function: str,
    args: tuple,
    kwargs: dict,
    model: dict | None = None,
    weights: bool = True,
) -> None:
    """Write a call's arguments (grader data, trusted) for the kernel to read.

    `model` (a dict with `kernel` and `input_shape`, optionally `before`: weightless
    layers in front, and `after`: kernels of further Conv2D layers) asks the kernel to
    build a Sequential Keras model with those weights and pass it as the first argument:
    models never travel into the kernel as files it would have to trust us on.
    `weights` False: a model in the result comes back without its weights, when it can
    (`kernel_side.save_model`).
    """
    calldir.mkdir(parents=True, exist_ok=True)
    enc = kernel_side._Encoder(str(calldir), prefix="a")
    request = {
        "function": function,
        "args": enc(tuple(args)),
        "kwargs": enc(dict(kwargs)),
        "model": None if model is None else enc(model),
        "weights": weights,
    }
    (calldir / "request.json").write_text(json.dumps(request))


class _Decoder:
    """Turn an untrusted response into plain Python/numpy values."""

    def __init__(
        self,
        calldir: Path,
        root: Path,
        max_array_bytes: int,
        models: Callable[[Path], Any] | None = None,
    ) -> None:
        self.calldir, self.root, self.max_array_bytes = calldir, root, max_array_bytes
        self.models = models  # turns a returned .keras file into a StudentModel
        self.items = 0
        # A result may name one file many times, and each reference would be read (or
        # admitted, copied and loaded) again: arrays are bounded in all, models in number.
        self.bytes, self.model_count = 0, 0

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
            if "data" in spec:
                return self.inline_array(spec)
            return self.array(_filename(spec.get("file"), ".npy"))
        if t == "model":
            if self.models is None:
                raise BridgeError("a model where plain data was expected")
            path = self.calldir / _filename(spec.get("file"), ".keras")
            self.model_count += 1  # each archive is bounded on its own when admitted
            if self.model_count > MAX_MODELS:
                raise BridgeError(f"the result holds more than {MAX_MODELS} models")
            return self.models(path)
        raise BridgeError(f"unsupported result type {t[:20]!r}")

    def _charge(self, size: int) -> None:
        self.bytes += size
        if self.bytes > self.max_array_bytes:
            raise BridgeError(
                f"the result's files hold more than {self.max_array_bytes >> 20} MiB in all"
            )

    def inline_array(self, spec: dict) -> np.ndarray:
        """An array sent inline: base64 `data`, checked against its `dtype` and `shape`."""
        data, shape, dtype = spec.get("data"), spec.get("shape"), _plain_dtype(spec.get("dtype"))
        if not (
            isinstance(data, str)
            and isinstance(shape, list)
            and len(shape) <= MAX_NDIM
            and all(type(dim) is int and dim >= 0 for dim in shape)
        ):
            raise BridgeError("malformed array")
        self._charge(len(data) // 4 * 3)  # before decoding it
        try:
            raw = binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):
            raise BridgeError("the returned array's data is not valid base64") from None
        return _array_of(raw, 0, dtype, shape, False, "JSON")

    def array(self, name: str) -> np.ndarray:
        data = read_untrusted(self.calldir / name, self.root, self.max_array_bytes)
        self._charge(len(data))
        return decode_npy(data)


def decode_npy(data: bytes) -> np.ndarray:
    """A plain numeric array from .npy bytes, its header checked against its size first.

    np.load would trust the header's shape and allocate for it before noticing the data
    is short; here a header that declares more than the file holds is refused.
    """
    fh = io.BytesIO(data)
    try:
        shape, fortran, dtype = kernel_side.npy_header(fh)
    except Exception as exc:  # noqa: BLE001 - any malformed header is a bad result
        raise BridgeError(f"the returned array is not a valid .npy file ({exc})") from None
    if dtype.kind not in "biuf" or dtype.fields or dtype.hasobject:
        raise BridgeError(f"arrays of dtype {dtype} are not plain numbers")
    if any(int(dim) < 0 for dim in shape):  # (-2, -4) would match 8 items, then fail
        raise BridgeError(f"the returned array's header declares shape {tuple(shape)[:8]}")
    return _array_of(data, fh.tell(), dtype, [int(dim) for dim in shape], fortran, "header")


def _array_of(
    data: bytes, offset: int, dtype: np.dtype, shape: list[int], fortran: bool, where: str
) -> np.ndarray:
    """A copy of the array in `data[offset:]`, refused unless it holds exactly `shape`."""
    count = math.prod(shape)
    if count * dtype.itemsize != len(data) - offset:
        raise BridgeError(
            f"the returned array's {where} declares shape {tuple(shape)[:8]}, but it holds "
            f"{len(data) - offset} bytes of data"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran else "C").copy()


def _plain_dtype(value: Any) -> np.dtype:
    """The dtype an inline array names, refused unless it is plain numbers."""
    if not isinstance(value, str) or not _PLAIN_DTYPE.fullmatch(value):
        raise BridgeError(f"arrays of dtype {str(value)[:20]!r} are not plain numbers")
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise BridgeError(f"arrays of dtype {value!r} are not plain numbers") from None
    if dtype.kind not in "biuf":
        raise BridgeError(f"arrays of dtype {dtype} are not plain numbers")
    return dtype


def _typed(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise BridgeError(f"malformed {kind.__name__}")
    return value


def _filename(value: Any, suffix: str) -> str:
    if not isinstance(value, str) or "/" in value or not value.endswith(suffix) or len(value) > 64:
        raise BridgeError("malformed file reference")
    return value


def decode_response(
    calldir: Path,
    root: Path,
    function: str,
    max_array_bytes: int,
    models: Callable[[Path], Any] | None = None,
) -> Any:
    """Read the kernel's response.json and its files; raise on an error response."""
    raw = read_untrusted(calldir / "response.json", root, MAX_JSON_BYTES)
    try:
        response = _plain_json(raw)
    except (ValueError, RecursionError):
        raise BridgeError(f"{function}: the kernel's response is not valid JSON") from None
    if not isinstance(response, dict):
        raise BridgeError(f"{function}: malformed response")
    if response.get("ok") is True:
        return _Decoder(calldir, root, max_array_bytes, models)(response.get("result"))
    error = without_ansi(str(response.get("error", "failed")))[:2000]
    where = response.get("where")
    where_text = ""
    if isinstance(where, list) and where:
        where_text = " (" + ", ".join(str(w)[:80] for w in where[-3:]) + ")"
    if response.get("bad_type"):
        raise BridgeError(f"{error}, which is not plain data (numbers, strings, arrays, tuples)")
    raise StudentCodeError(f"{function} raised {error}{where_text}")


def _plain_json(raw: bytes) -> Any:
    """Parsed JSON with every string `encodable` (`cleantext.encodable_tree`).

    The walk is skipped when it can find nothing, as for every response the bridge's own
    side writes (ASCII): strict UTF-8 holds no surrogate, so only an escape can make one.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return encodable_tree(json.loads(raw))  # json reads UTF-16/32 and lone surrogates
    if "\\ud" in text or "\\uD" in text:
        return encodable_tree(json.loads(text))
    return json.loads(text)


def call_key(name: str, args: tuple, kwargs: dict) -> str:
    """The cache key of a call as written (arrays by what they hold)."""
    return repr((name, _keyed(args), _keyed(sorted(kwargs.items()))))


@dataclasses.dataclass(frozen=True)
class _ArrayKey:
    """An array in a cache key: what it holds, not its repr (which elides a big one's middle)."""

    dtype: str
    shape: tuple[int, ...]
    sha256: str


def _keyed(value: Any) -> Any:
    """`value` with each array replaced by an `_ArrayKey`."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return _ArrayKey(data.dtype.str, data.shape, hashlib.sha256(data.tobytes()).hexdigest())
    if isinstance(value, tuple):
        return tuple(_keyed(v) for v in value)
    if isinstance(value, list):
        return [_keyed(v) for v in value]
    if isinstance(value, dict):
        return {k: _keyed(v) for k, v in value.items()}
    return value


class BaseSubmission:
    """The check-facing methods, over one `_serve(calldir)` hook per transport."""

    student: str
    scratch: Path
    files: Path | None = None
    max_array_bytes: int = 1 << 30

    def __init__(self) -> None:
        self._calls = 0
        self._host: Any = None
        self._models: dict[str, Any] = {}

    def _serve(self, calldir: Path, function: str) -> None:
        raise NotImplementedError

    def _make_model_host(self) -> Any:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def scratch_path(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "x"
        self._calls += 1
        # Under .calls, which only the grader may add to: under the student's work folder
        # a link planted at the next name would make the chmod below follow it.
        path = self.scratch / CALLS_DIR / f"{safe}-{self._calls}"
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        return path

    def submitted_file(self, name: str) -> Path | None:
        """A file the student handed in beside the notebook (e.g. a trained model.keras)."""
        if self.files is None or "/" in name or name.startswith("."):
            return None
        path = self.files / name
        return path if path.is_file() and not path.is_symlink() else None

    def submitted_model(self, name: str) -> StudentModel | None:
        """A handed-in .keras file, admitted and loaded in the model host like any model."""
        path = self.submitted_file(name)
        if path is None:
            return None
        return self.model_host().model(path, path.parent, f"loading your {name}")

    def model_host(self) -> Any:
        """Where this submission's models are built (started on first use)."""
        if self._host is None:
            self._host = self._make_model_host()
        return self._host

    def _model(self, path: Path, share: bool = False) -> StudentModel:
        return self.model_host().model(path, self.scratch, "loading the model", share)

    def _call(
        self, name: str, args: tuple, kwargs: dict, model: dict | None, share: bool = False
    ) -> Any:
        self._calls += 1
        calldir = self.scratch / CALLS_DIR / str(self._calls)
        # A shared model is a fresh draw (`call_model`): its weights need not travel.
        encode_request(calldir, name, args, kwargs, model, weights=not share)
        calldir.chmod(0o777)
        self._serve(calldir, name)
        return decode_response(
            calldir,
            self.scratch,
            name,
            self.max_array_bytes,
            lambda path: self._model(path, share),
        )

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, args, kwargs, None)

    def call_model(self, name: str, /, *args: Any, **kwargs: Any) -> StudentModel:
        """The model `name(*args, **kwargs)` returns, called once per submission and call.

        Every call form runs in the kernel: only the kernel knows how the student's
        function takes its arguments, and what it says of them cannot be trusted. Models of
        the same config (the same architecture, built again) are loaded once
        (`ModelHost.model`'s `share`), and are one StudentModel.
        """
        key = call_key(name, args, kwargs)
        if key not in self._models:
            try:
                result = self._call(name, args, kwargs, None, share=True)
                self._models[key] = _require_model(name, result)
            except AutograderError as exc:
                self._models[key] = exc
        found = self._models[key]
        if isinstance(found, AutograderError):
            raise found
        return found

    def call_with_model(
        self,
        name: str,
        /,
        *args: Any,
        kernel: np.ndarray,
        input_shape: tuple,
        layers_before: tuple[tuple[str, dict], ...] = (),
        kernels_after: tuple[np.ndarray, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """Call `name(model, *args, **kwargs)` with a model built in the kernel.

        The model: `layers_before` (`(class name in keras.layers, config)` pairs of
        weightless layers), then a Conv2D with `kernel`, then one Conv2D per
        `kernels_after`; zero biases.
        """
        model: dict[str, Any] = {
            "kernel": np.asarray(kernel, dtype=np.float32),
            "input_shape": tuple(input_shape),
        }
        if layers_before:
            model["before"] = [
                {"class_name": str(cls), "config": dict(cfg)} for cls, cfg in layers_before
            ]
        if kernels_after:
            model["after"] = [np.asarray(k, dtype=np.float32) for k in kernels_after]
        return self._call(name, args, kwargs, model)

    def close(self) -> None:
        """Stop the model host, if one was started."""
        if self._host is not None:
            self._host.close()
            self._host = None


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
        limits: Limits | None = None,
    ) -> None:
        super().__init__()
        self.namespace, self.scratch, self.student, self.files = (
            namespace,
            Path(scratch),
            student,
            files,
        )
        self.limits = limits or Limits()

    def has(self, name: str) -> bool:
        return callable(self.namespace.get(name))

    def _serve(self, calldir: Path, function: str) -> None:
        kernel_side.serve_call(str(calldir), self.namespace)

    def _make_model_host(self) -> LocalModelHost:
        return LocalModelHost(self.limits)


def _require_model(name: str, value: Any) -> StudentModel:
    if not isinstance(value, StudentModel):
        raise BridgeError(f"{name} returned {type(value).__name__}, not a Keras model")
    return value


class KernelSubmission(BaseSubmission):
    """Calls into a student's sandboxed kernel (see autograder.session)."""

    def __init__(self, session: Any, student: str, files: Path | None = None) -> None:
        super().__init__()
        self.session, self.student, self.files = session, student, files
        self.scratch = session.sandbox.scratch
        self.max_array_bytes = session.limits.file_size_mib << 20

    def _serve(self, calldir: Path, function: str) -> None:
        self.session.serve(function, {"op": "call", "dir": str(calldir)})

    def _make_model_host(self) -> KernelModelHost:
        kernel = self.session.kernel
        host = warm_host(
            self.session.limits,
            env=kernel.env,
            readonly=list(self.session.sandbox.readonly),
            zygote=kernel.zygote,
        )
        host.deadline = self.session.remaining
        return host

    def close(self) -> None:
        """Forget this submission's models; the warm host stays for the next submission."""
        if self._host is not None:
            self._host.reset()
            self._host = None

    def _ask(self, op: str, name: str) -> Any:
        """A question about the notebook's function `name` (`op`: has)."""
        self._calls += 1
        calldir = self.scratch / CALLS_DIR / str(self._calls)
        calldir.mkdir(parents=True, exist_ok=True)
        calldir.chmod(0o777)
        self.session.serve(f"{op}:{name}", {"op": op, "dir": str(calldir), "name": name})
        return decode_response(calldir, self.scratch, name, 1 << 10)

    def has(self, name: str) -> bool:
        try:
            return self._ask("has", name) is True
        except BridgeError:
            return False
