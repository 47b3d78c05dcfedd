"""Grading one submission end to end: read, restore, run sandboxed, check, score."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from nbformat import NotebookNode

from autograder import logs
from autograder.bridge import KernelSubmission
from autograder.config import AssignmentConfig
from autograder.exceptions import NotebookError, SandboxError
from autograder.notebook import belongs_to, code_cells_to_run, read_notebook, restore
from autograder.plugin import run_checks
from autograder.safeio import SUBMISSION_TMP, owned_prefix
from autograder.sandbox import Sandbox, capabilities
from autograder.scoring import SubmissionResult, score, zero_result
from autograder.session import KernelSession
from autograder.submissions import SubmissionInput, submission_files
from autograder.warm import Zygote, zygote_for

log = logs.get(__name__)


def _copy_extra_files(sub: SubmissionInput, dest: Path) -> list[str]:
    """The student's extra files (e.g. model.keras), as `submission_files` picks them."""
    files = submission_files(sub)
    if sub.files is not None:
        dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, dest / path.name, follow_symlinks=False)
    return [path.name for path in files]


def data_env() -> tuple[dict[str, str], list[Path]]:
    """Read-only data folders a notebook may load from, and the variables that name them.

    Every kernel gets AUTOGRADER_OFFLINE=1 (it has no network: do not even try to
    download) and, when the grader has one, AUTOGRADER_DATA_DIR. Debian's
    /usr/share/datasets is already visible (all of /usr is); the MNIST test set in
    shared/ and AUTOGRADER_DATA_DIR are bound read-only at the same paths.
    """
    from autograder.datasets import shared_mnist_dirs

    folders = [p.resolve() for p in shared_mnist_dirs() if p.is_dir()]
    env = {"AUTOGRADER_OFFLINE": "1"}
    if data_dir := os.environ.get("AUTOGRADER_DATA_DIR"):
        folders.append(Path(data_dir).resolve())
        env["AUTOGRADER_DATA_DIR"] = str(Path(data_dir).resolve())
    return env, list(dict.fromkeys(f for f in folders if f.is_dir()))


def kernel_env(config: AssignmentConfig, grader_env: dict[str, str]) -> dict[str, str]:
    """The assignment's own variables (assignment.toml `env`), then the grader's on top."""
    return {**config.env, **grader_env}


def grade_submission(
    sub: SubmissionInput,
    config: AssignmentConfig,
    release: NotebookNode,
    *,
    skip: frozenset[str] = frozenset(),
    digest: str = "",
) -> SubmissionResult:
    """Grade one student. Never raises for anything the submission does."""
    start = time.monotonic()
    isolation = capabilities().describe()
    log.info("isolation: %s", isolation)

    def finish(result: SubmissionResult) -> SubmissionResult:
        result.seconds = round(time.monotonic() - start, 2)
        result.content_hash, result.isolation = digest, isolation
        return result

    if sub.notebook is None:
        return finish(zero_result(config, sub.student, sub.problem or "no notebook found"))
    try:
        limits = config.limits
        nb = read_notebook(sub.notebook, limits.notebook_mib << 20, limits.max_cells)
    except NotebookError as exc:
        return finish(zero_result(config, sub.student, str(exc)))
    if not belongs_to(nb, release, config.name):
        return finish(zero_result(config, sub.student, "wrong assignment"))
    restored = restore(nb, release)
    notes = []
    if restored.edited:
        notes.append("restored edited locked/test cells: " + ", ".join(restored.edited[:10]))
    if restored.missing:
        notes.append("restored deleted cells: " + ", ".join(restored.missing[:10]))
    if restored.duplicates:
        notes.append(
            "ignored duplicated cells: " + ", ".join(sorted(set(restored.duplicates))[:10])
        )
    for note in notes:
        log.info("%s", note)
    cells = [(n, c.source) for n, c in code_cells_to_run(restored.notebook, config.skip_tags)]

    grader_env, data_dirs = data_env()
    env = kernel_env(config, grader_env)
    zygote = _zygote(config, data_dirs)
    # Named with this pid, so a batch after a killed grader removes it (`batch.sweep_killed`).
    tmp = Path(tempfile.mkdtemp(prefix=owned_prefix(SUBMISSION_TMP)))
    scratch = zygote.new_scratch() if zygote else tmp / "scratch"
    try:
        files_dir = tmp / "submitted"  # grader-side copy the student cannot touch
        extra = _copy_extra_files(sub, files_dir)
        with Sandbox(
            scratch,
            config.limits,
            readonly=data_dirs,
            cgroup_parent=zygote.cgroup_name if zygote else "",
        ) as sandbox:
            for name in extra:
                shutil.copyfile(files_dir / name, sandbox.scratch / "work" / name)
            session = KernelSession(sandbox, config.limits, env=env, zygote=zygote)
            try:
                session.start()
                session.run_cells(cells)
                checks = []
                # Every question skipped (e.g. `make bench`'s floor: the cells alone): no
                # check session to start, no model host, nothing to collect.
                if not set(config.autograded) <= skip:
                    submission = KernelSubmission(
                        session, sub.student, files_dir if extra else None
                    )
                    try:
                        checks = run_checks(config.checks_dir, submission, config, skip=skip)
                    finally:
                        submission.close()
                cpu_seconds = session.cpu_seconds()
            finally:
                session.close()
        for check in checks:
            log.info(
                "check %s (%s): %s in %.2f s%s",
                check.name,
                check.question,
                "passed" if check.passed else "failed",
                check.seconds,
                "" if check.passed else f": {check.message[:200]}",
            )
        result = SubmissionResult(
            student=sub.student,
            assignment=config.name,
            status=session.status,
            questions=score(config, checks, skip),
            incidents=session.incidents,
            notes=notes,
            cpu_seconds=round(cpu_seconds, 2),
        )
        return finish(result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _zygote(config: AssignmentConfig, data_dirs: list[Path]) -> Zygote | None:
    """This worker's warm zygote for the assignment, or None to start kernels cold."""
    try:
        return zygote_for(config.preload, data_dirs, config.limits, config.env)
    except SandboxError as exc:
        log.warning("warm kernels unavailable, starting them cold: %s", exc)
        return None
