"""read_untrusted follows no link and reads only regular files under its root; atomic_write."""

from __future__ import annotations

import os
import threading

import pytest

from autograder import safeio
from autograder.exceptions import BridgeError
from autograder.safeio import atomic_write, read_untrusted


@pytest.fixture
def box(tmp_path):
    """root/ (the scratch folder) beside outside/ (what a student must not reach)."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.json").write_bytes(b'{"ok": true}')
    (root / "top.bin").write_bytes(b"12345")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"SECRET")
    return root, outside


def test_reads_a_regular_file(box):
    root, _ = box
    assert read_untrusted(root / "sub" / "ok.json", root, 100) == b'{"ok": true}'
    assert read_untrusted(root / "top.bin", root, 5) == b"12345"


def test_refuses_a_final_symlink_out_of_root(box):
    root, outside = box
    (root / "link.json").symlink_to(outside / "secret.txt")
    with pytest.raises(BridgeError, match="link.json"):
        read_untrusted(root / "link.json", root, 100)


def test_refuses_a_final_symlink_inside_root(box):
    root, _ = box
    (root / "alias.json").symlink_to(root / "sub" / "ok.json")
    with pytest.raises(BridgeError, match="alias.json"):
        read_untrusted(root / "alias.json", root, 100)


def test_refuses_an_intermediate_symlink(box):
    root, outside = box
    (root / "calls").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BridgeError):
        read_untrusted(root / "calls" / "secret.txt", root, 100)
    (root / "inner").symlink_to(root / "sub", target_is_directory=True)
    with pytest.raises(BridgeError):
        read_untrusted(root / "inner" / "ok.json", root, 100)


def test_refuses_dangling_and_looping_links(box):
    root, _ = box
    (root / "dangling").symlink_to(root / "nothing-here")
    (root / "loop").symlink_to(root / "loop")
    for name in ("dangling", "loop"):
        with pytest.raises(BridgeError):
            read_untrusted(root / name, root, 100)


def test_refuses_paths_outside_root(box):
    root, outside = box
    with pytest.raises(BridgeError, match="outside the scratch folder"):
        read_untrusted(outside / "secret.txt", root, 100)
    with pytest.raises(BridgeError, match="outside the scratch folder"):
        read_untrusted(root / ".." / "outside" / "secret.txt", root, 100)
    with pytest.raises(BridgeError):
        read_untrusted(root, root, 100)  # the root itself is not a file


def test_refuses_a_fifo_without_blocking(box):
    root, _ = box
    fifo = root / "response.json"
    os.mkfifo(fifo)
    result = {}

    def attempt():
        try:
            read_untrusted(fifo, root, 100)
        except BridgeError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "opening a FIFO must not block"
    assert "not a regular file" in result["error"]


def test_refuses_a_directory_and_a_missing_file(box):
    root, _ = box
    with pytest.raises(BridgeError):
        read_untrusted(root / "sub", root, 100)
    with pytest.raises(BridgeError, match="cannot be read"):
        read_untrusted(root / "missing.json", root, 100)
    with pytest.raises(BridgeError, match="cannot be read"):
        read_untrusted(root / "nodir" / "missing.json", root, 100)


def test_refuses_oversize(box):
    root, _ = box
    with pytest.raises(BridgeError, match="limit"):
        read_untrusted(root / "top.bin", root, 4)


def test_a_file_grown_since_its_size_was_read_is_read_to_the_limit(box, monkeypatch):
    """The read is sized by fstat; a writer still at work (a student's thread) may add to
    the file after it: what was added is read too, and still bounded by the limit."""
    root, _ = box
    (root / "grows.bin").write_bytes(b"x" * 100)
    fstat = os.fstat

    def stale(fd):
        st = fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 10, *st[7:]))

    monkeypatch.setattr(safeio.os, "fstat", stale)
    assert read_untrusted(root / "grows.bin", root, 1000) == b"x" * 100
    with pytest.raises(BridgeError, match="limit"):
        read_untrusted(root / "grows.bin", root, 50)


def test_the_root_itself_and_a_sibling_with_its_name_as_prefix_are_refused(box):
    root, _ = box
    sibling = root.parent / (root.name + "2")
    sibling.mkdir()
    (sibling / "f").write_bytes(b"no")
    with pytest.raises(BridgeError, match="outside"):
        read_untrusted(sibling / "f", root, 100)
    with pytest.raises(BridgeError, match="not a regular file"):
        read_untrusted(root, root, 100)
    with pytest.raises(BridgeError, match="outside"):
        read_untrusted(root / ".." / "outside" / "secret.txt", root, 100)


def test_refuses_a_nul_in_the_name(box):
    root, _ = box
    with pytest.raises(BridgeError):
        read_untrusted(root / "a\x00b.npy", root, 100)


def test_relative_root_and_path(box, monkeypatch):
    root, _ = box
    monkeypatch.chdir(root.parent)
    assert read_untrusted(safeio.Path("root/top.bin"), safeio.Path("root"), 10) == b"12345"


# -- atomic_write ----------------------------------------------------------------------------------


def _temps(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_creates_folders_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert _temps(target.parent) == []
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_atomic_write_replaces_rather_than_rewrites(tmp_path):
    target = tmp_path / "grade.json"
    target.write_text("old")
    with open(target) as reader:  # a reader holding the old file sees it whole
        atomic_write(target, "new content")
        assert reader.read() == "old"
    assert target.read_text() == "new content"


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "grade.json"
    target.write_text("old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safeio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert _temps(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["grade.json"]


def test_atomic_write_concurrent_writers_never_mix(tmp_path):
    target = tmp_path / "summary.json"
    payloads = [bytes([65 + i]) * 200_000 for i in range(4)]
    errors = []

    def writer(data):
        try:
            for _ in range(5):
                atomic_write(target, data)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert target.read_bytes() in payloads
    assert _temps(tmp_path) == []


def test_sweep_removes_only_the_folders_of_dead_processes(tmp_path):
    import os
    import subprocess
    import sys

    from autograder.safeio import _host_tag, owned_prefix, sweep_stale_dirs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = _host_tag()
    assert owned_prefix("ag-x-") == f"ag-x-{os.getpid()}-{tag}-"
    stale = tmp_path / f"ag-x-{dead.pid}-{tag}-abc"
    live = tmp_path / f"ag-x-{os.getpid()}-{tag}-def"
    other = tmp_path / f"ag-x-notapid-{tag}-ghi"
    # Another host's or container's folder in a shared temporary folder: its pid means
    # nothing here, so it stays even when no such process exists on this machine.
    elsewhere = tmp_path / f"ag-x-{dead.pid}-0123abcd-jkl"
    untagged = tmp_path / f"ag-x-{dead.pid}-mno"
    for folder in (stale, live, other, elsewhere, untagged):
        (folder / "sub").mkdir(parents=True)
    assert sweep_stale_dirs(tmp_path, "ag-x-") == [stale]
    assert not stale.exists()
    assert all(f.is_dir() for f in (live, other, elsewhere, untagged))


def test_atomic_write_takes_text_with_a_lone_surrogate(tmp_path):
    atomic_write(tmp_path / "f.txt", "x\ud800y")
    assert (tmp_path / "f.txt").read_text() == "x\\ud800y"
