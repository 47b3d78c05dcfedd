"""similarity.csv: every compared pair with some overlap, most similar first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autograder.reports.gradebook import _cell, csv_text

if TYPE_CHECKING:
    from autograder.similarity import SimilarityReport

HEADER = [
    "rank",
    "question",
    "student_a",
    "student_b",
    "similarity",
    "share_a",
    "share_b",
    "matched_tokens",
    "question_median",
    "flagged",
]


def similarity_csv(report: SimilarityReport) -> str:
    rows = [HEADER]
    for n, p in enumerate(report.pairs, start=1):
        rows.append(
            [
                str(n),
                p.question,
                _cell(p.student_a),
                _cell(p.student_b),
                f"{p.similarity:.4f}",
                f"{p.share_a:.4f}",
                f"{p.share_b:.4f}",
                str(p.matched_tokens),
                f"{p.question_median:.4f}",
                "yes" if p.flagged else "",
            ]
        )
    return csv_text(rows)
