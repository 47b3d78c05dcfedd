"""Grading a whole class: parallel, resumable, and safe to kill at any moment.

Each finished submission is written at once and atomically under
OUT/<student>/, with `grade.json` (the typed result and its content hash)
written last as the commit marker. A re-run skips a student whose notebook,
extra files, checks, config and grader code hash to the same value, unless
`force`. Class-wide files (gradebook.csv, summary.json, the plot) are
rebuilt from every OUT/<student>/grade.json at the end.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from autograder import classwork, logs
from autograder.answers import ANSWERS_FILE
from autograder.config import AssignmentConfig, load_config
from autograder.digest import assignment_digest, submission_digest
from autograder.exceptions import ConfigError
from autograder.pool import GRADER_MEMORY_LIMIT, CappedPool
from autograder.reports import write_class_reports, write_student_reports
from autograder.safeio import SUBMISSION_TMP, atomic_write, owned_prefix, sweep_stale_dirs
from autograder.scoring import SubmissionResult, zero_result
from autograder.submissions import SubmissionInput, discover, safe_name
from autograder.tasks import GradeOutcome, GradeTask, grade_task

BATCH_TMP = "autograder-batch-"  # then the batch's pid (safeio.sweep_stale_dirs)
GRADE_FILE = "grade.json"
LOG_FILE = "log.txt"

log = logs.get(__name__)


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


def _worker_died(task: GradeTask, reason: str) -> GradeOutcome:
    """The outcome of a submission whose grading worker died (its memory cap, say)."""
    config = load_config(Path(task.config_path))
    if reason == GRADER_MEMORY_LIMIT:
        why = (
            "What this submission made the grader hold was more than the "
            f"{config.limits.grader_memory_mib} MiB a grading worker may use"
        )
    else:  # a crash or a signal: nothing says this submission's size was the cause
        why = "The grading worker stopped while grading this submission"
    result = zero_result(
        config,
        task.student,
        reason,
        notes=[
            f"grading stopped: {reason}. {why}; nothing was graded, and it is graded again "
            "on the next run. Ask your TA to look at it"
        ],
    )
    # content_hash stays empty: graded again on the next run
    return GradeOutcome(result, f"the grading worker died: {reason}\n")


def local_executor(jobs: int, memory_mib: int | None = None) -> Executor:
    """Up to `jobs` grading workers, each capped at `memory_mib` (autograder.pool)."""

    def run(tasks: list[GradeTask]) -> Iterator[GradeOutcome]:
        if not tasks:
            return
        limit = memory_mib or load_config(Path(tasks[0].config_path)).limits.grader_memory_mib
        pool = CappedPool(grade_task, jobs, limit, on_death=_worker_died)
        for outcome, memory in pool.run(tasks):
            if memory is not None:
                outcome.result.grader_rss_mib = memory.start_mib
                outcome.result.grader_peak_mib = memory.peak_mib
            yield outcome

    return run


def write_outcome(outcome: GradeOutcome, config: AssignmentConfig, folder: Path) -> None:
    """OUT/<student>/: the reports, log.txt, then grade.json last (the commit marker)."""
    write_student_reports(outcome.result, config, folder)
    atomic_write(folder / LOG_FILE, outcome.log)
    atomic_write(folder / GRADE_FILE, json.dumps(outcome.result.to_dict(), indent=1))


def sweep_killed(root: Path | None = None) -> list[Path]:
    """Remove the temporary folders that killed graders (SIGKILL, OOM) left in `root`
    (the temporary folder): a batch's work folder and each submission's, pid-named."""
    where = Path(root or tempfile.gettempdir())
    return sweep_stale_dirs(where, BATCH_TMP) + sweep_stale_dirs(where, SUBMISSION_TMP)


def sweep_dead_workers() -> list[Path]:
    """After a batch: what its workers killed on the way (the memory cap) left behind, their
    submission folders, zygote folders (in memory: /dev/shm) and model stores."""
    from autograder.model_host import STORE_PREFIX
    from autograder.warm import WARM_PREFIX, warm_dir

    removed = sweep_killed()
    removed += sweep_stale_dirs(Path(tempfile.gettempdir()), STORE_PREFIX)
    with contextlib.suppress(OSError):
        removed += sweep_stale_dirs(warm_dir(), WARM_PREFIX)
    return removed


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
    manual: Path | None = None,
    times: Path | None = None,
    similarity: bool = True,
) -> BatchResult:
    """Grade every submission under `submissions` into `out`.

    `manual` (a filled OUT/manual/scores.csv) and `times` (student,submitted_at) are
    checked before anything is graded, so a bad row changes nothing. `similarity=False`
    leaves out the similarity report (`validate`'s mutants are alike by construction).
    """
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
    sweep_killed()
    workdir = Path(tempfile.mkdtemp(prefix=owned_prefix(BATCH_TMP)))
    try:
        warnings: list[str] = []
        subs = discover(submissions, config.name, config.notebook.name, workdir, warnings)
        dirs = _student_dirs(subs)
        adjust = classwork.prepare(config, out, subs, manual, times, nbgrader_db)
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
        by_student = {sub.student: sub for sub in subs}
        no_answers = [s for s in results if not (out / dirs[s] / ANSWERS_FILE).is_file()]
        release_nb = None
        if todo or no_answers:
            from autograder.release import release_notebook

            release_nb = release_notebook(config)
            release = dict(release_nb)
            level = logs.console_level()
            tasks = [
                GradeTask(s, str(config.config_path), release, skipped, d, level) for s, d in todo
            ]
        for student in no_answers:
            classwork.save_answers(by_student[student], out / dirs[student], release_nb, config)
        reused = len(results)
        run = executor or local_executor(jobs)
        total = len(subs)
        for outcome in run(tasks):
            result = outcome.result
            folder = out / dirs[result.student]
            try:
                classwork.save_answers(by_student[result.student], folder, release_nb, config)
                write_outcome(outcome, config, folder)
            except (UnicodeError, ValueError, TypeError, RecursionError):
                # Student data a report could not take: this student's files are missing
                # (and grade.json too, so the next run grades them again); never the class.
                log.exception("%s: the reports could not be written", result.student)
            results[result.student] = result
            if progress:
                progress(result, len(results), total)
        ordered = [results[s.student] for s in subs if s.student in results]
        warnings += classwork.finish(ordered, config, out, dirs, adjust, nbgrader_db)
        write_class_reports(ordered, config, out, nbgrader_db=nbgrader_db)
        warnings += classwork.after_reports(
            ordered, config, out, dirs, nbgrader_db, adjust, similarity=similarity
        )
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
        sweep_dead_workers()
