"""Code that runs INSIDE the model host: a fresh, capped kernel that builds student models.

No student code ever runs in this kernel (it is never the student's). The grader
hands it archives it has already vetted from their config (`autograder.modelspec`):
`.keras` files, or the bridge's plain form (config.json and weights.npz, or config.json
alone for a fresh draw whose weights no check reads; see `kernel_side.save_model`). This
side builds each one with `safe_mode=True`, keeps it by key, and answers two requests:
`describe` (the structure as plain data) and `predict` (outputs on the grader's
inputs). Answers travel back through the bridge's encoder (JSON + .npy), to be
decoded with limits by `autograder.model_host`. The host's memory cap, not the
grader's, pays for whatever a model declares.

Like `kernel_side`, its source text is sent into the kernel, so it imports only the
standard library, numpy and keras, and finds the bridge's encoder as a module the
kernel already has (or `autograder.kernel_side`, when used in-process).
"""

import contextlib
import io
import json
import math
import os
import sys
import threading
import zipfile

MODELS: dict = {}  # key -> a loaded keras model
# Keys whose model was built when last described: a forward call cannot change those.
DESCRIBED_BUILT: set = set()
BIG_MODELS = 2_000_000  # parameters, all models of a submission: then reset collects fully

# Models kept built between requests, by their config, to take another archive's weights:
# building from the config is two thirds of loading a small CNN, and a class's models
# repeat (the same function called with the same arguments). The config is the grader's
# `modelspec.config_digest`, blind to the names Keras numbers per kernel (`conv2d_7`): a
# kept model is renamed after the archive it serves, so what it says (its description,
# its errors) names that archive's layers. Only a model built when
# loaded, from an archive with nothing but config and weights, made of layers whose whole
# state is their variables (the bridge's `state_in_variables`), is kept: its structure is
# its config's, and loading weights replaces every variable it has (a count or a shape
# that differs is refused), so nothing of the archive it came from is left in it. A
# stateful RNN, for one, keeps its state outside its variables: it is never kept. The
# grader sends a digest only with a fresh draw (`call_model`), so no kept model holds
# weights a student handed in; an archive of config alone leaves a kept model's as they are.
IDLE: dict = {}  # config digest -> [(idle model, its names)]; least recently kept first
IDLE_PARAMS = 2_000_000  # parameters kept idle, all models together (8 MB of weights)
IDLE_MODELS = 8  # models kept idle: a submission's distinct models, with room
REUSABLE: dict = {}  # key -> (config digest, names) of its model, when it may be kept
WEIGHTS = "model.weights.h5"
PLAIN_ARCHIVE = sorted(["metadata.json", "config.json", WEIGHTS])  # a .keras file's
WEIGHTS_SLACK = 1 << 20  # bytes of HDF5 or npz structure beyond 8 bytes a parameter
MAX_CONFIG_BYTES = 8 << 20  # as the grader's modelspec, which vetted the config first


def _bridge():
    module = sys.modules.get("__autograder_bridge__")
    if module is None:
        from autograder import kernel_side as module
    return module


def _jsonable(value):
    try:
        return json.loads(json.dumps(value, default=lambda o: repr(o)[:200]))
    except (TypeError, ValueError, RecursionError):
        return {}


def _shape(get):
    try:
        shape = get()
    except Exception:  # noqa: BLE001 - an unbuilt layer has no shape yet
        return None
    if isinstance(shape, list):  # several inputs or outputs: the first one
        shape = shape[0] if shape else None
    if shape is None:
        return None
    try:
        return [None if d is None else int(d) for d in shape]
    except (TypeError, ValueError):
        return None


def _params(layer):
    if not getattr(layer, "built", False):
        return None
    try:
        return int(sum(math.prod(v.shape) for v in layer.weights))
    except Exception:  # noqa: BLE001
        return None


def _inbound(layer):
    """Names of the layers feeding `layer` (its inbound nodes' parents), in order.

    `get_config()` of a layer does not say where its inputs come from, so a check
    could not tell a chain of layers from parallel branches without this.
    """
    names = []
    try:
        for node in getattr(layer, "_inbound_nodes", []) or []:
            for parent in node.parent_nodes:
                name = parent.operation.name
                if isinstance(name, str) and name not in names:
                    names.append(name)
    except Exception:  # noqa: BLE001 - a layer without graph information has no inbound list
        return []
    return names[:64]


