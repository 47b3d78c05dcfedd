"""Grading a whole class: parallel, resumable, and safe to kill at any moment.

Each finished submission is written at once and atomically under
OUT/<student>/, with `grade.json` (the typed result and its content hash)
written last as the commit marker. A re-run skips a student whose notebook,
extra files, checks, config and grader code hash to the same value, unless
`force`. Class-wide files (gradebook.csv, summary.json, the plot) are
rebuilt from every OUT/<student>/grade.json at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from autograder import logs
from autograder.config import AssignmentConfig
from autograder.digest import assignment_digest, submission_digest
from autograder.exceptions import ConfigError
from autograder.reports import write_class_reports, write_student_reports
from autograder.safeio import atomic_write
from autograder.scoring import SubmissionResult
from autograder.submissions import SubmissionInput, discover, safe_name
from autograder.tasks import GradeOutcome, GradeTask, grade_task

GRADE_FILE = "grade.json"
LOG_FILE = "log.txt"


@dataclass
class BatchResult:
    results: list[SubmissionResult]
    graded: int = 0
    reused: int = 0
    seconds: float = 0.0
    out: Path = Path(".")
    warnings: list[str] = field(default_factory=list)


def _student_dirs(subs: list[SubmissionInput]) -> dict[str, str]:
    """Unique, safe output folder per student id."""
    taken: dict[str, str] = {}
    used: set[str] = set()
    for sub in subs:
        base = safe_name(sub.student)
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name.lower())
        taken[sub.student] = name
    return taken


def load_previous(out_dir: Path) -> SubmissionResult | None:
    path = out_dir / GRADE_FILE
    if not path.is_file():
        return None
    try:
        return SubmissionResult.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError):
        return None  # a damaged file is simply graded again


Executor = Callable[[list[GradeTask]], Iterator[GradeOutcome]]


def local_executor(jobs: int) -> Executor:
    """Grade in this process (`jobs` 1) or in `jobs` spawned worker processes."""

    def run(tasks: list[GradeTask]) -> Iterator[GradeOutcome]:
        if jobs <= 1:
            for task in tasks:
                yield grade_task(task)
            return
        ctx = multiprocessing.get_context("spawn")  # no forked grader state or threads
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            pending = {pool.submit(grade_task, task) for task in tasks}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()

    return run


def write_outcome(outcome: GradeOutcome, config: AssignmentConfig, folder: Path) -> None:
    """OUT/<student>/: the reports, log.txt, then grade.json last (the commit marker)."""
    write_student_reports(outcome.result, config, folder)
    atomic_write(folder / LOG_FILE, outcome.log)
    atomic_write(folder / GRADE_FILE, json.dumps(outcome.result.to_dict(), indent=1))


def grade_batch(
    config: AssignmentConfig,
    submissions: Path,
    out: Path,
    *,
    jobs: int = 1,
    skip: tuple[str, ...] | list[str] = (),
    force: bool = False,
    executor: Executor | None = None,
    progress: Callable[[SubmissionResult, int, int], None] | None = None,
    nbgrader_db: Path | None = None,
) -> BatchResult:
    """Grade every submission under `submissions` into `out`."""
    start = time.monotonic()
    unknown = sorted(set(skip) - set(config.questions))
    if unknown:
        raise ConfigError(
            config.config_path,
            "questions",
            f"--skip names unknown question {unknown[0]!r}",
            "Use one of: " + ", ".join(config.questions),
        )
    skipped = frozenset(skip)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="autograder-batch-"))
    try:
        warnings: list[str] = []
        subs = discover(submissions, config.name, config.notebook.name, workdir, warnings)
        dirs = _student_dirs(subs)
        grader_digest = assignment_digest(config)
        results: dict[str, SubmissionResult] = {}
        todo: list[tuple[SubmissionInput, str]] = []
        for sub in subs:
            digest = submission_digest(sub, grader_digest, skipped)
            previous = None if force else load_previous(out / dirs[sub.student])
            if previous is not None and previous.content_hash == digest:
                results[sub.student] = previous
            else:
                todo.append((sub, digest))
        tasks: list[GradeTask] = []
        if todo:
            from autograder.release import release_notebook

            release = dict(release_notebook(config))
            level = logs.console_level()
            tasks = [
                GradeTask(s, str(config.config_path), release, skipped, d, level) for s, d in todo
            ]
        reused = len(results)
        run = executor or local_executor(jobs)
        total = len(subs)
        for outcome in run(tasks):
            result = outcome.result
            write_outcome(outcome, config, out / dirs[result.student])
            results[result.student] = result
            if progress:
                progress(result, len(results), total)
        ordered = [results[s.student] for s in subs if s.student in results]
        write_class_reports(ordered, config, out, nbgrader_db=nbgrader_db)
        return BatchResult(
            results=ordered,
            graded=len(tasks),
            reused=reused,
            seconds=round(time.monotonic() - start, 2),
            out=out,
            warnings=warnings,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
