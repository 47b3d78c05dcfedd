"""Manual questions by rubric: the sheets, a TA's filled scores.csv, the checked merge."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.config import load_config
from autograder.exceptions import ConfigError
from tests.conftest import build, write

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rows(out):
    with (out / "gradebook.csv").open(newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def _sheet(out):
    with (out / "manual" / "scores.csv").open(newline="") as fh:
        return list(csv.reader(fh))


def _write_sheet(out, rows):
    with (out / "manual" / "scores.csv").open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(rows)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, toy_dir, toy_key, toy_release):
    base = tmp_path_factory.mktemp("manual")
    subs, out = base / "subs", base / "out"
    write(toy_key, subs / "alice.ipynb")
    write(build(toy_key, {"essay": f"**Commutative**: 2 + 3 == 3 + 2. {EVIL}"}), subs / "bob.ipynb")
    write(toy_release, subs / "carol.ipynb")
    result = _invoke("grade", toy_dir, subs, "--out", out)
    assert result.exit_code == 0, result.output
    return {"subs": subs, "out": out, "toy_dir": toy_dir}


@pytest.mark.slow
def test_manual_sheets_fill_merge_and_bad_rows(graded):
    subs, out, toy_dir = graded["subs"], graded["out"], graded["toy_dir"]
    made = _invoke("manual", toy_dir, out)
    assert made.exit_code == 0, made.output
    page = (out / "manual" / "essay.html").read_text()
    # every answer side by side, the rubric, escaped student text, a strict CSP
    assert page.count('class="card"') == 3
    assert "States that addition is commutative." in page
    assert "<strong>Commutative</strong>" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert "<img" not in page.split('<div class="grid">')[1]
    assert "default-src 'none'" in page
    assert "starter text is unchanged" in page  # carol handed in the release
    sheet = _sheet(out)
    assert sheet[0] == ["student", "question", "claim", "example", "points", "comment"]
    assert sorted(r[0] for r in sheet[1:]) == ["alice", "bob", "carol"]
    assert all(r[2:] == ["", "", "", ""] for r in sheet[1:])

    # The TA fills it: rubric marks (x = full), a points override, a comment.
    filled = [sheet[0]]
    for row in sheet[1:]:
        if row[0] == "alice":
            row = ["alice", "essay", "x", "2.5", "", "Good example."]
        elif row[0] == "bob":
            row = ["bob", "essay", "", "", "4", '=HYPERLINK("x") see me']
        filled.append(row)
    _write_sheet(out, filled)
    before = (out / "gradebook.csv").read_text()

    # A bad sheet: line numbers, columns, nothing changes.
    bad = [filled[0]] + [list(r) for r in filled[1:]]
    bad.append(["mallory", "essay", "", "", "1", ""])
    bad[1][3] = "7"  # over the item's maximum (3)
    (out / "manual" / "bad.csv").write_text(
        "\r\n".join(",".join(r) for r in bad).replace('"', "'") + "\r\n"
    )
    res = _invoke("grade", toy_dir, subs, "--out", out, "--manual", out / "manual" / "bad.csv")
    assert res.exit_code == 11, res.output
    assert "bad.csv, line 2, column 'example' (D): 7 is outside 0 to 3" in res.output
    assert "line 5, column 'student' (A): unknown student 'mallory'" in res.output
    assert "nothing changed" in res.output
    assert (out / "gradebook.csv").read_text() == before
    assert not (out / "manual" / "merged.json").exists()

    # The good sheet merges on a re-run that re-grades nothing.
    res = _invoke("grade", toy_dir, subs, "--out", out, "--manual", out / "manual" / "scores.csv")
    assert res.exit_code == 0, res.output
    assert "graded 0, reused 3" in res.output
    rows = _rows(out)
    assert rows["alice"]["essay"] == "4.5" and rows["alice"]["total"] == "14.5"
    assert rows["bob"]["essay"] == "4" and rows["carol"]["essay"] == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["questions"]["essay"]["mean"] == 4.25
    alice = json.loads((out / "alice" / "results.json").read_text())
    assert alice["score"] == 14.5
    hand = next(t for t in alice["tests"] if t["name"] == "essay (graded by hand)")
    assert hand["score"] == 4.5 and "Good example." in hand["output"]
    feedback = (out / "alice" / "feedback.html").read_text()
    assert "States that addition is commutative." in feedback and "2 / 2" in feedback
    assert "2.5 / 3" in feedback and "Good example." in feedback
    assert "Score: 14.5 / 15" in feedback
    assert "HYPERLINK" in (out / "bob" / "feedback.html").read_text()

    # Kept: a later run without --manual still has them; the page shows the score.
    res = _invoke("grade", toy_dir, subs, "--out", out)
    assert res.exit_code == 0 and _rows(out)["alice"]["essay"] == "4.5"
    assert _invoke("manual", toy_dir, out).exit_code == 0
    assert "4.5 / 5" in (out / "manual" / "essay.html").read_text()
    assert _sheet(out)[1:] == filled[1:]  # the TA's sheet is never overwritten

    # Feedback for students: one zip each, item analysis, similarity ran.
    assert sorted(p.name for p in (out / "feedback-zips").iterdir()) == [
        "alice.zip",
        "bob.zip",
        "carol.zip",
    ]
    assert summary["checks"]["add::test_small"]["pass_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert (out / "similarity.csv").is_file()


def _toy_with(toy_dir, tmp_path, rubric_toml):
    dest = tmp_path / "toy"
    import shutil

    shutil.copytree(toy_dir, dest)
    text = (dest / "assignment.toml").read_text()
    head, _ = text.split("[questions.essay]")
    (dest / "assignment.toml").write_text(head + rubric_toml)
    return dest / "assignment.toml"


@pytest.mark.parametrize(
    "rubric, key, problem",
    [
        (
            '[questions.essay]\npoints = 5\nmanual = true\n[[questions.essay.rubric]]\nid = "a"\n'
            'points = 2\ndescription = "x"\n',
            "questions.essay.rubric",
            "add up to 2 points",
        ),
        (
            '[questions.essay]\npoints = 5\nmanual = true\n[[questions.essay.rubric]]\nid = "a"\n'
            "points = 5\n",
            "questions.essay.rubric[0].description",
            "is missing",
        ),
        (
            "[questions.essay]\npoints = 5\nmanual = true\n[[questions.essay.rubric]]\n"
            'id = "points"\npoints = 5\ndescription = "x"\n',
            "questions.essay.rubric[0].id",
            "not a sheet column name",
        ),
        (
            '[questions.essay]\npoints = 5\n[[questions.essay.rubric]]\nid = "a"\npoints = 5\n'
            'description = "x"\n',
            "questions.essay.rubric",
            "only for manual questions",
        ),
    ],
)
def test_rubric_config_errors_name_the_key(toy_dir, tmp_path, rubric, key, problem):
    path = _toy_with(toy_dir, tmp_path, rubric)
    with pytest.raises(ConfigError, match=problem) as err:
        load_config(path)
    assert err.value.key == key and str(path) in str(err.value)


def test_lab4_rubrics_cover_the_manual_points():
    from tests.conftest import REPO

    config = load_config(REPO / "assignments" / "lab4-cnn" / "assignment.toml")
    for qid in ("experiments", "dataset_comparison"):
        q = config.questions[qid]
        assert q.manual and len(q.rubric) >= 4
        assert sum(i.points for i in q.rubric) == q.points == 10
        assert all(len(i.description) > 40 for i in q.rubric)


@pytest.mark.slow
def test_lab4_examples_graded_then_manual_sheets_filled_and_merged(tmp_path):
    """The Done-when path on the real lab: grade the bundled examples (accuracy skipped: it
    trains), write the sheets, fill them as a TA would, merge; a bad row changes nothing."""
    import base64
    import io
    import shutil

    import nbformat
    from nbformat.v4 import new_output
    from PIL import Image

    from tests.conftest import REPO

    examples = tmp_path / "subs"  # two of the bundled examples: a Lab 4 grade takes ~10 s each
    examples.mkdir()
    for name in ("alice.ipynb", "bob.ipynb"):
        shutil.copy(REPO / "assignments" / "lab4-cnn" / "examples" / name, examples / name)
    # alice ran her experiments: a printed table, a plot, and an HTML output that must not show
    nb = nbformat.read(examples / "alice.ipynb", as_version=4)
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(png, format="PNG")
    cell = next(
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "run_experiments"
    )
    cell.outputs = [
        new_output("stream", name="stdout", text="| baseline | 34,826 | 0.8593 | 0.8547 |\n"),
        new_output("display_data", data={"image/png": base64.b64encode(png.getvalue()).decode()}),
        new_output("display_data", data={"text/html": "<script>alert('html-out')</script>"}),
    ]
    nbformat.write(nb, examples / "alice.ipynb")
    out = tmp_path / "out"
    res = _invoke("grade", "lab4-cnn", examples, "--out", out, "-j", "2", "--skip", "accuracy")
    assert res.exit_code == 0, res.output
    assert _invoke("manual", "lab4-cnn", out).exit_code == 0
    for qid in ("experiments", "dataset_comparison"):
        page = (out / "manual" / f"{qid}.html").read_text()
        assert page.count('class="card"') == 2 and "default-src 'none'" in page
    page = (out / "manual" / "experiments.html").read_text()
    assert "data:image/png;base64," in page and "| baseline | 34,826" in page
    assert "html-out" not in page
    assert "Question 5 (10 points, graded by hand)" in page  # the prompt, from the release
    sheet = _sheet(out)
    header = sheet[0]
    assert header[:2] == ["student", "question"] and header[-2:] == ["points", "comment"]
    assert "exp_table" in header and "ds_fairness" in header
    before_rows = _rows(out)

    def filled_row(row):
        cells = dict(zip(header, row, strict=True))
        if cells["question"] == "experiments":
            cells.update(exp_table="x", exp_filters_kernels="1.5", exp_noise="x", comment="ok")
        else:
            cells.update(ds_numbers="2", ds_ranking="x", ds_explanation="2")
        return [cells[h] for h in header]

    filled = [header] + [filled_row(r) for r in sheet[1:]]
    bad = [list(r) for r in filled]
    bad[3][header.index("points")] = "11"
    _write_sheet(out, bad)
    res = _invoke("grade", "lab4-cnn", examples, "--out", out, "--skip", "accuracy",
                  "--manual", out / "manual" / "scores.csv")  # fmt: skip
    assert res.exit_code == 11 and "scores.csv, line 4, column 'points'" in res.output
    assert _rows(out) == before_rows

    _write_sheet(out, filled)
    res = _invoke("grade", "lab4-cnn", examples, "--out", out, "--skip", "accuracy",
                  "--manual", out / "manual" / "scores.csv")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "graded 0, reused 2" in res.output
    rows = _rows(out)
    for student, row in rows.items():
        assert row["experiments"] == "5.5" and row["dataset_comparison"] == "6", student
        auto = float(before_rows[student]["total"])
        assert float(row["total"]) == pytest.approx(auto + 11.5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["questions"]["experiments"]["mean"] == 5.5
    assert any(k.startswith("conv1d::") for k in summary["checks"])
    page = (out / "alice" / "feedback.html").read_text()
    assert "Run-to-run noise estimated" in page and "ok" in page
    assert (out / "similarity.csv").is_file() and (out / "feedback-zips" / "alice.zip").is_file()


@pytest.mark.parametrize(
    "text, absent",
    [
        ("<script>alert(1)</script>", "<script"),
        ('<img src="http://tracker.example/x.png">', "<img"),
        ("![pixel](http://tracker.example/x.png)", "<img"),
        ("[click](javascript:alert(1))", "href"),
        ('<a href="http://x" onclick="steal()">x</a>', "<a "),
    ],
)
def test_student_markdown_is_rendered_safely(text, absent):
    from autograder.reports.markdown import render_markdown

    assert absent not in render_markdown(text)


def test_markdown_keeps_tables_and_emphasis():
    from autograder.reports.markdown import render_markdown

    html = render_markdown("**bold**\n\n| a | b |\n| - | - |\n| 1 | 2 |\n")
    assert "<strong>bold</strong>" in html and "<table>" in html and "<td>2</td>" in html


def test_plots_beyond_the_page_budget_are_left_out():
    from autograder.answers import Output
    from autograder.manual import _within_budget

    outs = (Output("png", "a" * 60), Output("text", "t"), Output("png", "b" * 60))
    budget, kept = _within_budget(outs, 100)
    assert [o.kind for o in kept] == ["png", "text", "text"] and budget == 40
    assert "size limit" in kept[2].data
