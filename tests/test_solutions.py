"""solutions/lab4-cnn is generated from the source notebook and stays in sync with it."""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.config import load_assignment
from autograder.notebook import grade_id
from autograder.release import answer_key, strip_solution_markers

REPO = Path(__file__).resolve().parent.parent
KEY = REPO / "solutions" / "lab4-cnn" / "lab4-cnn.ipynb"


def test_answer_key_matches_the_source():
    config = load_assignment(REPO / "assignments" / "lab4-cnn")
    fresh = answer_key(config)
    committed = nbformat.read(KEY, as_version=4)
    assert [grade_id(c) for c in committed.cells] == [grade_id(c) for c in fresh.cells]
    for a, b in zip(committed.cells, fresh.cells, strict=True):
        assert a.source == b.source, f"solutions/ is stale at {grade_id(a)}: run `make solutions`"


def test_answer_key_is_executed_and_holds_no_markers():
    committed = nbformat.read(KEY, as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert any(c.get("outputs") for c in code), "the answer key was not executed"
    for cell in committed.cells:
        assert strip_solution_markers(cell.source) == cell.source
        assert "BEGIN HIDDEN TESTS" not in cell.source
