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


# Item analysis: a check (almost) nobody passes points at unclear instructions or a broken
# check; one everybody passes may test nothing. Flagged from this many submissions on.
MIN_FOR_FLAGS = 5
LOW_PASS_RATE = 0.1
FLAG_LOW = "failed by nearly everyone: unclear instructions or a broken check?"
FLAG_HIGH = "passed by everyone: does it test anything?"


def check_stats(results: list[SubmissionResult]) -> dict[str, dict[str, Any]]:
    """Per check ("<question>::<check>"): how many ran it, pass rate, mean score, a flag."""
    seen: dict[str, list[tuple[bool, float, float]]] = {}
    for r in results:
        for q in r.questions.values():
            if q.manual or q.skipped or not q.checks:
                continue
            weight = sum(c.weight for c in q.checks) or 1.0
            for c in q.checks:
                share = q.max_points * c.weight / weight
                seen.setdefault(f"{q.id}::{c.name}", []).append(
                    (c.passed, share if c.passed else 0.0, share)
                )
    stats = {}
    for key, runs in seen.items():
        n = len(runs)
        rate = sum(p for p, _, _ in runs) / n
        flag = ""
        if n >= MIN_FOR_FLAGS and rate <= LOW_PASS_RATE:
            flag = FLAG_LOW
        elif n >= MIN_FOR_FLAGS and rate == 1.0:
            flag = FLAG_HIGH
        stats[key] = {
            "n": n,
            "pass_rate": round(rate, 4),
            "mean_score": round(statistics.fmean(s for _, s, _ in runs), 4),
            "max_score": round(runs[0][2], 4),
            "flag": flag,
        }
    return stats


def hardest_checks(results: list[SubmissionResult], n: int = 8) -> list[tuple[str, dict]]:
    """The checks most students fail, lowest pass rate first (those everyone passes left out)."""
    stats = check_stats(results)
    ranked = sorted(stats.items(), key=lambda kv: (kv[1]["pass_rate"], kv[0]))
    return [(k, v) for k, v in ranked if v["pass_rate"] < 1.0][:n]


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
        "checks": check_stats(results),
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


def hardest_checks_table(results: list[SubmissionResult]):
    """A rich Table of the checks most students fail, with the item-analysis flags."""
    from rich.table import Table

    rows = hardest_checks(results)
    flagged = [(k, v) for k, v in check_stats(results).items() if v["flag"] == FLAG_HIGH]
    if not rows and not flagged:
        return None
    table = Table(title="checks most students fail")
    table.add_column("check")
    table.add_column("pass rate", justify="right")
    table.add_column("flag")
    for key, v in [*rows, *flagged[:3]]:
        table.add_row(key, f"{v['pass_rate'] * 100:.0f}% of {v['n']}", v["flag"])
    return table
