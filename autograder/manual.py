"""Manual questions graded by rubric, question by question across the class.

`write_sheets` puts every student's answer to one question on one page
(OUT/manual/<question>.html) and writes OUT/manual/scores.csv for the TA to fill:
one row per student and question, one column per rubric item, then points and a
comment. `read_sheet` checks the whole filled sheet before anything is merged (a
bad row names its file, line and column; nothing changes), and merged scores are
kept in OUT/manual/merged.json so later runs keep them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from autograder.config import AssignmentConfig, Question
from autograder.exceptions import ManualScoresError
from autograder.reports.gradebook import _cell, csv_text, uncell
from autograder.safeio import atomic_write
from autograder.scoring import SubmissionResult

log = logging.getLogger(__name__)

MANUAL_DIR = "manual"
SCORES_FILE = "scores.csv"
MERGED_FILE = "merged.json"
FULL_MARKS = {"x", "X", "✓", "✔", "yes", "y", "Y", "Yes", "full"}
MAX_ERRORS = 15


@dataclass(frozen=True)
class ManualScore:
    student: str
    question: str
    points: float
    items: tuple[tuple[str, float], ...]  # (rubric id, points given), marked items only
    comment: str = ""


def manual_questions(config: AssignmentConfig) -> list[Question]:
    return [q for q in config.questions.values() if q.manual]


def sheet_header(config: AssignmentConfig) -> list[str]:
    items = [item.id for q in manual_questions(config) for item in q.rubric]
    return ["student", "question", *items, "points", "comment"]


def blank_rows(config: AssignmentConfig, students: list[str]) -> list[list[str]]:
    width = len(sheet_header(config)) - 2
    return [[_cell(s), q.id, *[""] * width] for q in manual_questions(config) for s in students]


def write_scores_sheet(config: AssignmentConfig, students: list[str], path: Path) -> int:
    """Write scores.csv, or add the rows it lacks: a TA's filled cells are never overwritten.
    Returns the number of rows added."""
    header = sheet_header(config)
    rows = blank_rows(config, students)
    if path.is_file():
        existing = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines(True)))
        if existing and existing[0] == header:
            have = {(uncell(r[0]), r[1]) for r in existing[1:] if len(r) >= 2}
            new = [r for r in rows if (uncell(r[0]), r[1]) not in have]
            if new:
                atomic_write(path, csv_text(existing + new))
            return len(new)
        backup = path.with_suffix(".old.csv")
        path.replace(backup)
        log.warning("%s had other columns (the rubric changed); kept it as %s", path, backup)
    atomic_write(path, csv_text([header, *rows]))
    return len(rows)


# -- reading a filled sheet ------------------------------------------------------------------------


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", ".")) if text else None
    except ValueError:
        return None
    return value if value is None or math.isfinite(value) else None


def read_sheet(
    path: Path, config: AssignmentConfig, students: list[str] | set[str]
) -> list[ManualScore]:
    """Every graded row of a filled scores.csv, or ManualScoresError listing each bad cell."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManualScoresError(
            f"{path}: cannot be read ({exc}). Save the sheet as UTF-8 CSV"
        ) from None
    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, [])
    expected = sheet_header(config)
    if [h.strip() for h in header] != expected:
        missing = [h for h in expected if h not in header]
        extra = [h for h in header if h not in expected]
        raise ManualScoresError(
            f"{path}, line 1: the columns are {header}, expected {expected}"
            + (f" (missing {missing})" if missing else "")
            + (f" (unknown {extra})" if extra else "")
            + ". Start from the scores.csv that `autograder manual` wrote"
        )
    col = {name: i for i, name in enumerate(expected)}
    known = set(students)
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    scores: list[ManualScore] = []

    def bad(line: int, column: str, problem: str) -> None:
        letter = _letter(col[column]) if column in col else "?"
        errors.append(f"{path}, line {line}, column '{column}' ({letter}): {problem}")

    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        row = [*row, *[""] * (len(expected) - len(row))]
        if len(row) > len(expected) and any(c.strip() for c in row[len(expected) :]):
            errors.append(f"{path}, line {line}: {len(row)} cells, the header has {len(expected)}")
            continue
        student, qid = uncell(row[0].strip()), row[1].strip()
        if student not in known:
            bad(line, "student", f"unknown student {student!r}; use an id from gradebook.csv")
            continue
        q = config.questions.get(qid)
        if q is None or not q.manual:
            names = ", ".join(x.id for x in manual_questions(config))
            bad(line, "question", f"{qid!r} is not a manual question (one of: {names})")
            continue
        if (student, qid) in seen:
            first = seen[student, qid]
            bad(line, "student", f"{student!r}/{qid} is graded twice (also line {first})")
            continue
        seen[student, qid] = line
        mine = {item.id for item in q.rubric}
        items: list[tuple[str, float]] = []
        ok = True
        for other in manual_questions(config):
            for item in other.rubric:
                raw = row[col[item.id]].strip()
                if not raw:
                    continue
                if item.id not in mine:
                    bad(line, item.id, f"belongs to question {other.id!r}, not {qid!r}; clear it")
                    ok = False
                    continue
                value = item.points if raw in FULL_MARKS else _number(raw)
                if value is None:
                    bad(line, item.id, f"not a number ({raw!r}): enter 0 to {item.points:g}, or x")
                    ok = False
                elif not 0 <= value <= item.points + 1e-9:
                    bad(line, item.id, f"{raw} is outside 0 to {item.points:g} (its maximum)")
                    ok = False
                else:
                    items.append((item.id, value))
        raw_points = row[col["points"]].strip()
        comment = row[col["comment"]].strip()
        points = _number(raw_points)
        if raw_points and points is None:
            bad(line, "points", f"not a number ({raw_points!r})")
            ok = False
        elif points is not None and not 0 <= points <= q.points + 1e-9:
            bad(line, "points", f"{raw_points} is outside 0 to {q.points:g} (the maximum of {qid})")
            ok = False
        if not ok:
            continue
        if points is None and items:
            points = sum(v for _, v in items)
        if points is None:
            if comment:
                bad(line, "points", "a comment without points or rubric marks: grade the answer")
            continue  # not graded yet
        scores.append(ManualScore(student, qid, round(points, 4), tuple(items), comment))
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        raise ManualScoresError(
            "manual scores not merged, nothing changed:\n  "
            + "\n  ".join(errors[:MAX_ERRORS])
            + more
            + "\nFix these cells and run again"
        )
    return scores


