"""Shared pieces of the cnn-intro checks, written independently of the notebook.

Synthetic inputs shaped like each data set, what a `build_cnn` call must produce (layer
by layer, from its arguments alone), and readers of a model's plain-data layers
(`autograder.model_host.StudentModel`). Nothing here imports TensorFlow or is sent into
a student's kernel.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import expect

# The arguments of build_cnn and their defaults, as the notebook states them.
BUILD_CNN_DEFAULTS = {
    "input_shape": (28, 28, 1),
    "num_classes": 10,
    "filters": (16, 32),
    "kernel_size": 3,
    "strides": 1,
    "padding": "valid",
    "dilation_rate": 1,
    "pooling": "max",
    "dense_units": 64,
}
POOLING_CLASS = {"max": "MaxPooling2D", "avg": "AveragePooling2D", None: None}

# The shapes `load_data` returns: (images, labels) per data set.
DATASET_SHAPES = {
    "mnist": ((28, 28), ()),
    "fashion_mnist": ((28, 28), ()),
    "cifar10": ((32, 32, 3), (1,)),
}


def pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def describe(call: dict) -> str:
    """{'filters': (8, 16)} -> 'build_cnn(filters=(8, 16))'."""
    args = ", ".join(f"{k}={v!r}" for k, v in call.items())
    return f"build_cnn({args})"


def layers_of(model, class_name: str) -> list:
    return [layer for layer in model.layers if layer.class_name == class_name]


def pooling_layers(model) -> list:
    return [layer for layer in model.layers if "Pooling" in layer.class_name]


# Layers that only apply an activation: `Conv2D(16, 3)` then `Activation("relu")` (or
# `ReLU()`) is the same network as `Conv2D(16, 3, activation="relu")`.


def activation_of(model, layer) -> str | None:
    """The activation applied to `layer`'s output: its own, or, when that is linear, the
    one of an activation layer that alone takes its output."""
    own = layer.config.get("activation")
    if own not in (None, "linear"):
        return own
    after = [other for other in model.layers if other.inbound == (layer.name,)]
    if not any(other.inbound for other in model.layers):  # no graph known: the next one
        index = list(model.layers).index(layer)
        after = list(model.layers[index + 1 : index + 2])
    if len(after) != 1:
        return own
    (next_layer,) = after
    config = next_layer.config
    if next_layer.class_name == "Activation" and isinstance(config.get("activation"), str):
        return config["activation"]
    if next_layer.class_name == "ReLU" and _plain_relu(config):
        return "relu"
    if next_layer.class_name == "Softmax":
        return "softmax"
    return own


def _plain_relu(config: dict) -> bool:
    """A ReLU layer's config that is max(x, 0): no cap, no leak, no threshold."""
    try:
        leak, threshold = (
            float(config.get("negative_slope") or 0),
            float(config.get("threshold") or 0),
        )
    except (TypeError, ValueError):
        return False
    return config.get("max_value") is None and leak == 0 and threshold == 0


def config_pair(layer, key: str):
    value = layer.config.get(key)
    return pair(value) if isinstance(value, (int, list, tuple)) else value


def expect_convs(model, call: dict) -> None:
    """Every Conv2D of `build_cnn(**call)` is configured as the arguments say, in order."""
    args = {**BUILD_CNN_DEFAULTS, **call}
    what = describe(call)
    convs = layers_of(model, "Conv2D")
    got = [int(c.config.get("filters", -1)) for c in convs]
    expect(
        got == [int(f) for f in args["filters"]],
        f"{what}: the Conv2D layers have {got} filters, expected {list(args['filters'])} "
        "(one Conv2D per entry of filters, in order)",
    )
    wanted = {
        "kernel_size": pair(args["kernel_size"]),
        "strides": pair(args["strides"]),
        "dilation_rate": pair(args["dilation_rate"]),
        "padding": args["padding"],
        "activation": "relu",
    }
    for key, value in wanted.items():
        if key == "activation":
            found = [activation_of(model, c) for c in convs]
        else:
            found = [config_pair(c, key) for c in convs]
        expect(
            all(v == value for v in found),
            f"{what}: the Conv2D layers have {key} {found}, expected {value!r} in each",
        )