def _params_of(model):
    try:
        return int(model.count_params())
    except Exception:  # noqa: BLE001 - an unbuilt model holds no weights
        return 0


def describe(model):
    """The model as plain data: classes, configs, shapes, parameter counts and inbound layers."""
    layers = []

    def walk(container, prefix, depth):
        for layer in getattr(container, "layers", []) or []:
            path = prefix + layer.name
            try:
                config = _jsonable(layer.get_config())
            except Exception:  # noqa: BLE001
                config = {}
            layers.append(
                {
                    "name": layer.name,
                    "class_name": type(layer).__name__,
                    "path": path,
                    "config": config,
                    "output_shape": _shape(lambda layer=layer: layer.output.shape),
                    "params": _params(layer),
                    "inbound": _inbound(layer),
                }
            )
            if hasattr(layer, "layers") and depth < 8:
                walk(layer, path + "/", depth + 1)

    walk(model, "", 0)
    return {
        "class_name": type(model).__name__,
        "input_shape": _shape(lambda: model.input_shape),
        "output_shape": _shape(lambda: model.output_shape),
        "params": _params(model),
        "layers": layers,
    }


_LOADING = threading.Lock()  # the class is patched while loading: one load at a time
_KEEPING = threading.Lock()  # IDLE and REUSABLE, shared by the threads of a process


@contextlib.contextmanager
def _sequential_built_once():
    """While held, Keras's `Sequential.from_config` builds each Sequential once.

    It adds the layers one by one, and each `add` rebuilds the whole model: n layers are
    called n*(n-1)/2 times, 40 % of loading a 9-layer CNN. While held, `add` only
    appends; each Sequential is then built as its last `add` would have built it, and
    Keras's own rule for the saved `build_input_shape` applies after that. The model, its
    weights and its inbound layers are the same. A Keras this was not written for is
    left alone.
    """
    import keras

    sequential = keras.Sequential
    with _LOADING:
        add, from_config = sequential.add, sequential.__dict__.get("from_config")
        if not isinstance(from_config, classmethod):
            yield
            return

        def append(self, layer, rebuild=True):
            return add(self, layer, rebuild=False)

        def built_once(cls, config, custom_objects=None):
            shape = config.get("build_input_shape") if isinstance(config, dict) else None
            if shape is not None:
                config = {k: v for k, v in config.items() if k != "build_input_shape"}
            model = from_config.__func__(cls, config, custom_objects=custom_objects)
            if model.layers:
                model._maybe_rebuild()  # what the last `add` would have done
            if not model._functional and isinstance(shape, (tuple, list)) and shape:
                model.build(shape)  # Keras's own rule, after the adds
            return model

        sequential.add, sequential.from_config = append, classmethod(built_once)
        try:
            yield
        finally:
            sequential.add, sequential.from_config = add, from_config


def build_from_config(config):
    """A model built from a vetted config (a .keras file's config.json, parsed), as
    `keras.saving.load_model(..., safe_mode=True, compile=False)` builds it."""
    import keras

    config = {**config, "compile_config": None}
    with _sequential_built_once(), _bridge().object_sharing_scope():
        return keras.saving.deserialize_keras_object(config, safe_mode=True)


def load(path):
    """The model of the archive at `path`: a .keras file, loaded as
    `keras.saving.load_model(path, safe_mode=True, compile=False)` loads it, or the
    bridge's plain form (config.json, and weights.npz unless it is a fresh draw left
    behind), built from its config and given its weights, if any. Either way each
    Sequential is built once (`_sequential_built_once`)."""
    import keras

    bridge = _bridge()
    members = _members(path)
    if members in (_plain_form(), _config_only()):
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(bridge.PLAIN_CONFIG)
            if info.file_size > MAX_CONFIG_BYTES:
                raise ValueError("the model's config is too large")
            with archive.open(info) as member:
                config = json.loads(member.read(MAX_CONFIG_BYTES + 1))
        if not isinstance(config, dict):
            raise ValueError("the model's config is not a JSON object")
        model = build_from_config(config)
        if members == _plain_form():
            _arrays_into(model, path)
        return model
    bridge.keras_skipsets_cached()
    with _sequential_built_once():
        return keras.saving.load_model(path, safe_mode=True, compile=False)


