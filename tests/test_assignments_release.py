"""Every bundled assignment releases as students must get it, through the CLI contract
`autograder release NAME --out D` -> D/NAME/NAME.ipynb.

The released notebook holds every answer cell as a stub and nothing a student must not
see: no solution, no hidden test, no written answer of the key, and no path of the
machine it was built on.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.config import load_assignment
from autograder.notebook import ANSWER, MANUAL, cell_role, grade_id
from autograder.release import answer_key

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.parent.name for p in (REPO / "assignments").glob("*/assignment.toml"))
MACHINE_PATH = re.compile(r"(?<![\w.])/(work|root|home|tmp|var|usr/local)/")


def test_both_course_assignments_are_bundled():
    assert {"lab4-cnn", "cnn-intro"} <= set(ASSIGNMENTS)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_writes_a_stubbed_notebook(name, tmp_path):
    result = CliRunner().invoke(main, ["release", name, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = tmp_path / name / f"{name}.ipynb"
    assert path.is_file(), result.output
    released = nbformat.read(path, as_version=4)
    key = answer_key(load_assignment(name))
    key_answers = {grade_id(c): c.source for c in key.cells if cell_role(c) in (ANSWER, MANUAL)}
    roles = {grade_id(c): cell_role(c) for c in released.cells}
    assert set(key_answers) <= set(roles), "an answer cell is missing from the release"
    for cell in released.cells:
        text = cell.source
        where = f"{name}: cell {grade_id(cell) or '(plain)'}"
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, where
        assert "HIDDEN TESTS" not in text, where
        assert not MACHINE_PATH.search(text), f"{where} names a machine path"
        if cell_role(cell) == ANSWER:
            assert "YOUR CODE HERE" in text, f"{where} is not stubbed"
        if cell_role(cell) == MANUAL:
            assert text.strip() == "YOUR ANSWER HERE", f"{where} holds an answer"
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{where} has outputs"
