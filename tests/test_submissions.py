"""Finding each student's notebook in whatever a TA downloaded, and unpacking zips safely."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from autograder import submissions
from autograder.exceptions import SubmissionError, UnsafeArchive
from autograder.submissions import discover, extract_zip, safe_name

NB = "toy.ipynb"
CONTENT = '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}'


def _find(path: Path, workdir: Path) -> dict[str, submissions.SubmissionInput]:
    found = discover(path, "toy", NB, workdir)
    names = [s.student for s in found]
    assert len(names) == len(set(names)), "student ids must be unique"
    return {s.student: s for s in found}


def _files(root: Path) -> dict[str, bytes]:
    """Every file under root as relative posix path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _zip_tree(src: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for rel, data in sorted(_files(src).items()):
            zf.writestr(prefix + rel, data)
    return archive


# -- the layouts ------------------------------------------------------------------------------


def _nbgrader(root: Path) -> Path:
    for sid in ("alice", "bob"):
        d = root / "course" / "submitted" / sid / "toy"
        d.mkdir(parents=True)
        (d / NB).write_text(CONTENT)
        (d / "timestamp.txt").write_text("2024-01-01")
    # another assignment of the same student is not this one's notebook
    other = root / "course" / "submitted" / "alice" / "lab9"
    other.mkdir()
    (other / "lab9.ipynb").write_text(CONTENT)
    return root / "course"


def _folders(root: Path) -> Path:
    base = root / "folders"
    for sid in ("alice", "bob"):
        (base / sid).mkdir(parents=True)
        (base / sid / NB).write_text(CONTENT)
        (base / sid / "model.keras").write_bytes(b"weights")
    (base / "bob" / "scratch.ipynb").write_text(CONTENT)  # the assignment's name wins
    return base


def _flat(root: Path) -> Path:
    base = root / "flat"
    base.mkdir(parents=True)
    for sid in ("alice", "bob"):
        (base / f"{sid}.ipynb").write_text(CONTENT)
    (base / "README.txt").write_text("not a submission")
    (base / ".hidden.ipynb").write_text(CONTENT)
    (base / "__MACOSX").mkdir()
    (base / "__MACOSX" / "._alice.ipynb").write_text("junk")
    return base


def test_nbgrader_layout(tmp_path):
    course = _nbgrader(tmp_path)
    for path in (course, course / "submitted"):
        found = _find(path, tmp_path / "work")
        assert set(found) == {"alice", "bob"}
        alice = found["alice"]
        assert alice.notebook == course / "submitted" / "alice" / "toy" / NB
        assert alice.files == course / "submitted" / "alice" / "toy"
        assert alice.problem == ""


def test_student_folders_with_extra_files(tmp_path):
    base = _folders(tmp_path)
    found = _find(base, tmp_path / "work")
    assert set(found) == {"alice", "bob"}
    assert found["bob"].notebook == base / "bob" / NB
    assert found["alice"].files == base / "alice"
    assert (found["alice"].files / "model.keras").read_bytes() == b"weights"


def test_student_folder_with_other_notebook_name(tmp_path):
    (tmp_path / "subs" / "carol").mkdir(parents=True)
    (tmp_path / "subs" / "carol" / "my_lab.ipynb").write_text(CONTENT)
    (tmp_path / "subs" / "dave").mkdir()
    (tmp_path / "subs" / "dave" / "notes.txt").write_text("no notebook")
    found = _find(tmp_path / "subs", tmp_path / "work")
    assert found["carol"].notebook.name == "my_lab.ipynb"
    assert found["dave"].notebook is None and found["dave"].problem == "no notebook found"


def test_flat_notebooks(tmp_path):
    base = _flat(tmp_path)
    found = _find(base, tmp_path / "work")
    assert set(found) == {"alice", "bob"}
    assert found["alice"].notebook == base / "alice.ipynb"
    assert found["alice"].files is None


@pytest.mark.parametrize("layout", [_nbgrader, _folders, _flat])
@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
def test_zip_of_each_layout(tmp_path, layout, wrapped):
    base = layout(tmp_path / "src")
    archive = _zip_tree(base, tmp_path / "download.zip", prefix="Export 2024/" if wrapped else "")
    workdir = tmp_path / "work"
    found = _find(archive, workdir)
    assert set(found) == {"alice", "bob"}
    for sub in found.values():
        assert sub.problem == "" and sub.notebook is not None
        assert sub.notebook.read_text() == CONTENT
        assert workdir in sub.notebook.parents  # extracted under the workdir, not beside the zip


def test_zip_wrapped_twice(tmp_path):
    base = _folders(tmp_path / "src")
    archive = _zip_tree(base, tmp_path / "d.zip", prefix="outer/inner/")
    assert set(_find(archive, tmp_path / "work")) == {"alice", "bob"}


def test_zip_of_a_single_student_folder(tmp_path):
    src = tmp_path / "src" / "alice"
    src.mkdir(parents=True)
    (src / NB).write_text(CONTENT)
    archive = _zip_tree(tmp_path / "src", tmp_path / "one.zip")
    found = _find(archive, tmp_path / "work")
    assert list(found) == ["alice"]


# -- zip safety ---------------------------------------------------------------------------------


def _symlink_member(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def test_zip_escapes_and_links_are_left_out(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice.ipynb", CONTENT)
        zf.writestr("../escaped.ipynb", "x")
        zf.writestr("a/../../escaped2.ipynb", "x")
        zf.writestr("/abs/escaped3.ipynb", "x")
        zf.writestr("\\evil\\escaped4.ipynb", "x")
        zf.writestr("C:/escaped5.ipynb", "x")
        _symlink_member(zf, "bob.ipynb", "/etc/passwd")
        _symlink_member(zf, "carol", "/")
    dest = tmp_path / "box" / "dest"
    dest.mkdir(parents=True)
    before = {p for p in tmp_path.rglob("*")}
    warnings = extract_zip(archive, dest)
    created = {p for p in tmp_path.rglob("*")} - before
    assert created == {dest / "alice.ipynb"}, created
    assert not Path("/abs").exists()
    left_out = " ".join(warnings)
    for name in (
        "../escaped.ipynb",
        "a/../../escaped2.ipynb",
        "/abs/escaped3.ipynb",
        "escaped4.ipynb",
        "C:/escaped5.ipynb",
    ):
        assert name in left_out
    assert "'bob.ipynb': symbolic link" in left_out and "'carol': symbolic link" in left_out
    assert len(warnings) == 7
    # nothing of it reaches discover as a submission either
    found = _find(archive, tmp_path / "work")
    assert set(found) == {"alice"}
    assert not any(p.is_symlink() for p in (tmp_path / "work").rglob("*"))


def test_zip_members_named_too_long_or_too_deep_are_left_out_at_once(tmp_path):
    """500 members named 32,700 folders deep kept the grader's CPU busy for minutes
    (0.8 s a member of path work) before grading began."""
    import time

    archive = tmp_path / "deep.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice.ipynb", CONTENT)
        for i in range(50):
            zf.writestr(f"{i:05d}/" + "a/" * 20_000 + "x", b"")
        zf.writestr("b/" * 40 + "x.ipynb", b"")
    dest = tmp_path / "dest"
    dest.mkdir()
    start = time.process_time()
    warnings = extract_zip(archive, dest)
    assert time.process_time() - start < 2
    assert sorted(p.name for p in dest.iterdir()) == ["alice.ipynb"]
    assert len(warnings) == 51 and all("too long or too deep" in w for w in warnings)


def test_zip_oversize_member_is_left_out(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_MEMBER_BYTES", 1000)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alice.ipynb", CONTENT)
        zf.writestr("bob.ipynb", "x" * 5000)  # compresses small, expands past the limit
    dest = tmp_path / "dest"
    dest.mkdir()
    warnings = extract_zip(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["alice.ipynb"]
    assert any("bob.ipynb" in w and "larger than" in w for w in warnings)


def test_zip_total_size_and_member_count_limits(tmp_path, monkeypatch):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5):
            zf.writestr(f"s{i}.ipynb", "x" * 100)
    dest = tmp_path / "dest"
    dest.mkdir()
    monkeypatch.setattr(submissions, "MAX_ZIP_MEMBERS", 4)
    with pytest.raises(UnsafeArchive, match="5 members"):
        extract_zip(archive, dest)
    monkeypatch.setattr(submissions, "MAX_ZIP_MEMBERS", 100)
    monkeypatch.setattr(submissions, "MAX_ZIP_BYTES", 250)
    with pytest.raises(UnsafeArchive, match="expands to more than"):
        extract_zip(archive, dest)


def test_zip_member_that_clashes_with_a_folder_does_not_crash(tmp_path):
    archive = tmp_path / "clash.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice.ipynb", CONTENT)
        zf.writestr("bob", "a file")
        zf.writestr("bob/toy.ipynb", CONTENT)  # needs bob/ to be a folder
    dest = tmp_path / "dest"
    dest.mkdir()
    warnings = extract_zip(archive, dest)
    assert (dest / "alice.ipynb").read_text() == CONTENT
    assert any("bob/toy.ipynb" in w for w in warnings)


def test_zip_with_corrupt_member_does_not_crash(tmp_path):
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice.ipynb", CONTENT)
        zf.writestr("bob.ipynb", "B" * 200)
    data = bytearray(archive.read_bytes())
    at = data.find(b"B" * 200)
    data[at : at + 5] = b"CCCCC"  # stored data no longer matches its CRC
    archive.write_bytes(bytes(data))
    dest = tmp_path / "dest"
    dest.mkdir()
    warnings = extract_zip(archive, dest)
    assert (dest / "alice.ipynb").read_text() == CONTENT
    assert not (dest / "bob.ipynb").exists()
    assert any("bob.ipynb" in w for w in warnings)


def test_unreadable_zip_is_a_submission_error(tmp_path):
    bad = tmp_path / "subs.zip"
    bad.write_bytes(b"PK\x03\x04 but truncated garbage")
    with pytest.raises(SubmissionError, match="zip"):
        discover(bad, "toy", NB, tmp_path / "work")
    with pytest.raises(SubmissionError, match="not a readable zip"):
        extract_zip(bad, tmp_path)
    text = tmp_path / "subs.txt"
    text.write_text("hello")
    with pytest.raises(SubmissionError, match="not a folder and not a zip"):
        discover(text, "toy", NB, tmp_path / "work")


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(SubmissionError, match="no such file or folder"):
        discover(tmp_path / "nope", "toy", NB, tmp_path / "work")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SubmissionError, match="no submissions found") as info:
        discover(empty, "toy", NB, tmp_path / "work")
    assert info.value.exit_code == 4
    (empty / "README.md").write_text("only this")
    with pytest.raises(SubmissionError, match="no submissions found"):
        discover(empty, "toy", NB, tmp_path / "work")
    archive = tmp_path / "empty.zip"
    zipfile.ZipFile(archive, "w").close()
    with pytest.raises(SubmissionError, match="no submissions found"):
        discover(archive, "toy", NB, tmp_path / "work2")


