"""One grading task, typed, as it crosses a process boundary (pool worker or Dask task).

`GradeTask` is everything a worker needs to grade one submission; `grade_task` is the
one function both the local process pool (autograder.batch) and Dask workers
(autograder.distributed) run; `GradeOutcome` is what comes back: the typed result and
the submission's log (OUT/<student>/log.txt). All three pickle, so nothing crosses as
a bare tuple or dict.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import logs
from autograder.cleantext import encodable, encodable_tree
from autograder.config import load_config
from autograder.exceptions import AutograderError
from autograder.scoring import SubmissionResult, zero_result
from autograder.submissions import SubmissionInput

log = logs.get(__name__)


@dataclass(frozen=True)
class GradeTask:
    """One submission to grade, with what the worker needs to know about the assignment."""

    submission: SubmissionInput
    config_path: str  # the worker re-reads assignment.toml (a Dask worker: its own copy)
    release: dict[str, Any]  # the released notebook, as nbformat's plain dict
    skip: frozenset[str]
    digest: str  # the content hash the result is stored under
    log_level: int = logging.WARNING  # the console's level, for spawned worker processes

    @property
    def student(self) -> str:
        return self.submission.student


@dataclass(frozen=True)
class GradeOutcome:
    result: SubmissionResult
    log: str = ""  # what happened, for the TA (OUT/<student>/log.txt)


def grade_task(task: GradeTask) -> GradeOutcome:
    """Grade one submission in this process. Raises nothing a submission can cause."""
    # Imported here: a re-grade of an unchanged class never needs the grading machinery.
    import nbformat

    from autograder.grade import grade_submission

    if multiprocessing.parent_process() is not None and not logs.has_console():
        logs.configure(task.log_level)  # a spawned pool worker: show warnings as the CLI does
    config = load_config(Path(task.config_path))
    release = nbformat.from_dict(task.release)
    with logs.capture_submission(task.student) as captured:
        log.info("grading %r (%s)", task.student, config.name)
        started = time.monotonic()
        try:
            result = grade_submission(
                task.submission, config, release, skip=task.skip, digest=task.digest
            )
        except AutograderError as exc:
            log.error("grading %r failed: %s", task.student, exc)
            result = zero_result(config, task.student, f"grader error: {str(exc)[:200]}")
            result.content_hash = ""  # never cache a grader failure
        log.info(
            "status %s; %g/%g points in %.1f s",
            result.status,
            result.total,
            result.max_total,
            time.monotonic() - started,
        )
    # Whatever student text reached the result or the log (a lone surrogate from the
    # kernel, say), every report and file can write it: one student never stops the batch.
    result = SubmissionResult.from_dict(encodable_tree(result.to_dict()))
    return GradeOutcome(result, encodable(captured.text()))
