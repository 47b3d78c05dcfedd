"""Code that runs INSIDE the student's kernel: the far end of the bridge.

The grader injects this file's source into the sandboxed kernel before any
student cell runs, so it captures numpy's functions before a student can
monkeypatch them. It only turns arguments into a call and a return value into
files of plain data (JSON + .npy). It never compares, asserts or grades:
whatever it writes is untrusted and is validated by `autograder.bridge`.

It must stay importable on its own (only the standard library and numpy) because
its source text is what travels into the kernel.
"""

import _socket
import binascii as _binascii
import contextlib as _contextlib
import gc as _gc
import io as _io
import json as _json
import os as _os
import sys as _sys
import traceback as _traceback
import weakref as _weakrefs
import zipfile as _zipfile

import numpy as _np

_save = _np.lib.format.write_array
_savez = _np.savez
_ZipFile, _STORED = _zipfile.ZipFile, _zipfile.ZIP_STORED
_load = _np.load
_array = _np.array
_json_load = _json.load
_json_loads = _json.loads
_json_dumps = _json.dumps
_gc_collect = _gc.collect
_weakref = _weakrefs.ref
_join = _os.path.join
_replace = _os.replace
_ndarray = _np.ndarray
_generic = _np.generic
_open = open
_isinstance = isinstance
_MAX_ITEMS = 100_000
_b2a_base64, _a2b_base64 = _binascii.b2a_base64, _binascii.a2b_base64
# An array this small travels inline in the JSON (base64, its dtype and shape beside it):
# a file of its own cost both ends an open, a .npy header to write and to parse, and a
# read, more than the array itself. Past INLINE_TOTAL in one message, arrays go as files
# (the grader reads at most 8 MiB of JSON).
INLINE_BYTES, INLINE_TOTAL = 1 << 16, 1 << 20
# The C socket type and constants, taken before any student cell runs: a student can
# rebind names in the `socket` module, but not the methods of this built-in type.
_CSocket = _socket.socket
_AF_UNIX, _SOCK_STREAM = _socket.AF_UNIX, _socket.SOCK_STREAM
_modules = _sys.modules
HOST_MODULE = "__autograder_models__"  # the model host's side (autograder.model_side)

# A returned model travels as an archive (zip) that the grader vets from its config.json
# alone. Most are sent in the bridge's plain form: config.json (Keras's own serialized
# config, as in a .keras file) and weights.npz (`get_weights()`, w0, w1, ... in order), a
# quarter of the cost of writing a .keras file's HDF5 weights, and no HDF5 for the host to
# parse. Only a model made of layers whose whole state is their variables
# (STATE_IN_VARIABLES) can travel so; any other is saved as a .keras file. A model a
# function builds afresh for the checks (`call_model`) has weights that are a random draw
# no check reads: it travels as config.json alone, and the host draws its own weights.
PLAIN_CONFIG, PLAIN_WEIGHTS = "config.json", "weights.npz"
STATE_IN_VARIABLES = frozenset(
    {"Sequential", "Functional", "InputLayer", "Dense", "Flatten", "Reshape", "Activation"}
    | {"ReLU", "LeakyReLU", "Softmax", "Dropout", "SpatialDropout1D", "SpatialDropout2D"}
    | {"BatchNormalization", "LayerNormalization", "Rescaling", "Add", "Concatenate"}
    | {"Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose"}
    | {"ZeroPadding2D", "Cropping2D", "UpSampling2D"}
    | {f"{kind}Pooling{d}D" for kind in ("Max", "Average") for d in (1, 2, 3)}
    | {f"Global{kind}Pooling{d}D" for kind in ("Max", "Average") for d in (1, 2, 3)}
)


