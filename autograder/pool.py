"""The local grading workers: processes with a memory cap each, that may die alone.

Threat: the grading worker decodes and checks what a submission hands back. Every
path we know of is bounded (the model host, `bridge.decode_npy`, the notebook
limits...), but one we missed must cost one submission, not the machine and the
batch. So each worker runs in a cgroup of its own capped at `grader_memory_mib`
(the sandboxed kernels, model hosts and training workers it starts move to cgroups
of their own), takes one task at a time, and when it dies mid-task the pool turns
that task into a failure result (`grader memory limit` when the cgroup's OOM killer
did it), starts a fresh worker and goes on. Without root and a cgroup the workers
run uncapped, and `capped` says so.

Each task also reports the worker's resident memory when it started and at its peak
(`TaskMemory`; the peak is reset before each task through /proc/self/clear_refs), so
a test or a TA can see what one submission cost the grader.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from autograder.sandbox import capabilities, create_cgroup, remove_cgroup_dir

log = logging.getLogger(__name__)

GRADER_MEMORY_LIMIT = "grader memory limit"


@dataclass(frozen=True)
class TaskMemory:
    """The grading worker's resident memory around one task, in MiB."""

    start_mib: float
    peak_mib: float

    @property
    def growth_mib(self) -> float:
        return max(self.peak_mib - self.start_mib, 0.0)


def _status_mib(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _worker_main(conn: Connection, fn: Callable[..., Any]) -> None:
    """A worker's loop: one task in, (result, memory) out, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        _reset_peak()
        start = _status_mib("VmRSS")
        result = fn(task)
        memory = TaskMemory(round(start, 1), round(max(_status_mib("VmHWM"), start), 1))
        conn.send((result, memory))


class _WorkerCgroup:
    """A memory-capped cgroup for one worker process (v1 memory, or v2)."""

    def __init__(self, memory_mib: int) -> None:
        kind = capabilities().cgroup
        name = f"autograder-worker-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.kind = kind
        self.dirs = create_cgroup(kind, name)
        self.dir = self.dirs[0]  # v1: the memory controller's; v2: the one folder
        limit = str(memory_mib << 20)
        if kind == "v1":
            (self.dir / "memory.limit_in_bytes").write_text(limit)
        else:
            (self.dir / "memory.max").write_text(limit)
            (self.dir / "memory.swap.max").write_text("0")

    def add(self, pid: int) -> None:
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def oom_killed(self) -> bool:
        try:
            if self.kind == "v1":
                text = (self.dir / "memory.oom_control").read_text()
                key = "oom_kill"
            else:
                text = (self.dir / "memory.events").read_text()
                key = "oom_kill"
            for line in text.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == key and int(parts[1]) > 0:
                    return True
            if self.kind == "v1":
                return int((self.dir / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            pass
        return False

    def release(self) -> None:
        try:
            pids = [int(p) for p in (self.dir / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:  # what the worker left (its warm zygote, say)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for d in self.dirs:
            remove_cgroup_dir(d)


class _Worker:
    def __init__(self, ctx: Any, fn: Callable[..., Any], memory_mib: int | None) -> None:
        self.conn: Connection
        self.conn, child = ctx.Pipe()
        self.cgroup = _WorkerCgroup(memory_mib) if memory_mib else None
        self.process = ctx.Process(target=_worker_main, args=(child, fn), daemon=True)
        self.process.start()
        child.close()
        if self.cgroup is not None:
            self.cgroup.add(self.process.pid)
        self.task: Any = None

    def send(self, task: Any) -> None:
        self.task = task
        self.conn.send(task)

    def death_reason(self) -> str:
        self.process.join(5)
        if self.cgroup is not None and self.cgroup.oom_killed():
            return GRADER_MEMORY_LIMIT
        return f"grader worker died (exit code {self.process.exitcode})"

    def stop(self, now: bool = False) -> None:
        if not now and self.process.is_alive():
            try:
                self.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()
        if self.cgroup is not None:
            self.cgroup.release()


class CappedPool:
    """Run `fn(task)` for each task in up to `jobs` capped worker processes.

    `on_death(task, reason)` turns a task whose worker died into a result; results
    come back in completion order with their TaskMemory.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        jobs: int,
        memory_mib: int,
        on_death: Callable[[Any, str], Any],
    ) -> None:
        caps = capabilities()
        self.capped = bool(caps.root and caps.cgroup)
        if not self.capped:
            log.warning("no cgroup (needs root): grading workers run without a memory cap")
        self.fn, self.jobs, self.on_death = fn, jobs, on_death
        self.memory_mib = memory_mib if self.capped else None
        self.ctx = multiprocessing.get_context("spawn")  # no forked grader state or threads

    def _start(self) -> _Worker:
        return _Worker(self.ctx, self.fn, self.memory_mib)

    def run(self, tasks: Iterable[Any]) -> Iterator[tuple[Any, TaskMemory | None]]:
        queue = list(tasks)
        queue.reverse()
        workers: list[_Worker] = []
        try:
            while queue or any(w.task is not None for w in workers):
                while queue and len([w for w in workers if w.task is not None]) < self.jobs:
                    idle = next((w for w in workers if w.task is None), None)
                    if idle is None:
                        idle = self._start()
                        workers.append(idle)
                    idle.send(queue.pop())
                busy: dict[Any, _Worker] = {w.conn: w for w in workers if w.task is not None}
                busy |= {w.process.sentinel: w for w in workers if w.task is not None}
                for ready in wait(list(busy)):
                    worker = busy[ready]
                    if worker.task is None:
                        continue  # both its pipe and its sentinel were ready
                    if ready is worker.conn:
                        result: Any = None
                        memory: TaskMemory | None = None
                        try:
                            result, memory = worker.conn.recv()
                        except (EOFError, OSError):
                            pass
                        if result is not None:
                            worker.task = None
                            yield result, memory
                            continue
                    task, worker.task = worker.task, None
                    reason = worker.death_reason()
                    log.warning("a grading worker died (%s); the batch goes on", reason)
                    worker.stop(now=True)
                    workers.remove(worker)
                    yield self.on_death(task, reason), None
        finally:
            for worker in workers:
                worker.stop(now=bool(queue) or worker.task is not None)
