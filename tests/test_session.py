"""The session's cell policy (restart, replay, give up, deadlines) against a fake kernel."""

from __future__ import annotations

import dataclasses
import logging
import math

import pytest

from autograder.config import Limits
from autograder.exceptions import BridgeError, SandboxError
from autograder.kinds import IncidentKind
from tests.fakes.kernel import fake_session

LIMITS = Limits(cell_timeout_s=10, call_timeout_s=5, submission_timeout_s=100, max_restarts=2)


def cells(*sources: str) -> list[tuple[int, str]]:
    return list(enumerate(sources, start=1))


def test_cells_that_work_leave_no_incident(monkeypatch):
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    s.start()
    s.run_cells(cells("ok a", "ok b"))
    assert (s.status, s.incidents, kernel.restarts) == ("ok", [], 0)
    assert [n for n, _ in s.done] == [1, 2]


def test_an_error_is_recorded_and_execution_goes_on(monkeypatch):
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    s.run_cells(cells("ok a", "error b", "ok c"))
    assert s.status == "ok"  # an exception in a cell is the student's answer, not a failure
    assert [(i.cell, i.kind) for i in s.incidents] == [(2, IncidentKind.ERROR)]
    assert kernel.executed == ["ok a", "error b", "ok c"] and kernel.restarts == 0


@pytest.mark.parametrize(
    ("cell", "status"),
    [
        ("timeout b", "timeout in cell 2"),
        ("died b", "kernel died in cell 2"),
        ("output b", "output limit in cell 2"),
    ],
)
def test_a_fatal_cell_restarts_and_replays_the_cells_that_worked(monkeypatch, cell, status):
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    s.run_cells(cells("ok a", cell, "ok c"))
    assert s.status == status
    assert kernel.restarts == 1
    # the culprit is left out of the replay; later cells still run
    assert kernel.executed == ["ok a", cell, "ok a", "ok c"]
    assert [n for n, _ in s.done] == [1, 3]


def test_a_dead_kernel_over_its_memory_cap_is_a_memory_incident(monkeypatch):
    s, _, _ = fake_session(monkeypatch, LIMITS, memory_hit=True)
    s.run_cells(cells("died a"))
    assert s.incidents[0].kind == IncidentKind.MEMORY
    assert s.status == "memory limit in cell 1"


def test_a_cell_failing_on_replay_is_left_out_too(monkeypatch):
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    s.run_cells(cells("flaky a", "died b", "ok c"))
    # replay 1: flaky dies -> restart again, replay nothing; then c runs
    assert kernel.restarts == 2
    assert kernel.executed == ["flaky a", "died b", "flaky a", "ok c"]
    assert [n for n, _ in s.done] == [3]
    assert s.status == "kernel died in cell 2"


def test_out_of_restarts_gives_up_and_runs_nothing_more(monkeypatch):
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    s.run_cells(cells("died a", "died b", "died c", "ok d"))
    assert s.gave_up
    assert kernel.restarts == LIMITS.max_restarts
    assert "ok d" not in kernel.executed
    assert s.status == "kernel died in cell 1 (gave up after repeated failures)"


def test_the_submission_deadline_bounds_all_cells(monkeypatch):
    limits = Limits(cell_timeout_s=10, submission_timeout_s=15, max_restarts=3)
    s, kernel, _ = fake_session(monkeypatch, limits)
    s.run_cells(cells("slow 8 ok", "slow 8 ok", "ok never"))
    # the second cell had only 7 s left: a deadline, not a cell timeout
    assert [i.kind for i in s.incidents] == [IncidentKind.DEADLINE]
    assert s.status == "submission time limit"
    assert "ok never" not in kernel.executed


def test_serve_poisons_a_function_that_broke_the_kernel(monkeypatch):
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    s.run_cells(cells("ok a"))
    with pytest.raises(BridgeError, match="did not return within 5 s"):
        s.serve("slow_fn", {"code": "timeout call"})
    assert kernel.restarts == 1 and kernel.executed[-1] == "ok a"  # replayed after restart
    with pytest.raises(BridgeError, match="was not called again"):
        s.serve("slow_fn", {"code": "ok call"})
    s.serve("other", {"code": "error call"})  # a raise is the check's


def test_serve_after_giving_up_calls_nothing(monkeypatch):
    s, kernel, _ = fake_session(monkeypatch, Limits(max_restarts=1))
    s.run_cells(cells("died a", "died b"))
    assert s.gave_up
    before = list(kernel.executed)
    with pytest.raises(BridgeError, match="kept failing"):
        s.serve("f", {"code": "ok call"})
    assert kernel.executed == before