class _Encoder:
    def __init__(self, outdir, prefix="r", weights=True):
        self.outdir = outdir
        self.prefix = prefix  # "a" for the grader's arguments, "r" for results
        self.weights = weights  # False: models travel without them (`save_model`)
        self.count = 0
        self.inline_left = INLINE_TOTAL

    def file(self, ext):
        self.count += 1
        return f"{self.prefix}{self.count}{ext}"

    def __call__(self, obj, depth=0):
        if depth > 16:
            raise TypeError("nested more than 16 levels deep")
        if obj is None:
            return {"t": "none"}
        if obj is True or obj is False:
            return {"t": "bool", "v": bool(obj)}
        if type(obj) is int:
            return {"t": "int", "v": int(obj)}
        if type(obj) is float:
            return {"t": "float", "v": float.__repr__(obj)}
        if type(obj) is str:
            return {"t": "str", "v": str.__str__(obj)}
        if type(obj) in (tuple, list):
            if len(obj) > _MAX_ITEMS:
                raise TypeError("sequence too long")
            kind = "tuple" if type(obj) is tuple else "list"
            return {"t": kind, "items": [self(v, depth + 1) for v in obj]}
        if type(obj) is dict:
            if not all(type(k) is str for k in obj):
                raise TypeError("dict keys must be strings")
            return {"t": "dict", "items": [[k, self(v, depth + 1)] for k, v in obj.items()]}
        if _isinstance(obj, _generic):
            return self(obj.item(), depth + 1)
        if _is_keras_model(obj):
            name = self.file(".keras")
            save_model(obj, _join(self.outdir, name), self.weights)
            return {"t": "model", "file": name}
        if not _isinstance(obj, _ndarray) and hasattr(type(obj), "numpy"):
            obj = obj.numpy()  # tf.Tensor / tf.Variable / keras tensors
        if _isinstance(obj, _ndarray):
            arr = _array(obj, copy=True, subok=False)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"arrays of dtype {arr.dtype} are not plain numbers")
            if arr.nbytes <= INLINE_BYTES and arr.nbytes <= self.inline_left:
                self.inline_left -= arr.nbytes
                data = _b2a_base64(arr.tobytes(order="C"), newline=False).decode("ascii")
                return {
                    "t": "array",
                    "dtype": arr.dtype.str,
                    "shape": list(arr.shape),
                    "data": data,
                }
            name = self.file(".npy")
            with _open(_join(self.outdir, name), "wb") as fh:
                _save(fh, arr, allow_pickle=False)
            return {"t": "array", "file": name}
        raise TypeError(f"returned a {type(obj).__module__}.{type(obj).__qualname__}")


_SKIPSET_TYPES = ("Operation", "Layer", "Functional", "Sequential", "Optimizer", "Loss", "Metric")


