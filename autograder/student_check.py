"""`autograder check NOTEBOOK`: what a student runs before submitting.

It says whether the notebook is submittable (the right assignment, no
deleted or edited locked/test cells, checked against nbgrader's checksums)
and runs the visible tests, reporting which pass. Hidden checks are not
involved: students never have them.

It is the one command of the light, student install (`pip install autograder`, no
extras): it imports neither TensorFlow nor nbgrader; the notebook's own kernel brings
whatever the notebook needs (in Colab, its TensorFlow).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.config import AssignmentConfig, Limits, load_assignment
from autograder.exceptions import AssignmentNotFound, NotebookError
from autograder.notebook import TEST, cell_role, grade_id, nbgrader_checksum, read_notebook
from autograder.sandbox import Sandbox
from autograder.session import KernelSession


@dataclass
class CheckReport:
    assignment: str | None
    problems: list[str] = field(default_factory=list)
    tests: dict[str, str] = field(default_factory=dict)  # grade_id -> "passed" or the error

    @property
    def submittable(self) -> bool:
        return not self.problems

    @property
    def all_passed(self) -> bool:
        return all(v == "passed" for v in self.tests.values())


def _assignment_name(meta: object) -> str | None:
    """The assignment a released notebook names in its `metadata.autograder`."""
    name = meta.get("assignment") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def find_config(path: Path, assignment: str | None = None) -> AssignmentConfig | None:
    """The assignment's config when this machine has it (course staff), else None.

    Students usually have only the notebook: their check then runs with the default
    limits. A config that exists but is broken is an error (ConfigError), not ignored.
    """
    name = assignment
    if name is None:
        try:
            name = _assignment_name(read_notebook(path).metadata.get("autograder"))
        except NotebookError:
            return None
    if not name:
        return None
    try:
        return load_assignment(name)
    except AssignmentNotFound:
        return None


def submittability(nb, assignment: str | None) -> tuple[str | None, list[str]]:
    problems: list[str] = []
    meta = nb.metadata.get("autograder", {})
    if not isinstance(meta, dict):
        meta = {}
    found = _assignment_name(meta)
    if assignment and found and found != assignment:
        problems.append(f"this is the notebook of {found!r}, not {assignment!r}")
    expected = meta.get("grade_ids", []) if isinstance(meta, dict) else []
    if not isinstance(expected, list):
        expected = []
        problems.append("the notebook's metadata was edited: download it again")
    ids = [gid for c in nb.cells if (gid := grade_id(c))]
    for gid in (g for g in expected if isinstance(g, str)):
        if gid not in ids:
            problems.append(
                f"cell {gid!r} was deleted: download the notebook again and copy your answers in"
            )
    for gid in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"cell {gid!r} appears more than once: delete the copy")
    for cell in nb.cells:
        meta_nb = cell.metadata.get("nbgrader", {})
        if not isinstance(meta_nb, dict):
            problems.append("a cell's nbgrader metadata was edited: download the notebook again")
            continue
        if meta_nb.get("locked") or cell_role(cell) == TEST:
            checksum = meta_nb.get("checksum")
            if checksum and nbgrader_checksum(cell) != checksum:
                problems.append(
                    f"locked cell {grade_id(cell)!r} was edited: undo your changes to it"
                )
    return found or assignment, problems


def check_notebook(
    path: Path,
    *,
    assignment: str | None = None,
    config: AssignmentConfig | None = None,
    limits: Limits | None = None,
    skip_tags: tuple[str, ...] | None = None,
) -> CheckReport:
    """Submittability, then the visible tests in a sandboxed kernel.

    The assignment's config, when given, sets the limits, the tags of cells not run
    and the kernel's environment, as grading does; `limits` and `skip_tags` override it.
    """
    if limits is None:
        limits = config.limits if config else Limits()
    if skip_tags is None:
        skip_tags = config.skip_tags if config else ("training",)
    env = dict(config.env) if config else {}
    try:
        nb = read_notebook(path)
    except NotebookError as exc:
        return CheckReport(assignment, [f"{path}: {exc}"])
    name, problems = submittability(nb, assignment)
    report = CheckReport(name, problems)
    with tempfile.TemporaryDirectory(prefix="ag-check-") as tmp, Sandbox(Path(tmp), limits) as sb:
        session = KernelSession(sb, limits, env=env)
        try:
            session.start()
            for number, cell in enumerate(nb.cells, start=1):
                if cell.cell_type != "code" or any(
                    t in skip_tags for t in cell.metadata.get("tags", [])
                ):
                    continue
                before = len(session.incidents)
                session.run_cells([(number, cell.source)])
                if cell_role(cell) == TEST:
                    new = session.incidents[before:]
                    report.tests[grade_id(cell) or f"cell {number}"] = (
                        new[0].message or new[0].kind.value if new else "passed"
                    )
        finally:
            session.close()
    return report
