"""How large a saved Keras model declares itself, from its config alone.

Threat: Keras allocates and initialises every weight a config declares as soon as it
builds the model (a layer's `build_config` is built during loading), so a rewritten
`config.json` can ask for gigabytes. This module reads the config as plain JSON and
adds up the parameters (and the largest activation per sample) that the common
layers would allocate, without creating any Keras object. A model over the limits
is refused with a message naming the layer; layers it does not know are listed and
left to the capped model host (`autograder.model_host`), whose memory cap is the
backstop. It never needs to be exact, only never to under-count what it knows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autograder.exceptions import UnsafeModel

Shape = tuple[int | None, ...]

CONV = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3}
CONV_T = {"Conv1DTranspose": 1, "Conv2DTranspose": 2, "Conv3DTranspose": 3}
SEPARABLE = {"SeparableConv1D": 1, "SeparableConv2D": 2}
DEPTHWISE = {"DepthwiseConv1D": 1, "DepthwiseConv2D": 2}
POOL = {f"{kind}Pooling{n}D": n for kind in ("Max", "Average") for n in (1, 2, 3)} | {
    f"{kind}Pool{n}D": n for kind in ("Max", "Avg") for n in (1, 2, 3)
}
GLOBAL_POOL = {f"Global{kind}Pooling{n}D": n for kind in ("Max", "Average") for n in (1, 2, 3)} | {
    f"Global{kind}Pool{n}D": n for kind in ("Max", "Avg") for n in (1, 2, 3)
}
SAME_SHAPE = {
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax",
    "Rescaling", "Identity", "ActivityRegularization", "Masking", "RandomFlip", "RandomRotation",
    "RandomTranslation", "RandomZoom", "RandomContrast", "RandomBrightness", "UnitNormalization",
}  # fmt: skip
MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
MODELS = {"Sequential", "Functional", "Model"}


@dataclass(frozen=True)
class DeclaredSize:
    params: int  # parameters of the layers it could size (a lower bound when `unknown`)
    activation: int  # largest output of one layer, elements per sample
    largest: str  # the layer with the most parameters, in words
    unknown: tuple[str, ...]  # layer classes it cannot size


def check_declared_size(config: dict[str, Any], max_params: int, max_activation: int) -> None:
    """Raise UnsafeModel when the config declares more than the grader will build."""
    size = declared_size(config)
    if size.params > max_params:
        raise UnsafeModel(
            f"the model declares {size.params:,} parameters ({size.largest}); the grader builds "
            f"models of at most {max_params:,}. Use fewer filters or a smaller Dense layer"
        )
    if size.activation > max_activation:
        raise UnsafeModel(
            f"one layer of the model outputs {size.activation:,} values per image; the grader "
            f"builds models whose layers output at most {max_activation:,}"
        )


def declared_size(config: dict[str, Any]) -> DeclaredSize:
    sizer = _Sizer()
    sizer.model(config, None, depth=0)
    largest = f"layer {sizer.largest[1]!r}: {sizer.largest[0]:,}" if sizer.largest[1] else "none"
    return DeclaredSize(sizer.params, sizer.activation, largest, tuple(sorted(sizer.unknown)))


class _Sizer:
    def __init__(self) -> None:
        self.params = 0
        self.activation = 0
        self.largest: tuple[int, str] = (0, "")
        self.unknown: set[str] = set()

    # -- containers ----------------------------------------------------------------------
    def model(self, node: Any, shape: Shape | None, depth: int) -> Shape | None:
        if depth > 8 or not isinstance(node, dict):
            return None
        config = _dict(node.get("config"))
        layers = config.get("layers")
        layers = layers if isinstance(layers, list) else []
        if node.get("class_name") == "Sequential":
            shape = _shape(config.get("build_input_shape")) or shape
            for layer in layers:
                shape = self.layer(layer, shape, depth)
            return shape
        out = None  # Functional: every layer's inputs are recorded with their shapes
        for layer in layers:
            inputs = _inbound_shapes(
                layer.get("inbound_nodes") if isinstance(layer, dict) else None
            )
            out = self.layer(layer, inputs[0] if len(inputs) == 1 else inputs or None, depth)
        return out

    def layer(self, node: Any, shape: Any, depth: int) -> Shape | None:
        if not isinstance(node, dict):
            return None
        cls = node.get("class_name")
        config = _dict(node.get("config"))
        name = str(config.get("name") or node.get("name") or cls)[:60]
        if cls in MODELS:
            return self.model(node, shape if not isinstance(shape, list) else None, depth + 1)
        built = node.get("build_config")
        declared = _shape(built.get("input_shape")) if isinstance(built, dict) else None
        shapes = [s for s in (shape if isinstance(shape, list) else [shape]) if s]
        # Keras builds a layer from its build_config while loading, then calls it on the
        # graph's tensors: size it on both and count the larger.
        candidates = list(dict.fromkeys(s for s in (shapes[:1] + [declared]) if s)) or [None]
        counted: list[int] = []
        out = None
        for candidate in candidates:
            params, out_shape = _size(str(cls), config, candidate, shapes)
            if params is None:
                self.unknown.add(str(cls)[:60])
                continue
            counted.append(params)
            out = out if out is not None else out_shape
        if counted:
            self.count(max(counted), name)
        if out is not None:
            self.activation = max(self.activation, _per_sample(out))
        return out

    def count(self, params: int, name: str) -> None:
        self.params += params
        if params > self.largest[0]:
            self.largest = (params, name)


# -- per-layer rules ---------------------------------------------------------------------


def _size(cls: str, c: dict[str, Any], shape: Shape | None, inputs: list) -> tuple:
    """(parameters, output shape) of one layer on `shape`; (None, None) when unknown."""
    if cls == "InputLayer":
        out = _shape(c.get("batch_shape")) or _batched(_shape(c.get("shape")))
        return 0, out
    if cls in SAME_SHAPE:
        return 0, shape
    if cls in MERGE:
        return 0, shape
    if shape is None:
        # Only the weight-free layers can be sized without knowing their input.
        return (None, None) if cls not in ("Flatten", "Reshape") else (0, None)
    channels_last = c.get("data_format", "channels_last") != "channels_first"
    cin = shape[-1] if channels_last else (shape[1] if len(shape) > 1 else None)
    cin = cin or 1
    bias = 1 if c.get("use_bias", True) else 0
    if cls == "Dense":
        units = _int(c.get("units"))
        return (shape[-1] or 1) * units + bias * units, (*shape[:-1], units)
    if cls == "EinsumDense":
        return None, None
    if cls in CONV or cls in CONV_T:
        n = CONV.get(cls) or CONV_T[cls]
        filters, kernel = _int(c.get("filters")), _tuple(c.get("kernel_size"), n)
        groups = max(_int(c.get("groups", 1)), 1)
        params = math.prod(kernel) * (cin // groups or 1) * filters + bias * filters
        return params, _conv_out(shape, c, n, filters, channels_last, transpose=cls in CONV_T)
    if cls in SEPARABLE:
        n = SEPARABLE[cls]
        filters, kernel = _int(c.get("filters")), _tuple(c.get("kernel_size"), n)
        mult = _int(c.get("depth_multiplier", 1))
        params = math.prod(kernel) * cin * mult + cin * mult * filters + bias * filters
        return params, _conv_out(shape, c, n, filters, channels_last)
    if cls in DEPTHWISE:
        n = DEPTHWISE[cls]
        kernel, mult = _tuple(c.get("kernel_size"), n), _int(c.get("depth_multiplier", 1))
        params = math.prod(kernel) * cin * mult + bias * cin * mult
        return params, _conv_out(shape, c, n, cin * mult, channels_last)
    if cls in POOL:
        n = POOL[cls]
        c = {
            **c,
            "kernel_size": c.get("pool_size", 2),
            "strides": c.get("strides") or c.get("pool_size", 2),
        }
        return 0, _conv_out(shape, c, n, cin, channels_last)
    if cls in GLOBAL_POOL:
        keep = bool(c.get("keepdims", False))
        return 0, ((shape[0], *[1] * (len(shape) - 2), cin) if keep else (shape[0], cin))
    if cls == "Flatten":
        return 0, (shape[0], _per_sample(shape))
    if cls == "Reshape":
        return 0, _batched(_shape(c.get("target_shape")))
    if cls in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        return (4 if cls == "BatchNormalization" else 2) * (shape[-1] or 1), shape
    if cls == "Normalization":
        return 2 * (shape[-1] or 1) + 1, shape
    if cls == "PReLU":
        return _per_sample(shape), shape
    if cls == "Embedding":
        dim = _int(c.get("output_dim"))
        return _int(c.get("input_dim")) * dim, (*shape, dim)
    if cls in ("UpSampling1D", "UpSampling2D", "UpSampling3D"):
        n = int(cls[-2])
        size = _tuple(c.get("size", 2), n)
        return 0, _spatial(shape, channels_last, lambda i, d: d * size[i])
    if cls in ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"):
        n = int(cls[-2])
        pads = [sum(_tuple(p, 2)) for p in _pairs(c.get("padding", 1), n)]
        return 0, _spatial(shape, channels_last, lambda i, d: d + pads[i])
    if cls in ("Cropping1D", "Cropping2D", "Cropping3D"):
        n = int(cls[-2])
        crops = [sum(_tuple(p, 2)) for p in _pairs(c.get("cropping", 0), n)]
        return 0, _spatial(shape, channels_last, lambda i, d: max(d - crops[i], 0))
    if cls == "Concatenate":
        axis = _int(c.get("axis", -1), allow_negative=True)
        shapes = [s for s in inputs if s]
        try:
            total = sum(s[axis] or 0 for s in shapes)
            joined = list(shapes[0])
            joined[axis] = total
            return 0, tuple(joined)
        except (IndexError, TypeError):
            return 0, None
    if cls in ("SimpleRNN", "GRU", "LSTM"):
        units, gates = _int(c.get("units")), {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}[cls]
        params = gates * (units * ((shape[-1] or 1) + units) + units * (2 if cls == "GRU" else 1))
        seq = bool(c.get("return_sequences", False))
        return params, ((shape[0], shape[1], units) if seq else (shape[0], units))
    return None, None


def _conv_out(shape: Shape, c: dict, n: int, channels: int, last: bool, transpose: bool = False):
    kernel = _tuple(c.get("kernel_size"), n)
    strides = _tuple(c.get("strides", 1), n)
    dilation = _tuple(c.get("dilation_rate", 1), n)
    same = str(c.get("padding", "valid")).lower() == "same"

    def size(i: int, d: int) -> int:
        k = dilation[i] * (kernel[i] - 1) + 1
        if transpose:
            return d * strides[i] if same else d * strides[i] + max(k - strides[i], 0)
        return -(-d // strides[i]) if same else max((d - k) // strides[i] + 1, 0)

    out = _spatial(shape, last, size)
    if out is None:
        return None
    return (*out[:-1], channels) if last else (out[0], channels, *out[2:])


def _spatial(shape: Shape, last: bool, fn) -> Shape | None:
    axes = range(1, len(shape) - 1) if last else range(2, len(shape))
    out = list(shape)
    for i, axis in enumerate(axes):
        if out[axis] is not None:
            out[axis] = fn(i, out[axis])
    return tuple(out)


def _inbound_shapes(nodes: Any) -> list[Shape]:
    """Shapes of the tensors a Functional layer is called on (Keras 3 records them)."""
    found: list[Shape] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 12 or len(found) > 64:
            return
        if isinstance(node, dict):
            if node.get("class_name") == "__keras_tensor__" and isinstance(
                node.get("config"), dict
            ):
                shape = _shape(node["config"].get("shape"))
                if shape:
                    found.append(shape)
                return
            for value in node.values():
                walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    walk(nodes, 0)
    return found


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _shape(value: Any) -> Shape | None:
    if not isinstance(value, (list, tuple)) or not 0 < len(value) <= 16:
        return None
    if not all(v is None or (type(v) is int and v >= 0) for v in value):
        return None
    return tuple(value)


def _batched(shape: Shape | None) -> Shape | None:
    return None if shape is None else (None, *shape)


def _per_sample(shape: Shape) -> int:
    return math.prod(d or 1 for d in shape[1:])


def _int(value: Any, allow_negative: bool = False) -> int:
    if type(value) is int and (allow_negative or value >= 0):
        return value
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    raise UnsafeModel(f"the model's config has a malformed size ({str(value)[:40]!r})")


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)) and len(value) == n:
        return tuple(_int(v) for v in value)
    return (_int(value),) * n


def _pairs(value: Any, n: int) -> list:
    if isinstance(value, (list, tuple)) and len(value) == n:
        return list(value)
    return [value] * n