def keras_skipsets_cached():
    """Make Keras's `.keras` saving and loading reuse its attribute skip-sets.

    Keras 3 (3.15 here) builds a reference object per saved or loaded object to know which
    attributes to skip, and means to cache the result, but stores it under the key
    `saving_attr_skipset_*` and looks it up under `saving_attr_skiplist_*`: the cache never
    hits, and that is about half of saving a small model (13 of 21 ms) and 10 ms of
    loading it. Storing Keras's own sets under the key it reads changes nothing else. A
    Keras that has fixed the key, or moved these names, is left alone.
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:
        return
    for kind in _SKIPSET_TYPES:
        read = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(read) is not None:
            continue
        try:
            skipset = saving_lib.get_attr_skipset(kind)
        except Exception:  # noqa: BLE001 - a Keras that no longer knows this kind
            continue
        if global_state.get_global_attribute(f"saving_attr_skipset_{kind}") is skipset:
            global_state.set_global_attribute(read, skipset)


def state_in_variables(model):
    """True when every layer of `model` (nested ones too) is a Keras layer of
    STATE_IN_VARIABLES: its config and its variables are all there is to it. A stateful
    RNN, a lookup table's vocabulary, a layer of the student's own are not."""
    try:
        layers = model._flatten_layers(include_self=True, recursive=True)
    except Exception:  # noqa: BLE001 - not the Keras this was written for
        return False
    return all(
        type(layer).__module__.startswith("keras.")
        and type(layer).__name__ in STATE_IN_VARIABLES
        and not getattr(layer, "stateful", False)
        for layer in layers
    )


def object_sharing_scope():
    """Keras's scope that numbers objects shared between layers while (de)serializing, as
    its .keras saving and loading hold it; a Keras without it has nothing to number."""
    try:
        from keras.src.saving.serialization_lib import ObjectSharingScope
    except ImportError:
        return _contextlib.nullcontext()
    return ObjectSharingScope()


def _config_json(model):
    """The model's config as a .keras file's config.json holds it."""
    import keras

    with object_sharing_scope():
        return _json_dumps(keras.saving.serialize_keras_object(model))


def save_model(model, path, weights=True):
    """Write `model` at `path`: the plain form when it can travel so, else a .keras file.

    With `weights` False the plain form holds config.json alone (the weights are a fresh
    draw no check reads); a model that cannot travel plain still goes as a .keras file.
    """
    plain = None
    if state_in_variables(model):
        try:
            config, arrays = _config_json(model), list(model.get_weights()) if weights else []
            if all(_isinstance(w, _ndarray) and w.dtype.kind in "biuf" for w in arrays):
                plain = config, arrays
        except Exception:  # noqa: BLE001 - then Keras's own save says what is wrong
            plain = None
    if plain is None:
        keras_skipsets_cached()
        model.save(path)
        return
    with _ZipFile(path, "w", _STORED) as archive:
        archive.writestr(PLAIN_CONFIG, plain[0])
        if weights:
            buffer = _io.BytesIO()
            _savez(buffer, **{f"w{i}": w for i, w in enumerate(plain[1])})
            archive.writestr(PLAIN_WEIGHTS, buffer.getvalue())


def npy_header(fh):
    """(shape, fortran_order, dtype) of the .npy file at `fh`, its magic read first; the
    data is not read. For readers that must check the header before trusting it."""
    version = _np.lib.format.read_magic(fh)
    if version == (1, 0):
        return _np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return _np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f"unsupported .npy version {version}")


def _is_keras_model(obj):
    for klass in type(obj).__mro__:
        if klass.__module__.startswith("keras") and klass.__name__ in ("Model", "Functional"):
            return True
    return False


def decode(spec, indir):
    """Arguments from the grader (trusted input)."""
    t = spec["t"]
    if t == "none":
        return None
    if t in ("bool", "int", "str"):
        return spec["v"]
    if t == "float":
        return float(spec["v"])
    if t in ("tuple", "list"):
        items = [decode(v, indir) for v in spec["items"]]
        return tuple(items) if t == "tuple" else items
    if t == "dict":
        return {k: decode(v, indir) for k, v in spec["items"]}
    if t == "array":
        if "data" in spec:
            flat = _np.frombuffer(_a2b_base64(spec["data"]), dtype=spec["dtype"])
            return flat.reshape(spec["shape"]).copy()  # writable, as np.load's are
        return _load(_join(indir, spec["file"]), allow_pickle=False)
    raise ValueError(f"unknown argument type {t}")


def _build_conv_model(spec):
    """A Sequential model with given Conv2D weights, for functions that take a model.

    `spec["kernel"]` is the first Conv2D's kernel; optional `spec["before"]` lists
    weightless layers put in front of it (`{"class_name", "config"}`, a class of
    `keras.layers`), and `spec["after"]` the kernels of further Conv2D layers, so a
    check can hand in a model whose first Conv2D is not `model.layers[0]` and not the
    only one. Biases are zero.
    """
    import keras

    kernels = [spec["kernel"], *spec.get("after", [])]
    layers = [keras.Input(shape=tuple(spec["input_shape"]))]
    for layer in spec.get("before", []):
        layers.append(getattr(keras.layers, layer["class_name"])(**layer["config"]))
    # Zeros, then the kernel: a random draw only to be overwritten costs a quarter of a build.
    convs = [
        keras.layers.Conv2D(
            k.shape[-1],
            k.shape[:2],
            name="conv" if i == 0 else f"conv_{i + 1}",
            kernel_initializer="zeros",
        )
        for i, k in enumerate(kernels)
    ]
    model = keras.Sequential(layers + convs)
    for conv, k in zip(convs, kernels, strict=True):
        conv.kernel.assign(k.astype("float32"))
    return model


def encode(obj, outdir, weights=True):
    return _Encoder(outdir, weights=weights)(obj)


def _write_json(path, data):
    tmp = path + ".tmp"
    with _open(tmp, "w") as fh:
        fh.write(_json_dumps(data))  # json.dump would encode in Python, 4x slower
    _replace(tmp, path)


def serve_call(calldir, namespace):
    """Answer one request in `calldir`; called by the grader through execute()."""
    with _open(_join(calldir, "request.json")) as fh:
        request = _json_load(fh)
    response = None
    if request.get("weights") is False and request.get("model") is None:
        response = _fresh_draw_call(request, calldir, namespace)
    if response is None:
        response = _call(request, calldir, namespace)
    _write_json(_join(calldir, "response.json"), response)


def _call(request, calldir, namespace):
    """The response to `request`: the call's result as plain data, or what went wrong."""
    name = request["function"]
    try:
        fn = namespace.get(name)
        if fn is None or not callable(fn):
            raise NameError(f"the notebook defines no function named {name!r}")
        args = decode(request["args"], calldir)
        kwargs = decode(request["kwargs"], calldir)
        if request.get("model") is not None:
            args = (_build_conv_model(decode(request["model"], calldir)), *args)
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - any failure is reported as data
        tb = _traceback.extract_tb(exc.__traceback__)[1:]
        where = [f"line {f.lineno} in {f.name}" for f in tb][-3:]
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000], "where": where}
    try:
        spec = encode(result, calldir, request.get("weights") is not False)
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "error": f"{name} {exc}"[:2000], "where": [], "bad_type": True}
    return {"ok": True, "result": spec}


