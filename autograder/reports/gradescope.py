"""Gradescope's autograder results schema, so results.json uploads as is."""

from __future__ import annotations

from typing import Any

from autograder.scoring import SubmissionResult

MAX_OUTPUT = 4000


def gradescope_json(result: SubmissionResult) -> dict[str, Any]:
    tests: list[dict[str, Any]] = []
    for q in result.questions.values():
        if q.manual and q.points is not None:  # graded by hand, merged from the TA's sheet
            lines = [f"{i['description']}: {i['points']:g} / {i['max_points']:g}" for i in q.rubric]
            tests.append(
                {
                    "name": f"{q.id} (graded by hand)",
                    "score": q.points,
                    "max_score": q.max_points,
                    "output": "\n".join([*lines, q.comment])[:MAX_OUTPUT].strip(),
                    "visibility": "visible",
                }
            )
            continue
        if q.manual or q.skipped:
            continue
        total = sum(c.weight for c in q.checks) or 1.0
        if not q.checks:
            tests.append(
                {
                    "name": q.id,
                    "score": q.points or 0.0,
                    "max_score": q.max_points,
                    "output": result.status if result.status != "ok" else "not graded",
                    "visibility": "visible",
                }
            )
        for c in q.checks:
            share = q.max_points * c.weight / total
            output = "passed" if c.passed else c.message
            if c.notes:
                output += "\n" + "\n".join(c.notes)
            tests.append(
                {
                    "name": f"{q.id}: {c.name}",
                    "score": round(share if c.passed else 0.0, 4),
                    "max_score": round(share, 4),
                    "output": output[:MAX_OUTPUT],
                    "visibility": "visible",
                }
            )
    doc: dict[str, Any] = {
        "score": result.final_total,
        "output": "\n".join(x for x in (f"status: {result.status}", result.late_note) if x),
        "tests": tests,
    }
    return doc
