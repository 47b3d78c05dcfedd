"""Grades out to the LMS: roster matching, Canvas/Moodle/CSV files, unmatched students."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.exceptions import ExportError
from autograder.export import ExportFormat, export_grades, read_roster

CANVAS_ROSTER = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Lab 4 (1001),Lab 4 CNN (2002)\r\n"
    "    Points Possible,,,,,120,120\r\n"
    '"Doe, Jane",101,S001,jdoe,CS-A,,\r\n'
    '"Smith, Bob",102,S002,bsmith,CS-A,,\r\n'
    '"Lee, Carol",103,S003,clee,CS-B,,\r\n'
    '"Ng, Dave",104,S004,dng,CS-B,,\r\n'
    "Test Student,999,,,,,\r\n"
)


def _graded(tmp_path, students, late=False):
    out = tmp_path / "out"
    out.mkdir()
    header = ["student", "q", "total", "max_total", "status"]
    if late:
        header[-1:-1] = ["submitted", "late_penalty", "final_total"]
    lines = [header]
    for sid, total in students:
        row = [sid, str(total), str(total), "120", "ok"]
        if late:
            row[-1:-1] = ["", "10", str(total - 10)]
        lines.append(row)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(lines)
    (out / "gradebook.csv").write_text(buf.getvalue())
    questions = {"q": {"manual": False}}
    summary = {"assignment": "lab4-cnn", "max_total": 120, "questions": questions}
    (out / "summary.json").write_text(json.dumps(summary))
    return out


def _rows(path):
    return list(csv.reader(path.open(newline="", encoding="utf-8")))


def test_canvas_export_matches_by_login_email_name_and_canvas_download(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER)
    out = _graded(
        tmp_path,
        [("jdoe", 100), ("bsmith@uni.edu", 90.5), ("Carol Lee", 80), ("ngdave_104_5555", 70)],
    )
    dest, plan = export_grades(out, ExportFormat.CANVAS, roster_path=roster)
    rows = _rows(dest)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "lab4-cnn"]
    assert rows[1] == ["Points Possible", "", "", "", "", "120"]
    by_login = {r[3]: r for r in rows[2:]}
    assert by_login["jdoe"] == ["Doe, Jane", "101", "S001", "jdoe", "CS-A", "100"]
    assert by_login["bsmith"][-1] == "90.5"
    assert by_login["clee"][-1] == "80" and by_login["dng"][-1] == "70"
    assert not plan.unmatched and not plan.no_submission


def test_canvas_reuses_the_assignment_column_of_the_export(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER.replace("Lab 4 (1001)", "lab4-cnn (1001)"))
    out = _graded(tmp_path, [("jdoe", 100)])
    dest, plan = export_grades(out, ExportFormat.CANVAS, roster_path=roster)
    assert _rows(dest)[0][-1] == "lab4-cnn (1001)"
    assert len(plan.no_submission) == 3  # bob, carol, dave: reported, rows left out


def test_unmatched_students_fail_the_export_unless_skipped(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER)
    out = _graded(tmp_path, [("jdoe", 100), ("mallory", 5)])
    with pytest.raises(ExportError, match="mallory") as err:
        export_grades(out, ExportFormat.CANVAS, roster_path=roster)
    assert err.value.exit_code == 10
    assert not (out / "export-canvas.csv").exists()
    dest, plan = export_grades(out, ExportFormat.CANVAS, roster_path=roster, skip_unmatched=True)
    assert [u.student for u in plan.unmatched] == ["mallory"]
    assert len(_rows(dest)) == 3


def test_ambiguous_name_is_not_guessed(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email\nAna Silva,a1@x.org\nAna Silva,a2@x.org\n")
    out = _graded(tmp_path, [("Ana Silva", 50)])
    with pytest.raises(ExportError, match="several roster rows"):
        export_grades(out, ExportFormat.CSV, roster_path=roster)


def test_moodle_export_uses_final_total_after_late_penalty(tmp_path):
    roster = tmp_path / "participants.csv"
    roster.write_text(
        "First name,Last name,Username,Email address,ID number\nJane,Doe,jdoe,jane@uni.edu,S001\n"
    )
    out = _graded(tmp_path, [("jane@uni.edu", 100)], late=True)
    dest, _ = export_grades(out, ExportFormat.MOODLE, roster_path=roster)
    rows = _rows(dest)
    header = ["Full name", "Email address", "Username", "ID number", "lab4-cnn", "Feedback"]
    assert rows[0] == header
    assert rows[1] == ["Jane Doe", "jane@uni.edu", "jdoe", "S001", "90", ""]


def test_csv_without_roster_neutralises_formulas(tmp_path):
    out = _graded(tmp_path, [("'=HYPERLINK(1)", 3)])  # as gradebook.csv stores it
    dest, _ = export_grades(out, ExportFormat.CSV)
    assert _rows(dest)[1][0] == "'=HYPERLINK(1)"


def test_roster_without_identity_columns_is_refused(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("colour,size\nred,3\n")
    with pytest.raises(ExportError, match="line 1: no column to match"):
        read_roster(roster)


def test_cli_export(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER)
    out = _graded(tmp_path, [("jdoe", 100), ("mallory", 5)])
    runner = CliRunner()
    bad = runner.invoke(main, ["export", str(out), "--format", "canvas", "--roster", str(roster)])
    assert bad.exit_code == 10 and "mallory" in bad.output
    ok = runner.invoke(
        main,
        ["export", str(out), "--format", "canvas", "--roster", str(roster), "--skip-unmatched"],
    )
    assert ok.exit_code == 0, ok.output
    assert "exported 1 grade(s)" in ok.output
    assert "3 on the roster without a submission" in ok.output
    needs = runner.invoke(main, ["export", str(out), "--format", "moodle"])
    assert needs.exit_code == 10 and "needs --roster" in needs.output


def test_export_warns_about_manual_questions_not_graded_yet(tmp_path):
    out = _graded(tmp_path, [("jdoe", 100)])
    summary = json.loads((out / "summary.json").read_text())
    summary["questions"]["q"]["manual"] = True
    (out / "summary.json").write_text(json.dumps(summary))
    text = (out / "gradebook.csv").read_text().replace("jdoe,100,", "jdoe,,")
    (out / "gradebook.csv").write_text(text)
    res = CliRunner().invoke(main, ["export", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 student(s) have manual questions not graded yet" in res.output
