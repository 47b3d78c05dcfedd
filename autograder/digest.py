"""Content hashes that decide whether a stored grade can be reused.

A grade is reused only when everything that could change it hashes the same:
the student's notebook and extra files, the assignment (config, source
notebook, checks) and the grader's own code. Cheap to compute and import-light,
so re-grading an unchanged class costs little more than reading it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from autograder import __version__
from autograder.config import AssignmentConfig
from autograder.submissions import MAX_EXTRA_FILE, SubmissionInput, submission_files

PACKAGE = Path(__file__).resolve().parent


def _hash_tree(h: hashlib._Hash, folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())


def _hash_file(h: hashlib._Hash, path: Path) -> None:
    """Stream a file into the hash; past the size we would grade, its size stands in."""
    size = path.stat().st_size
    if size > MAX_EXTRA_FILE:
        h.update(f"<{size} bytes>".encode())
        return
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)


def code_digest() -> str:
    """The grader's own code (the autograder package).

    Not cached: read from disk each time, so a Dask worker and the client on one
    machine agree even while the package is being edited.
    """
    h = hashlib.sha256(__version__.encode())
    _hash_tree(h, PACKAGE)
    return h.hexdigest()


def assignment_digest(config: AssignmentConfig) -> str:
    """Everything of the grader's side that can change a grade."""
    h = hashlib.sha256(code_digest().encode())
    h.update(config.config_path.read_bytes())
    h.update(config.notebook.read_bytes())
    _hash_tree(h, config.checks_dir)
    return h.hexdigest()


def submission_digest(sub: SubmissionInput, assignment: str, skip: frozenset[str]) -> str:
    """The notebook and exactly the extra files grading uses (`submission_files`)."""
    h = hashlib.sha256(assignment.encode())
    h.update(repr(sorted(skip)).encode())
    h.update(sub.problem.encode())
    if sub.notebook is not None and sub.notebook.is_file():
        _hash_file(h, sub.notebook)
    for path in submission_files(sub):
        h.update(path.name.encode())
        _hash_file(h, path)
    return h.hexdigest()
