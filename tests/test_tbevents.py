"""autograder.tbevents: TensorBoard event files read back as untrusted files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from autograder.checks import CheckFailure
from autograder.tbevents import MAX_DEPTH, decode_png, event_files, read_events, records

tf = pytest.importorskip("tensorflow")


def write_run(logdir, run: str, scalars: dict[str, list[float]], images=None) -> None:
    writer = tf.summary.create_file_writer(str(logdir / run) if run else str(logdir))
    with writer.as_default():
        for tag, values in scalars.items():
            for step, value in enumerate(values):
                tf.summary.scalar(tag, value, step=step)
        if images is not None:
            tf.summary.image("samples", images, step=3, max_outputs=len(images))
    writer.close()


def test_scalars_and_images_by_run(tmp_path):
    write_run(tmp_path, "train", {"epoch_loss": [2.0, 1.5, 1.25]})
    write_run(tmp_path, "validation", {"epoch_loss": [2.5, 2.0]})
    pixels = np.linspace(0, 1, 2 * 4 * 5).reshape(2, 4, 5, 1).astype("float32")
    write_run(tmp_path, "images", {}, images=pixels)
    log = read_events(tmp_path)
    assert log.series("train", "epoch_loss") == {0: 2.0, 1: 1.5, 2: 1.25}
    assert sorted(log.series("validation", "epoch_loss")) == [0, 1]
    assert log.runs() == {"train", "validation", "images"}
    (summary,) = log.images
    assert (summary.run, summary.tag, summary.step, len(summary.pngs)) == (
        "images",
        "samples",
        3,
        2,
    )
    decoded = decode_png(summary.pngs[1], "x")
    assert decoded.shape == (4, 5, 1)
    assert np.abs(decoded.astype(float) - np.round(pixels[1] * 255)).max() <= 1


def test_top_level_run_is_the_empty_string(tmp_path):
    write_run(tmp_path, "", {"loss": [1.0]})
    assert read_events(tmp_path).series("", "loss") == {0: 1.0}


def test_links_garbage_and_deep_folders_are_ignored(tmp_path):
    outside = tmp_path / "outside"
    write_run(outside, "train", {"epoch_loss": [9.0]})
    logdir = tmp_path / "log"
    logdir.mkdir()
    (target,) = list((outside / "train").iterdir())
    os.symlink(target, logdir / "events.out.tfevents.link")  # a link to a file elsewhere
    os.symlink(outside / "train", logdir / "linked_dir")
    (logdir / "events.out.tfevents.garbage").write_bytes(os.urandom(5000))
    deep = logdir.joinpath(*["d"] * (MAX_DEPTH + 1))
    write_run(deep, "", {"epoch_loss": [7.0]})
    log = read_events(logdir)
    assert log.scalars == [] and log.images == []
    assert all(logdir in p.parents for p in event_files(logdir))


def test_truncated_records_stop_cleanly():
    payload = b"x" * 10
    frame = len(payload).to_bytes(8, "little") + b"\0" * 4 + payload + b"\0" * 4
    assert list(records(frame + frame[:-3])) == [payload]


def test_decode_png_rejects_what_is_not_a_png():
    with pytest.raises(CheckFailure, match="not a valid PNG"):
        decode_png(b"GIF89a" + b"\0" * 20, "log_training(...)")


def test_a_flood_of_values_is_read_only_up_to_the_bounds(tmp_path, monkeypatch):
    """16 MiB of scalars beside the real summary cost the grader 0.6 GB and 5 s a file:
    a log is read up to MAX_VALUES values and MAX_EVENT_BYTES in all, and the images
    alone keep no scalar."""
    from autograder import tbevents

    pixels = np.zeros((1, 4, 5, 1), "float32")
    write_run(tmp_path, "a", {}, images=pixels)
    write_run(tmp_path, "b", {"flood": [float(i) for i in range(50)]})
    assert len(read_events(tmp_path).series("b", "flood")) == 50
    assert tbevents.read_events(tmp_path, scalars=False).scalars == []
    assert len(tbevents.image_summaries(tmp_path)) == 1
    monkeypatch.setattr(tbevents, "MAX_VALUES", 20)
    log = read_events(tmp_path)
    assert len(log.images) == 1 and len(log.series("b", "flood")) == 19
    monkeypatch.setattr(tbevents, "MAX_VALUES", 100_000)
    size = sum(p.stat().st_size for p in event_files(tmp_path / "a"))
    monkeypatch.setattr(tbevents, "MAX_EVENT_BYTES", size)  # the first run's file only
    assert read_events(tmp_path).runs() == {"a"}


def test_a_record_over_the_cap_is_skipped_before_protobuf_builds_it(tmp_path):
    """One 16 MiB record of 8 million empty values cost 730 MB once parsed."""
    import struct

    write_run(tmp_path, "images", {}, images=np.zeros((1, 4, 5, 1), "float32"))
    summary = b"\x0a\x00" * (3 << 19)  # 3 MiB: Summary.value, empty, 1.5 million times
    event = b"\x2a" + _varint(len(summary)) + summary  # Event.summary (field 5)
    framed = struct.pack("<Q", len(event)) + bytes(4) + event + bytes(4)
    # read first (the files are read in order): past MAX_VALUES nothing after it would be
    (tmp_path / "images" / "events.out.tfevents.0bomb").write_bytes(framed)
    log = read_events(tmp_path)
    assert len(log.images) == 1 and log.scalars == []


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out
