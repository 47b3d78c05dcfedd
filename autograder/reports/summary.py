"""summary.json and the table printed at the end of a run."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from autograder.config import AssignmentConfig
from autograder.scoring import SubmissionResult


def question_means(
    results: list[SubmissionResult], config: AssignmentConfig
) -> dict[str, float | None]:
    means: dict[str, float | None] = {}
    for qid in config.questions:
        values = [
            points
            for r in results
            if qid in r.questions and (points := r.questions[qid].points) is not None
        ]
        means[qid] = round(statistics.fmean(values), 4) if values else None
    return means


def summary_dict(results: list[SubmissionResult], config: AssignmentConfig) -> dict[str, Any]:
    means = question_means(results, config)
    statuses = Counter(r.status for r in results)
    return {
        "assignment": config.name,
        "questions": {
            qid: {"max_points": q.points, "mean": means[qid], "manual": q.manual}
            for qid, q in config.questions.items()
        },
        "submissions": len(results),
        "statuses": dict(statuses),
        "mean_total": round(statistics.fmean(r.total for r in results), 4) if results else None,
        "max_total": config.max_total,
    }


def console_table(results: list[SubmissionResult], config: AssignmentConfig):
    """A rich Table: one row per question with its mean, then the status counts."""
    from rich.table import Table

    means = question_means(results, config)
    table = Table(title=f"{config.name}: {len(results)} submissions")
    table.add_column("question")
    table.add_column("mean", justify="right")
    table.add_column("max", justify="right")
    for qid, q in config.questions.items():
        mean = means[qid]
        table.add_row(
            qid + (" (manual)" if q.manual else ""),
            "-" if mean is None else f"{mean:.2f}",
            f"{q.points:g}",
        )
    if results:
        total = statistics.fmean(r.total for r in results)
        table.add_row("total", f"{total:.2f}", f"{config.max_total:g}", style="bold")
    for status, n in Counter(r.status for r in results).most_common():
        table.add_row(f"status: {status}", str(n), "")
    return table
