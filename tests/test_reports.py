"""Renderers: gradebook.csv, Gradescope results.json, feedback.html, summary.json, the plot."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest

from autograder.reports import (
    class_plot,
    feedback_html,
    gradebook_rows,
    gradescope_json,
    summary_dict,
    write_class_reports,
    write_student_reports,
)
from autograder.reports import feedback as feedback_mod
from autograder.reports.gradebook import write_gradebook
from autograder.reports.summary import console_table
from autograder.scoring import CheckResult, Incident, SubmissionResult, score, zero_result


def _check(name, question, weight, passed, message=""):
    return CheckResult(
        name=name,
        question=question,
        weight=weight,
        passed=passed,
        message="" if passed else message or f"{name} failed",
    )


def _result(
    toy,
    student="alice",
    *,
    add=(True, True),
    scale=(True, True),
    skip=(),
    status="ok",
    incidents=(),
    messages=None,
):
    messages = messages or {}
    checks = [
        _check("test_small", "add", 1, add[0], messages.get("test_small", "")),
        _check("test_random", "add", 3, add[1], messages.get("test_random", "")),
        _check("test_vector", "scale", 1, scale[0], messages.get("test_vector", "")),
        _check("test_matrix", "scale", 2, scale[1], messages.get("test_matrix", "")),
    ]
    checks = [c for c in checks if c.question not in skip]
    return SubmissionResult(
        student=student,
        assignment="toy",
        status=status,
        questions=score(toy, checks, frozenset(skip)),
        incidents=list(incidents),
        isolation="bubblewrap",
    )


# -- gradebook.csv --------------------------------------------------------------------------------


def test_gradebook_columns_and_values(toy, tmp_path):
    results = [
        _result(toy, "alice"),
        _result(toy, "bob", add=(True, False), scale=(False, False), status="timeout in cell 3"),
        zero_result(toy, "carol", "not a notebook (not JSON)"),
    ]
    path = tmp_path / "out" / "gradebook.csv"
    write_gradebook(results, toy, path)
    rows = list(csv.reader(path.open(newline="")))
    assert rows[0] == ["student", "add", "scale", "essay", "total", "max_total", "status"]
    assert rows[1] == ["alice", "4", "6", "", "10", "15", "ok"]
    assert rows[2] == ["bob", "1", "0", "", "1", "15", "timeout in cell 3"]
    assert rows[3] == ["carol", "0", "0", "", "0", "15", "not a notebook (not JSON)"]
    assert rows == gradebook_rows(results, toy)
    assert not [p for p in path.parent.iterdir() if p.name != "gradebook.csv"]


def test_gradebook_skipped_question_is_empty(toy):
    rows = gradebook_rows([_result(toy, skip=("scale",))], toy)
    header, row = rows
    assert row[header.index("scale")] == "" and row[header.index("essay")] == ""
    assert row[header.index("add")] == "4" and row[header.index("total")] == "4"


def test_gradebook_fractional_points(toy):
    r = _result(toy, add=(False, True))  # 3 of 4 weight
    row = gradebook_rows([r], toy)[1]
    assert row[1] == "3" and row[4] == "9"
    checks = [_check(f"t{i}", "add", 1, i < 2) for i in range(3)] + [_check("v", "scale", 1, True)]
    r = SubmissionResult("x", "toy", "ok", score(toy, checks))
    assert gradebook_rows([r], toy)[1][1] == "2.6667"


@pytest.mark.parametrize("sid", ["=cmd()", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"])
def test_gradebook_formula_injection_guard(toy, tmp_path, sid):
    path = tmp_path / "g.csv"
    write_gradebook([_result(toy, sid)], toy, path)
    row = list(csv.reader(path.open(newline="")))[1]
    assert row[0] == "'" + sid
    assert row[0][0] not in "=+-@\t\r"


def test_gradebook_quotes_commas_and_newlines(toy, tmp_path):
    path = tmp_path / "g.csv"
    write_gradebook([_result(toy, 'Smith, "J"\nx')], toy, path)
    rows = list(csv.reader(path.open(newline="")))
    assert len(rows) == 2 and rows[1][0] == 'Smith, "J"\nx' and len(rows[1]) == 7


# -- Gradescope


def _assert_gradescope_schema(doc):
    assert set(doc) >= {"score", "tests"}
    assert isinstance(doc["score"], (int, float))
    for t in doc["tests"]:
        assert set(t) == {"name", "score", "max_score", "output", "visibility"}
        assert isinstance(t["name"], str) and isinstance(t["output"], str)
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"] + 1e-9
        assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    json.dumps(doc)  # serialisable as is


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"add": (True, False)},
        {"add": (False, False), "scale": (True, False)},
        {"skip": ("scale",)},
    ],
    ids=["perfect", "partial", "poor", "skipped"],
)
def test_gradescope_schema_and_sum(toy, kw):
    r = _result(toy, messages={"test_random": "add of two integers: expected 5, got -1"}, **kw)
    doc = gradescope_json(r)
    _assert_gradescope_schema(doc)
    assert doc["score"] == r.total
    assert sum(t["score"] for t in doc["tests"]) == pytest.approx(r.total, abs=1e-3)
    graded = [q for q in toy.questions.values() if not q.manual and q.id not in kw.get("skip", ())]
    assert sum(t["max_score"] for t in doc["tests"]) == pytest.approx(sum(q.points for q in graded))
    assert not any(t["name"].startswith("essay") for t in doc["tests"])  # manual: formgrader
    names = [t["name"] for t in doc["tests"]]
    assert "add: test_small" in names
    if kw.get("add") == (True, False):
        failed = next(t for t in doc["tests"] if t["name"] == "add: test_random")
        assert failed["score"] == 0 and failed["max_score"] == 3
        assert failed["output"] == "add of two integers: expected 5, got -1"


def test_gradescope_for_an_ungradable_submission(toy):
    r = zero_result(toy, "carol", "empty file")
    doc = gradescope_json(r)
    _assert_gradescope_schema(doc)
    assert doc["score"] == 0
    assert {t["name"] for t in doc["tests"]} == {"add", "scale"}
    assert all(t["output"] == "empty file" for t in doc["tests"])
    assert sum(t["max_score"] for t in doc["tests"]) == 10


def test_gradescope_output_is_capped(toy):
    r = _result(toy, add=(False, True), messages={"test_small": "x" * 50_000})
    r.questions["add"].checks[0].notes = ["n" * 50_000]
    doc = gradescope_json(r)
    assert all(len(t["output"]) <= 4000 for t in doc["tests"])


# -- feedback.html


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def _tags(page):
    p = _Tags()
    p.feed(page)
    return p.tags


def test_feedback_escapes_student_text(toy):
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    r = _result(
        toy,
        f"bob{evil}",
        add=(False, True),
        status=f"error {evil}",
        messages={"test_small": f"add raised ValueError: {evil}"},
        incidents=[
            Incident(3, "error", f"NameError: {evil}"),
            Incident(5, "timeout", f"ran long {evil}"),
        ],
    )
    r.notes.append(f"note {evil}")
    r.questions["add"].checks[1].notes = [f"printed {evil}"]
    page = feedback_html(r, toy)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;" in page
    assert set(_tags(page)) <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "p",
        "b",
        "ul",
        "li",
        "code",
        "table",
        "tr",
        "th",
        "td",
        "span",
        "pre",
    }
    assert "add raised ValueError:" in page and "cell 5: timeout" in page


def test_feedback_content(toy):
    r = _result(
        toy,
        add=(True, False),
        messages={"test_random": "add of two integers: wrong"},
        skip=("scale",),
    )
    page = feedback_html(r, toy)
    assert "Score: 1 / 15" in page
    assert "add: 1 / 4" in page and "add of two integers: wrong" in page
    assert "scale: — / 6" in page and "not graded in this run" in page
    assert "essay: — / 5" in page and "manual grading" in page
    assert "bubblewrap" in page
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_feedback_size_cap(toy):
    r = _result(toy, add=(False, False), messages={"test_small": "m" * 100_000})
    r.notes.extend(["é" + "n" * 5000] * 200)  # ~1 MB of notes
    page = feedback_html(r, toy)
    assert len(page.encode()) <= feedback_mod.MAX_BYTES
    assert "(feedback truncated)" in page and page.rstrip().endswith("</html>")
    long = _result(toy, add=(False, False), messages={"test_small": "m" * 100_000})
    small = feedback_html(long, toy)
    cap = feedback_mod.MAX_MESSAGE
    assert "m" * cap in small and "m" * (cap + 1) not in small


def test_feedback_lists_at_most_twenty_incidents(toy):
    r = _result(toy, incidents=[Incident(i, "error", f"E{i:03d}") for i in range(50)])
    page = feedback_html(r, toy)
    assert "E019" in page and "E020" not in page


# -- summary.json, console table, plot


def _class(toy):
    return [
        _result(toy, "alice"),
        _result(toy, "bob", add=(True, False), scale=(False, False)),
        zero_result(toy, "carol", "empty file"),
        _result(toy, "dave", skip=("scale",)),
    ]


def test_summary_shape_and_values(toy):
    doc = summary_dict(_class(toy), toy)
    assert {"assignment", "questions", "submissions", "statuses"} <= set(doc)
    assert doc["assignment"] == "toy" and doc["submissions"] == 4
    assert list(doc["questions"]) == ["add", "scale", "essay"]
    for q in doc["questions"].values():
        assert set(q) == {"max_points", "mean", "manual"}
    assert doc["questions"]["add"] == {
        "max_points": 4,
        "mean": pytest.approx((4 + 1 + 0 + 4) / 4),
        "manual": False,
    }
    # a skipped question does not count as zero in its mean
    assert doc["questions"]["scale"]["mean"] == pytest.approx((6 + 0 + 0) / 3)
    assert doc["questions"]["essay"] == {"max_points": 5, "mean": None, "manual": True}
    assert doc["statuses"] == {"ok": 3, "empty file": 1}
    json.dumps(doc)


def test_summary_of_no_results(toy):
    doc = summary_dict([], toy)
    assert doc["submissions"] == 0 and doc["statuses"] == {}
    assert all(q["mean"] is None for q in doc["questions"].values())
    json.dumps(doc)


def test_console_table(toy):
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120)
    console.print(console_table(_class(toy), toy))
    text = console.file.getvalue()
    assert "toy: 4 submissions" in text and "essay (manual)" in text
    assert "status: empty file" in text and "2.25" in text


def test_plot_is_a_real_png(toy, tmp_path):
    path = tmp_path / "plots" / "summary.png"
    class_plot(_class(toy), toy, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    from PIL import Image

    with Image.open(path) as img:
        assert img.size[0] > 800 and img.size[1] > 300
        colors = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 20  # not a blank canvas
    assert [p.name for p in path.parent.iterdir()] == ["summary.png"]


def test_write_student_and_class_reports(toy, tmp_path):
    results = _class(toy)
    out = tmp_path / "out"
    for r in results:
        write_student_reports(r, toy, out / r.student)
    write_class_reports(results, toy, out)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "alice",
        "bob",
        "carol",
        "dave",
        "gradebook.csv",
        "summary.json",
        "summary.png",
    ]
    assert sorted(p.name for p in (out / "bob").iterdir()) == ["feedback.html", "results.json"]
    doc = json.loads((out / "bob" / "results.json").read_text())
    assert doc["score"] == 1
    assert json.loads((out / "summary.json").read_text())["submissions"] == 4
    empty = tmp_path / "empty"
    write_class_reports([], toy, empty)
    assert sorted(p.name for p in empty.iterdir()) == ["gradebook.csv", "summary.json"]


def test_class_plot_redrawn_only_when_results_change(toy, tmp_path, monkeypatch):
    from autograder import reports

    drawn = []
    monkeypatch.setattr(
        reports, "class_plot", lambda r, c, p: (drawn.append(p), p.write_bytes(b"png"))
    )
    results = [_result(toy, "alice"), _result(toy, "bob", add=(False, False))]
    write_class_reports(results, toy, tmp_path)
    write_class_reports(results, toy, tmp_path)
    assert len(drawn) == 1  # same results: the PNG on disk is kept
    write_class_reports([*results, _result(toy, "carol")], toy, tmp_path)
    assert len(drawn) == 2
    (tmp_path / "summary.png").unlink()
    write_class_reports([*results, _result(toy, "carol")], toy, tmp_path)
    assert len(drawn) == 3  # a deleted plot is drawn again


@pytest.mark.slow
def test_nbgrader_gradebook_db(toy, tmp_path):
    from nbgrader.api import Gradebook

    from autograder.reports.nbgrader_db import write_nbgrader_scores

    db = tmp_path / "gradebook.db"
    results = [_result(toy, "alice"), _result(toy, "bob", add=(True, False), scale=(False, True))]
    write_nbgrader_scores(results, toy, db)
    write_nbgrader_scores(results[1:], toy, db)  # idempotent on a re-run
    with Gradebook(f"sqlite:///{db}") as gb:
        assert sorted(s.id for s in gb.students) == ["alice", "bob"]
        grade = gb.find_grade("add", "toy", "toy", "bob")
        assert grade.auto_score == 1 and grade.max_score == 4
        assert gb.find_grade("scale", "toy", "toy", "alice").auto_score == 6
        essay = gb.find_grade("essay", "toy", "toy", "alice")
        assert essay.auto_score is None


# -- item analysis


def test_summary_has_per_check_pass_rates_and_flags(toy):
    results = [_result(toy, f"s{i}", add=(True, False), scale=(i > 0, True)) for i in range(6)]
    results.append(zero_result(toy, "broken", "empty file"))  # ran no check: not counted
    checks = summary_dict(results, toy)["checks"]
    assert set(checks) == {"add::test_small", "add::test_random", "scale::test_vector",
                           "scale::test_matrix"}  # fmt: skip
    assert checks["add::test_random"] == {
        "n": 6,
        "pass_rate": 0.0,
        "mean_score": 0.0,
        "max_score": 3.0,
        "flag": "failed by nearly everyone: unclear instructions or a broken check?",
    }
    assert checks["scale::test_vector"]["pass_rate"] == pytest.approx(5 / 6, abs=1e-4)
    assert checks["scale::test_vector"]["flag"] == ""
    assert checks["add::test_small"]["flag"] == "passed by everyone: does it test anything?"
    assert checks["scale::test_matrix"]["mean_score"] == 4.0


def test_console_shows_the_checks_most_students_fail(toy):
    from rich.console import Console

    from autograder.reports.summary import hardest_checks_table

    results = [_result(toy, f"s{i}", add=(True, False)) for i in range(5)]
    console = Console(record=True, width=160)
    console.print(hardest_checks_table(results))
    text = console.export_text()
    assert "add::test_random" in text and "0% of 5" in text and "nearly everyone" in text
    assert hardest_checks_table([_result(toy)]) is None
