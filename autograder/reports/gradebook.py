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


def _cell(text: str) -> str:
    """Keep a student-chosen id from becoming a spreadsheet formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def gradebook_rows(results: list[SubmissionResult], config: AssignmentConfig) -> list[list[str]]:
    header = ["student", *config.questions, "total", "max_total", "status"]
    rows = [header]
    for r in results:
        rows.append(
            [
                _cell(r.student),
                *(
                    _fmt(r.questions[q].points) if q in r.questions else ""
                    for q in config.questions
                ),
                _fmt(r.total),
                _fmt(r.max_total),
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
