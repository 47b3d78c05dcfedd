"""Picks the LMS renderer for an export format."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.export import ExportFormat, ExportPlan


def render(fmt: ExportFormat, plan: ExportPlan, column: str) -> str:
    from autograder.export import ExportFormat
    from autograder.reports.canvas import canvas_csv
    from autograder.reports.grades_csv import grades_csv
    from autograder.reports.moodle import moodle_csv

    renderers = {
        ExportFormat.CANVAS: canvas_csv,
        ExportFormat.MOODLE: moodle_csv,
        ExportFormat.CSV: grades_csv,
    }
    return renderers[fmt](plan, column)
