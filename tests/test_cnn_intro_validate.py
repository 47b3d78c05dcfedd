"""The instructor's proof for cnn-intro: `autograder validate cnn-intro` passes.

The same engine and steps as Lab 4 (tests/test_lab4_validate.py), with nothing in the
engine for this assignment: the source runs offline on its quick budget, the key scores
full marks (its deeper CNN trained by the grader against the reference), stubs score
zero, sampled mistakes are caught on their own question, alternatives get full marks.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from autograder.cli import main

pytestmark = pytest.mark.slow


def test_validate_cnn_intro():
    # Two mistakes and one alternative per question keep CI inside its time budget; every
    # mutant also runs in-process in tests/assignments/test_cnn_intro_checks.py, and
    # `make validate` grades them all through the sandbox.
    result = CliRunner().invoke(
        main, ["validate", "cnn-intro", "-j", "2", "--mistakes-per-question", "2"]
    )
    print(result.output)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("| ")]
    assert len(lines) == 10 and all("| PASS" in line for line in lines[1:]), result.output
    assert result.output.rstrip().endswith("VALID") and "NOT VALID" not in result.output
