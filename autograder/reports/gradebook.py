"""gradebook.csv: one row per submission, one column per question."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.safeio import atomic_write
from autograder.scoring import SubmissionResult


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Keep a student-chosen id from becoming a spreadsheet formula."""
    return "'" + text if text[:1] in FORMULA_STARTS else text


def uncell(text: str) -> str:
    """The id `_cell` neutralised, as it was (for reading gradebook.csv back)."""
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_STARTS else text


def csv_text(rows: list[list[str]]) -> str:
    """RFC 4180 text; CRLF also makes the writer quote a lone "\r" inside a cell."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


def gradebook_rows(results: list[SubmissionResult], config: AssignmentConfig) -> list[list[str]]:
    """One row per submission. With a late policy, the raw total is followed by when the work
    came in, the penalty and the final total (what the LMS gets)."""
    late = config.late is not None
    header = ["student", *config.questions, "total", "max_total", "status"]
    if late:
        header[-1:-1] = ["submitted", "late_penalty", "final_total"]
    rows = [header]
    for r in results:
        extra = [_cell(r.submitted_at), _fmt(r.penalty), _fmt(r.final_total)] if late else []
        rows.append(
            [
                _cell(r.student),
                *(
                    _fmt(r.questions[q].points) if q in r.questions else ""
                    for q in config.questions
                ),
                _fmt(r.total),
                _fmt(r.max_total),
                *extra,
                r.status,
            ]
        )
    return rows


def write_gradebook(results: list[SubmissionResult], config: AssignmentConfig, path: Path) -> None:
    buf = io.StringIO()
    # CRLF (RFC 4180) also makes the writer quote a lone "\r" in a student id, which would
    # otherwise end the row early in a spreadsheet.
    csv.writer(buf, lineterminator="\r\n").writerows(gradebook_rows(results, config))
    atomic_write(path, buf.getvalue())
