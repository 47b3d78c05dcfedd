"""Scores into nbgrader's gradebook.db through nbgrader's own API.

Autograded question `q` lands on the grade cell `test_q` (the visible test
cell that nbgrader knows) or `q`; manual questions are left for formgrader.
"""

from __future__ import annotations

from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.runenv import python_bin_on_path
from autograder.scoring import SubmissionResult


def write_nbgrader_scores(
    results: list[SubmissionResult], config: AssignmentConfig, db_path: Path
) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    notebook = config.notebook.stem
    with python_bin_on_path():  # nbgrader shells out to `alembic` to create a new gradebook
        gb = Gradebook(f"sqlite:///{Path(db_path).resolve()}")
    with gb:
        gb.update_or_create_assignment(config.name)
        gb.update_or_create_notebook(notebook, config.name)
        existing = {c.name for c in gb.find_notebook(notebook, config.name).grade_cells}
        cell_for = {}
        for qid, q in config.questions.items():
            name = f"test_{qid}" if f"test_{qid}" in existing else qid
            if name not in existing:
                gb.update_or_create_grade_cell(
                    name,
                    notebook,
                    config.name,
                    max_score=q.points,
                    cell_type="markdown" if q.manual else "code",
                )
            cell_for[qid] = name
        for r in results:
            gb.update_or_create_student(r.student)
            try:
                gb.find_submission(config.name, r.student)
            except MissingEntry:
                gb.add_submission(config.name, r.student)
            for qid, scored in r.questions.items():
                if scored.manual or scored.points is None or qid not in cell_for:
                    continue
                grade = gb.find_grade(cell_for[qid], notebook, config.name, r.student)
                grade.auto_score = scored.points
            gb.db.commit()
