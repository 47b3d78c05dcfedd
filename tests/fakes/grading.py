"""Fakes for grading one submission without a kernel or sandbox (tests of grade and batch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.scoring import CheckResult


@dataclass
class FakeSandbox:
    scratch: Path
    limits: Any
    readonly: list[Path] = field(default_factory=list)
    cgroup_parent: str = ""

    def __post_init__(self) -> None:
        (self.scratch / "work").mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> FakeSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class FakeSession:
    """Records what grading asked of it; every cell runs fine."""

    made: list[FakeSession] = []

    def __init__(self, sandbox, limits, env=None, zygote=None) -> None:
        self.sandbox, self.limits, self.env = sandbox, limits, dict(env or {})
        self.cells: list[tuple[int, str]] = []
        self.status, self.incidents = "ok", []
        self.closed = False
        FakeSession.made.append(self)

    def start(self) -> None:
        pass

    def run_cells(self, cells: list[tuple[int, str]]) -> None:
        self.cells += cells

    def cpu_seconds(self) -> float:
        return 0.0

    def close(self) -> None:
        self.closed = True


def install(monkeypatch, checks: list[CheckResult] | None = None) -> list[FakeSession]:
    """Grade with fakes: no zygote, no sandbox, no kernel, checks that return `checks`."""
    from autograder import grade

    FakeSession.made = []
    seen_files: list[Path | None] = []

    def run_checks(checks_dir, submission, config, *, skip=frozenset()):
        seen_files.append(submission.files)
        return list(checks or [])

    monkeypatch.setattr(grade, "zygote_for", lambda *a, **k: None)
    monkeypatch.setattr(grade, "Sandbox", FakeSandbox)
    monkeypatch.setattr(grade, "KernelSession", FakeSession)
    monkeypatch.setattr(grade, "run_checks", run_checks)
    return FakeSession.made
