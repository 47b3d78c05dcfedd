"""The `autograder` command, through click's test runner."""

from __future__ import annotations

import copy
import csv
import json
import zipfile

import nbformat
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.notebook import grade_id
from tests.conftest import write


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rows(out):
    with (out / "gradebook.csv").open(newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


# -- grade


@pytest.fixture(scope="module")
def graded(tmp_path_factory, toy_dir, toy_key, toy_release):
    base = tmp_path_factory.mktemp("cli-grade")
    subs, out = base / "subs", base / "out"
    write(toy_key, subs / "perfect.ipynb")
    write(toy_release, subs / "stub.ipynb")
    result = _invoke("grade", toy_dir, subs, "--out", out)
    return {"result": result, "subs": subs, "out": out, "base": base}


@pytest.mark.slow
def test_grade_perfect_and_stub(graded):
    result, out = graded["result"], graded["out"]
    assert result.exit_code == 0, result.output
    assert "graded 2, reused 0" in result.stdout
    rows = _rows(out)
    assert list(next(iter(rows.values()))) == [
        "student",
        "add",
        "scale",
        "essay",
        "total",
        "max_total",
        "status",
    ]
    assert rows["perfect"] == {
        "student": "perfect",
        "add": "4",
        "scale": "6",
        "essay": "",
        "total": "10",
        "max_total": "15",
        "status": "ok",
    }
    assert (rows["stub"]["add"], rows["stub"]["scale"], rows["stub"]["total"]) == ("0", "0", "0")
    for sid in ("perfect", "stub"):
        assert sorted(p.name for p in (out / sid).iterdir()) == [
            "answers.json",
            "feedback.html",
            "grade.json",
            "graded.ipynb",
            "log.txt",
            "results.json",
        ]
        log = (out / sid / "log.txt").read_text()
        assert "kernel started" in log and "check test_" in log and "status " in log
    assert json.loads((out / "perfect" / "results.json").read_text())["score"] == 10
    summary = json.loads((out / "summary.json").read_text())
    assert summary["submissions"] == 2 and summary["questions"]["add"]["mean"] == 2
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
    stub_page = (out / "stub" / "feedback.html").read_text()
    assert "NotImplementedError" in stub_page


@pytest.mark.slow
def test_regrade_reuses_unless_forced(graded, toy_dir):
    again = _invoke("grade", toy_dir, graded["subs"], "--out", graded["out"])
    assert again.exit_code == 0, again.output
    assert "graded 0, reused 2" in again.stdout
    forced = _invoke("grade", toy_dir, graded["subs"], "--out", graded["out"], "--force")
    assert forced.exit_code == 0, forced.output
    assert "graded 2, reused 0" in forced.stdout
    assert _rows(graded["out"])["perfect"]["total"] == "10"


@pytest.mark.slow
def test_skip_leaves_the_column_empty(tmp_path, toy_dir, toy_key):
    subs, out = tmp_path / "subs", tmp_path / "out"
    write(toy_key, subs / "perfect.ipynb")
    result = _invoke("grade", toy_dir, subs, "--out", out, "--skip", "scale")
    assert result.exit_code == 0, result.output
    row = _rows(out)["perfect"]
    assert (row["add"], row["scale"], row["essay"], row["total"]) == ("4", "", "", "4")
    assert row["max_total"] == "15" and row["status"] == "ok"
    doc = json.loads((out / "perfect" / "results.json").read_text())
    assert not any(t["name"].startswith("scale") for t in doc["tests"])


@pytest.mark.slow
def test_grade_a_zip_download(tmp_path, toy_dir, toy_key):
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Export/alice/toy.ipynb", nbformat.writes(toy_key))
        zf.writestr("Export/alice/notes.txt", "extra")
        zf.writestr("../escape.ipynb", nbformat.writes(toy_key))
    out = tmp_path / "out"
    result = _invoke("grade", toy_dir, archive, "--out", out)
    assert result.exit_code == 0, result.output
    assert list(_rows(out)) == ["alice"] and _rows(out)["alice"]["total"] == "10"
    assert not (tmp_path / "escape.ipynb").exists()


def test_grade_unknown_assignment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "subs").mkdir()
    result = _invoke("grade", "no-such-lab", tmp_path / "subs", "--out", tmp_path / "out")
    assert result.exit_code == 3
    assert "error: unknown assignment 'no-such-lab'" in result.stderr
    assert "Traceback" not in result.output


