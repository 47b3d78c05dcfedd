"""The student version of an assignment (nbgrader's generate_assignment) and its answer key.

nbgrader does the release: solutions replaced by stubs, hidden tests removed,
cells locked and checksummed. We only add a small `metadata.autograder` block
(assignment name and the grade_ids it must contain) so `autograder check`
can tell a student their notebook is not submittable before they submit it.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.config import AssignmentConfig
from autograder.consistency import require_consistent
from autograder.exceptions import ReleaseError
from autograder.notebook import ANSWER, MANUAL, cell_role, grade_id
from autograder.runenv import execute_notebook, python_bin_on_path

SOLUTION_MARKERS = re.compile(r"^\s*#+\s*(BEGIN|END) SOLUTION\s*$")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autograder"


def source_digest(config: AssignmentConfig) -> str:
    return hashlib.sha256(config.notebook.read_bytes()).hexdigest()[:16]


def generate_release(config: AssignmentConfig) -> NotebookNode:
    """Run nbgrader's generate_assignment on the source notebook; return the student notebook."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="ag-release-") as tmp:
        course = Path(tmp)
        src = course / "source" / config.name
        src.mkdir(parents=True)
        shutil.copy(config.notebook, src / config.notebook.name)
        cfg = Config()
        cfg.CourseDirectory.root = str(course)
        cfg.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
        cfg.GenerateAssignment.create_assignment = True
        cfg.Exchange.root = str(course / "exchange")
        api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
        with python_bin_on_path():  # nbgrader shells out to `alembic`, beside this Python
            result = api.generate_assignment(config.name, force=True, create=True)
        out = course / "release" / config.name / config.notebook.name
        if not result.get("success") or not out.is_file():
            log = "\n".join(
                line
                for line in (result.get("log") or result.get("error") or "").splitlines()
                if "[ERROR]" in line or "Error" in line
            )[-1500:]
            raise ReleaseError(
                f"nbgrader generate_assignment failed for {config.notebook}: {log}. "
                "Fix the source notebook's nbgrader metadata (nbgrader validate helps)"
            )
        nb = nbformat.read(out, as_version=4)
    nb.metadata["autograder"] = {
        "assignment": config.name,
        "grade_ids": [gid for c in nb.cells if (gid := grade_id(c))],
    }
    return nb


def release_notebook(config: AssignmentConfig) -> NotebookNode:
    """The released notebook, cached by the source's content hash (nbgrader takes seconds)."""
    cached = CACHE_DIR / "release" / f"{config.name}-{source_digest(config)}.ipynb"
    if cached.is_file():
        return nbformat.read(cached, as_version=4)
    nb = generate_release(config)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, cached)
    return nb


def strip_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not SOLUTION_MARKERS.match(line))


def solution_sources(config: AssignmentConfig) -> dict[str, str]:
    """grade_id -> the instructor's answer, from the one source of truth."""
    source = nbformat.read(config.notebook, as_version=4)
    return {
        gid: strip_solution_markers(cell.source)
        for cell in source.cells
        if (gid := grade_id(cell)) and cell_role(cell) in (ANSWER, MANUAL)
    }


def answer_key(config: AssignmentConfig, release: NotebookNode | None = None) -> NotebookNode:
    """The released notebook as a perfect student would submit it (not executed)."""
    release = release if release is not None else release_notebook(config)
    answers = solution_sources(config)
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers and cell_role(cell) in (ANSWER, MANUAL):
            cell.source = answers[gid]
    return nb


def release(config: AssignmentConfig, out: Path) -> Path:
    """Write DIR/<assignment>/<notebook> for students: the notebook and nothing else.

    An assignment.toml that names cells the source notebook lacks is refused first."""
    try:
        source = nbformat.read(config.notebook, as_version=4)
    except (OSError, ValueError) as exc:  # nbformat's NotJSONError is a ValueError
        raise ReleaseError(
            f"cannot read the source notebook {config.notebook} ({exc}). Fix or restore it"
        ) from None
    require_consistent(config, source)
    nb = generate_release(config)
    target = Path(out) / config.name / config.notebook.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def write_answer_key(
    config: AssignmentConfig, out: Path, *, execute: bool = True, env: dict[str, str] | None = None
) -> Path:
    """solutions/<assignment>/<notebook>: the answer key, executed so it shows real outputs.

    `env` is added to the kernel's environment (the CLI passes the assignment's quick_env).
    """
    nb = answer_key(config)
    target = Path(out) / config.name / config.notebook.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if execute:
        execute_notebook(nb, timeout=1800, env=env)
    nbformat.write(nb, target)
    return target
