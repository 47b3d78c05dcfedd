"""Canvas gradebook import CSV (Grades > Import).

Canvas reads the columns of its own gradebook export: Student, ID, SIS User ID,
SIS Login ID, Section, then one column per assignment ("Lab 4 (12345)" updates
assignment 12345; a new name creates an assignment). The "Points Possible" row
is Canvas's own second row. A blank score leaves the student's grade unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autograder.reports.gradebook import _cell, _fmt, csv_text

if TYPE_CHECKING:
    from autograder.export import ExportPlan

HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_csv(plan: ExportPlan, column: str) -> str:
    rows = [[*HEADER, column], ["Points Possible", "", "", "", "", _fmt(plan.gradebook.max_points)]]
    for m in plan.matched:
        e = m.entry
        rows.append(
            [
                _cell(e.display_name),
                _cell(e.lms_id),
                _cell(e.sis_id),
                _cell(e.login),
                _cell(e.section),
                _fmt(m.grade.score),
            ]
        )
    return csv_text(rows)
