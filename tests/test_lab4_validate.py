"""The instructor's proof for Lab 4: `autograder validate lab4-cnn` passes.

This one run covers, through the real sandboxed pipeline: the source notebook
executes offline (quick budget), the answer key scores full marks on every
autograded question (the trained accuracy included, on the CPU budget), the
released stubs score zero, every mutant in assignments/lab4-cnn/mutants is
caught on its own question only, every alternative answer gets full marks, and
two gradings of the key are identical.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from autograder.cli import main

pytestmark = pytest.mark.slow


def test_validate_lab4_cnn():
    # Two mistakes and one alternative per question keep CI inside its time budget; every
    # mutant also runs in-process in tests/assignments/test_lab4_checks.py, and
    # `make validate` grades them all through the sandbox.
    result = CliRunner().invoke(
        main, ["validate", "lab4-cnn", "-j", "2", "--mistakes-per-question", "2"]
    )
    print(result.output)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("| ")]
    steps = [line.split("|")[1].strip() for line in lines[1:]]
    assert "the CPU budget leaves the key room" in steps, result.output
    assert steps[0] == "assignment.toml names only the notebook's cells", result.output
    assert len(lines) == 10 and all("| PASS" in line for line in lines[1:]), result.output
    assert result.output.rstrip().endswith("VALID") and "NOT VALID" not in result.output
