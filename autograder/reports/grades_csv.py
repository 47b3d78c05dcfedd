"""A plain grades CSV (any LMS or spreadsheet): who, their roster identity, the score."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autograder.reports.gradebook import _cell, _fmt, csv_text

if TYPE_CHECKING:
    from autograder.export import ExportPlan


def grades_csv(plan: ExportPlan, column: str) -> str:
    rows = [["student", "login", "email", "name", column, "max_points", "status"]]
    for m in plan.matched:
        e = m.entry
        rows.append(
            [
                _cell(m.grade.student),
                _cell(e.login),
                _cell(e.email),
                _cell(e.display_name),
                _fmt(m.grade.score),
                _fmt(plan.gradebook.max_points),
                _cell(m.grade.status),
            ]
        )
    return csv_text(rows)
