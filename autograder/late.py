"""Late submissions by policy: when each submission came in, and what that costs.

Times come from nbgrader's `timestamp.txt` (written by `nbgrader collect`, read with
nbgrader's own parser) or from a `--times` CSV (`student,submitted_at`, e.g. from an
LMS download); the CSV wins. A time without a zone is taken in the due date's zone.
The penalty is `per_day_percent` of the raw total for each started day after the
due date plus the grace period, capped at `max_percent`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from autograder.config import LatePolicy
from autograder.exceptions import TimesError
from autograder.reports.gradebook import uncell
from autograder.scoring import SubmissionResult

TIMESTAMP_FILE = "timestamp.txt"


@dataclass(frozen=True)
class Lateness:
    submitted: datetime | None
    days_late: int  # started days past due + grace (0: on time)
    percent: float  # of the raw total taken off
    note: str  # what the student is told


def _parse(text: str, default_tz) -> datetime:
    from dateutil import parser

    value = parser.parse(text)
    return value if value.tzinfo else value.replace(tzinfo=default_tz)


def read_timestamp(folder: Path | None) -> datetime | None:
    """nbgrader's timestamp.txt in a submission folder (UTC), or None."""
    if folder is None:
        return None
    path = Path(folder) / TIMESTAMP_FILE
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 200:
        return None
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(path.read_text(encoding="utf-8").strip()).replace(tzinfo=UTC)
    except (ValueError, OverflowError, UnicodeDecodeError):
        return None


def read_times(
    path: Path, policy: LatePolicy | None, students: list[str] | None = None
) -> dict[str, datetime]:
    """A `student,submitted_at` CSV; TimesError names the line and column of a bad cell (and of
    a student who is not in the batch, when `students` is given)."""
    path = Path(path)
    tz = policy.due.tzinfo if policy else UTC
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TimesError(f"{path}: cannot be read ({exc}). Pass a UTF-8 CSV") from None
    reader = csv.DictReader(text.splitlines(True))
    if not {"student", "submitted_at"} <= set(reader.fieldnames or []):
        raise TimesError(
            f"{path}, line 1: needs the columns student,submitted_at, found {reader.fieldnames}"
        )
    times = {}
    for row in reader:
        raw = (row.get("submitted_at") or "").strip()
        student = uncell((row.get("student") or "").strip())
        if students is not None and student not in students:
            raise TimesError(
                f"{path}, line {reader.line_num}, column 'student': unknown student {student!r}. "
                "Use the ids of gradebook.csv"
            )
        try:
            times[student] = _parse(raw, tz)
        except (ValueError, OverflowError):
            raise TimesError(
                f"{path}, line {reader.line_num}, column 'submitted_at': {raw!r} is not a date "
                "and time. Use ISO 8601, e.g. 2026-03-01T23:59:00+01:00"
            ) from None
    return times


def assess(policy: LatePolicy, submitted: datetime | None) -> Lateness:
    if submitted is None:
        return Lateness(None, 0, 0.0, "")
    late_s = (submitted - policy.due).total_seconds() - policy.grace_minutes * 60
    if late_s <= 0:
        return Lateness(submitted, 0, 0.0, "")
    days = math.ceil(late_s / 86400)
    percent = min(policy.max_percent, days * policy.per_day_percent)
    when = submitted.astimezone(policy.due.tzinfo).isoformat(timespec="minutes")
    due = policy.due.isoformat(timespec="minutes")
    note = (
        f"Late: submitted {when}, due {due}"
        + (f" (+{policy.grace_minutes:g} min grace)" if policy.grace_minutes else "")
        + f": {days} day(s) late, {percent:g}% off the total "
        + f"({policy.per_day_percent:g}% per started day, at most {policy.max_percent:g}%)."
    )
    return Lateness(submitted, days, percent, note)


def apply_late(
    results: list[SubmissionResult],
    policy: LatePolicy,
    times: dict[str, datetime],
) -> int:
    """Set each result's penalty (on its raw total, manual points included). Returns the
    number of late submissions."""
    late = 0
    for result in results:
        lateness = assess(policy, times.get(result.student))
        result.submitted_at = (
            lateness.submitted.astimezone(policy.due.tzinfo).isoformat(timespec="seconds")
            if lateness.submitted
            else ""
        )
        result.penalty = round(result.total * lateness.percent / 100, 4)
        result.late_note = lateness.note
        late += lateness.days_late > 0
    return late