def expect_pooling(model, call: dict) -> None:
    """One 2x2 pooling layer of the asked kind after each Conv2D (none for pooling=None)."""
    args = {**BUILD_CNN_DEFAULTS, **call}
    what = describe(call)
    pools = pooling_layers(model)
    kind = POOLING_CLASS[args["pooling"]]
    kinds = [p.class_name for p in pools]
    if kind is None:
        expect(not pools, f"{what}: expected no pooling layer, found {kinds}")
        return
    n = len(args["filters"])
    expect(
        kinds == [kind] * n,
        f"{what}: expected {n} {kind} layer(s), one after each Conv2D; found {kinds or 'none'}",
    )
    sizes = [config_pair(p, "pool_size") for p in pools]
    expect(all(s == (2, 2) for s in sizes), f"{what}: pool sizes {sizes}, expected (2, 2)")
    # `MaxPooling2D(2)` strides by its size and does not pad: a pooling that strides 1 (or
    # takes the convolutions' strides and padding) keeps the maps nearly as large.
    strides = [config_pair(p, "strides") for p in pools]
    expect(
        all(s in (None, (2, 2)) for s in strides),
        f"{what}: the pooling layers have strides {strides}, expected (2, 2) (their size)",
    )
    paddings = [p.config.get("padding", "valid") for p in pools]
    expect(
        all(str(pad).lower() == "valid" for pad in paddings),
        f"{what}: the pooling layers have padding {paddings}, expected 'valid' (the default)",
    )
    order = [layer.class_name for layer in model.layers if layer.class_name in ("Conv2D", kind)]
    expect(
        order == ["Conv2D", kind] * n,
        f"{what}: the layers go {order}; each Conv2D should be followed by its {kind}",
    )


def expect_dense(model, call: dict) -> None:
    """Flatten, then Dense(dense_units, relu) when dense_units > 0, then the softmax layer."""
    args = {**BUILD_CNN_DEFAULTS, **call}
    what = describe(call)
    dense = layers_of(model, "Dense")
    units = [int(d.config.get("units", -1)) for d in dense]
    want = ([int(args["dense_units"])] if args["dense_units"] else []) + [args["num_classes"]]
    expect(units == want, f"{what}: the Dense layers have {units} units, expected {want}")
    activations = [activation_of(model, d) for d in dense]
    expect(
        activations == ["relu"] * (len(want) - 1) + ["softmax"],
        f"{what}: Dense activations {activations}, expected relu for the hidden layer and "
        "softmax for the last",
    )
    # After Flatten each Dense outputs (batch, units); one before it runs on every pixel
    # of the feature maps and outputs (batch, H, W, units).
    shapes = [d.output_shape for d in dense]
    expect(
        all(shape is None or len(shape) == 2 for shape in shapes),
        f"{what}: the Dense layers output shapes {[tuple(s) if s else s for s in shapes]}; "
        "flatten the feature maps (Flatten()) before the first Dense layer",
    )


def synthetic(rng: np.random.Generator, name: str, n: int):
    """uint8 images and labels shaped as `load_data(name)` returns them."""
    image_shape, label_shape = DATASET_SHAPES[name]
    x = rng.integers(0, 256, size=(n, *image_shape), dtype=np.uint8)
    y = rng.integers(0, 10, size=(n, *label_shape)).astype(np.uint8)
    return x, y


def prepared_shape(name: str) -> tuple[int, int, int]:
    shape = DATASET_SHAPES[name][0]
    return (*shape, 1) if len(shape) == 2 else shape  # type: ignore[return-value]