def _fresh_draw_call(request, calldir, namespace):
    """`_call` with the Keras variables it creates left unmade; None: make the call again.

    A model a function builds for `call_model` travels as its config alone (its weights
    are a draw no check reads), yet making its variables (a TensorFlow variable each,
    and a random draw for it) is a third of a build. Keras can leave a variable unmade
    (`_deferred_initialize`; reading one gives a fresh draw of its initializer), so the
    call runs with every variable made through an initializer left so. A variable made
    from a plain value (an optimizer's step count and learning rate, made by `compile`)
    holds that value as a constant tensor meanwhile: it reads the same, and writing to
    it fails. Whatever survives the call (a global seed generator, a model the notebook
    keeps) is made once it is over, so the notebook's state is as a plain call leaves
    it. A call that writes to a variable left unmade or holding a constant is made again,
    plainly, even if it caught the error (what it wrote could reach its model's config);
    so is one that fails after leaving a variable unmade.
    """
    variable = _keras_variable_class()
    if variable is None:
        return None
    unmade, held = [], []

    def defer(self, initializer):
        self._value, self._initializer = None, initializer
        unmade.append(_weakref(self))

    own = {name: variable.__dict__.get(name) for name in _DEFERRED}
    make_value = own["_initialize"] or variable._initialize

    def hold(self, value):
        dtype = getattr(getattr(value, "dtype", None), "name", None)
        if callable(value) or dtype != self._dtype or not hasattr(value, "shape"):
            make_value(self, value)  # a tf.Variable, or a value of another dtype
            return
        self._value = value
        held.append((_weakref(self), value))

    wrote = []
    assign = own["_direct_assign"] or variable._direct_assign

    def write(self, value):
        if self._value is None or not hasattr(self._value, "assign"):
            wrote.append(True)
            raise RuntimeError("a variable left unmade for this call was written to")
        return assign(self, value)

    replaced = {"_initialize_with_initializer": defer, "_initialize": hold, "_direct_assign": write}
    for name, method in replaced.items():
        setattr(variable, name, method)
    try:
        response = _call(request, calldir, namespace)
    finally:
        for name, method in own.items():
            if method is None:
                delattr(variable, name)
            else:
                setattr(variable, name, method)
        _make_survivors(unmade, held, make_value)
    if wrote or (not response["ok"] and (unmade or held)):
        return None  # made again, plainly
    return response


# What `_fresh_draw_call` replaces on Keras's Variable while a call runs.
_DEFERRED = ("_initialize_with_initializer", "_initialize", "_direct_assign")


def _keras_variable_class():
    """The active backend's Keras Variable, if Keras is loaded and can defer variables."""
    if "keras" not in _modules:
        return None  # no Keras model can come back: nothing to defer
    try:
        from keras.src import backend

        variable = backend.Variable
        if all(
            callable(getattr(variable, name, None)) for name in (*_DEFERRED, "_deferred_initialize")
        ):
            return variable
    except Exception:  # noqa: BLE001 - another Keras: the call is simply made plainly
        pass
    return None


def _make_survivors(unmade, held=(), make_value=None):
    """Make every variable left unmade, or holding a constant, that outlived the call
    (`_fresh_draw_call`)."""
    if not unmade and not held:
        return
    _gc_collect(1)  # the call's own objects are young: the model it returned goes here
    for ref in unmade:
        var = ref()
        if var is not None and var._value is None:
            try:
                var._deferred_initialize()
            except Exception:  # noqa: BLE001 - as a plain call would have left it, or near
                pass
    for ref, value in held:
        var = ref()
        if var is not None and var._value is value:
            try:
                make_value(var, value)
            except Exception:  # noqa: BLE001 - as above
                pass


def serve_has(calldir, name, namespace):
    """Whether the notebook defines a callable `name` (a plain bool, as a response)."""
    found = callable(namespace.get(name))
    _write_json(_join(calldir, "response.json"), {"ok": True, "result": {"t": "bool", "v": found}})


def serve_loop(path, namespace):
    """Serve the grader's requests over the Unix socket at `path` until it closes it.

    One execute serves many requests: a request costs a line on a socket instead of a
    Jupyter execute round trip (IPython's cell machinery on this side, the protocol on
    both). Each line is a JSON request for `serve_request`, numbered `n`; the reply is
    that number once the request's response.json is written. The reply is only a
    signal: what the grader reads is the response, untrusted as always.
    """
    conn = _CSocket(_AF_UNIX, _SOCK_STREAM)
    conn.connect(path)
    buffer = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = _json_loads(line)
                serve_request(request, namespace)
                conn.sendall(b"%d\n" % request["n"])
    finally:
        conn.close()


def serve_request(request, namespace):
    """Answer one request: call a function, say whether it exists, or ask the model host."""
    op = request["op"]
    if op == "call":
        serve_call(request["dir"], namespace)
    elif op == "has":
        serve_has(request["dir"], request["name"], namespace)
    elif op == "models":
        _modules[HOST_MODULE].serve(request["dir"])
    else:
        raise ValueError(f"unknown request {op!r}")