def _described(key, model):
    """describe(model), remembering whether the model was built then."""
    DESCRIBED_BUILT.discard(key)
    description = describe(model)
    if getattr(model, "built", False):
        DESCRIBED_BUILT.add(key)
    return description


def _members(path):
    """The archive's member names, sorted; None when it is no zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sorted(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return None


def _plain_form():
    bridge = _bridge()
    return sorted([bridge.PLAIN_CONFIG, bridge.PLAIN_WEIGHTS])


def _config_only():
    """The plain form of a fresh draw, its weights left behind (`kernel_side.save_model`)."""
    return [_bridge().PLAIN_CONFIG]


def _plain(path):
    """True when the archive holds nothing but config and weights (no assets, no code)."""
    return _members(path) in (PLAIN_ARCHIVE, _plain_form(), _config_only())


def _renamed(model, names, new_names):
    """Give `model`'s layers (nested ones too) and the model itself the names of the
    archive it now serves: the n-th name of its own config becomes the n-th of that one."""
    pairs = dict(zip(names, new_names, strict=True))
    for layer in model._flatten_layers(include_self=True, recursive=True):
        name = getattr(layer, "name", None)
        if isinstance(name, str) and name in pairs:
            layer.name = pairs[name]
    return model


def _keepable(model):
    """True when every layer's whole state is its variables (the bridge's
    `state_in_variables`)."""
    return _bridge().state_in_variables(model)


def _bounded_member(path, name, model):
    """The bytes of member `name`, refused when larger than `model`'s parameters need."""
    limit = 8 * _params_of(model) + WEIGHTS_SLACK
    with zipfile.ZipFile(path) as archive:
        if archive.getinfo(name).file_size > limit:
            raise ValueError("the weights are larger than the model's parameters")
        with archive.open(name) as member:
            data = member.read(limit + 1)
    if len(data) > limit:
        raise ValueError("the weights are larger than the model's parameters")
    return data


def _weights_into(model, path):
    """Load the weights of the archive at `path` (either form) into `model`, or raise.

    Keras reads a `.keras` archive's weights for `load_weights` straight from the zip,
    without the size check its full load makes, and each seek backwards decompresses the
    member again. So the member is first bounded by what the model's parameters need and
    copied out as a file of its own. An archive of config alone has no weights to give:
    the model keeps the ones it has, as random as those left behind.
    """
    members = _members(path)
    if members == _config_only():
        return
    if members == _plain_form():
        _arrays_into(model, path)
        return
    data = _bounded_member(path, WEIGHTS, model)
    copy = f"{path}.kept.weights.h5"
    try:
        with open(copy, "wb") as fh:
            fh.write(data)
        model.load_weights(copy)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(copy)


def _arrays_into(model, path):
    """Give `model` the weights.npz of a plain-form archive: one array per variable, in
    `model.weights` order, each of that variable's shape (its header is read before its
    data, so a header declaring more than the variable holds costs nothing)."""
    import numpy as np

    variables = list(model.weights)
    data = _bounded_member(path, _bridge().PLAIN_WEIGHTS, model)
    names = [f"w{i}.npy" for i in range(len(variables))]
    values = []
    with zipfile.ZipFile(io.BytesIO(data)) as arrays:
        if sorted(arrays.namelist()) != sorted(names):
            raise ValueError(
                f"the weights hold {len(arrays.namelist())} arrays for the model's "
                f"{len(variables)} variables"
            )
        for name, variable in zip(names, variables, strict=True):
            with arrays.open(name) as fh:
                values.append(_array_of_shape(fh, tuple(variable.shape), np))
    model.set_weights(values)