# -- links are reported, never followed


def test_symlinked_notebook_and_folder_are_reported(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / NB).write_text("SECRET")
    (secret / "other.ipynb").write_text("SECRET")
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / NB).symlink_to(secret / NB)
    (subs / "bob").symlink_to(secret, target_is_directory=True)
    (subs / "carol.ipynb").symlink_to(secret / "other.ipynb")
    (subs / "dave").mkdir()
    (subs / "dave" / NB).write_text(CONTENT)
    found = _find(subs, tmp_path / "work")
    assert set(found) == {"alice", "bob", "carol", "dave"}
    for sid in ("alice", "bob", "carol"):
        assert found[sid].notebook is None, sid
        assert "link" in found[sid].problem, found[sid]
    assert found["dave"].notebook == subs / "dave" / NB and found["dave"].problem == ""


def test_symlinked_nbgrader_assignment_folder_is_not_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / NB).write_text("SECRET")
    sub = tmp_path / "course" / "submitted" / "alice"
    sub.mkdir(parents=True)
    (sub / "toy").symlink_to(secret, target_is_directory=True)
    found = _find(tmp_path / "course", tmp_path / "work")
    assert found["alice"].notebook is None
    assert found["alice"].problem


# -- ids


def test_duplicate_student_ids_are_disambiguated(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / NB).write_text(CONTENT)
    (subs / "alice.ipynb").write_text(CONTENT)
    found = discover(subs, "toy", NB, tmp_path / "work")
    ids = [s.student for s in found]
    assert sorted(ids) == ["alice", "alice#2"]
    assert {s.notebook for s in found} == {subs / "alice" / NB, subs / "alice.ipynb"}


