"""Each student's answer cells, kept beside the grades (OUT/<student>/answers.json).

Manual grading and similarity both read answers after grading, when the submissions
(an unzipped LMS download) may be gone. The file holds every answer cell's source
(the release's cell ids, so a student cannot add or rename one) and, for manual
questions, the outputs the question refers to: text and PNG only, capped in size;
HTML outputs and anything else a student could make the grader display are dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from autograder.config import AssignmentConfig
from autograder.notebook import ANSWER, MANUAL, cell_role, grade_id, restore

ANSWERS_FILE = "answers.json"
MAX_SOURCE = 50_000
MAX_TEXT = 20_000
MAX_PNG = 1 << 20
MAX_OUTPUTS = 8
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Output:
    kind: str  # "text" | "png"
    data: str  # text, or base64 PNG


@dataclass(frozen=True)
class Answers:
    student: str
    cells: dict[str, str]  # answer grade_id -> the student's source
    outputs: dict[str, tuple[Output, ...]]  # manual question -> outputs shown beside it

    def to_dict(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "cells": self.cells,
            "outputs": {q: [o.__dict__ for o in outs] for q, outs in self.outputs.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answers:
        return cls(
            student=str(data["student"]),
            cells={str(k): str(v) for k, v in data.get("cells", {}).items()},
            outputs={
                q: tuple(Output(str(o["kind"]), str(o["data"])) for o in outs)
                for q, outs in data.get("outputs", {}).items()
            },
        )


def answer_ids(release: NotebookNode) -> list[str]:
    return [gid for c in release.cells if (gid := grade_id(c)) and cell_role(c) in (ANSWER, MANUAL)]


def starter_sources(release: NotebookNode) -> dict[str, str]:
    """What students were given in each answer cell: left out of similarity."""
    return {
        gid: c.source
        for c in release.cells
        if (gid := grade_id(c)) and cell_role(c) in (ANSWER, MANUAL)
    }


def output_cells(release: NotebookNode, config: AssignmentConfig) -> dict[str, tuple[str, ...]]:
    """For each manual question, the grade_ids of the code cells whose outputs it refers to:
    those named in assignment.toml, else the last code cell before the answer."""
    found: dict[str, tuple[str, ...]] = {}
    last_code: str | None = None
    for cell in release.cells:
        gid = grade_id(cell)
        if gid in config.questions and config.questions[gid].manual:
            q = config.questions[gid]
            found[gid] = q.outputs or ((last_code,) if last_code else ())
        if cell.cell_type == "code" and gid:
            last_code = gid
    return found


def _outputs(cell: NotebookNode) -> list[Output]:
    kept: list[Output] = []
    for out in cell.get("outputs", []) or []:
        if not isinstance(out, dict):
            continue
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            if isinstance(text, list):
                text = "".join(str(t) for t in text)
            kept.append(Output("text", str(text)[:MAX_TEXT]))
            continue
        data = out.get("data", {})
        if not isinstance(data, dict):
            continue
        png = data.get("image/png")
        if isinstance(png, str) and len(png) <= MAX_PNG * 4 // 3 + 4:
            try:
                raw = base64.b64decode(png, validate=False)
            except (binascii.Error, ValueError):
                raw = b""
            if raw.startswith(PNG_MAGIC):
                kept.append(Output("png", base64.b64encode(raw).decode()))
                continue
        text = data.get("text/plain")
        if isinstance(text, list):
            text = "".join(str(t) for t in text)
        if isinstance(text, str) and not text.startswith("<Figure size"):
            kept.append(Output("text", text[:MAX_TEXT]))
    return kept


def extract_answers(
    student: str, nb: NotebookNode, release: NotebookNode, config: AssignmentConfig
) -> Answers:
    restored = restore(nb, release).notebook
    ids = set(answer_ids(release))
    cells = {
        gid: str(c.source)[:MAX_SOURCE]
        for c in restored.cells
        if (gid := grade_id(c)) in ids and cell_role(c) in (ANSWER, MANUAL)
    }
    by_id: dict[str, NotebookNode] = {}
    for c in nb.cells:
        gid = grade_id(c)
        if gid and gid not in by_id and c.get("cell_type") == "code":
            by_id[gid] = c
    outputs = {}
    for qid, sources in output_cells(release, config).items():
        outs: list[Output] = []
        for gid in sources:
            if gid in by_id:
                outs.extend(_outputs(by_id[gid]))
        outputs[qid] = tuple(outs[:MAX_OUTPUTS])
    return Answers(student, cells, outputs)


def write_answers(answers: Answers, folder: Path) -> None:
    from autograder.safeio import atomic_write

    atomic_write(folder / ANSWERS_FILE, json.dumps(answers.to_dict()))


def load_answers(folder: Path) -> Answers | None:
    try:
        return Answers.from_dict(json.loads((folder / ANSWERS_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


GRADED_NOTEBOOK = "graded.ipynb"


def graded_notebook(nb: NotebookNode, release: NotebookNode) -> NotebookNode:
    """The notebook as graded (release cells, the student's answers) with the student's own
    outputs for code cells, reduced to text and PNG: what formgrader shows a grader. HTML and
    JavaScript outputs are dropped, since they would run in the grader's browser."""
    from nbformat.v4 import new_output

    restored = restore(nb, release).notebook
    by_id: dict[str, NotebookNode] = {}
    for c in nb.cells:
        gid = grade_id(c)
        if gid and gid not in by_id and c.get("cell_type") == "code":
            by_id[gid] = c
    for cell in restored.cells:
        gid = grade_id(cell)
        if cell.cell_type != "code" or gid not in by_id:
            continue
        outs = []
        for o in _outputs(by_id[gid])[:MAX_OUTPUTS]:
            if o.kind == "png":
                outs.append(new_output("display_data", data={"image/png": o.data}))
            else:
                outs.append(new_output("stream", name="stdout", text=o.data))
        cell.outputs = outs
    return restored
