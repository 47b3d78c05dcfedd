"""Helpers for check authors who inspect a student's Keras model (`StudentModel`).

A model reaches the checks as plain data (`autograder.model_host.StudentModel`: layer
classes, configs, inbound layers, output shapes) and runs only in the capped model
host (`model.predict`). These helpers read that data; none imports Keras or trusts an
object the student built. The messages they fail with are written for the student.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from autograder.checks import expect, fail
from autograder.exceptions import AutograderError


def dims(shape: Any) -> str:
    """(7, 5, 3) -> '7x5x3'."""
    return "x".join(str(int(d)) for d in shape)


def all_layers(model: Any) -> list:
    """Every layer, nested models' layers included (the host lists them in order)."""
    return list(model.layers)


def count_conv2d(model: Any) -> int:
    return sum(layer.class_name == "Conv2D" for layer in all_layers(model))


def conv2d_depth(model: Any) -> int:
    """The most Conv2D layers on one path from the input to the output.

    Counts only convolutions applied one after another: a Conv2D on a parallel branch
    (merged with Add or Concatenate) makes the model wider, not deeper. Paths follow
    each layer's inbound layers; a nested model counts as its own deepest path; a layer
    whose inputs are unknown (the model host could not say) follows the layer before it.
    """
    layers = list(model.layers)
    depth: dict[str, int] = {}
    for i, layer in enumerate(layers):
        if "/" in layer.path:
            continue  # inside a nested model: counted through that model below
        inner = [lyr for lyr in layers if lyr.path.startswith(layer.path + "/")]
        if inner:
            own = _inner_depth(inner, layer.path + "/")
        else:
            own = int(layer.class_name == "Conv2D")
        parents = layer.inbound if layer.inbound else ()
        if not parents and i > 0 and not any(lyr.inbound for lyr in layers):
            parents = (_previous_top(layers, i),)
        depth[layer.name] = own + max((depth.get(p, 0) for p in parents), default=0)
    return max(depth.values(), default=0)


def _previous_top(layers: list, i: int) -> str:
    for layer in reversed(layers[:i]):
        if "/" not in layer.path:
            return layer.name
    return ""


def _inner_depth(inner: list, prefix: str) -> int:
    """conv2d_depth of a nested model, from its layers (paths relative to `prefix`)."""
    relative = [
        SimpleNamespace(
            name=lyr.name,
            path=lyr.path[len(prefix) :],
            class_name=lyr.class_name,
            inbound=lyr.inbound,
        )
        for lyr in inner
    ]
    return conv2d_depth(SimpleNamespace(layers=relative))


def count_pooling(model: Any) -> int:
    return sum("Pool" in layer.class_name for layer in all_layers(model))


def input_shape_of(model: Any) -> tuple | None:
    """The declared input shape without the batch axis, or None if not declared."""
    shape = model.input_shape
    return None if shape is None else tuple(shape[1:])


def forward(model: Any, x: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Run the model on x in the model host; (array, None) or (None, error text)."""
    try:
        return np.asarray(model.predict(x), dtype=np.float64), None
    except AutograderError as exc:
        text = str(exc).removeprefix("running the model raised ")
        return None, text[:300]


def check_classifier(
    model: Any,
    input_shape: tuple,
    num_classes: int,
    rng: np.random.Generator,
    what: str,
    softmax: bool,
) -> None:
    """The model takes `input_shape` images and outputs `num_classes` (softmax) values."""
    declared = input_shape_of(model)
    expect(
        declared is None or declared == tuple(input_shape),
        f"{what}: the model's input shape is {declared}, expected {tuple(input_shape)}",
    )
    x = rng.random((3, *input_shape)).astype(np.float32)
    y, error = forward(model, x)
    if y is None:
        fail(f"{what}: the model fails on a batch of 3 {dims(input_shape)} images ({error})")
        return
    expect(
        y.shape == (3, num_classes),
        f"{what}: on a batch of 3 {dims(input_shape)} images the output has shape {y.shape}, "
        f"expected {(3, num_classes)}",
    )
    expect(bool(np.all(np.isfinite(y))), f"{what}: the output contains NaN or infinity")
    if not softmax:
        return
    sums = y.sum(axis=1)
    expect(
        bool(np.all(y >= -1e-6) and np.allclose(sums, 1.0, atol=1e-3)),
        f"{what}: the outputs for random images are not probabilities (each row sums to "
        f"{np.round(sums, 3).tolist()}); the last layer needs a softmax activation",
    )


def _names(node: Any) -> list[str]:
    """Names in a Keras compile_config entry: "adam", {"class_name": "Adam"}, a Keras
    function saved by name ({"class_name": "function", "config": "sparse_categorical_..."}),
    lists of them."""
    if isinstance(node, str):
        return [node.lower().replace("_", "")]
    if isinstance(node, dict):
        name = node.get("class_name", "")
        if name == "function" and isinstance(node.get("config"), str):
            name = node["config"]
        found = [str(name).lower().replace("_", "")]
        return found + [n for v in node.values() if isinstance(v, (list, dict)) for n in _names(v)]
    if isinstance(node, (list, tuple)):
        return [n for v in node for n in _names(v)]
    return []


def compile_problem(model: Any, what: str) -> str | None:
    """Why the model is not compiled as the notebook asks (adam, sparse CE, accuracy), or None."""
    config = model.compile_config or {}
    if not config:
        return f"{what}: the model is not compiled; call model.compile(...) before returning it"
    problems = []
    if "adam" not in _names(config.get("optimizer")):
        problems.append('optimizer="adam"')
    loss = config.get("loss")
    options = loss.get("config") if isinstance(loss, dict) else None
    if "sparsecategoricalcrossentropy" not in _names(loss) or (
        isinstance(options, dict) and options.get("from_logits")
    ):
        problems.append('loss="sparse_categorical_crossentropy" (on probabilities)')
    metrics = set(_names(config.get("metrics")))
    if not metrics & {"accuracy", "acc", "sparsecategoricalaccuracy"}:
        problems.append('metrics=["accuracy"]')
    if problems:
        return f"{what}: compile the model with " + ", ".join(problems)
    return None
