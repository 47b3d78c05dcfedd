"""Content hashes: a stored grade is reused exactly when nothing that can change it changed."""

from __future__ import annotations

import shutil

from autograder.config import load_config
from autograder.digest import assignment_digest, code_digest, submission_digest
from autograder.submissions import MAX_EXTRA_FILE, SubmissionInput


def _sub(tmp_path, text="notebook", extra=None):
    folder = tmp_path / "alice"
    folder.mkdir(parents=True, exist_ok=True)
    nb = folder / "toy.ipynb"
    nb.write_text(text)
    for name, data in (extra or {}).items():
        (folder / name).write_bytes(data)
    return SubmissionInput("alice", nb, folder)


def test_submission_digest_follows_content(tmp_path):
    a = submission_digest(_sub(tmp_path / "1"), "grader", frozenset())
    assert a == submission_digest(_sub(tmp_path / "2"), "grader", frozenset())
    assert a != submission_digest(_sub(tmp_path / "3", "changed"), "grader", frozenset())
    assert a != submission_digest(
        _sub(tmp_path / "4", extra={"m.keras": b"x"}), "grader", frozenset()
    )
    assert a != submission_digest(_sub(tmp_path / "5"), "grader v2", frozenset())
    assert a != submission_digest(_sub(tmp_path / "6"), "grader", frozenset({"add"}))


def test_oversized_notebook_hashed_by_size(tmp_path, monkeypatch):
    import autograder.digest as digest

    monkeypatch.setattr(digest, "MAX_EXTRA_FILE", 4)
    a = submission_digest(_sub(tmp_path / "1", "aaaaaa"), "g", frozenset())
    b = submission_digest(_sub(tmp_path / "2", "bbbbbb"), "g", frozenset())
    c = submission_digest(_sub(tmp_path / "3", "bbbbbbb"), "g", frozenset())
    assert a == b != c


def test_oversized_extra_files_are_neither_graded_nor_hashed(tmp_path, monkeypatch):
    import autograder.submissions as submissions

    monkeypatch.setattr(submissions, "MAX_EXTRA_FILE", 4)
    a = submission_digest(_sub(tmp_path / "1", extra={"big": b"aaaaaa"}), "g", frozenset())
    b = submission_digest(_sub(tmp_path / "2"), "g", frozenset())
    assert a == b
    assert MAX_EXTRA_FILE > 4


def test_assignment_digest_covers_config_notebook_checks_and_code(toy_dir, tmp_path):
    copy = tmp_path / "toy"
    shutil.copytree(toy_dir, copy)
    base = assignment_digest(load_config(copy / "assignment.toml"))
    assert base == assignment_digest(load_config(copy / "assignment.toml"))
    assert code_digest() == code_digest()
    for path, edit in [
        (copy / "checks" / "test_add.py", "\n# edited\n"),
        (copy / "toy.ipynb", " "),
        (copy / "assignment.toml", "\n# edited\n"),
    ]:
        path.write_text(path.read_text() + edit)
        changed = assignment_digest(load_config(copy / "assignment.toml"))
        assert changed != base
        base = changed


def test_files_that_are_not_graded_do_not_change_the_digest(tmp_path):
    a = submission_digest(_sub(tmp_path / "1"), "g", frozenset())
    b = submission_digest(_sub(tmp_path / "2", extra={".DS_Store": b"x"}), "g", frozenset())
    assert a == b
