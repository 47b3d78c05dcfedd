"""Grading on a real Dask cluster (scheduler and two worker processes on loopback).

Proves: the same gradebook.csv as a local run; a worker SIGKILLed mid-batch loses and
duplicates nothing; a submission that kills its own kernel (or tries to kill its
parent) leaves the worker process alive; an unreachable scheduler is a clear error.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import autograder.distributed as ag_dask
from autograder.batch import grade_batch
from autograder.cli import main
from autograder.config import load_config
from autograder.distributed import DaskExecutor, _has_gpu, dask_executor, needs_gpu
from autograder.exceptions import AutograderError
from autograder.sandbox import UID_BASE
from tests.conftest import build, write

distributed = pytest.importorskip("distributed")  # the `dask` extra
psutil = pytest.importorskip("psutil")  # comes with distributed

WRONG_ADD = "def add(a, b):\n    return a - b\n"
# Right on vectors (weight 1), wrong on matrices (weight 2): 2 of 6 points.
FLAT_SCALE = "def scale(x, k=2.0):\n    return np.asarray(x, dtype=float).ravel() * k\n"
KILL_ALL = (
    "import os, signal\n"
    "for pid in (os.getppid(), 1, -1):\n"
    "    try:\n"
    "        os.kill(pid, signal.SIGKILL)\n"
    "    except OSError:\n"
    "        pass\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(out):
    return {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}


def _pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def _children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _kernels(pid: int) -> list[psutil.Process]:
    """The worker's sandboxed processes that run student code: those of a sandbox uid.

    (A worker also keeps its warm zygote, autograder.warm, which is root's and stays.)
    """
    found = []
    for p in _children(pid):
        try:
            if p.uids().real >= UID_BASE:
                found.append(p)
        except psutil.Error:  # a child came and went while we looked
            pass
    return found


def _has_kernel(pid: int) -> bool:
    try:
        return bool(_kernels(pid))
    except psutil.Error:
        return False


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (same pid and start time; zombies count as gone)."""
    return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # a free port: other clusters may run beside this one
            silence_logs=logging.ERROR,
        ) as cl,
        distributed.Client(cl, set_as_default=False) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        yield cl, client


@pytest.fixture(scope="module")
def graded_both_ways(cluster, tmp_path_factory, toy_dir, toy_key):
    """Five submissions (right, wrong, partial, two kernel killers), graded locally and on Dask."""
    cl, client = cluster
    base = tmp_path_factory.mktemp("dask")
    subs = base / "subs"
    write(toy_key, subs / "perfect.ipynb")
    write(build(toy_key, {"add": WRONG_ADD}), subs / "wrong_add.ipynb")
    write(build(toy_key, {"scale": FLAT_SCALE}), subs / "flat_scale.ipynb")
    write(build(toy_key, extra={"add": "import os\nos._exit(0)\n"}), subs / "os_exit.ipynb")
    write(build(toy_key, extra={"scale": KILL_ALL}), subs / "kill_all.ipynb")
    # a student folder with an extra file: shipped to the worker with the notebook
    write(toy_key, subs / "folder student" / "toy.ipynb")
    (subs / "folder student" / "notes.txt").write_text("extra")
    runner = CliRunner()
    local = runner.invoke(
        main, ["grade", str(toy_dir), str(subs), "--out", str(base / "local"), "-j", "2"]
    )
    before = _pids(client)
    on_dask = runner.invoke(
        main,
        [
            "grade",
            str(toy_dir),
            str(subs),
            "--out",
            str(base / "dask"),
            "--dask",
            cl.scheduler_address,
        ],
    )
    after = _pids(client)
    rerun = runner.invoke(
        main,
        [
            "grade",
            str(toy_dir),
            str(subs),
            "--out",
            str(base / "dask"),
            "--dask",
            cl.scheduler_address,
        ],
    )
    return {
        "base": base,
        "local": local,
        "dask": on_dask,
        "rerun": rerun,
        "before": before,
        "after": after,
    }


