"""Reading TensorBoard event files that a student's code wrote, for the checks.

Threat: the files are the student's. A check reads them here, in the grader, so every
file goes through `read_untrusted` (no links, a size cap), at most `MAX_EVENT_FILES`
files at most `MAX_DEPTH` folders deep are looked at, records are parsed as protobuf
with decoding errors ignored, and PNGs are decoded with Pillow only after their pixel
count is checked. The whole log is bounded too (`MAX_EVENT_BYTES` read, `MAX_VALUES`
summary values looked at, records over `MAX_RECORD` skipped), and image summaries alone
keep no scalars. Nothing here runs or imports what the student wrote.

TensorFlow is not needed: the protobuf classes come from the `tensorboard` package.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.checks import fail
from autograder.exceptions import BridgeError
from autograder.safeio import read_untrusted

MAX_EVENT_FILE = 16 << 20
MAX_EVENT_FILES = 32
# All files of one log together. A real log of a short training holds a few hundred
# values; 16 MiB of scalars alone parse into 2.4 million objects (0.6 GB, 5 s).
MAX_EVENT_BYTES = 32 << 20
MAX_VALUES = 100_000  # summary values looked at, all files together; the rest is ignored
MAX_DEPTH = 4
# One record (one Event): protobuf builds about 43 times its size in memory, so a single
# 16 MiB record of empty values cost 730 MB. An image summary of a check's few small
# images is tens of KiB; a longer record is skipped, as an undecodable one is.
MAX_RECORD = 2 << 20
MAX_PIXELS = 1 << 20


@dataclass(frozen=True)
class ImageSummary:
    """One image summary: `run` is the folder under the log directory ('' at its top)."""

    run: str
    tag: str
    step: int
    pngs: tuple[bytes, ...]


@dataclass(frozen=True)
class Scalar:
    run: str
    tag: str
    step: int
    value: float


@dataclass
class EventLog:
    """Everything found under one log directory."""

    images: list[ImageSummary] = field(default_factory=list)
    scalars: list[Scalar] = field(default_factory=list)

    def series(self, run: str, tag: str) -> dict[int, float]:
        """{step: value} of one scalar (the last value written wins, as in TensorBoard)."""
        return {s.step: s.value for s in self.scalars if s.run == run and s.tag == tag}

    def runs(self) -> set[str]:
        return {s.run for s in self.scalars} | {i.run for i in self.images}


def event_files(logdir: Path) -> list[Path]:
    """Event files under `logdir`, in a stable order, links never followed."""
    found: list[Path] = []
    for top, dirs, files in os.walk(logdir, followlinks=False):
        depth = len(Path(top).relative_to(logdir).parts)
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(top, d)))
        if depth >= MAX_DEPTH:
            dirs[:] = []
        found += [Path(top) / f for f in sorted(files) if "tfevents" in f]
        if len(found) > MAX_EVENT_FILES:
            break
    return found[:MAX_EVENT_FILES]


def records(data: bytes) -> Iterator[bytes]:
    """TFRecord framing: u64 length, u32 crc, payload, u32 crc (the crcs are not needed)."""
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        start = offset + 12
        if start + length + 4 > len(data):
            return
        yield data[start : start + length]
        offset = start + length + 4


def _tensor_scalar(tensor: Any) -> float | None:
    for values in (tensor.float_val, tensor.double_val, tensor.half_val, tensor.int_val):
        if len(values) == 1:
            return float(values[0])
    content = bytes(tensor.tensor_content)
    kinds = {1: "<f4", 2: "<f8", 3: "<i4", 9: "<i8"}  # DataType enum: float, double, ...
    if tensor.dtype in kinds and len(content) == np.dtype(kinds[tensor.dtype]).itemsize:
        return float(np.frombuffer(content, dtype=kinds[tensor.dtype])[0])
    return None


def read_events(logdir: Path, scalars: bool = True) -> EventLog:
    """Image summaries and (unless `scalars` is False) scalars of the event files under
    `logdir`, up to `MAX_EVENT_BYTES` and `MAX_VALUES` in all."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    log = EventLog()
    logdir = Path(logdir)
    budget, values = MAX_EVENT_BYTES, 0
    for path in event_files(logdir):
        if budget <= 0 or values >= MAX_VALUES:
            break
        try:
            data = read_untrusted(path, logdir, min(MAX_EVENT_FILE, budget))
        except BridgeError:
            continue
        budget -= len(data)
        folder = path.parent.relative_to(logdir)
        run = "" if folder == Path(".") else folder.as_posix()
        for rec in records(data):
            if len(rec) > MAX_RECORD:
                continue
            try:
                event = event_pb2.Event.FromString(rec)
            except (DecodeError, RecursionError, ValueError):
                continue
            for value in event.summary.value:
                values += 1
                if values > MAX_VALUES:
                    return log
                _add(log, run, int(event.step), value, scalars)
    return log


def _add(log: EventLog, run: str, step: int, value: Any, scalars: bool = True) -> None:
    kind = value.WhichOneof("value")
    plugin = value.metadata.plugin_data.plugin_name
    strings: Sequence[bytes] = value.tensor.string_val if kind == "tensor" else ()
    if kind == "tensor" and plugin in ("images", "") and len(strings) >= 2:
        if strings[0].isdigit():  # tf.summary.image (TF2): [width, height, png, png, ...]
            log.images.append(ImageSummary(run, value.tag, step, tuple(strings[2:])))
    elif kind == "image":  # TF1-style summaries
        log.images.append(ImageSummary(run, value.tag, step, (value.image.encoded_image_string,)))
    elif not scalars:
        return
    elif kind == "simple_value":
        log.scalars.append(Scalar(run, value.tag, step, float(value.simple_value)))
    elif kind == "tensor" and plugin in ("scalars", ""):
        number = _tensor_scalar(value.tensor)
        if number is not None:
            log.scalars.append(Scalar(run, value.tag, step, number))


def image_summaries(logdir: Path) -> list[ImageSummary]:
    return read_events(logdir, scalars=False).images


def decode_png(data: bytes, what: str) -> np.ndarray:
    """A PNG from a summary as (H, W, C) pixels; a check failure if it is not one."""
    from PIL import Image

    arr = None
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "PNG" and im.width * im.height <= MAX_PIXELS:
                arr = np.asarray(im)
    except Exception:  # noqa: BLE001 - any undecodable image is the student's
        arr = None
    if arr is None or arr.dtype.kind not in "uif":
        fail(f"{what}: an image in the summary is not a valid PNG of reasonable size")
        raise AssertionError  # unreachable: fail raises
    return arr[:, :, None] if arr.ndim == 2 else arr
