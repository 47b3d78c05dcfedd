"""similarity.html: the flagged pairs side by side, copied stretches marked."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.similarity import SimilarityReport

MAX_PAIRS = 100


def _marked(text: str, slices: tuple[tuple[int, int], ...]):
    """Escaped text with <mark> around copydetect's copied slices (offsets into `text`)."""
    from markupsafe import Markup

    parts, pos = [], 0
    for start, end in sorted(slices):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        parts += [escape(text[pos:start]), "<mark>", escape(text[start:end]), "</mark>"]
        pos = end
    parts.append(escape(text[pos:]))
    return Markup("".join(parts))  # noqa: S704 - every piece of student text is escaped


@lru_cache(maxsize=1)
def _template():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["html"])
    )
    return env.get_template("similarity_page.html")


def similarity_html(report: SimilarityReport, assignment: str) -> str:
    flagged = []
    for p in [p for p in report.pairs if p.flagged][:MAX_PAIRS]:
        a = report.sources.get((p.student_a, p.question), "")
        b = report.sources.get((p.student_b, p.question), "")
        flagged.append(
            p.__dict__ | {"html_a": _marked(a, p.slices_a), "html_b": _marked(b, p.slices_b)}
        )
    return _template().render(
        assignment=assignment,
        threshold=report.threshold,
        compared=report.compared,
        flagged=flagged,
    )
