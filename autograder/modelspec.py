"""A student's Keras model as plain data, and the vetting of its saved config.

Threat: a `.keras` archive is student bytes. Its `config.json` can name arbitrary
classes (code) and declare layers of any size; Keras allocates and initialises the
declared weights the moment it builds the model, before anything looks at them. So
the grader's own process never builds a student model: it reads the config as JSON
(size-capped), refuses non-Keras classes and Lambda layers, estimates the declared
parameters from the config alone (`autograder.modelsize`), and hands the archive to
the capped model host (`autograder.model_host`), which returns a `ModelSpec`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

from autograder.exceptions import UnsafeModel

MAX_MODEL_BYTES = 64 << 20
MAX_CONFIG_BYTES = 8 << 20
MAX_CONFIG_DEPTH = 200
SAFE_MODULE_PREFIXES = ("keras.",)  # and "keras" itself; not keras_hub, kerasfoo, ...
# How Keras saves one of its own functions (`loss=keras.losses.sparse_categorical_crossentropy`):
# {"module": "builtins", "class_name": "function", "config": "<name>"}; Keras reads it back
# only as `keras.<losses|metrics|activations|...>.<name>`, never by importing anything.
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
FORBIDDEN_CLASSES = ("Lambda", "TFOpLambda")
# Layers a check may walk: the structure checks look at each layer's neighbours, so a
# model of 4,300 parallel branches cost 5 s of grader CPU in them.
MAX_LAYERS = 1000
# A `.keras` archive's central directory: Keras writes three entries (about 200 bytes).
# zipfile builds ~400 bytes of objects per entry before anything can be asked of it, so
# 1.4 million entries in a 62 MiB archive cost the grader 580 MB: the directory's size is
# read from the end record first.
MAX_ARCHIVE_DIRECTORY = 64 << 10
_END_RECORD, _ZIP64_LOCATOR = b"PK\x05\x06", b"PK\x06\x07"


def check_directory(archive: bytes) -> None:
    """Refuse a zip whose central directory is over MAX_ARCHIVE_DIRECTORY, or zip64 (a
    `.keras` archive never needs it), before zipfile reads that directory.

    The end record is found as zipfile finds it: at the very end, else the last one in
    the final 64 KiB (after a comment).
    """
    tail = len(archive) - 22
    if tail >= 0 and archive[tail : tail + 4] == _END_RECORD and archive[-2:] == b"\0\0":
        end = tail
    else:
        end = archive.rfind(_END_RECORD, max(0, tail - 0xFFFF))
    if end < 0 or len(archive) < end + 22:
        raise UnsafeModel("the saved model is not a valid .keras archive")
    if end >= 20 and archive[end - 20 : end - 16] == _ZIP64_LOCATOR:
        raise UnsafeModel("the saved model is a zip64 archive, which a .keras file never is")
    entries, size = struct.unpack_from("<HI", archive, end + 10)
    if size > MAX_ARCHIVE_DIRECTORY or entries == 0xFFFF:
        raise UnsafeModel(
            f"the saved model's archive lists {entries:,} files in {size:,} bytes; a .keras "
            "file holds a few (config, metadata, weights)"
        )


def read_config(archive: bytes) -> dict[str, Any]:
    """config.json of a .keras archive, read with size limits (never the weights)."""
    check_directory(archive)
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            info = zf.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise UnsafeModel(
                    f"the saved model's config is {info.file_size >> 20} MiB; the limit is "
                    f"{MAX_CONFIG_BYTES >> 20} MiB"
                )
            with zf.open(info) as fh:
                raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UnsafeModel("the saved model's config is larger than it declares")
        config = json.loads(raw)
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, EOFError, OSError):
        raise UnsafeModel("the saved model is not a valid .keras archive") from None
    if not isinstance(config, dict):
        raise UnsafeModel("the saved model's config is not a JSON object")
    return config


def vet_config(node: Any, depth: int = 0) -> None:
    """Refuse anything but Keras' own classes, and Lambda layers, before Keras reads the file."""
    if depth > MAX_CONFIG_DEPTH:
        raise UnsafeModel("the model's config is nested too deeply")
    if isinstance(node, dict):
        cls = node.get("class_name")
        module = node.get("module")
        registered = node.get("registered_name")
        if cls in FORBIDDEN_CLASSES:
            raise UnsafeModel(f"the model contains a {cls} layer; only built-in layers are allowed")
        if isinstance(module, str) and not _keras_module(module) and not _keras_function(node):
            raise UnsafeModel(f"the model uses {module}.{cls}, which is not part of Keras")
        if isinstance(registered, str) and registered != cls and not registered.startswith("keras"):
            raise UnsafeModel(f"the model uses the custom object {registered!r}")
        for value in node.values():
            vet_config(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            vet_config(value, depth + 1)


def _keras_module(module: str) -> bool:
    return module == "keras" or module.startswith(SAFE_MODULE_PREFIXES)


def _keras_function(node: dict[str, Any]) -> bool:
    """A Keras function saved by name (see `_FUNCTION_NAME`), nothing more in it."""
    name = node.get("config")
    return (
        node.get("module") == "builtins"
        and node.get("class_name") == "function"
        and node.get("registered_name") in (None, "function")
        and isinstance(name, str)
        and _FUNCTION_NAME.fullmatch(name) is not None
    )


def config_digest(config: dict[str, Any]) -> str | None:
    """A digest of a vetted config that is equal for the same architecture built twice.

    Two things differ between two builds in one kernel and are renumbered here in order
    of appearance, which keeps what refers to what: the names Keras gives layers, models
    and optimizers (`dense`, then `dense_1` ...), wherever the config refers to a layer
    by name, and the `id()` that names an object shared between layers (a dtype policy).
    """
    found = config_identity(config)
    return None if found is None else found[0]


Identity = tuple[str, list[str]]  # (config digest, the names it renumbered, in order)


def config_identity(config: dict[str, Any]) -> Identity | None:
    """(`config_digest`, the names it renumbered, in that order), or None.

    Two configs with one digest differ only in those names: the n-th name of one is
    the n-th of the other. The model host renames a model it keeps with that pairing.
    """
    names = _layer_names(config)
    renamed: dict[str, str] = {}
    shared: dict[Any, int] = {}

    def rename(name: Any) -> Any:
        if isinstance(name, str) and name in names:
            return renamed.setdefault(name, f"<layer {len(renamed)}>")
        return name

    def canonical(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if k == "shared_object_id":
                    out[k] = shared.setdefault(v, len(shared))
                elif k == "name":
                    out[k] = rename(v)
                elif k == "keras_history" and isinstance(v, list) and v:
                    out[k] = [rename(v[0]), *v[1:]]
                else:
                    out[k] = canonical(v, k)
            return out
        if isinstance(value, list):
            if key in ("input_layers", "output_layers"):
                return [canonical(rename(v), key) for v in value]
            return [canonical(v, key) for v in value]
        return value

    try:
        text = json.dumps(canonical(config), sort_keys=True)
    except (TypeError, ValueError, RecursionError):  # an unhashable id, say: never shared
        return None
    return hashlib.sha256(text.encode()).hexdigest(), list(renamed)


def _layer_names(config: Any) -> set[str]:
    """The names Keras numbers per kernel in a config: the model's, every layer's (in
    nested models too) and the optimizer's (`adam`, then `adam_1`)."""
    names: set[str] = set()

    def add(entry: Any) -> None:
        if isinstance(entry, dict):
            inner = entry.get("config")
            for name in (entry.get("name"), inner.get("name") if isinstance(inner, dict) else None):
                if isinstance(name, str):
                    names.add(name)

    compiled = config.get("compile_config") if isinstance(config, dict) else None
    if isinstance(compiled, dict):
        add(compiled.get("optimizer"))
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            inner = node.get("config")
            layers = inner.get("layers") if isinstance(inner, dict) else None
            if isinstance(layers, list):
                for entry in [node, *layers]:
                    add(entry)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def compile_config(config: dict[str, Any]) -> dict[str, Any]:
    """How the student compiled the model, as vetted data (it is never compiled here)."""
    value = config.get("compile_config")
    return value if isinstance(value, dict) else {}


Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class LayerSpec:
    """One layer as plain data: what checks may look at."""

    name: str
    class_name: str
    path: str  # "outer/inner" for layers of nested models
    config: dict[str, Any] = field(default_factory=dict)
    output_shape: Shape | None = None
    params: int | None = None  # None while the layer is not built
    # Names of the layers (in the same container) whose outputs feed this one; the
    # InputLayer of a Sequential model is not among `layers`. Empty when unknown.
    inbound: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """A loaded model's structure, as the capped model host reported it."""

    class_name: str
    input_shape: Shape | None
    output_shape: Shape | None
    params: int | None  # None while the model is not built (no input shape yet)
    layers: tuple[LayerSpec, ...]  # every layer, nested models' layers included, in order
    compile_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_host(cls, data: Any, compiled: dict[str, Any]) -> ModelSpec:
        """Build from the host's decoded answer; anything malformed is refused."""
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise UnsafeModel("the model host returned a malformed description")
        if len(data["layers"]) > MAX_LAYERS:
            raise UnsafeModel(
                f"the model has {len(data['layers']):,} layers; the grader inspects models of "
                f"at most {MAX_LAYERS:,} (a course CNN has tens)"
            )
        layers = tuple(
            LayerSpec(
                name=_text(layer.get("name")),
                class_name=_text(layer.get("class_name")),
                path=_text(layer.get("path")),
                config=_dict(layer.get("config")),
                output_shape=_shape(layer.get("output_shape")),
                params=_count(layer.get("params")),
                inbound=_names(layer.get("inbound")),
            )
            for layer in data["layers"]
            if isinstance(layer, dict)
        )
        return cls(
            class_name=_text(data.get("class_name")),
            input_shape=_shape(data.get("input_shape")),
            output_shape=_shape(data.get("output_shape")),
            params=_count(data.get("params")),
            layers=layers,
            compile_config=compiled,
        )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value[:200] if isinstance(value, str) else ""


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(_text(v) for v in value[:64] if isinstance(v, str))


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _shape(value: Any) -> Shape | None:
    if not isinstance(value, (list, tuple)) or len(value) > 16:
        return None
    if not all(v is None or (type(v) is int and 0 <= v < 1 << 62) for v in value):
        return None
    return tuple(value)


def elements(shape: Shape | None) -> int:
    """Elements per sample of a shape whose first axis is the batch (None axes count as 1)."""
    if not shape:
        return 0
    return math.prod(d or 1 for d in shape[1:])
