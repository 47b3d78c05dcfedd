"""Late policy: due date, grace, per-day penalty with a cap; times from nbgrader or --times."""

from __future__ import annotations

import csv
import shutil
from datetime import UTC, datetime, timedelta, timezone

import pytest

from autograder.config import LatePolicy, load_config
from autograder.exceptions import ConfigError, TimesError
from autograder.late import assess, read_times, read_timestamp

CET = timezone(timedelta(hours=1))
DUE = datetime(2026, 3, 1, 23, 59, tzinfo=CET)
POLICY = LatePolicy(due=DUE, grace_minutes=15, per_day_percent=10, max_percent=30)


@pytest.mark.parametrize(
    "delta, days, percent",
    [
        (timedelta(hours=-1), 0, 0),
        (timedelta(minutes=14), 0, 0),  # grace
        (timedelta(minutes=16), 1, 10),  # a started day
        (timedelta(days=1, minutes=16), 2, 20),
        (timedelta(days=9), 9, 30),  # capped
    ],
)
def test_schedule(delta, days, percent):
    late = assess(POLICY, DUE + delta)
    assert (late.days_late, late.percent) == (days, percent)
    assert ("Late: submitted" in late.note) == (days > 0)


def test_nbgrader_timestamp_and_times_csv(tmp_path):
    (tmp_path / "timestamp.txt").write_text("2026-03-02 08:00:00.000000 UTC")
    assert read_timestamp(tmp_path) == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    times = tmp_path / "times.csv"
    times.write_text("student,submitted_at\nalice,2026-03-02 10:00\nbob,2026-03-01T20:00:00Z\n")
    got = read_times(times, POLICY)
    assert got["alice"] == datetime(2026, 3, 2, 10, 0, tzinfo=CET)  # the due date's zone
    assert got["bob"] == datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    times.write_text("student,submitted_at\nalice,yesterday-ish\n")
    with pytest.raises(TimesError, match="line 2, column 'submitted_at'"):
        read_times(times, POLICY)


def _late_toy(toy_dir, tmp_path, late_toml):
    dest = tmp_path / "toy"
    shutil.copytree(toy_dir, dest)
    with (dest / "assignment.toml").open("a") as fh:
        fh.write(late_toml)
    return dest


def test_due_date_needs_a_zone(toy_dir, tmp_path):
    dest = _late_toy(toy_dir, tmp_path, "\n[late]\ndue = 2026-03-01T23:59:00\n")
    with pytest.raises(ConfigError, match="needs a time zone") as err:
        load_config(dest / "assignment.toml")
    assert err.value.key == "late.due"


@pytest.mark.slow
def test_gradebook_and_feedback_show_the_penalty(toy_dir, toy_key, tmp_path):
    from tests.conftest import write
    from tests.test_manual import _invoke

    dest = _late_toy(
        toy_dir,
        tmp_path,
        "\n[late]\ndue = 2026-03-01T23:59:00+01:00\ngrace_minutes = 10\nper_day_percent = 20\n",
    )
    subs, out = tmp_path / "subs", tmp_path / "out"
    # nbgrader's layout, with its timestamp.txt; bob's time comes from --times
    folder = subs / "submitted" / "alice" / "toy"
    write(toy_key, folder / "toy.ipynb")
    (folder / "timestamp.txt").write_text("2026-03-03 12:00:00.000000 UTC")  # 2 started days
    write(toy_key, subs / "submitted" / "bob" / "toy" / "toy.ipynb")
    times = tmp_path / "times.csv"
    times.write_text("student,submitted_at\nbob,2026-03-01T22:00:00+01:00\n")
    result = _invoke("grade", dest, subs, "--out", out, "--times", times)
    assert result.exit_code == 0, result.output
    with (out / "gradebook.csv").open(newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert (rows["alice"]["total"], rows["alice"]["late_penalty"]) == ("10", "4")
    assert rows["alice"]["final_total"] == "6" and rows["alice"]["submitted"].startswith("2026-03")
    assert (rows["bob"]["late_penalty"], rows["bob"]["final_total"]) == ("0", "10")
    page = (out / "alice" / "feedback.html").read_text()
    assert "2 day(s) late, 40% off" in page and "Score: 6 / 15" in page
