"""One typed grading task: what crosses to a pool or Dask worker, and what comes back."""

from __future__ import annotations

import logging
import pickle

from autograder import logs
from autograder.submissions import SubmissionInput
from autograder.tasks import GradeTask, grade_task
from tests.fakes.grading import install


def test_grade_task_restores_the_logger_and_pickles(toy, toy_release, monkeypatch):
    install(monkeypatch, [])
    logger = logging.getLogger("autograder")
    level = logger.level
    task = GradeTask(
        SubmissionInput("x", None, problem="empty file"),
        str(toy.config_path),
        dict(toy_release),
        frozenset(),
        "d",
    )
    assert pickle.loads(pickle.dumps(task)) == task
    outcome = grade_task(task)
    assert pickle.loads(pickle.dumps(outcome)) == outcome
    assert outcome.result.status == "empty file"
    assert "status empty file" in outcome.log
    assert logger.level == level and not [
        h for h in logger.handlers if isinstance(h, logs.SubmissionLog)
    ]