def test_a_student_named_submitted_is_one_student_not_nbgraders_layout(tmp_path):
    subs = tmp_path / "subs"
    for student in ("alice", "bob", "submitted"):
        (subs / student).mkdir(parents=True)
        (subs / student / NB).write_text(CONTENT)
    found = discover(subs, "toy", NB, tmp_path / "work")
    assert sorted(s.student for s in found) == ["alice", "bob", "submitted"]


def test_a_disambiguated_id_never_takes_an_id_a_submission_has(tmp_path):
    """`x/`, `x.ipynb` and `x#2.ipynb`: the second x is not `x#2`, whose result it would
    overwrite (a student choosing a file name could erase another's grade)."""
    subs = tmp_path / "subs"
    (subs / "x").mkdir(parents=True)
    (subs / "x" / NB).write_text(CONTENT)
    (subs / "x.ipynb").write_text(CONTENT)
    (subs / "x#2.ipynb").write_text(CONTENT)
    found = discover(subs, "toy", NB, tmp_path / "work")
    ids = [s.student for s in found]
    assert len(set(ids)) == 3 and "x" in ids and "x#2" in ids
    assert {s.notebook for s in found if s.student == "x#2"} == {subs / "x#2.ipynb"}


@pytest.mark.parametrize(
    "raw, want",
    [
        ("alice", "alice"),
        ("Ana María López", "Ana_María_López"),
        ("../../etc/passwd", "etc_passwd"),
        ("..", "student"),
        (".hidden", "hidden"),
        ("", "student"),
        ('a/b\\c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j"),
        ("tab\there\nnewline", "tabherenewline"),  # control characters are dropped
        ("x" * 300, "x" * 100),
        ("李雷", "李雷"),
        ("a\x00b\x1bc", "abc"),
    ],
)
def test_safe_name(raw, want):
    got = safe_name(raw)
    assert got == want
    assert "/" not in got and "\\" not in got and got not in (".", "..") and not got.startswith(".")
    assert len(got) <= 100


def test_safe_name_is_a_plain_file_name(tmp_path):
    for raw in ("../x", "a/../../b", "/abs", "~root", "-=cmd()", "\u202eevil"):
        name = safe_name(raw)
        target = (tmp_path / name).resolve()
        assert target.parent == tmp_path.resolve(), raw
        assert os.sep not in name


def test_submission_files_are_the_graded_extras_only(tmp_path, monkeypatch):
    import autograder.submissions as submissions
    from autograder.submissions import SubmissionInput, submission_files

    folder = tmp_path / "alice"
    folder.mkdir()
    nb = folder / "lab.ipynb"
    nb.write_text("{}")
    (folder / "model.keras").write_bytes(b"m")
    (folder / "notes.txt").write_bytes(b"n")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".hidden").write_bytes(b"h")
    (folder / "big.bin").write_bytes(b"x" * 10)
    (folder / "link").symlink_to(folder / "notes.txt")
    (folder / "sub").mkdir()
    monkeypatch.setattr(submissions, "MAX_EXTRA_FILE", 5)
    got = submission_files(SubmissionInput("alice", nb, folder))
    assert [p.name for p in got] == ["model.keras", "notes.txt"]
    assert submission_files(SubmissionInput("bob", nb, None)) == []


def test_submission_files_are_bounded_in_number_and_in_total(tmp_path, monkeypatch):
    """17 files of 256 MiB each were copied into the sandbox's memory: 4 GiB."""
    import autograder.submissions as submissions
    from autograder.submissions import SubmissionInput, submission_files

    folder = tmp_path / "alice"
    folder.mkdir()
    nb = folder / "lab.ipynb"
    nb.write_text("{}")
    for i, size in enumerate([4, 4, 4, 1, 1, 1]):
        (folder / f"f{i}.bin").write_bytes(b"x" * size)
    monkeypatch.setattr(submissions, "MAX_EXTRA_BYTES", 9)
    got = submission_files(SubmissionInput("alice", nb, folder))
    assert [p.name for p in got] == ["f0.bin", "f1.bin", "f3.bin"]
    monkeypatch.setattr(submissions, "MAX_EXTRA_BYTES", 100)
    monkeypatch.setattr(submissions, "MAX_EXTRA_FILES", 2)
    got = submission_files(SubmissionInput("alice", nb, folder))
    assert [p.name for p in got] == ["f0.bin", "f1.bin"]
