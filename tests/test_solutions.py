"""solutions/<assignment> is generated from the source notebook, stays in sync with it,
was executed in full (not quick) mode, and its written answers quote its own outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.config import load_assignment
from autograder.notebook import MANUAL, cell_role, grade_id
from autograder.release import answer_key, strip_solution_markers

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("lab4-cnn", "cnn-intro")
# An accuracy as the key's outputs print it (0.8547): the numbers an answer's argument rests
# on. Counts and sizes worked out in the prose (7·7·64 = 3,136) need not be printed.
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d{3,})(?![\w])")


def key_path(name: str) -> Path:
    return REPO / "solutions" / name / f"{name}.ipynb"


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out:
                parts.append(str(out["data"].get("text/plain", "")))
                parts.append(str(out["data"].get("text/markdown", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_answer_key_matches_the_source(name):
    config = load_assignment(REPO / "assignments" / name)
    fresh = answer_key(config)
    committed = nbformat.read(key_path(name), as_version=4)
    assert [grade_id(c) for c in committed.cells] == [grade_id(c) for c in fresh.cells]
    for a, b in zip(committed.cells, fresh.cells, strict=True):
        assert a.source == b.source, f"solutions/ is stale at {grade_id(a)}: run `make solutions`"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_answer_key_is_executed_and_holds_no_markers(name):
    committed = nbformat.read(key_path(name), as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("outputs") is not None for c in code)
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 2, "the key was not executed"
    for cell in committed.cells:
        assert strip_solution_markers(cell.source) == cell.source
        assert "BEGIN HIDDEN TESTS" not in cell.source


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_answer_key_ran_in_full_mode(name):
    """Published numbers come from the full budget: the setup prints the mode it ran in."""
    text = outputs_text(nbformat.read(key_path(name), as_version=4))
    assert "quick mode: False" in text, f"{name}: the key does not say it ran in full mode"
    assert "quick mode: True" not in text, f"{name}: the key was executed in quick mode"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_written_answers_quote_the_keys_own_outputs(name):
    """Every accuracy the key's written answers give is one its cells print: a key run in
    quick mode, or answers written for another run, contradict themselves and fail here."""
    key = nbformat.read(key_path(name), as_version=4)
    printed = outputs_text(key)
    written = [c for c in key.cells if cell_role(c) == MANUAL]
    assert written, f"{name}: no written answer in the key"
    for cell in written:
        numbers = NUMBER.findall(cell.source)
        assert len(numbers) >= 3, f"{name}/{grade_id(cell)}: the answer quotes no numbers"
        missing = sorted({n for n in numbers if n not in printed})
        assert not missing, (
            f"{name}/{grade_id(cell)}: these numbers are in the written answer but in none of "
            f"the key's outputs: {missing}"
        )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_answer_key_is_submittable(name):
    """The key passes the student checker's integrity test: no locked cell out of step with
    its checksum (a written answer or timing patched in without updating it would be)."""
    from autograder.notebook import nbgrader_checksum

    key = nbformat.read(key_path(name), as_version=4)
    stale = [
        grade_id(c)
        for c in key.cells
        if c.metadata.get("nbgrader", {}).get("checksum")
        and nbgrader_checksum(c) != c.metadata["nbgrader"]["checksum"]
    ]
    assert not stale, f"{name}: stale checksums in the key: {stale}"
