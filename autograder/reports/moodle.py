"""Moodle's grade import from CSV (Grades > Import > CSV file).

Moodle maps one identifier column to a user field (email address, username or
ID number) and each other column to a grade item or its feedback, so the file
carries all three identifiers, the grade and a feedback line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autograder.reports.gradebook import _cell, _fmt, csv_text

if TYPE_CHECKING:
    from autograder.export import ExportPlan


def moodle_csv(plan: ExportPlan, column: str) -> str:
    rows = [["Full name", "Email address", "Username", "ID number", column, "Feedback"]]
    for m in plan.matched:
        e = m.entry
        status = "" if m.grade.status == "ok" else f"status: {m.grade.status}"
        rows.append(
            [
                _cell(e.display_name),
                _cell(e.email),
                _cell(e.login),
                _cell(e.sis_id),
                _fmt(m.grade.score),
                _cell(status),
            ]
        )
    return csv_text(rows)