def test_grade_empty_folder(tmp_path, toy_dir):
    (tmp_path / "subs").mkdir()
    result = _invoke("grade", toy_dir, tmp_path / "subs", "--out", tmp_path / "out")
    assert result.exit_code == 4
    assert "no submissions found" in result.stderr


def test_grade_missing_input(tmp_path, toy_dir):
    result = _invoke("grade", toy_dir, tmp_path / "nope", "--out", tmp_path / "out")
    assert result.exit_code == 4
    assert "no such file or folder" in result.stderr


def test_grade_jobs_and_dask_together_is_a_usage_error(tmp_path, toy_dir):
    result = _invoke(
        "grade", toy_dir, tmp_path, "--out", tmp_path / "out", "-j", "4", "--dask", "tcp://x:8786"
    )
    assert result.exit_code == 2
    assert "-j has no effect with --dask" in result.stderr
    assert not (tmp_path / "out").exists()


def test_grade_unreadable_zip(tmp_path, toy_dir):
    bad = tmp_path / "subs.zip"
    bad.write_bytes(b"PK\x03\x04this is not really a zip")
    result = _invoke("grade", toy_dir, bad, "--out", tmp_path / "out")
    assert result.exit_code == 4
    assert str(bad) in result.stderr and "zip" in result.stderr


def test_grade_unknown_skip_question(tmp_path, toy_dir, toy_key):
    write(toy_key, tmp_path / "subs" / "a.ipynb")
    result = _invoke(
        "grade", toy_dir, tmp_path / "subs", "--out", tmp_path / "out", "--skip", "nope"
    )
    assert result.exit_code == 3
    assert "unknown question 'nope'" in result.stderr
    assert "add, scale, essay" in result.stderr
    assert not (tmp_path / "out" / "gradebook.csv").exists()


def test_grade_broken_config(tmp_path, toy_dir):
    import shutil

    broken = tmp_path / "toy"
    shutil.copytree(toy_dir, broken)
    cfg = broken / "assignment.toml"
    cfg.write_text(cfg.read_text().replace("memory_mib = 1024", "memory_mb = 1024"))
    (tmp_path / "subs").mkdir()
    result = _invoke("grade", broken, tmp_path / "subs", "--out", tmp_path / "out")
    assert result.exit_code == 3
    assert "limits.memory_mb" in result.stderr and str(cfg) in result.stderr


def test_grade_bad_jobs_value(tmp_path, toy_dir):
    result = _invoke("grade", toy_dir, tmp_path, "--out", tmp_path / "out", "-j", "0")
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_version_and_help():
    result = _invoke("--version")
    assert result.exit_code == 0 and "0.1.0" in result.output
    result = _invoke("--help")
    assert result.exit_code == 0
    for cmd in ("grade", "release", "check", "validate", "solutions"):
        assert cmd in result.output


# -- release


def _secret_lines(toy):
    """Every line inside the source's solution and hidden-test blocks."""
    source = nbformat.read(toy.notebook, as_version=4)
    lines = []
    for cell in source.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


@pytest.mark.slow
def test_release_writes_only_the_student_notebook(tmp_path, toy, toy_dir):
    out = tmp_path / "released"
    result = _invoke("release", toy_dir, "--out", out)
    assert result.exit_code == 0, result.output
    target = out / "toy" / "toy.ipynb"
    assert f"released {target}" in result.stdout
    assert [p for p in out.rglob("*") if p.is_file()] == [target]
    secrets = _secret_lines(toy)
    assert "return a + b" in secrets and "assert add(-5, 2) == -3" in secrets
    assert "Addition is commutative." in secrets
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for line in secrets:
                assert line not in text, (path, line)
            assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    nb = nbformat.read(target, as_version=4)
    assert nb.metadata["autograder"]["assignment"] == "toy"
    assert [grade_id(c) for c in nb.cells] == [
        "intro",
        "setup",
        "add",
        "test_add",
        "scale",
        "test_scale",
        "train",
        "essay",
    ]


def test_release_unknown_assignment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("release", "no-such-lab", "--out", tmp_path / "out")
    assert result.exit_code == 3 and "unknown assignment" in result.stderr
    assert not (tmp_path / "out").exists()


# -- check


