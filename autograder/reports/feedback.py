"""feedback.html: what each check expected and what it got, for the student.

Everything that came from the student (ids, exception text) is escaped, the
page is capped in size, and no hidden check source or input appears: only the
messages the checks chose to show.
"""

from __future__ import annotations

from html import escape

from autograder.cleantext import encodable
from autograder.config import AssignmentConfig
from autograder.scoring import SubmissionResult

MAX_BYTES = 256 << 10
MAX_MESSAGE = 1500

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222;line-height:1.45}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #ddd}
.pass{color:#1b7f3b} .fail{color:#b3261e} .muted{color:#666}
table{border-collapse:collapse;width:100%} td,th{padding:.3rem .5rem;border-bottom:1px solid #eee;
text-align:left;vertical-align:top} pre{white-space:pre-wrap;margin:0;font-size:.9em}
.total{font-size:1.2rem;font-weight:600}
"""


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def feedback_html(result: SubmissionResult, config: AssignmentConfig) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(config.name)} feedback: {escape(result.student)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(config.name)}: feedback for {escape(result.student)}</h1>",
        f"<p class='total'>Score: {_fmt(result.final_total)} / {_fmt(result.max_total)}</p>",
        f"<p>Status: <b>{escape(result.status)}</b></p>",
    ]
    if result.late_note:
        parts.append(
            f"<p class='fail'>{escape(result.late_note)} Before the penalty: "
            f"{_fmt(result.total)}; penalty: {_fmt(result.penalty)}; "
            f"final: {_fmt(result.final_total)}.</p>"
        )
    for note in result.notes:
        parts.append(f"<p class='muted'>{escape(note)}</p>")
    hard = [i for i in result.incidents if i.kind != "error"]
    errors = [i for i in result.incidents if i.kind == "error"]
    if hard or errors:
        parts.append("<h2>Running your notebook</h2><ul>")
        for inc in (hard + errors)[:20]:
            message = escape(inc.message[:300])
            parts.append(f"<li>cell {inc.cell}: {escape(inc.kind)} — <code>{message}</code></li>")
        parts.append("</ul>")
    for q in result.questions.values():
        label = (
            ("graded by hand" if q.points is not None else "manual grading")
            if q.manual
            else "not graded in this run"
            if q.skipped
            else ""
        )
        parts.append(
            f"<h2>{escape(q.id)}: {_fmt(q.points)} / {_fmt(q.max_points)}"
            + (f" <span class='muted'>({label})</span>" if label else "")
            + "</h2>"
        )
        if q.rubric:
            parts.append("<table><tr><th>rubric</th><th>points</th></tr>")
            for item in q.rubric:
                parts.append(
                    f"<tr><td>{escape(str(item['description']))}</td>"
                    f"<td>{_fmt(item['points'])} / {_fmt(item['max_points'])}</td></tr>"
                )
            parts.append("</table>")
        if q.comment:
            parts.append(f"<p><b>Comment:</b> {escape(q.comment[: MAX_MESSAGE * 2])}</p>")
        if not q.checks:
            continue
        parts.append("<table><tr><th>check</th><th>result</th></tr>")
        for c in q.checks:
            verdict = (
                "<span class='pass'>passed</span>"
                if c.passed
                else (
                    f"<span class='fail'>failed</span><pre>{escape(c.message[:MAX_MESSAGE])}</pre>"
                )
            )
            notes = "".join(f"<pre class='muted'>{escape(n[:500])}</pre>" for n in c.notes)
            parts.append(f"<tr><td>{escape(c.name)}</td><td>{verdict}{notes}</td></tr>")
        parts.append("</table>")
    parts.append(
        f"<p class='muted'>Graded in {result.seconds:g} s; {escape(result.isolation)}.</p>"
    )
    parts.append("</body></html>")
    page = encodable("\n".join(parts))
    if len(page.encode()) > MAX_BYTES:
        page = page.encode()[: MAX_BYTES - 200].decode(errors="ignore")
        page += "\n<p class='muted'>(feedback truncated)</p></body></html>"
    return page
