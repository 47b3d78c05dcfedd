"""nbgrader's formgrader, for those who grade there: what it needs, and its scores back.

With `--nbgrader-db COURSE/gradebook.db` the course folder gets what `nbgrader
autograde` would have left: the assignment's cells in gradebook.db (grade, solution and
source cells, from the released notebook, through nbgrader's own API), one submission
per student, and `COURSE/autograded/<student>/<assignment>/<notebook>.ipynb` (the
notebook as graded, with the student's text and PNG outputs). Autograded scores are
written by reports.nbgrader_db; manual scores a grader enters in formgrader are read
back here and merged like a filled scores.csv.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from nbformat import NotebookNode

from autograder.answers import GRADED_NOTEBOOK
from autograder.config import AssignmentConfig
from autograder.manual import ManualScore
from autograder.notebook import ANSWER, LOCKED, MANUAL, TEST, cell_role, grade_id

log = logging.getLogger(__name__)

CONFIG_FILE = "nbgrader_config.py"


@contextmanager
def gradebook(db_path: Path):
    """nbgrader's Gradebook; nbgrader shells out to `alembic` (beside this Python) to create
    a new database, so that folder goes on PATH for the call."""
    from nbgrader.api import Gradebook

    path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    try:
        gb = Gradebook(f"sqlite:///{Path(db_path).resolve()}")
    finally:
        os.environ["PATH"] = path
    with gb:
        yield gb


def _points(cell: NotebookNode, config: AssignmentConfig) -> float:
    gid = grade_id(cell) or ""
    qid = gid[5:] if gid.startswith("test_") else gid
    if qid in config.questions:
        return config.questions[qid].points  # points only from assignment.toml
    return float(cell.metadata.get("nbgrader", {}).get("points", 0) or 0)


def register_assignment(config: AssignmentConfig, release: NotebookNode, db_path: Path) -> None:
    """The released notebook's cells in gradebook.db, as `nbgrader generate_assignment` does."""
    from nbgrader.utils import compute_checksum

    notebook = config.notebook.stem
    with gradebook(db_path) as gb:
        gb.update_or_create_assignment(config.name)
        gb.update_or_create_notebook(notebook, config.name)
        for cell in release.cells:
            gid, role = grade_id(cell), cell_role(cell)
            if not gid:
                continue
            if role in (TEST, MANUAL):
                gb.update_or_create_grade_cell(
                    gid,
                    notebook,
                    config.name,
                    max_score=_points(cell, config),
                    cell_type=cell.cell_type,
                )
            if role in (ANSWER, MANUAL):
                gb.update_or_create_solution_cell(gid, notebook, config.name)
            if role in (TEST, MANUAL, ANSWER, LOCKED):
                gb.update_or_create_source_cell(
                    gid,
                    notebook,
                    config.name,
                    cell_type=cell.cell_type,
                    locked=role in (TEST, LOCKED),
                    source=cell.source,
                    checksum=compute_checksum(cell),
                )


def write_course(
    config: AssignmentConfig, db_path: Path, out: Path, dirs: dict[str, str]
) -> list[Path]:
    """COURSE/autograded/<student>/<assignment>/<notebook>.ipynb for each graded student, and
    an nbgrader_config.py naming this gradebook when the course has none."""
    course = Path(db_path).resolve().parent
    written = []
    for folder in dirs.values():  # the safe folder name: the student's id in nbgrader
        src = Path(out) / folder / GRADED_NOTEBOOK
        if not src.is_file():
            continue
        dest = course / "autograded" / folder / config.name / f"{config.notebook.stem}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        written.append(dest)
    cfg = course / CONFIG_FILE
    if not cfg.exists():
        cfg.write_text(
            "# Written by `autograder grade --nbgrader-db`: the course formgrader shows.\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.root = {str(course)!r}\n"
            f"c.CourseDirectory.db_url = {'sqlite:///' + str(Path(db_path).resolve())!r}\n"
        )
    return written


def read_manual_scores(
    config: AssignmentConfig, db_path: Path, students: list[str]
) -> list[ManualScore]:
    """Manual scores and comments entered in formgrader, for the manual questions."""
    from nbgrader.api import MissingEntry

    if not Path(db_path).is_file():
        return []
    notebook = config.notebook.stem
    manual = [q for q in config.questions.values() if q.manual]
    scores = []
    with gradebook(db_path) as gb:
        for student in students:
            for q in manual:
                try:
                    grade = gb.find_grade(q.id, notebook, config.name, student)
                except MissingEntry:
                    continue
                if grade.manual_score is None:
                    continue
                try:
                    comment = gb.find_comment(q.id, notebook, config.name, student).manual_comment
                except MissingEntry:
                    comment = None
                points = min(max(float(grade.manual_score), 0.0), q.points)
                scores.append(ManualScore(student, q.id, points, (), comment or ""))
    return scores


def write_manual_scores(results, config: AssignmentConfig, db_path: Path) -> None:
    """Manual scores merged from a sheet into gradebook.db too, so formgrader shows them and
    the next run reads back the same scores."""
    from nbgrader.api import MissingEntry

    notebook = config.notebook.stem
    with gradebook(db_path) as gb:
        for r in results:
            for qid, q in r.questions.items():
                if not q.manual or q.points is None:
                    continue
                try:
                    grade = gb.find_grade(qid, notebook, config.name, r.student)
                except MissingEntry:
                    continue
                if grade.manual_score != q.points:
                    grade.manual_score = q.points
                if q.comment:
                    try:
                        comment = gb.find_comment(qid, notebook, config.name, r.student)
                        comment.manual_comment = q.comment
                    except MissingEntry:
                        pass
        gb.db.commit()