@pytest.mark.slow
def test_same_gradebook_as_a_local_run(graded_both_ways):
    g = graded_both_ways
    assert g["local"].exit_code == 0, g["local"].output
    assert g["dask"].exit_code == 0, g["dask"].output
    local = (g["base"] / "local" / "gradebook.csv").read_text()
    on_dask = (g["base"] / "dask" / "gradebook.csv").read_text()
    assert on_dask == local
    rows = _rows(g["base"] / "dask")
    assert len(rows) == 6
    assert (rows["perfect"]["add"], rows["perfect"]["scale"]) == ("4", "6")
    assert (rows["folder student"]["total"], rows["folder student"]["status"]) == ("10", "ok")
    assert (rows["wrong_add"]["add"], rows["wrong_add"]["scale"]) == ("0", "6")
    assert (rows["flat_scale"]["add"], rows["flat_scale"]["scale"]) == ("4", "2")
    # The per-student results are the same too (bar timings).
    for student in rows:
        folder = student.replace(" ", "_")
        a = (g["base"] / "local" / folder / "grade.json").read_text()
        b = (g["base"] / "dask" / folder / "grade.json").read_text()
        assert a.count('"passed": true') == b.count('"passed": true'), student
    # A re-run over Dask reuses everything: the content hashes are the local ones.
    assert g["rerun"].exit_code == 0, g["rerun"].output
    assert "graded 0, reused 6" in g["rerun"].output


@pytest.mark.slow
def test_kernel_killers_leave_the_workers_alive(graded_both_ways):
    g = graded_both_ways
    rows = _rows(g["base"] / "dask")
    assert "kernel died" in rows["os_exit"]["status"], rows["os_exit"]
    for name in ("os_exit", "kill_all"):
        assert (rows[name]["add"], rows[name]["scale"]) == ("4", "6"), rows[name]
    assert len(g["before"]) == 2
    assert g["after"] == g["before"]  # same worker processes, none restarted
    for pid in g["after"].values():
        assert _alive(_kernels(pid)) == []  # no sandboxed kernel outlived its grading


@pytest.mark.slow
def test_worker_killed_mid_batch_loses_and_duplicates_nothing(cluster, tmp_path, toy_dir, toy_key):
    cl, client = cluster
    subs, out = tmp_path / "subs", tmp_path / "out"
    slow = build(toy_key, extra={"scale": "import time\ntime.sleep(2)\n"})
    for i in range(5):
        write(slow, subs / f"s{i}.ipynb")
    write(build(slow, {"add": WRONG_ADD}), subs / "s5.ipynb")
    config = load_config(toy_dir / "assignment.toml")
    executor = dask_executor(client)
    yielded: list[str] = []
    killed: dict[str, int] = {}
    orphans: list[psutil.Process] = []  # the killed worker's kernel (bwrap and below)

    def counting(tasks):
        for data in executor(tasks):
            yielded.append(data.result.student)
            yield data

    def kill_a_busy_worker(result, done, total):
        if killed:
            return
        busy = [addr for addr, keys in client.processing().items() if keys]
        assert busy, "no worker is grading: the batch is too short to test a kill"
        addr = busy[0]
        pid = client.run(os.getpid, workers=[addr])[addr]
        # Kill it while a sandboxed kernel is running under it (not between two tasks).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _has_kernel(pid):
            time.sleep(0.05)
        orphans.extend(_children(pid))
        os.kill(pid, signal.SIGKILL)
        killed[addr] = pid

    batch = grade_batch(config, subs, out, executor=counting, progress=kill_a_busy_worker)
    assert killed, "no worker was killed"
    assert sorted(yielded) == [f"s{i}" for i in range(6)]  # each student exactly once
    assert batch.graded == 6
    rows = _rows(out)
    assert sorted(rows) == [f"s{i}" for i in range(6)]
    for i in range(5):
        assert (rows[f"s{i}"]["total"], rows[f"s{i}"]["status"]) == ("10", "ok"), rows[f"s{i}"]
    assert (rows["s5"]["add"], rows["s5"]["scale"]) == ("0", "6")
    client.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker
    assert list(killed.values())[0] not in _pids(client).values()
    deadline = time.monotonic() + 10
    while _alive(orphans) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert orphans and _alive(orphans) == []  # the killed worker's kernel went with it
    pid = list(killed.values())[0]
    assert list(Path(tempfile.gettempdir()).glob(f"{ag_dask.TMP_PREFIX}{pid}-*")) == []


