"""Shared by the per-assignment check tests: mutants on disk, and grading a namespace.

A mutant is `assignments/<name>/mutants/<question>/<case>.py`, whose first two lines are
`# kind: mistake|alternative` and `# why: ...`; its code replaces the question's answer
cell. Here a namespace of trusted code is graded in-process (`LocalSubmission`): the same
encode/decode path as a sandboxed call, without a kernel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.bridge import LocalSubmission
from autograder.plugin import run_checks

# Messages of checks that crashed instead of judging (see autograder.plugin.failure_message).
CRASHED = ("the check could not run", "a hidden check failed")


def header(path: Path) -> tuple[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    kind = lines[0].removeprefix("# kind:").strip() if lines else ""
    why = lines[1].removeprefix("# why:").strip() if len(lines) > 1 else ""
    return kind, why


def mutant_files(mutants: Path, question: str, kind: str) -> list[Path]:
    folder = mutants / question
    files = sorted(folder.glob("*.py")) if folder.is_dir() else []
    return [p for p in files if header(p)[0] == kind]


def params(mutants: Path, questions: tuple[str, ...], kind: str) -> list:
    return [
        pytest.param(q, p, id=f"{q}/{p.stem}")
        for q in questions
        for p in mutant_files(mutants, q, kind)
    ]


def run_source(path: Path, ns: dict) -> dict:
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), ns)  # trusted files
    return ns


def grade(config, ns: dict, question: str, tmp_path: Path):
    submission = LocalSubmission(ns, tmp_path / "scratch", student=question)
    try:
        results = run_checks(config.checks_dir, submission, config, only={question})
    finally:
        submission.close()
    assert results, f"{question}: no check ran"
    assert {r.question for r in results} == {question}
    crashed = [f"{r.name}: {r.message}" for r in results if r.message.startswith(CRASHED)]
    assert not crashed, f"{question}: checks crashed instead of judging: {crashed}"
    return results


def failures(results) -> list[str]:
    return [f"{r.name}: {r.message}" for r in results if not r.passed]


def check_mutant_headers(mutants: Path, question: str) -> None:
    mistakes = mutant_files(mutants, question, "mistake")
    alternatives = mutant_files(mutants, question, "alternative")
    assert len(mistakes) >= 4, f"{question}: {len(mistakes)} mistake mutants, need 4"
    assert len(alternatives) >= 1, f"{question}: no alternative mutant"
    for path in sorted((mutants / question).glob("*.py")):
        kind, why = header(path)
        assert kind in ("mistake", "alternative"), f"{path.name}: first line must be '# kind: ...'"
        assert why, f"{path.name}: second line must be '# why: ...'"
