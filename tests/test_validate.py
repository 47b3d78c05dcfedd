"""`autograder validate`: the toy assignment validates; removing a check file breaks it."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.config import load_config
from autograder.validate import load_mutants, render_table, validate_assignment

pytestmark = pytest.mark.slow


def test_mutants_are_loaded_with_kind_and_reason(toy):
    mutants = load_mutants(toy)
    assert {(m.question, m.kind) for m in mutants} == {
        ("add", "mistake"),
        ("add", "alternative"),
        ("scale", "mistake"),
        ("scale", "alternative"),
    }
    assert all(m.why for m in mutants)


def test_toy_validates_through_the_cli(toy_dir):
    result = CliRunner().invoke(main, ["validate", str(toy_dir)])
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output and "NOT VALID" not in result.output
    assert "8/8 caught" in result.output


@pytest.mark.parametrize("check_file", ["test_add.py", "test_scale.py"])
def test_deleting_a_check_file_fails_and_names_survivors(tmp_path, toy_dir, check_file):
    copy = tmp_path / "toy"
    shutil.copytree(toy_dir, copy)
    (copy / "checks" / check_file).unlink()
    question = check_file[5:-3]
    report = validate_assignment(load_config(copy / "assignment.toml"), jobs=2, run_notebook=False)
    assert not report.ok
    text = render_table(report)
    assert "NOT VALID" in text
    survivors = [s for s in report.survivors if s.startswith(f"{question}/")]
    assert len(survivors) == 4  # every mistake of that question survives, by name
    assert all(f"checks of '{question}'" in s for s in survivors)
    failed = {s.name for s in report.steps if not s.ok}
    assert "answer key scores full marks" in failed
