"""What a batch does around the grading itself: answers kept, manual scores and late
penalties applied, and the class-wide extras (similarity, feedback bundles).

Kept apart from batch.py so the parallel grading loop stays about grading. Inputs a
TA hands in (a manual sheet, submission times) are read in `prepare`, before any
submission is graded: a bad row stops the run with nothing changed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.answers import (
    GRADED_NOTEBOOK,
    Answers,
    extract_answers,
    graded_notebook,
    write_answers,
)
from autograder.config import AssignmentConfig
from autograder.exceptions import NotebookError
from autograder.manual import ManualScore, apply_scores, load_merged, merge, read_sheet
from autograder.safeio import atomic_write
from autograder.scoring import SubmissionResult
from autograder.submissions import SubmissionInput

log = logging.getLogger(__name__)

TIMES_FILE = ".submission-times.json"


@dataclass(frozen=True)
class Adjustments:
    new_manual: tuple[ManualScore, ...] | None = None
    times: dict[str, datetime] = field(default_factory=dict)
    times_given: bool = False
    folders: dict[str, Path] = field(default_factory=dict)  # each student's handed-in folder


def prepare(
    config: AssignmentConfig,
    out: Path,
    subs: list[SubmissionInput],
    manual: Path | None,
    times: Path | None,
    nbgrader_db: Path | None = None,
) -> Adjustments:
    """Read and check the TA's inputs before grading starts. Manual scores entered in
    formgrader come first; a sheet given on the same run wins over them."""
    from autograder.late import read_times, read_timestamp

    students = [s.student for s in subs]
    new: list[ManualScore] = []
    if nbgrader_db is not None:
        from autograder.formgrader import read_manual_scores

        new += read_manual_scores(config, nbgrader_db, students)
    if manual:
        new += read_sheet(manual, config, students)
    new_manual = tuple(new) if (manual or new) else None
    table: dict[str, datetime] = {}
    for sub in subs:
        if (ts := read_timestamp(sub.files)) is not None:
            table[sub.student] = ts
    kept = Path(out) / TIMES_FILE
    if kept.is_file():
        try:
            table.update(
                {k: datetime.fromisoformat(v) for k, v in json.loads(kept.read_text()).items()}
            )
        except (ValueError, AttributeError):
            log.warning("%s is damaged; pass --times again", kept)
    if times:
        given = read_times(times, config.late, students)
        table.update(given)
        stored = {k: v.isoformat() for k, v in table.items() if k in given or k in students}
        atomic_write(kept, json.dumps(stored, indent=1))
    folders = {s.student: s.files for s in subs if s.files is not None}
    return Adjustments(new_manual, table, times is not None, folders)


def save_answers(
    sub: SubmissionInput, folder: Path, release: NotebookNode | None, config: AssignmentConfig
) -> None:
    """OUT/<student>/answers.json for manual grading and similarity (empty if unreadable)."""
    from autograder.notebook import belongs_to, read_notebook

    if release is None:
        return
    answers = Answers(sub.student, {}, {})
    graded = None
    if sub.notebook is not None:
        try:
            limits = config.limits  # the worker's own: this process has no memory cap
            nb = read_notebook(sub.notebook, limits.notebook_mib << 20, limits.max_cells)
            if belongs_to(nb, release, config.name):
                answers = extract_answers(sub.student, nb, release, config)
                graded = graded_notebook(nb, release)
        except NotebookError:
            pass
        except Exception:  # noqa: BLE001 - a student's notebook must never stop the batch
            log.exception("%s: answers not kept", sub.student)
            answers, graded = Answers(sub.student, {}, {}), None
    folder.mkdir(parents=True, exist_ok=True)
    if graded is not None:
        atomic_write(folder / GRADED_NOTEBOOK, nbformat.writes(graded))
    write_answers(answers, folder)


def finish(
    results: list[SubmissionResult],
    config: AssignmentConfig,
    out: Path,
    dirs: dict[str, str],
    adjust: Adjustments,
    nbgrader_db: Path | None = None,
) -> list[str]:
    """Apply manual scores and late penalties; rewrite the students' reports they change;
    give formgrader the assignment's cells and the graded notebooks."""
    from autograder.late import apply_late
    from autograder.reports import write_student_reports

    warnings = []
    merged: dict[tuple[str, str], ManualScore]
    if adjust.new_manual is not None:
        merged = merge(out, list(adjust.new_manual))
        log.info("merged %d manual score(s)", len(adjust.new_manual))
    else:
        merged = load_merged(out)
    apply_scores(results, config, merged)
    if config.late is not None:
        late = apply_late(results, config.late, adjust.times)
        if late:
            log.info("%d late submission(s)", late)
        untimed = [r.student for r in results if not r.submitted_at]
        if untimed:
            warnings.append(
                f"{len(untimed)} submission(s) without a submission time, so no late penalty: "
                + ", ".join(untimed[:10])
                + (" ..." if len(untimed) > 10 else "")
                + ". Pass --times FILE (student,submitted_at)"
            )
    elif adjust.times_given:
        warnings.append(
            f"--times was given but {config.config_path} has no [late] section: no penalty applied"
        )
    if merged or config.late is not None:
        for result in results:
            if result.student in dirs:
                write_student_reports(result, config, Path(out) / dirs[result.student])
    if nbgrader_db is not None:
        from autograder.formgrader import register_assignment, write_course
        from autograder.release import release_notebook

        register_assignment(config, release_notebook(config), nbgrader_db)
        write_course(config, nbgrader_db, out, {r.student: dirs[r.student] for r in results})
    return warnings


def after_reports(
    results: list[SubmissionResult],
    config: AssignmentConfig,
    out: Path,
    dirs: dict[str, str],
    nbgrader_db: Path | None,
    adjust: Adjustments | None = None,
    *,
    similarity: bool = True,
) -> list[str]:
    """Class-wide extras built from the final results: similarity, feedback bundles."""
    from autograder.reports.bundles import write_feedback_bundles
    from autograder.similarity import write_similarity

    warnings: list[str] = []
    try:
        if similarity:
            write_similarity(config, out, {r.student: dirs[r.student] for r in results})
    except Exception as exc:  # noqa: BLE001 - flags for a person; never fail the grading
        log.exception("similarity check failed")
        warnings.append(f"similarity check failed: {exc}")
    course = Path(nbgrader_db).resolve().parent if nbgrader_db else None
    folders = adjust.folders if adjust else {}
    write_feedback_bundles(results, config, out, dirs, course, folders)
    if nbgrader_db is not None:
        from autograder.formgrader import write_manual_scores

        write_manual_scores(results, config, nbgrader_db)
    return warnings
