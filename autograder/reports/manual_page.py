"""OUT/manual/<question>.html: one question, every student's answer side by side."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autograder.answers import Output
from autograder.config import Question


@dataclass(frozen=True)
class AnswerView:
    """One student's card on the page (student text still raw: the template escapes it)."""

    student: str
    anchor: str
    line: int  # the student's row for this question in scores.csv
    html: str  # markdown already rendered by reports.markdown (escaped, no images)
    outputs: tuple[Output, ...]
    empty: str = ""  # why there is nothing to grade ("no answer", "starter text unchanged")
    score: float | None = None
    comment: str = ""


@lru_cache(maxsize=1)
def _template():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
    )
    env.filters["fmt"] = lambda v: f"{v:g}"
    return env.get_template("manual_page.html")


def manual_page(
    assignment: str, question: Question, answers: list[AnswerView], sheet: str, prompt: str = ""
) -> str:
    """`prompt` and each answer's `html` come from reports.markdown (escaped, no images)."""
    from markupsafe import Markup

    views = [a.__dict__ | {"html": Markup(a.html)} for a in answers]  # noqa: S704 - sanitised
    return _template().render(
        assignment=assignment,
        question=question,
        answers=views,
        sheet=sheet,
        prompt=Markup(prompt),  # noqa: S704 - the instructor's text, rendered without HTML
    )