def test_unreachable_scheduler_is_a_clear_error():
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(AutograderError, match="could not reach the Dask scheduler at"):
        dask_executor(address, timeout=1)


def test_cli_reports_an_unreachable_scheduler(tmp_path, toy_dir, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DASK_TIMEOUT", "1")
    address = f"tcp://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(
        main,
        ["grade", str(toy_dir), str(tmp_path), "--out", str(tmp_path / "o"), "--dask", address],
    )
    assert result.exit_code == 1
    assert f"could not reach the Dask scheduler at {address}" in result.output
    assert "dask scheduler" in result.output


def _toy_with_accuracy(toy_dir, folder):
    """The toy assignment with an [accuracy] section naming `scale` (no training runs:
    accuracy is graded by a check file, and the toy has none)."""
    shutil.copytree(toy_dir, folder)
    with (folder / "assignment.toml").open("a") as fh:
        fh.write(
            '\n[accuracy]\nquestion = "scale"\nmax_params = 1000\n'
            "[accuracy.gpu]\nepochs = 1\nbatch_size = 8\nthresholds = [[0.5, 1.0]]\n"
            "[accuracy.cpu]\nepochs = 1\nbatch_size = 8\nthresholds = [[0.5, 1.0]]\n"
        )
    return load_config(folder / "assignment.toml")


def test_gpu_rule(tmp_path, toy_dir):
    plain = load_config(toy_dir / "assignment.toml")
    trains = _toy_with_accuracy(toy_dir, tmp_path / "toy")
    assert needs_gpu(trains, frozenset(), cluster_has_gpu=True)
    assert not needs_gpu(trains, frozenset({"scale"}), cluster_has_gpu=True)  # --skip accuracy
    assert not needs_gpu(trains, frozenset(), cluster_has_gpu=False)
    assert not needs_gpu(plain, frozenset(), cluster_has_gpu=True)
    assert _has_gpu({"a": {"resources": {}}, "b": {"resources": {"GPU": 1}}})
    assert not _has_gpu({"a": {"resources": {}}, "b": {}})


@pytest.mark.slow
def test_gpu_tasks_fall_back_when_no_gpu_worker_remains(
    cluster, tmp_path, toy_dir, toy_key, monkeypatch
):
    """Tasks that asked for a GPU are resubmitted without it once no GPU worker is left."""
    cl, client = cluster
    config = _toy_with_accuracy(toy_dir, tmp_path / "toy")
    subs = tmp_path / "subs"
    write(toy_key, subs / "a.ipynb")
    write(build(toy_key, {"add": WRONG_ADD}), subs / "b.ipynb")
    seen = []

    def gpu_at_start_only(workers):  # a GPU worker at the start, gone at the first look after
        seen.append(workers)
        return len(seen) == 1

    monkeypatch.setattr(ag_dask, "_has_gpu", gpu_at_start_only)
    executor = DaskExecutor(client, gpu_grace_s=1.0, poll_s=0.2)
    batch = grade_batch(config, subs, tmp_path / "out", executor=executor)
    assert executor.gpu_tasks == 2  # both asked for {"GPU": 1}: no worker could take them
    assert executor.resubmitted == 2  # ... until they were resubmitted without it
    rows = _rows(tmp_path / "out")
    assert (rows["a"]["total"], rows["b"]["add"]) == ("10", "0")
    assert batch.graded == 2
