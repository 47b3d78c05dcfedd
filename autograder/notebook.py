"""Reading submitted notebooks and restoring what students may not change.

Grading trusts the source, not the submission: every locked and test cell is
put back from the released notebook (matched by nbgrader `grade_id`), answer
cells keep only the student's source, and metadata (points, grade flags,
tags) always comes from the release. Cells a student added stay, in place;
deleted locked cells come back; duplicated ids count once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell

from autograder.cleantext import encodable_tree
from autograder.exceptions import NotebookError

MAX_NOTEBOOK_BYTES = 32 << 20  # defaults; an assignment's [limits] may set its own
MAX_CELLS = 2000
# Objects and arrays in a notebook's JSON: a graded notebook holds a few hundred. Each
# costs hundreds of bytes once nbformat has built and validated it, so 10 million empty
# `{}` in a 29 MiB file would cost 5 GB; past this the file is refused before parsing.
MAX_JSON_CONTAINERS = 100_000
# Values of any kind (strings, numbers ...): a list of 6.4 million two-letter strings,
# 31 MiB, cost 1.2 GB once parsed. A graded notebook holds tens of thousands (a line of
# source or output is one).
MAX_JSON_VALUES = 1_000_000
# A JSON string, unrolled so that the regex engine keeps no state per character.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
ANSWER, MANUAL, TEST, LOCKED, PLAIN = "answer", "manual", "test", "locked", "plain"


_NEW_CELL = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}


def cell_role(cell: NotebookNode) -> str:
    meta = cell.get("metadata", {}).get("nbgrader")
    if not isinstance(meta, dict):
        return PLAIN
    solution, grade = bool(meta.get("solution")), bool(meta.get("grade"))
    if solution and grade:
        return MANUAL
    if solution:
        return ANSWER
    if grade:
        return TEST
    if meta.get("locked"):
        return LOCKED
    return PLAIN


def grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
        return meta["grade_id"]
    return None


def json_counts(raw: bytes) -> tuple[int, int]:
    """(objects and arrays, values of any kind) in the JSON text `raw`, counting brackets
    and commas outside strings.

    Counting every bracket and comma is an upper bound, exact enough for any real
    notebook; only past a limit are the strings' own counted and taken off, string by
    string: cutting the strings out would build one object per string (1.1 GB for the
    6.4 million strings above). Every string is a value or a key, so a file with more
    string delimiters than that limit allows is over it without that count.
    """
    containers = raw.count(b"{") + raw.count(b"[")
    values = containers + raw.count(b",") + 1
    if containers <= MAX_JSON_CONTAINERS and values <= MAX_JSON_VALUES:
        return containers, values
    strings = (raw.count(b'"') - raw.count(b'\\"')) // 2  # at least this many
    if strings > 2 * MAX_JSON_VALUES:  # keys and values: half of them values, or more
        return containers, strings // 2
    count = raw.count
    for match in _JSON_STRING.finditer(raw):
        start, end = match.span()
        if end - start > 2:
            inside = count(b"{", start, end) + count(b"[", start, end)
            containers -= inside
            values -= inside + count(b",", start, end)
    return containers, values


def read_notebook(
    path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES, max_cells: int = MAX_CELLS
) -> NotebookNode:
    """A v4 notebook, or NotebookError with a short status ("empty file", ...).

    Student bytes: the file's size and its number of cells are checked before nbformat
    builds and validates anything (a 200,000-cell notebook would cost minutes and
    gigabytes there), and the JSON is parsed once.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise NotebookError(f"unreadable ({exc.strerror})") from None
    if size == 0:
        raise NotebookError("empty file")
    if size > max_bytes:
        raise NotebookError(
            f"notebook too large ({size >> 20} MiB; the limit is {max_bytes >> 20} MiB)"
        )
    with path.open("rb") as fh:
        raw = fh.read(max_bytes + 1)  # the file may have grown since stat()
    if len(raw) > max_bytes:
        raise NotebookError(f"notebook too large (over {max_bytes >> 20} MiB)")
    containers, values = json_counts(raw)
    if containers > MAX_JSON_CONTAINERS or values > MAX_JSON_VALUES:
        cell_count = raw.count(b'"cell_type"')  # the likelier reason, said as such
        if cell_count > max_cells:
            raise NotebookError(f"too many cells ({cell_count:,}; the limit is {max_cells:,})")
        if containers > MAX_JSON_CONTAINERS:
            raise NotebookError(
                f"not a notebook (more than {MAX_JSON_CONTAINERS:,} JSON objects and arrays)"
            )
        raise NotebookError(
            f"not a notebook (more than {MAX_JSON_VALUES:,} JSON values, such as lines of "
            "output: clear the outputs and submit again)"
        )
    try:
        data = encodable_tree(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise NotebookError("not a notebook (not JSON)") from None
    del raw
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError("not a notebook (no nbformat version)")
    cells = data.get("cells")
    if isinstance(cells, list) and len(cells) > max_cells:
        raise NotebookError(f"too many cells ({len(cells):,}; the limit is {max_cells:,})")
    try:
        major, minor = nbformat.reader.get_version(data)
        nb = nbformat.versions[major].to_notebook_json(data, minor=minor)
        nb = nbformat.convert(nb, 4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many types for bad input
        raise NotebookError(f"not a notebook ({type(exc).__name__})") from None
    if len(nb.get("cells", [])) > max_cells:  # v3 worksheets hold their cells elsewhere
        raise NotebookError(f"too many cells ({len(nb.cells):,}; the limit is {max_cells:,})")
    for cell in nb.cells:
        if not isinstance(cell.get("source", ""), str):
            raise NotebookError("not a notebook (bad cell source)")
    return nb


@dataclass
class Restored:
    notebook: NotebookNode
    missing: list[str] = field(default_factory=list)  # locked/test ids the student deleted
    edited: list[str] = field(default_factory=list)  # locked/test ids whose content changed
    duplicates: list[str] = field(default_factory=list)
    answers_found: list[str] = field(default_factory=list)


def belongs_to(submitted: NotebookNode, release: NotebookNode, assignment: str) -> bool:
    """Is this the assignment's notebook at all (not another lab's)?"""
    tagged = submitted.metadata.get("autograder", {})
    if not isinstance(tagged, dict):  # a student can write anything into metadata
        tagged = {}
    if tagged.get("assignment") not in (None, assignment):
        return False
    release_ids = {grade_id(c) for c in release.cells if grade_id(c)}
    found = {grade_id(c) for c in submitted.cells if grade_id(c)} & release_ids
    return len(found) * 2 >= len(release_ids) or tagged.get("assignment") == assignment


def restore(submitted: NotebookNode, release: NotebookNode) -> Restored:
    """The release's cells in the release's order, with the student's answers and extras."""
    release_ids = [grade_id(c) for c in release.cells]
    known = {i for i in release_ids if i}
    answers: dict[str, NotebookNode] = {}
    extras: dict[str | None, list[NotebookNode]] = {}
    anchor: str | None = None
    seen: set[str] = set()
    result = Restored(notebook=copy.deepcopy(release))
    by_id = {grade_id(c): c for c in release.cells if grade_id(c)}
    for cell in submitted.cells:
        gid = grade_id(cell)
        if gid in known:
            if gid in seen:
                result.duplicates.append(gid)
                continue
            seen.add(gid)
            anchor = gid
            if cell_role(by_id[gid]) in (ANSWER, MANUAL):
                answers[gid] = cell
            elif cell.get("source", "") != by_id[gid].get("source", "") or (
                cell.get("metadata", {}).get("nbgrader") != by_id[gid].metadata.get("nbgrader")
            ):
                result.edited.append(gid)
            continue
        # A student cell never carries grading metadata, tags or outputs; a fresh cell
        # (with a valid id) holds only its source.
        make = _NEW_CELL.get(cell.get("cell_type", "code"))
        if make is None:
            continue
        extras.setdefault(anchor, []).append(make(source=cell.get("source", "")))
    cells = list(extras.get(None, []))
    for rcell, gid in zip(release.cells, release_ids, strict=True):
        cell = copy.deepcopy(rcell)
        if gid in answers:
            cell.source = answers[gid].get("source", "")
            result.answers_found.append(gid)
        elif gid and gid not in seen and cell_role(rcell) in (TEST, LOCKED):
            result.missing.append(gid)
        cells.append(cell)
        cells.extend(extras.get(gid, []))
    result.notebook.cells = cells
    return result


def code_cells_to_run(
    nb: NotebookNode, skip_tags: tuple[str, ...]
) -> list[tuple[int, NotebookNode]]:
    """(1-based cell number, cell) for each code cell grading runs.

    Test cells are left out: their asserts would run in the student's process,
    where they prove nothing; grading uses the hidden checks instead.
    """
    out = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code" or cell_role(cell) == TEST:
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in skip_tags for t in tags):
            continue
        out.append((number, cell))
    return out


def nbgrader_checksum(cell: NotebookNode) -> str:
    """nbgrader's checksum of a cell (`nbgrader.utils.compute_checksum`), reimplemented.

    The student checker compares locked cells with it; importing nbgrader for 15 lines
    would make students install the whole grading stack (tests/test_notebook.py checks
    that both agree).
    """
    meta = cell.metadata.get("nbgrader", {})
    grade = bool(meta.get("grade", False))
    solution = bool(meta.get("solution", False))
    locked = False if solution else True if grade else bool(meta.get("locked", False))
    digest = hashlib.md5()
    for part in (cell.source, cell.cell_type, str(grade), str(solution), str(locked)):
        digest.update(part.encode("utf-8"))
    digest.update(str(meta.get("grade_id", "")).encode("utf-8"))
    if grade:
        digest.update(str(float(meta.get("points", 0))).encode("utf-8"))
    return digest.hexdigest()