def _letter(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


# -- keeping and applying --------------------------------------------------------------------------


def load_merged(out: Path) -> dict[tuple[str, str], ManualScore]:
    path = Path(out) / MANUAL_DIR / MERGED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    merged = {}
    for d in data:
        items = tuple((str(i), float(v)) for i, v in d["items"])
        s = ManualScore(d["student"], d["question"], float(d["points"]), items, d["comment"])
        merged[s.student, s.question] = s
    return merged


def save_merged(out: Path, merged: dict[tuple[str, str], ManualScore]) -> None:
    data = [s.__dict__ for _, s in sorted(merged.items())]
    atomic_write(Path(out) / MANUAL_DIR / MERGED_FILE, json.dumps(data, indent=1))


def merge(out: Path, new: list[ManualScore]) -> dict[tuple[str, str], ManualScore]:
    """Earlier merged scores, overridden by the new sheet's graded rows; saved."""
    merged = load_merged(out)
    merged.update({(s.student, s.question): s for s in new})
    save_merged(out, merged)
    return merged


def apply_scores(
    results: list[SubmissionResult],
    config: AssignmentConfig,
    scores: dict[tuple[str, str], ManualScore],
) -> int:
    """Put the TA's points, rubric items and comment into each manual question. Returns how
    many questions got a score."""
    applied = 0
    for result in results:
        for qid, q in result.questions.items():
            s = scores.get((result.student, qid))
            if s is None or not q.manual or qid not in config.questions:
                continue
            given = dict(s.items)
            q.points = s.points
            q.comment = s.comment
            q.rubric = (
                []
                if not s.items
                else [
                    {
                        "id": item.id,
                        "description": item.description,
                        "points": given.get(item.id, 0.0),
                        "max_points": item.points,
                    }
                    for item in config.questions[qid].rubric
                ]
            )
            applied += 1
    return applied


# -- the sheets ------------------------------------------------------------------------------------


def _sheet_lines(path: Path) -> dict[tuple[str, str], int]:
    lines: dict[tuple[str, str], int] = {}
    reader = csv.reader(path.read_text(encoding="utf-8-sig").splitlines(True))
    start = 1
    for row in reader:
        if len(row) >= 2 and start > 1:
            lines.setdefault((uncell(row[0].strip()), row[1].strip()), start)
        start = reader.line_num + 1
    return lines


def _graded_folders(out: Path) -> list[tuple[SubmissionResult, Path]]:
    from autograder.batch import load_previous

    found = []
    for folder in sorted(p for p in Path(out).iterdir() if p.is_dir()):
        result = load_previous(folder)
        if result is not None:
            found.append((result, folder))
    return found


def _check_assignment(
    graded: list[tuple[SubmissionResult, Path]], config: AssignmentConfig
) -> None:
    other = sorted({r.assignment for r, _ in graded} - {config.name})
    if other:
        raise ManualScoresError(
            f"the graded folder holds {other[0]!r} results, not {config.name!r}. "
            "Pass the assignment that OUT was graded with"
        )


# A page of 300 answers must still open: plots beyond this many bytes are left out (the
# student's graded.ipynb still has them).
MAX_PAGE_IMAGE_BYTES = 48 << 20


def _within_budget(outputs, budget: int):
    from autograder.answers import Output

    kept = []
    for o in outputs:
        if o.kind == "png":
            if len(o.data) > budget:
                kept.append(Output("text", "(plot left out: this page is at its size limit)"))
                continue
            budget -= len(o.data)
        kept.append(o)
    return budget, tuple(kept)


def _prompts(release) -> dict[str, str]:
    """Each manual question's prompt: the markdown cell just before its answer cell."""
    from autograder.notebook import MANUAL, cell_role, grade_id

    prompts, previous = {}, ""
    for cell in release.cells:
        if cell_role(cell) == MANUAL and (gid := grade_id(cell)):
            prompts[gid] = previous
        previous = cell.source if cell.cell_type == "markdown" else ""
    return prompts


def write_sheets(config: AssignmentConfig, out: Path) -> list[Path]:
    """OUT/manual/<question>.html for each manual question, and OUT/manual/scores.csv."""
    from autograder.answers import load_answers, starter_sources
    from autograder.release import release_notebook
    from autograder.reports.manual_page import AnswerView, manual_page
    from autograder.reports.markdown import render_markdown

    graded = _graded_folders(out)
    if not graded:
        raise ManualScoresError(
            f"{out}: no graded submissions (no <student>/grade.json). "
            f"Run `autograder grade {config.name} SUBMISSIONS --out {out}` first"
        )
    _check_assignment(graded, config)
    questions = manual_questions(config)
    if not questions:
        raise ManualScoresError(
            f"{config.config_path}: no question has manual = true; nothing to grade by hand"
        )
    folder = Path(out) / MANUAL_DIR
    sheet = folder / SCORES_FILE
    write_scores_sheet(config, [r.student for r, _ in graded], sheet)
    lines = _sheet_lines(sheet)
    merged = load_merged(out)
    release = release_notebook(config)
    starter = starter_sources(release)
    prompts = _prompts(release)
    written = []
    for q in questions:
        views = []
        budget = MAX_PAGE_IMAGE_BYTES
        for n, (result, student_dir) in enumerate(graded):
            answers = load_answers(student_dir)
            outputs = answers.outputs.get(q.id, ()) if answers else ()
            budget, outputs = _within_budget(outputs, budget)
            source = answers.cells.get(q.id) if answers else None
            empty = ""
            if answers is None:
                empty = f"no answers kept (status: {result.status}); re-grade with --force"
            elif not source or not source.strip():
                empty = "no answer (the cell is empty or missing)"
            elif source.strip() == starter.get(q.id, "").strip():
                empty = "no answer (the starter text is unchanged)"
            score = merged.get((result.student, q.id))
            views.append(
                AnswerView(
                    student=result.student,
                    anchor=f"s{n}",
                    line=lines.get((result.student, q.id), 0),
                    html="" if empty else render_markdown(source or ""),
                    outputs=outputs,
                    empty=empty,
                    score=score.points if score else None,
                    comment=score.comment if score else "",
                )
            )
        page = folder / f"{q.id}.html"
        prompt = render_markdown(prompts.get(q.id, ""))
        sheet_name = f"{MANUAL_DIR}/{SCORES_FILE}"
        atomic_write(page, manual_page(config.name, q, views, sheet_name, prompt))
        written.append(page)
    return [*written, sheet]
