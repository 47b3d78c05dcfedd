"""DaskBatch's bookkeeping (window, GPU fallback, giving up) with a fake client: no cluster."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import pytest

from autograder import distributed as ag_dask
from autograder.distributed import DaskBatch, _Live
from autograder.submissions import SubmissionInput
from autograder.tasks import GradeTask


@dataclass
class FakeFuture:
    key: str
    resources: dict | None


@dataclass
class FakeClient:
    workers: dict = field(default_factory=dict)
    submitted: list[FakeFuture] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def submit(self, fn, *args, key, pure, retries, resources):
        fut = FakeFuture(key, resources)
        self.submitted.append(fut)
        return fut

    def cancel(self, futures):
        self.cancelled += [f.key for f in futures]

    def scheduler_info(self, n_workers=-1):
        return {"workers": self.workers}


class FakeCompleted(list):
    def add(self, fut):
        self.append(fut)


@dataclass
class Owner:
    address: str = "tcp://fake:8786"
    poll_s: float = 0.01
    gpu_grace_s: float = 0.0
    no_workers_timeout_s: float = 0.05


def batch(toy, toy_release, n: int, *, gpu: bool = False, workers=None) -> DaskBatch:
    """A DaskBatch wired to fakes (its __init__ needs a real client and cluster)."""
    tasks = [
        GradeTask(
            SubmissionInput(f"s{i}", None), str(toy.config_path), {}, frozenset(), f"{i:016d}"
        )
        for i in range(n)
    ]
    b = DaskBatch.__new__(DaskBatch)
    b.executor, b.client, b.tasks = Owner(), FakeClient(workers or {}), tasks  # type: ignore[assignment]
    b.address, b.config, b.bundle = "tcp://fake:8786", toy, None
    b.codes, b.use_gpu, b.token = set(), gpu, "t"
    b.lock, b.queue, b.live = threading.RLock(), deque(range(n)), {}
    b.window, b.abort, b.completed = 2, "", FakeCompleted()
    b.gpu_tasks = b.resubmitted = 0
    return b


def test_refill_keeps_the_window_and_names_keys_by_student(toy, toy_release):
    b = batch(toy, toy_release, 5)
    b.refill()
    assert [f.key for f in b.client.submitted] == [
        "autograder-s0-0000000000000000-t",
        "autograder-s1-0000000000000001-t",
    ]
    assert len(b.live) == 2 and list(b.queue) == [2, 3, 4]
    assert b.gpu_tasks == 0 and all(f.resources is None for f in b.client.submitted)


def test_gpu_tasks_are_resubmitted_without_the_resource(toy, toy_release, monkeypatch):
    monkeypatch.setattr(ag_dask, "needs_gpu", lambda config, skip, has_gpu: has_gpu)
    b = batch(toy, toy_release, 2, gpu=True)
    b.refill()
    assert b.gpu_tasks == 2 and all(f.resources == {"GPU": 1} for f in b.client.submitted)
    b._resubmit_without_gpu(list(b.live))
    assert b.resubmitted == 2
    assert [f.resources for f in b.client.submitted[2:]] == [None, None]
    assert sorted(b.client.cancelled) == sorted(f.key for f in b.client.submitted[:2])
    assert all(not entry.gpu for entry in b.live.values())


def test_the_watchdog_gives_up_when_no_worker_is_left(toy, toy_release):
    b = batch(toy, toy_release, 1)
    b.queue.clear()
    b.live["k"] = _Live(FakeFuture("k", None), 0, False)
    stop = threading.Event()
    b.watchdog(stop)  # returns once no worker has been seen for no_workers_timeout_s
    assert "no Dask worker connected to tcp://fake:8786" in b.abort
    assert b.client.cancelled == ["k"]


def test_the_watchdog_follows_the_cluster_size(toy, toy_release):
    workers = {f"w{i}": {"nthreads": 4} for i in range(3)}
    b = batch(toy, toy_release, 30, workers=workers)
    stop = threading.Event()
    thread = threading.Thread(target=b.watchdog, args=(stop,))
    thread.start()
    try:
        for _ in range(200):
            if len(b.live) == 24:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert b.window == 24 and len(b.live) == 24


def test_a_cancelled_future_stops_the_batch(toy, toy_release):
    from autograder.exceptions import AutograderError

    b = batch(toy, toy_release, 1)

    class Cancelled:
        pass

    fut = Cancelled()
    fut.status = "cancelled"  # type: ignore[attr-defined]
    with pytest.raises(AutograderError, match="cancelled the grading of 's0'"):
        b._outcome(fut, b.tasks[0])
