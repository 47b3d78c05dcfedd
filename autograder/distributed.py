"""Grading on a Dask cluster: `autograder grade ... --dask tcp://SCHEDULER:8786`.

`dask_executor(address)` returns an Executor for `autograder.batch.grade_batch`: one
Dask task per submission, results yielded as they finish (`distributed.as_completed`),
each student exactly once. Everything else (hashing, skipping unchanged submissions,
writing OUT/<student>/ and the class reports) stays on the machine that runs the command.

Setting up a cluster::

    dask scheduler                                   # on one machine: tcp://HOST:8786
    dask worker tcp://HOST:8786 --nthreads 1 --nworkers 4          # CPU machines
    dask worker tcp://HOST:8786 --nthreads 1 --resources "GPU=1"   # one per GPU

Every worker needs this autograder (the same code: a result from a worker running
different grader code stops the batch with a clear error, and is not saved), bubblewrap for
isolation, and, for the `accuracy` question, the data sets (`autograder.datasets`). It
needs neither the submissions nor the assignment folder: each task carries the
submission's notebook and extra files, and the assignment's config, source notebook and
checks, and the worker writes them into a private temporary folder for that one task
(removed afterwards; the folder of a worker killed mid-task is removed by the next task
on that machine). A worker grades one submission at a time per process (a lock
enforces it even with `--nthreads` > 1, since the checks run in pytest, which is not
thread-safe); use `--nworkers` for parallelism, and on a machine with several worker
processes set $AUTOGRADER_TRAIN_THREADS to cores / workers for training. Each task
sandboxes the student's kernel exactly as on one machine
(`autograder.grade.grade_submission`): the kernel is a sandboxed child process of the
worker, so a submission that exits or kills its kernel (or tries to kill its parent)
costs a kernel restart, never the worker.

GPU rule. Training for the `accuracy` question runs inside the same task as the other
checks. A task asks for `resources={"GPU": 1}` when (1) the assignment has an
`[accuracy]` question, (2) that question is not in the batch's `--skip` set, and (3) at
least one worker of the cluster advertises a `GPU` resource when the batch starts;
otherwise it asks for no resources and runs on any worker (training then uses the CPU
budget of assignment.toml, and the feedback says so). If, later, no GPU worker has been
connected for `gpu_grace_s` (default 60 s) while such tasks wait, they are resubmitted
without the resource rather than waiting forever.

Failures.
- The scheduler cannot be reached within $AUTOGRADER_DASK_TIMEOUT seconds (default 10):
  AutograderError at once ("could not reach the Dask scheduler at ..."); likewise a
  scheduler with no worker at all when the batch starts.
- A worker dies mid-batch (killed, OOM, machine lost): the scheduler reassigns its tasks
  to other workers (the nanny restarts a killed worker process). Tasks that raise are
  retried twice (`retries=2`). No result is lost or yielded twice.
- A submission that takes down every worker that grades it (the scheduler's
  `allowed-failures`, KilledWorker) gets a zero row with status "grader error: ..." that
  is never cached, so the next run grades it again; the batch goes on.
- No worker at all for `no_workers_timeout_s` (default 300 s), or the scheduler lost:
  AutograderError; what was graded is saved, and re-running the command resumes.
At most about two tasks per worker thread are in flight at once (at least 8), so the
client's memory stays flat however large the class.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autograder import __version__, logs, safeio
from autograder.config import AssignmentConfig, load_config
from autograder.digest import code_digest
from autograder.exceptions import AutograderError
from autograder.plugin import forget_compiled
from autograder.submissions import SubmissionInput, safe_name, submission_files
from autograder.tasks import GradeOutcome, GradeTask, grade_task

log = logs.get(__name__)

DEFAULT_TIMEOUT_S = 10.0
TMP_PREFIX = "autograder-dask-"
_GRADE_LOCK = threading.Lock()  # one grading per worker process (pytest is not thread-safe)


# --------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------


def _write_files(files: dict[str, bytes], dest: Path) -> None:
    for rel, data in files.items():
        parts = Path(rel).parts
        if not parts or Path(rel).is_absolute() or ".." in parts:
            raise AutograderError(f"refusing to write shipped file {rel!r} outside {dest}")
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def sweep_stale_dirs(root: Path | None = None) -> list[Path]:
    """Remove the task folders of worker processes that died mid-task (SIGKILL, OOM).

    Each task's folder is `autograder-dask-<worker pid>-*` in the temporary directory
    (mode 0700: it holds the assignment's checks); a live worker removes its own.
    """
    return safeio.sweep_stale_dirs(Path(root or tempfile.gettempdir()), TMP_PREFIX)


@dataclass(frozen=True)
class WorkerReply:
    """What a Dask task returns: the outcome, and which code on which worker graded it."""

    outcome: GradeOutcome
    code: str  # the worker's code_digest(): the client refuses results of other code
    worker: str


def grade_on_worker(
    bundle: dict[str, Any] | None, shipped: dict[str, Any] | None, task: GradeTask
) -> WorkerReply:
    """One Dask task: write the shipped assignment and submission, grade, clean up."""
    code = code_digest()
    sweep_stale_dirs()
    prefix = safeio.owned_prefix(TMP_PREFIX)
    with _GRADE_LOCK, tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        if bundle is not None:
            _write_files(bundle["files"], Path(tmp) / "assignment")
            task = replace(task, config_path=str(Path(tmp) / "assignment" / bundle["config"]))
        if shipped is not None:
            folder = Path(tmp) / "submission"
            folder.mkdir()
            _write_files(shipped["files"], folder)
            sub = task.submission
            task = replace(
                task,
                submission=SubmissionInput(
                    sub.student,
                    folder / shipped["notebook"],
                    folder if shipped["has_folder"] else None,
                    sub.problem,
                ),
            )
        try:
            outcome = grade_task(task)
        finally:
            forget_compiled(Path(tmp))  # these checks are never seen again
    return WorkerReply(outcome, code, f"{socket.gethostname()} pid {os.getpid()}")


# --------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------


def _tree(root: Path, folder: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def assignment_bundle(config: AssignmentConfig) -> dict[str, Any] | None:
    """assignment.toml, the source notebook and the checks, as relative path -> bytes.

    None when one of them lies outside the assignment folder: the workers must then
    see the assignment at the same path as this machine.
    """
    root = config.root.resolve()
    paths = [config.config_path.resolve(), config.notebook.resolve(), config.checks_dir.resolve()]
    if not all(p == root or root in p.parents for p in paths):
        return None
    files = {str(p.relative_to(root)): p.read_bytes() for p in paths[:2]}
    if config.checks_dir.is_dir():
        files.update(_tree(root, config.checks_dir.resolve()))
    return {"config": str(paths[0].relative_to(root)), "files": files}


def ship_submission(sub: SubmissionInput) -> dict[str, Any] | None:
    """The notebook and the extra files grading would copy (`submission_files`)."""
    if sub.notebook is None:
        return None
    files: dict[str, bytes] = {}
    try:
        files[sub.notebook.name] = sub.notebook.read_bytes()
    except OSError:
        return None  # the worker reports it as unreadable, as a local run would
    for path in submission_files(sub):
        files[path.name] = path.read_bytes()
    return {"notebook": sub.notebook.name, "files": files, "has_folder": sub.files is not None}


def _workers(client) -> dict[str, dict]:
    try:
        info = client.scheduler_info(n_workers=-1)
    except TypeError:  # older distributed: no n_workers argument
        info = client.scheduler_info()
    return dict(info.get("workers", {}))


def _has_gpu(workers: dict[str, dict]) -> bool:
    return any((w.get("resources") or {}).get("GPU", 0) >= 1 for w in workers.values())


def needs_gpu(
    config: AssignmentConfig, skip: frozenset[str] | set[str], cluster_has_gpu: bool
) -> bool:
    """The GPU rule (module doc): an ungraded-so-far accuracy question and a GPU worker."""
    return bool(cluster_has_gpu and config.accuracy and config.accuracy.question not in skip)


def _threads(workers: dict[str, dict]) -> int:
    return sum(int(w.get("nthreads", 1) or 1) for w in workers.values())


class DaskExecutor:
    """The Executor protocol of autograder.batch, on a Dask cluster (see module doc)."""

    def __init__(
        self,
        address: Any,
        *,
        timeout: float | None = None,
        gpu_grace_s: float = 60.0,
        no_workers_timeout_s: float = 300.0,
        poll_s: float = 2.0,
    ) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise AutograderError(
                "grading on Dask needs the `dask` extra: pip install 'autograder[dask]' "
                "(dask[distributed])"
            ) from None

        self.timeout = connect_timeout() if timeout is None else timeout
        self.gpu_grace_s = gpu_grace_s
        self.no_workers_timeout_s = no_workers_timeout_s
        self.poll_s = poll_s
        self._client: Any
        if isinstance(address, Client):
            self._client, self._owned = address, False
            self.address = str(getattr(address.scheduler, "address", address))
        else:
            self._client, self._owned = None, True
            self.address = str(address)
            self._connect()
        self.last: DaskBatch | None = None  # the last batch (its counters: gpu_tasks, ...)

    # -- connection ---------------------------------------------------------------------
    def _connect(self):
        from distributed import Client

        if self._client is not None and (
            not self._owned or self._client.status in ("running", "connecting", "newly-created")
        ):
            return self._client
        try:
            self._client = Client(self.address, timeout=self.timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError, ...
            raise AutograderError(
                f"could not reach the Dask scheduler at {self.address} ({type(exc).__name__}: "
                f"{str(exc)[:200]}): start one with `dask scheduler` or pass a reachable "
                "address"
            ) from None
        return self._client

    def close(self) -> None:
        if self._owned and self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    @property
    def client(self):
        return self._connect()

    # -- one batch ------------------------------------------------------------------------
    def __call__(self, tasks: list[GradeTask]) -> Iterator[GradeOutcome]:
        try:
            if tasks:
                yield from self._run(tasks)
        finally:
            if self._owned:
                self.close()

    def _wait_for_workers(self, client) -> dict[str, dict]:
        deadline = time.monotonic() + self.timeout
        while True:
            workers = _workers(client)
            if workers or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if not workers:
            raise AutograderError(
                f"the Dask scheduler at {self.address} has no workers: start some with "
                f"`dask worker {self.address} --nthreads 1`"
            )
        return workers

    def _run(self, tasks: list[GradeTask]) -> Iterator[GradeOutcome]:
        client = self._connect()
        self.last = DaskBatch(self, client, tasks, self._wait_for_workers(client))
        yield from self.last.collect()

    @property
    def gpu_tasks(self) -> int:
        """Of the last batch: how many tasks asked for a GPU."""
        return self.last.gpu_tasks if self.last else 0

    @property
    def resubmitted(self) -> int:
        """Of the last batch: GPU tasks resubmitted without the resource."""
        return self.last.resubmitted if self.last else 0


@dataclass
class _Live:
    """A submitted task: its future, which task it is, and whether it asked for a GPU."""

    future: Any
    index: int
    gpu: bool


class DaskBatch:
    """One batch on the cluster: submit, keep the window full, watch the workers, collect.

    The watchdog thread and the collecting generator share `live`, `queue`, `window`
    and `abort` under `lock`; everything else is set once in __init__.
    """

    def __init__(
        self,
        executor: DaskExecutor,
        client: Any,
        tasks: list[GradeTask],
        workers: dict[str, dict],
    ) -> None:
        from distributed import as_completed

        self.executor, self.client, self.tasks = executor, client, tasks
        self.address = executor.address
        self.config = load_config(Path(tasks[0].config_path))
        self.bundle = assignment_bundle(self.config)
        self.codes = {code_digest()}  # the client's code; a second one if edited mid-batch
        self.use_gpu = _has_gpu(workers)
        self.token = uuid.uuid4().hex[:8]
        self.lock = threading.RLock()
        self.queue: deque[int] = deque(range(len(tasks)))
        self.live: dict[str, _Live] = {}
        self.window = max(8, 2 * _threads(workers))
        self.abort = ""
        self.completed = as_completed([], loop=client.loop, with_results=False)
        self.gpu_tasks = 0
        self.resubmitted = 0

    # -- submitting ------------------------------------------------------------------------
    def submit(self, i: int, gpu: bool, suffix: str = "") -> None:
        """One task to the cluster (call with the lock held)."""
        task = self.tasks[i]
        key = f"autograder-{safe_name(task.student)[:40]}-{task.digest[:16]}-{self.token}{suffix}"
        fut = self.client.submit(
            grade_on_worker,
            self.bundle,
            ship_submission(task.submission),
            task,
            key=key,
            pure=False,
            retries=2,
            resources={"GPU": 1} if gpu else None,
        )
        self.live[key] = _Live(fut, i, gpu)
        self.completed.add(fut)

    def refill(self) -> None:
        """Keep about two tasks per worker thread in flight (call with the lock held)."""
        while self.queue and len(self.live) < self.window:
            i = self.queue.popleft()
            gpu = needs_gpu(self.config, self.tasks[i].skip, self.use_gpu)
            self.gpu_tasks += gpu
            self.submit(i, gpu)

    # -- watching the cluster -----------------------------------------------------------
    def watchdog(self, stop: threading.Event) -> None:
        """Thread body: give up when no worker is left; move GPU tasks when no GPU is."""
        no_workers_since: float | None = None
        no_gpu_since: float | None = None
        while not stop.wait(self.executor.poll_s):
            try:
                current = _workers(self.client)
            except Exception:  # noqa: BLE001 - scheduler gone: counts as no workers
                current = {}
            now = time.monotonic()
            no_workers_since = None if current else (no_workers_since or now)
            if no_workers_since and now - no_workers_since > self.executor.no_workers_timeout_s:
                self._abort_all(
                    f"no Dask worker connected to {self.address} for "
                    f"{self.executor.no_workers_timeout_s:.0f} s"
                )
                return
            with self.lock:
                waiting_gpu = [k for k, entry in self.live.items() if entry.gpu]
            no_gpu_since = None if (_has_gpu(current) or not waiting_gpu) else (no_gpu_since or now)
            with self.lock:
                if current:
                    self.window = max(8, 2 * _threads(current))
                if no_gpu_since and now - no_gpu_since > self.executor.gpu_grace_s:
                    self._resubmit_without_gpu(waiting_gpu)
                    no_gpu_since = None
                self.refill()

    def _abort_all(self, reason: str) -> None:
        with self.lock:
            self.abort = reason
            futures = [entry.future for entry in self.live.values()]
        self.client.cancel(futures)

    def _resubmit_without_gpu(self, keys: list[str]) -> None:
        """Call with the lock held."""
        old = []
        for key in keys:
            entry = self.live.pop(key, None)
            if entry is None:  # finished meanwhile
                continue
            self.submit(entry.index, False, f"-cpu{self.resubmitted}")
            self.resubmitted += 1
            old.append(entry.future)
        self.client.cancel(old)

    # -- collecting ---------------------------------------------------------------------
    def collect(self) -> Iterator[GradeOutcome]:
        """Each student's outcome exactly once, as the tasks finish."""
        stop = threading.Event()
        guard = threading.Thread(
            target=self.watchdog, args=(stop,), daemon=True, name="autograder-dask-watchdog"
        )
        yielded: set[str] = set()
        try:
            with self.lock:
                self.refill()
            guard.start()
            for fut in self.completed:
                with self.lock:
                    entry = self.live.pop(fut.key, None)
                    abort = self.abort
                if abort:
                    raise AutograderError(
                        f"{abort}; the submissions graded so far are saved: run the same "
                        "command again to grade the rest"
                    )
                if entry is None:
                    continue  # replaced by a resubmission
                outcome = self._outcome(fut, self.tasks[entry.index])
                fut.release()
                with self.lock:
                    self.refill()
                if outcome.result.student in yielded:
                    continue
                yielded.add(outcome.result.student)
                yield outcome
        finally:
            stop.set()
            self._cancel_rest()
            if guard.is_alive():
                guard.join(self.executor.poll_s + 5)

    def _outcome(self, fut: Any, task: GradeTask) -> GradeOutcome:
        """A finished future's outcome; raises when the batch cannot go on."""
        from distributed import KilledWorker

        lost = AutograderError(
            f"the Dask scheduler at {self.address} cancelled the grading of "
            f"{task.student!r} (scheduler lost?); the submissions graded so far are "
            "saved: run the same command again to grade the rest"
        )
        if fut.status == "cancelled":
            raise lost
        try:
            reply: WorkerReply = fut.result()  # re-raises what the task raised, after retries
        except KilledWorker:
            return self._zero(
                task.student,
                "grader error: the Dask workers grading this submission died; "
                "it is graded again next run",
            )
        except CancelledError:
            raise lost from None
        if reply.code not in self.codes:
            self.codes.add(code_digest())  # this machine's code may have changed
        if reply.code not in self.codes:
            raise AutograderError(
                f"the Dask worker on {reply.worker} runs different autograder "
                f"code from this machine (version {__version__} here). Install the "
                "same autograder on every worker and restart the workers"
            )
        return reply.outcome

    def _cancel_rest(self) -> None:
        with self.lock:
            pending = [entry.future for entry in self.live.values()]
            self.live.clear()
            self.queue.clear()
        if pending:
            with contextlib.suppress(Exception):
                self.client.cancel(pending)

    def _zero(self, student: str, status: str) -> GradeOutcome:
        from autograder.scoring import zero_result

        result = zero_result(self.config, student, status)
        result.content_hash = ""  # never cached: the next run grades it again
        log.error("%s: %s", student, status)
        return GradeOutcome(result, f"{status}\n")


def connect_timeout() -> float:
    """Seconds to wait for the scheduler (and for a first worker): $AUTOGRADER_DASK_TIMEOUT."""
    try:
        return float(os.environ.get("AUTOGRADER_DASK_TIMEOUT", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def dask_executor(address: Any, *, timeout: float | None = None) -> DaskExecutor:
    """An Executor that grades on the Dask cluster at `address` (or an existing Client).

    Connects at once, so an unreachable scheduler is reported before any work starts;
    `timeout` (default $AUTOGRADER_DASK_TIMEOUT, else 10 s) bounds the wait for the
    scheduler and, when a batch starts, for a first worker.
    """
    return DaskExecutor(address, timeout=timeout)
