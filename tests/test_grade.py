"""Grading one submission (read, restore, environment, extra files, score) with fakes."""

from __future__ import annotations

import logging
from dataclasses import replace

import nbformat
import pytest

from autograder.grade import data_env, grade_submission, kernel_env
from autograder.notebook import grade_id
from autograder.scoring import CheckResult
from autograder.submissions import SubmissionInput
from tests.conftest import build, write
from tests.fakes.grading import install

PASSING = [
    CheckResult("test_a", "add", 1.0, True, seconds=0.25),
    CheckResult("test_s", "scale", 1.0, False, "expected 6", seconds=0.5),
]


def test_a_missing_notebook_is_a_zero_with_the_problem(toy, toy_release):
    r = grade_submission(SubmissionInput("a", None, problem="empty file"), toy, toy_release)
    assert (r.status, r.total) == ("empty file", 0.0)


def test_not_json_is_a_zero(tmp_path, toy, toy_release):
    path = tmp_path / "a.ipynb"
    path.write_text("not json")
    r = grade_submission(SubmissionInput("a", path), toy, toy_release)
    assert "not JSON" in r.status


def test_another_assignment_is_refused(tmp_path, toy, toy_release):
    other = nbformat.v4.new_notebook()
    other.metadata["autograder"] = {"assignment": "lab9"}
    r = grade_submission(SubmissionInput("a", write(other, tmp_path / "a.ipynb")), toy, toy_release)
    assert r.status == "wrong assignment"


def test_graded_with_restored_cells_config_env_and_scores(
    tmp_path, toy, toy_key, toy_release, monkeypatch
):
    sessions = install(monkeypatch, PASSING)
    nb = build(toy_key)
    for cell in nb.cells:
        if grade_id(cell) == "test_add":
            cell.source = "pass  # edited test"
    config = replace(toy, env={"MY_VAR": "1", "AUTOGRADER_OFFLINE": "0"})
    r = grade_submission(
        SubmissionInput("a", write(nb, tmp_path / "a.ipynb")), config, toy_release, digest="d"
    )
    (session,) = sessions
    assert session.closed
    assert session.env["MY_VAR"] == "1"
    assert session.env["AUTOGRADER_OFFLINE"] == "1"  # the grader's variables win
    assert not any("edited test" in src for _, src in session.cells)
    assert any("restored edited" in n for n in r.notes)
    assert (r.questions["add"].points, r.questions["scale"].points) == (4.0, 0.0)
    assert (r.content_hash, r.status) == ("d", "ok")


def test_extra_files_are_the_graded_ones_only(tmp_path, toy, toy_key, toy_release, monkeypatch):
    install(monkeypatch, PASSING)
    folder = tmp_path / "alice"
    write(toy_key, folder / "toy.ipynb")
    (folder / "model.keras").write_bytes(b"m")
    (folder / ".secret").write_bytes(b"s")
    copied: list[str] = []
    import autograder.grade as grade

    real = grade._copy_extra_files

    def spy(sub, dest):
        names = real(sub, dest)
        copied.extend(names)
        return names

    monkeypatch.setattr(grade, "_copy_extra_files", spy)
    grade_submission(SubmissionInput("alice", folder / "toy.ipynb", folder), toy, toy_release)
    assert copied == ["model.keras"]


def test_every_question_skipped_runs_the_cells_and_no_check(
    tmp_path, toy, toy_key, toy_release, monkeypatch
):
    """`make bench`'s floor: the cells alone, no check session at all."""
    sessions = install(monkeypatch, PASSING)
    import autograder.grade as grade

    def no_checks(*args, **kwargs):
        raise AssertionError("checks ran although every question was skipped")

    monkeypatch.setattr(grade, "run_checks", no_checks)
    r = grade_submission(
        SubmissionInput("a", write(toy_key, tmp_path / "a.ipynb")),
        toy,
        toy_release,
        skip=frozenset(toy.autograded),
    )
    (session,) = sessions
    assert session.cells and session.closed and r.status == "ok"
    assert all(r.questions[q].skipped for q in toy.autograded)


def test_check_durations_are_logged(tmp_path, toy, toy_key, toy_release, monkeypatch, caplog):
    install(monkeypatch, PASSING)
    caplog.set_level(logging.INFO, logger="autograder")
    grade_submission(SubmissionInput("a", write(toy_key, tmp_path / "a.ipynb")), toy, toy_release)
    assert "check test_a (add): passed in 0.25 s" in caplog.text
    assert "check test_s (scale): failed in 0.50 s: expected 6" in caplog.text


def test_data_env_is_generic(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path))
    env, folders = data_env()
    assert env == {"AUTOGRADER_OFFLINE": "1", "AUTOGRADER_DATA_DIR": str(tmp_path.resolve())}
    assert tmp_path.resolve() in folders
    monkeypatch.delenv("AUTOGRADER_DATA_DIR")
    assert data_env()[0] == {"AUTOGRADER_OFFLINE": "1"}


def test_kernel_env_layers_the_assignment_under_the_grader(toy):
    config = replace(toy, env={"A": "1", "B": "2"})
    assert kernel_env(config, {"B": "3"}) == {"A": "1", "B": "3"}


@pytest.mark.slow
def test_a_real_kernel_sees_the_assignments_env_and_the_graders(
    tmp_path, toy, toy_key, toy_release
):
    """End to end (sandbox, kernel, checks): what assignment.toml's `env` declares is there."""
    probe = (
        "import os\n"
        "def add(a, b):\n"
        "    env = os.environ\n"
        "    ok = env.get('TOY_ENV') == 'toy' and env.get('AUTOGRADER_OFFLINE') == '1'\n"
        "    return a + b if ok else 0\n"
    )
    path = write(build(toy_key, {"add": probe}), tmp_path / "a.ipynb")
    config = replace(toy, env={"TOY_ENV": "toy"})
    with_env = grade_submission(SubmissionInput("a", path), config, toy_release)
    without = grade_submission(SubmissionInput("a", path), toy, toy_release)
    assert (with_env.questions["add"].points, without.questions["add"].points) == (4.0, 0.0)
