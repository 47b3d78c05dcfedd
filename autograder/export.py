"""Grades out to the LMS: read OUT's gradebook, match students to the course roster.

Submission ids are whatever the download used (a login, an email, "Jane Doe", Canvas's
`doejane_12345_678_hw1.ipynb`); the LMS knows students by its own ids. Every student is
matched to exactly one roster row by login, email, id or name, or reported: a grade that
silently lands on nobody (or on the wrong person) is worse than a failed export.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from autograder.exceptions import ExportError
from autograder.reports.gradebook import uncell

log = logging.getLogger(__name__)


class ExportFormat(Enum):
    CANVAS = "canvas"
    MOODLE = "moodle"
    CSV = "csv"


@dataclass(frozen=True)
class GradeRow:
    """One student's line of gradebook.csv, as the LMS should see it."""

    student: str
    score: float
    status: str
    line: int


@dataclass(frozen=True)
class Gradebook:
    assignment: str
    max_points: float
    rows: tuple[GradeRow, ...]
    path: Path
    ungraded_manual: tuple[str, ...] = ()  # students with a manual question not graded yet


@dataclass(frozen=True)
class RosterEntry:
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    login: str = ""
    email: str = ""
    lms_id: str = ""  # Canvas "ID"
    sis_id: str = ""  # Canvas "SIS User ID", Moodle "ID number"
    section: str = ""
    line: int = 0

    @property
    def display_name(self) -> str:
        return self.name or " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass(frozen=True)
class Roster:
    entries: tuple[RosterEntry, ...]
    path: Path
    # A column of a Canvas gradebook export that is this assignment ("Lab 4 (12345)"): reusing
    # its exact header makes Canvas update that assignment instead of creating a new one.
    assignment_column: str = ""


@dataclass(frozen=True)
class Match:
    grade: GradeRow
    entry: RosterEntry


@dataclass(frozen=True)
class Unmatched:
    student: str
    reason: str


@dataclass(frozen=True)
class ExportPlan:
    gradebook: Gradebook
    matched: tuple[Match, ...]
    unmatched: tuple[Unmatched, ...]
    no_submission: tuple[RosterEntry, ...]  # on the roster, never handed in


# -- reading ---------------------------------------------------------------------------------------


def read_gradebook(out: Path) -> Gradebook:
    """gradebook.csv and summary.json of a graded OUT folder (final totals when late)."""
    out = Path(out)
    path = out / "gradebook.csv"
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ExportError(
            f"{out}: not a graded folder ({exc}). Run `autograder grade ... --out {out}` first"
        ) from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    column = "final_total" if "final_total" in (reader.fieldnames or []) else "total"
    manual = [q for q, v in summary.get("questions", {}).items() if v.get("manual")]
    rows, ungraded = [], []
    for record in reader:
        try:
            score = float(record[column])
        except (KeyError, TypeError, ValueError):
            raise ExportError(
                f"{path}, line {reader.line_num}, column '{column}': not a number "
                f"({record.get(column)!r}). Re-run `autograder grade` to rebuild it"
            ) from None
        student = uncell(record["student"])
        rows.append(GradeRow(student, score, record.get("status", ""), reader.line_num))
        if any(not (record.get(q) or "").strip() for q in manual):
            ungraded.append(student)
    return Gradebook(
        summary["assignment"], float(summary["max_total"]), tuple(rows), path, tuple(ungraded)
    )


_ALIASES = {
    "name": ("student", "name", "full name", "student name", "fullname"),
    "first_name": ("first name", "firstname", "given name"),
    "last_name": ("last name", "lastname", "surname", "family name"),
    "login": ("sis login id", "login", "login id", "username", "user name", "user", "netid"),
    "email": ("email", "email address", "e-mail", "mail"),
    "lms_id": ("id",),
    "sis_id": ("sis user id", "student id", "id number", "student number", "matriculation"),
    "section": ("section", "group", "groups"),
}


def _header_key(header: str) -> str:
    return re.sub(r"[\s_]+", " ", header.strip().lower())


