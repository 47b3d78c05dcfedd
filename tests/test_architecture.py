"""Rules of the package's layout that a review would otherwise have to catch."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "autograder"


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_engine_names_no_assignment():
    """Assignment-specific settings live in the assignment's folder, not in the engine.

    Only the demo, which grades the bundled Lab 4 examples, may name it.
    """
    named = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if p.name != "demo.py" and re.search("lab4", p.read_text(), re.IGNORECASE)
    ]
    assert named == []


def test_diagnostics_go_through_logging():
    writes = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if "sys.stderr.write(" in p.read_text() and p.name not in ("warm.py",)  # issue #13
    ]
    assert writes == []


def test_exit_codes_are_not_literals_in_the_cli():
    text = (PACKAGE / "cli.py").read_text()
    assert not re.search(r"sys\.exit\(\s*\d", text)
    assert not re.search(r"sys\.exit\(.*\belse \d", text)