@pytest.mark.slow
def test_check_answer_key_passes(tmp_path, toy_key):
    path = write(toy_key, tmp_path / "toy.ipynb")
    result = _invoke("check", path, "--assignment", "toy")
    assert result.exit_code == 0, result.output
    assert "PASS test_add" in result.output and "PASS test_scale" in result.output
    assert "2/2 visible tests pass; the notebook can be submitted." in result.output


@pytest.mark.slow
def test_check_deleted_test_cell_is_not_submittable(tmp_path, toy_key):
    nb = copy.deepcopy(toy_key)
    nb.cells = [c for c in nb.cells if grade_id(c) != "test_add"]
    path = write(nb, tmp_path / "toy.ipynb")
    result = _invoke("check", path)
    assert result.exit_code == 5, result.output
    assert "NOT SUBMITTABLE: cell 'test_add' was deleted" in result.output


@pytest.mark.slow
def test_check_stub_fails_visible_tests(tmp_path, toy_release):
    path = write(toy_release, tmp_path / "toy.ipynb")
    result = _invoke("check", path)
    assert result.exit_code == 1, result.output
    assert "FAIL test_add: NotImplementedError" in result.output
    assert "0/2 visible tests pass" in result.output


def test_check_wrong_assignment_and_unreadable(tmp_path, toy_key):
    # not submittable is decided before any kernel starts for an unreadable file
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(b"\x89PNG\r\n")
    result = _invoke("check", bad)
    assert result.exit_code == 5
    assert "not a notebook" in result.output
    result = _invoke("check", tmp_path / "missing.ipynb")
    assert result.exit_code == 2


@pytest.mark.slow
def test_check_other_assignment_is_not_submittable(tmp_path, toy_key):
    path = write(toy_key, tmp_path / "toy.ipynb")
    result = _invoke("check", path, "--assignment", "lab4-cnn")
    assert result.exit_code == 5
    assert "this is the notebook of 'toy', not 'lab4-cnn'" in result.output


# -- options, exit codes and the assignment's own settings


def test_log_level_options(tmp_path, monkeypatch):
    import logging

    from autograder import logs

    seen = []
    monkeypatch.setattr(logs, "configure", seen.append)
    for args, level in [
        ((), "WARNING"),
        (("-v",), "INFO"),
        (("-vv",), "DEBUG"),
        (("-vvv",), "DEBUG"),
        (("--log-level", "error"), "ERROR"),
        (("-v", "--log-level", "ERROR"), "ERROR"),
    ]:
        seen.clear()
        result = _invoke(*args, "release", "no-such-assignment", "--out", tmp_path)
        assert result.exit_code == 3, result.output
        assert seen == [level]
    assert _invoke("--log-level", "LOUD", "release", "x", "--out", tmp_path).exit_code == 2
    logging.getLogger("autograder").handlers.clear()


def test_solutions_runs_in_full_unless_quick(tmp_path, toy_dir, monkeypatch):
    from dataclasses import replace

    import autograder.config as config_mod
    import autograder.release as release_mod

    calls = []
    real = config_mod.load_assignment
    monkeypatch.setattr(
        config_mod, "load_assignment", lambda a: replace(real(a), quick_env={"TOY_QUICK": "1"})
    )
    monkeypatch.setattr(
        release_mod,
        "write_answer_key",
        lambda config, out, *, execute, env: calls.append(env) or out / "k.ipynb",
    )
    result = _invoke("solutions", toy_dir, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    result = _invoke("solutions", toy_dir, "--out", tmp_path, "--quick")
    assert result.exit_code == 0, result.output
    assert calls == [{}, {"TOY_QUICK": "1"}], "full mode by default, quick only when asked"


def test_exit_codes_come_from_the_exceptions():
    from autograder.exceptions import (
        EXIT_OK,
        AssignmentNotFound,
        ConfigError,
        DatasetUnavailable,
        NotSubmittable,
        ReleaseError,
        SandboxError,
        SubmissionError,
        ValidationFailed,
        VisibleTestsFailed,
    )

    assert EXIT_OK == 0 and VisibleTestsFailed.exit_code == 1
    assert ConfigError.exit_code == AssignmentNotFound.exit_code == 3
    assert SubmissionError.exit_code == 4 and NotSubmittable.exit_code == 5
    assert (ReleaseError.exit_code, SandboxError.exit_code) == (6, 7)
    assert (DatasetUnavailable.exit_code, ValidationFailed.exit_code) == (8, 9)