def read_roster(path: Path, assignment: str = "") -> Roster:
    """A Canvas gradebook export, a Moodle participants export, or any CSV whose header
    names some of: name (or first/last name), login/username, email, id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot read the roster ({exc}). Pass a UTF-8 CSV") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    headers = reader.fieldnames or []
    columns: dict[str, str] = {}
    for header in headers:
        key = _header_key(header)
        for field, names in _ALIASES.items():
            if key in names and field not in columns:
                columns[field] = header
    if not {"login", "email", "lms_id", "sis_id", "name", "last_name"} & set(columns):
        raise ExportError(
            f"{path}, line 1: no column to match students by (found {headers[:8]}). "
            "The roster needs a login, email, ID or name column (e.g. Canvas: Grades > Export)"
        )
    wanted = assignment.lower()
    assignment_column = next(
        (h for h in headers if wanted and re.fullmatch(rf"{re.escape(wanted)} \(\d+\)", h.lower())),
        "",
    )
    entries = []
    for record in reader:
        values = {f: (record.get(h) or "").strip() for f, h in columns.items()}
        first = next(iter(record.values()), "") or ""
        if "points possible" in first.lower() or not any(values.values()):
            continue  # Canvas's second row, blank lines
        if values.get("name", "").lower() == "test student":
            continue  # Canvas's Student View user
        entries.append(RosterEntry(**values, line=reader.line_num))
    return Roster(tuple(entries), path, assignment_column)


# -- matching --------------------------------------------------------------------------------------

_CANVAS_DOWNLOAD = re.compile(r"^[a-z]+(?:_late)?_(\d+)_\d+(?:_.*)?$")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(sorted(re.findall(r"[a-z0-9]+", text)))


def _keys(entry: RosterEntry) -> set[str]:
    keys = set()
    for value in (entry.login, entry.email, entry.lms_id, entry.sis_id):
        if value:
            keys.add(value.lower())
    if "@" in entry.email:
        keys.add(entry.email.split("@", 1)[0].lower())
    for name in (entry.display_name, f"{entry.last_name} {entry.first_name}"):
        if name.strip():
            keys.add("name:" + _norm(name))
    return keys


def _student_keys(student: str) -> list[str]:
    s = student.strip().lower()
    keys = [s]
    if "@" in s:
        keys.append(s.split("@", 1)[0])
    if m := _CANVAS_DOWNLOAD.match(s):
        keys.append(m.group(1))  # Canvas's own user id, from its submissions download
    keys.append("name:" + _norm(student))
    return keys


def match_roster(gradebook: Gradebook, roster: Roster) -> ExportPlan:
    """Each graded student to exactly one roster entry (first key that names one entry)."""
    index: dict[str, list[RosterEntry]] = {}
    for entry in roster.entries:
        for key in _keys(entry):
            index.setdefault(key, []).append(entry)
    matched, unmatched, used = [], [], set()
    for row in gradebook.rows:
        found: RosterEntry | None = None
        reason = "no roster row has this login, email, ID or name"
        for key in _student_keys(row.student):
            hits = list(dict.fromkeys(index.get(key, [])))
            if len(hits) == 1:
                found = hits[0]
                break
            if len(hits) > 1:
                reason = "matches several roster rows (lines " + ", ".join(
                    str(h.line) for h in hits
                )
                reason += "): rename the submission to a login or email"
                break
        if found is None:
            unmatched.append(Unmatched(row.student, reason))
        elif found.line in used:
            unmatched.append(Unmatched(row.student, f"roster line {found.line} already matched"))
        else:
            used.add(found.line)
            matched.append(Match(row, found))
    missing = tuple(e for e in roster.entries if e.line not in used)
    return ExportPlan(gradebook, tuple(matched), tuple(unmatched), missing)


def plan_without_roster(gradebook: Gradebook) -> ExportPlan:
    entries = [Match(row, RosterEntry(login=row.student, line=row.line)) for row in gradebook.rows]
    return ExportPlan(gradebook, tuple(entries), (), ())


# -- the command -----------------------------------------------------------------------------------


def export_grades(
    out: Path,
    fmt: ExportFormat,
    *,
    roster_path: Path | None = None,
    dest: Path | None = None,
    skip_unmatched: bool = False,
    column: str = "",
) -> tuple[Path, ExportPlan]:
    """Write the LMS file for OUT; refuse (ExportError) while a student is unmatched."""
    from autograder.reports import lms
    from autograder.safeio import atomic_write

    gradebook = read_gradebook(out)
    roster = None
    if roster_path is not None:
        roster = read_roster(roster_path, gradebook.assignment)
        plan = match_roster(gradebook, roster)
    elif fmt is ExportFormat.CSV:
        plan = plan_without_roster(gradebook)
    else:
        raise ExportError(
            f"--format {fmt.value} needs --roster: the LMS knows students by its own ids. "
            "Canvas: Grades > Export (CSV); Moodle: Participants > Download table as CSV"
        )
    if plan.unmatched:
        listing = "; ".join(f"{u.student!r}: {u.reason}" for u in plan.unmatched[:20])
        if not skip_unmatched:
            raise ExportError(
                f"{len(plan.unmatched)} graded student(s) not on the roster {roster_path}: "
                f"{listing}. Fix the roster or the submission names, or pass --skip-unmatched"
            )
        log.warning("left out %d unmatched student(s): %s", len(plan.unmatched), listing)
    name = column or (roster.assignment_column if roster else "") or gradebook.assignment
    text = lms.render(fmt, plan, name)
    dest = Path(dest) if dest else Path(out) / f"export-{fmt.value}.csv"
    atomic_write(dest, text)
    return dest, plan