def test_a_warm_start_that_fails_goes_cold(monkeypatch):
    from autograder import session as session_mod

    disabled: list[str] = []
    monkeypatch.setattr(session_mod, "disable_warm", disabled.append)
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    kernel.zygote = object()
    calls = []

    def start():
        calls.append(kernel.zygote)
        if kernel.zygote is not None:
            raise SandboxError("no fork")

    kernel.start = start  # type: ignore[method-assign]
    s.start()
    assert calls[0] is not None and calls[1] is None and disabled


def test_the_session_logs_starts_restarts_and_timeouts(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="autograder")
    s, _, _ = fake_session(monkeypatch, LIMITS)
    s.start()
    s.run_cells(cells("ok a", "timeout b"))
    text = caplog.text
    assert "kernel started (cold)" in text
    assert "cell 2: timeout" in text
    assert "kernel restarted (1/2)" in text and "replaying 1 cells" in text


def test_a_cell_leaving_threads_spinning_is_left_out_and_the_rest_replayed(monkeypatch):
    s, kernel, _ = fake_session(monkeypatch, LIMITS)
    s.start()
    s.run_cells([(1, "ok a"), (2, "spin b"), (3, "ok c")])
    assert s.status == "CPU busy after cell 2"
    assert [n for n, _ in s.done] == [1, 3]
    assert s.incidents[0].kind == IncidentKind.SPINNING
    assert "kept using the CPU" in s.incidents[0].message


@pytest.mark.parametrize(("word", "left_out"), [("starve", True), ("trickle", False)])
def test_spinning_threads_on_a_loaded_machine(monkeypatch, word, left_out):
    """Threads that get a fifth of a core are still spinning when they are always runnable;
    a kernel that uses as much but sleeps whenever looked at is not."""
    s, _, _ = fake_session(monkeypatch, LIMITS)
    s.start()
    s.run_cells([(1, "ok a"), (2, f"{word} b"), (3, "ok c")])
    assert (s.status == "CPU busy after cell 2") == left_out
    assert [n for n, _ in s.done] == ([1, 3] if left_out else [1, 2, 3])


def test_the_cpu_budget_stops_the_cells_and_the_calls(monkeypatch, tmp_path):
    limits = dataclasses.replace(LIMITS, cpu_budget_s=5)
    s, kernel, _ = fake_session(monkeypatch, limits)
    s.start()
    s.run_cells([(1, "burn 2 a"), (2, "burn 4 b"), (3, "ok c")])
    assert s.status == "CPU time limit in cell 2" and s.gave_up
    assert "ok c" not in kernel.executed
    with pytest.raises(BridgeError, match="more than the 5 s it may use"):
        s.serve("f", {"code": "ok call"})


def test_the_cpu_budget_is_read_only_when_it_could_be_spent(monkeypatch):
    """Reading the CPU time walks /proc: between check calls it is skipped while the last
    reading plus all cores busy since stays within the budget, and never misses the end."""
    from autograder import session as session_mod

    monkeypatch.setattr(session_mod, "CPUS", 2)
    monkeypatch.setattr(session_mod, "CPU_LOOK_S", 100.0)
    limits = dataclasses.replace(LIMITS, cpu_budget_s=10)
    s, kernel, clock = fake_session(monkeypatch, limits)
    looks = []
    usage = kernel.sandbox.usage
    monkeypatch.setattr(kernel.sandbox, "usage", lambda: looks.append(1) or usage())
    s.start()
    for _ in range(20):  # 2 s of calls on a fresh budget: one look
        s.serve("f", {"code": "ok call"})
    assert len(looks) == 1
    s.serve("f", {"code": "burn 3 call"})  # 3 s more: the bound passes 10, so a look
    assert len(looks) == 2
    kernel.sandbox.cpu, clock.now = 9.5, clock.now + 3.3  # 6.5 s on 2 cores in 3.4 s
    s.serve("f", {"code": "ok call"})  # the bound is 3 + 2 * 3.4 < 10: no look
    assert len(looks) == 2
    kernel.sandbox.cpu, clock.now = 10.5, clock.now + 0.5
    with pytest.raises(BridgeError, match="more than the 10 s"):
        s.serve("f", {"code": "ok call"})
    assert len(looks) == 3


def test_the_cpu_time_is_read_at_least_every_second(monkeypatch):
    """A reading can come out low (a child reaped between two reads of /proc): far from
    the budget, the CPU time is still read again once CPU_LOOK_S has passed."""
    from autograder import session as session_mod

    s, kernel, clock = fake_session(monkeypatch, dataclasses.replace(LIMITS, cpu_budget_s=600))
    looks = []
    usage = kernel.sandbox.usage
    monkeypatch.setattr(kernel.sandbox, "usage", lambda: looks.append(1) or usage())
    s.start()
    for _ in range(25):  # 0.1 s a call
        s.serve("f", {"code": "ok call"})
    assert len(looks) == math.ceil(25 * 0.1 / session_mod.CPU_LOOK_S)