def _array_of_shape(fh, shape, np):
    """The .npy array in `fh`, refused unless it holds plain numbers of `shape`."""
    got, fortran, dtype = _bridge().npy_header(fh)
    if tuple(got) != shape or dtype.kind not in "biuf" or dtype.fields or dtype.hasobject:
        raise ValueError(f"a weight of shape {tuple(got)[:8]} ({dtype}) where {shape} is expected")
    size = math.prod(shape) * dtype.itemsize
    raw = fh.read(size + 1)
    if len(raw) != size:
        raise ValueError(f"a weight of shape {shape} holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _load_kept(key, path, digest=None, names=()):
    """Load the archive at `path` as `key`, into a kept model of the same config if any.

    `digest` and `names` are the grader's `modelspec.config_identity` of the archive's
    config (None: never kept). Returns the description. When the archive's weights do
    not fit the kept model, the model is dropped (it may hold part of them) and the
    archive is loaded in full, so the student sees Keras's own verdict on it.
    """
    names = [str(n) for n in names or ()]
    digest = str(digest) if digest and _plain(path) else None
    model = None
    if digest:
        with _KEEPING:
            idle = IDLE.get(digest)
            if idle:
                model, kept_names = idle.pop()
                REUSABLE[key] = (digest, names)
                if not idle:
                    del IDLE[digest]
    if model is not None:
        try:
            if len(kept_names) != len(names):
                raise ValueError("the names do not pair up")
            _weights_into(model, path)
        except Exception:  # noqa: BLE001 - loaded in full below, with its own error
            with _KEEPING:
                REUSABLE.pop(key, None)
        else:
            MODELS[key] = _renamed(model, kept_names, names)
            return _described(key, model)
    model = load(path)
    MODELS[key] = model
    description = _described(key, model)
    if digest and key in DESCRIBED_BUILT and _keepable(model):
        with _KEEPING:
            REUSABLE[key] = (digest, names)
    return description


def release(key):
    """Forget `key`, keeping its model for a later archive of the same config when it may.

    Past the caps, the models of the digests kept longest ago go first.
    """
    model = MODELS.pop(key, None)
    DESCRIBED_BUILT.discard(key)
    with _KEEPING:
        reusable = REUSABLE.pop(key, None)
        if model is not None and reusable is not None and _params_of(model) <= IDLE_PARAMS:
            digest, names = reusable
            IDLE[digest] = [*IDLE.pop(digest, []), (model, names)]
            while True:
                kept = [m for models in IDLE.values() for m, _ in models]
                if len(kept) <= IDLE_MODELS and sum(map(_params_of, kept)) <= IDLE_PARAMS:
                    break
                oldest = next(iter(IDLE))
                IDLE[oldest].pop(0)
                if not IDLE[oldest]:
                    del IDLE[oldest]


def _respond(calldir, payload=None, error=None):
    bridge = _bridge()
    path = bridge._join(calldir, "response.json")
    if error is not None:
        bridge._write_json(path, {"ok": False, "error": error[:2000], "where": []})
        return
    bridge._write_json(path, {"ok": True, "result": bridge.encode(payload, calldir)})


def serve(calldir):
    """Answer the grader's request in `calldir` (request.json: op, key, ...)."""
    import numpy as np

    with open(f"{calldir}/request.json") as fh:
        request = json.load(fh)
    op, key = request.get("op"), str(request.get("key"))
    try:
        if op == "load":
            release(key)  # a key loaded again (a restarted host's request) starts afresh
            path = f"{calldir}/{request['file']}"
            _respond(calldir, _load_kept(key, path, request.get("digest"), request.get("names")))
        elif op == "predict":
            model = MODELS[key]
            # A model described once built keeps that description; one that builds itself
            # on its first input changes, so it is described again until it is built.
            known = key in DESCRIBED_BUILT
            x = np.load(f"{calldir}/{request['x']}", allow_pickle=False)
            batch = int(request.get("batch_size", 256))
            outputs = []
            for i in range(0, len(x), batch):
                y = model(x[i : i + batch], training=False)
                if isinstance(y, (list, tuple, dict)):
                    raise ValueError(f"the model returns {len(y)} outputs instead of one")
                outputs.append(np.asarray(y))
            y = np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)
            _respond(calldir, {"y": y, "model": None if known else _described(key, model)})
        elif op == "drop":
            release(key)
            _respond(calldir, None)
        elif op == "reset":  # the submission is graded: forget its models before the next
            import gc

            # A full collection costs ~0.2 s with TensorFlow loaded: only worth it when the
            # models were big; the cycles of small ones go with Python's own collections.
            size = sum(_params_of(model) for model in MODELS.values())
            for kept in list(MODELS):
                release(kept)
            gc.collect(2 if size > BIG_MODELS else 1)
            _respond(calldir, None)
        else:
            _respond(calldir, error=f"unknown request {op!r}")
    except Exception as exc:  # noqa: BLE001 - every failure goes back as data
        _respond(calldir, error=f"{type(exc).__name__}: {str(exc)[:1500]}")
