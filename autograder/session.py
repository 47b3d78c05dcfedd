"""Running a submission's cells in its kernel, and surviving what they do.

Policy: every code cell gets `cell_timeout_s`. An exception is recorded and
execution goes on (later questions may not need that cell). A timeout, a
dead kernel or an output flood restarts the kernel and replays every earlier
cell that completed, leaving the culprit out, so one bad cell costs only the
questions that need it. So does a cell that leaves threads or processes
burning CPU after it returns (they would slow every later cell and check): when
a cell leaves more threads than before, the kernel is watched for a moment
while idle. Restarts are bounded by `max_restarts`, all kernel work by
`submission_timeout_s`, and the CPU time of all the submission's processes by
`cpu_budget_s`: when that is spent, nothing more of the submission runs.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from autograder import logs
from autograder.config import Limits
from autograder.exceptions import BridgeError, SandboxError
from autograder.kernel import CellOutcome, SandboxedKernel
from autograder.kinds import IncidentKind, OutcomeKind
from autograder.sandbox import Sandbox
from autograder.scoring import Incident
from autograder.warm import Zygote, disable_warm

log = logs.get(__name__)

DESCRIBE = {
    IncidentKind.TIMEOUT: "timeout in cell {n}",
    IncidentKind.DIED: "kernel died in cell {n}",
    IncidentKind.MEMORY: "memory limit in cell {n}",
    IncidentKind.OUTPUT: "output limit in cell {n}",
    IncidentKind.SPINNING: "CPU busy after cell {n}",
}
# Why a bridge call was given up, per incident kind (`{budget}` and `{memory}` filled in).
CALL_FAILURE = {
    IncidentKind.TIMEOUT: "it did not return within {budget:g} s",
    IncidentKind.DIED: "it crashed the kernel",
    IncidentKind.MEMORY: "it exceeded the memory limit ({memory} MiB)",
    IncidentKind.OUTPUT: "it printed too much output",
}
CPUS = os.cpu_count() or 1  # the most cores a submission's processes can use at once
CPU_LOOK_S = 1.0  # the CPU time is read at least this often, checks or not
QUICK_PROBE_S = 0.01  # a first look with the exact clock: most kernels are idle at once
IDLE_PROBE_S = 0.05  # one look at an idle kernel's CPU use
IDLE_PROBES = 3  # busy in every look: threads left spinning, not a last flush
BUSY_FRACTION = 0.6  # of one core, while the kernel should be idle
STARVED_FRACTION = 0.1  # ... or this much, with a thread runnable: busy on a loaded machine
SPINNING = (
    "the cell left threads or processes running that kept using the CPU after it finished; "
    "it was left out"
)


class KernelSession:
    """One submission's kernel and the policy above (module doc) for running its cells."""

    def __init__(
        self,
        sandbox: Sandbox,
        limits: Limits,
        env: dict[str, str] | None = None,
        zygote: Zygote | None = None,
    ):
        self.sandbox, self.limits = sandbox, limits
        self.kernel = SandboxedKernel(
            sandbox,
            max_output_bytes=limits.cell_output_kib << 10,
            flood_bytes=limits.output_flood_mib << 20,
            env=dict(env or {}),
            zygote=zygote,
        )
        self.done: list[tuple[int, str]] = []
        self.incidents: list[Incident] = []
        self.poisoned: dict[str, str] = {}
        self.deadline = time.monotonic() + limits.submission_timeout_s
        self.gave_up = False
        self._cpu_spent = 0.0  # CPU seconds of kernels already replaced
        self._threads = 0  # threads the kernel had after the last cell
        self._cpu_seen: tuple[float, float] | None = None  # (CPU seconds, when), last look

    # -- status --------------------------------------------------------------------------
    @property
    def status(self) -> str:
        for inc in self.incidents:
            if inc.kind == IncidentKind.CPU:
                where = f"in cell {inc.cell}" if inc.cell else "during the checks"
                return f"CPU time limit {where}"
            if inc.kind in DESCRIBE:
                text = DESCRIBE[inc.kind].format(n=inc.cell)
                return text + (" (gave up after repeated failures)" if self.gave_up else "")
            if inc.kind == IncidentKind.DEADLINE:
                return "submission time limit"
        return "ok"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # -- CPU ----------------------------------------------------------------------------
    def cpu_seconds(self) -> float:
        """CPU time of everything the submission ran so far (all kernels, all threads)."""
        return self._cpu_spent + self.sandbox.usage()[0]

    def _over_budget(self) -> str | None:
        """Why the submission may run nothing more, or None.

        Reading the CPU time walks /proc for every process of the sandbox (~0.2 ms), and
        this is asked before each of a hundred check calls. No process set can use more
        than all the machine's cores, so while the last reading plus that much since
        stays within the budget, the budget is not spent and /proc is not read.
        """
        now = time.monotonic()
        if self._cpu_seen is not None:
            seen, when = self._cpu_seen
            # Looked at least every CPU_LOOK_S all the same: a reading can come out low (a
            # child reaped between two reads of /proc counts later, in its parent).
            if now - when < CPU_LOOK_S and seen + (now - when) * CPUS <= self.limits.cpu_budget_s:
                return None
        used = self.cpu_seconds()
        self._cpu_seen = (used, now)
        if used <= self.limits.cpu_budget_s:
            return None
        return (
            f"the submission used {used:.0f} s of CPU time, more than the "
            f"{self.limits.cpu_budget_s:g} s it may use"
        )

    def _busy_while_idle(self) -> bool:
        """True when a cell left more threads than before and they keep burning CPU."""
        cpu, threads = self.sandbox.usage()
        if threads <= self._threads:
            return False
        self._threads = threads
        # Each look leaves a core idle; a kernel that is quiet for a first, short one
        # (most are) needs no more. The verdict still takes IDLE_PROBES long looks.
        quick = self.sandbox.busy_fraction(QUICK_PROBE_S)
        if quick is not None and not self._busy(quick):
            return False
        cpu = self.sandbox.usage()[0]
        for _ in range(IDLE_PROBES):
            time.sleep(IDLE_PROBE_S)
            now = self.sandbox.usage()[0]
            share, cpu = (now - cpu) / IDLE_PROBE_S, now
            if not self._busy(share):
                return False
        return True

    def _busy(self, share: float) -> bool:
        """Whether a look that saw `share` of a core used saw threads spinning.

        On a loaded machine a spinning thread gets less than BUSY_FRACTION of a core (the
        other submissions' kernels take the rest), but it is runnable whenever looked at;
        a kernel at rest sleeps. Task states are read only for a share in between.
        """
        if share >= BUSY_FRACTION:
            return True
        return share >= STARVED_FRACTION and self.sandbox.runnable_threads() > 0

    # -- cells ---------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        warm = self.kernel.zygote is not None
        try:
            self.kernel.start()
        except SandboxError as exc:
            if self.kernel.zygote is None:
                raise
            # A warm start that fails once would fail for every submission: go cold for good.
            disable_warm(f"a warm kernel did not start ({exc})")
            log.warning("warm kernel did not start (%s); starting a cold one", exc)
            self.kernel.shutdown()
            self.kernel.zygote = None
            warm = False
            self.kernel.start()
        log.info(
            "kernel started (%s) in %.2f s", "warm" if warm else "cold", time.monotonic() - started
        )

    def _classify(self, outcome: CellOutcome) -> IncidentKind | None:
        """None when the kernel came through fine (ok); else the incident to record."""
        if outcome.kind == OutcomeKind.OK:
            return None
        kind = IncidentKind.of(outcome.kind)
        if kind == IncidentKind.DIED and self.sandbox.memory_exceeded():
            return IncidentKind.MEMORY
        return kind

    def _record(self, number: int, kind: IncidentKind, message: str) -> None:
        self.incidents.append(Incident(number, kind, message))
        first = (message or "").strip().splitlines()[-1:] or [""]
        level = logging.INFO if kind == IncidentKind.ERROR else logging.WARNING
        log.log(level, "cell %d: %s %s", number, kind.value, first[0][:200])

    def _run_one(self, number: int, source: str) -> bool:
        """Run one cell; True if the kernel is still usable afterwards."""
        budget = min(self.limits.cell_timeout_s, self.remaining())
        if budget <= 0:
            self._record(number, IncidentKind.DEADLINE, "submission time limit reached")
            return False
        spent = self._over_budget()
        if spent:
            self._record(number, IncidentKind.CPU, spent)
            self.gave_up = True
            return False
        outcome = self.kernel.execute(source, timeout=budget, watch=self._over_budget)
        kind = self._classify(outcome)
        log.debug("cell %d: %s in %.2f s", number, outcome.kind, outcome.seconds)
        if kind == IncidentKind.TIMEOUT and budget < self.limits.cell_timeout_s:
            kind = IncidentKind.DEADLINE
        if (kind is None or kind == IncidentKind.ERROR) and self._busy_while_idle():
            kind, outcome.error = IncidentKind.SPINNING, SPINNING
        if kind is None or kind == IncidentKind.ERROR:
            self.done.append((number, source))
            if kind == IncidentKind.ERROR:
                self._record(number, kind, outcome.error)
            return True
        if kind == IncidentKind.CPU:
            self.gave_up = True
        self._record(number, kind, outcome.error)
        return False

    def run_cells(self, cells: list[tuple[int, str]]) -> None:
        for number, source in cells:
            if self.gave_up or self.remaining() <= 0:
                if not self.gave_up and not any(
                    i.kind == IncidentKind.DEADLINE for i in self.incidents
                ):
                    self._record(number, IncidentKind.DEADLINE, "submission time limit")
                return
            if not self._run_one(number, source) and not self.recover():
                return

    def recover(self) -> bool:
        """Fresh kernel, replay what completed before; False when out of restarts or time."""
        while True:
            if (
                self.gave_up
                or self.kernel.restarts >= self.limits.max_restarts
                or self.remaining() <= 0
            ):
                self.gave_up = True
                log.warning(
                    "gave up after %d restarts (%.0f s left)",
                    self.kernel.restarts,
                    max(self.remaining(), 0),
                )
                return False
            started = time.monotonic()
            self._cpu_spent += self.sandbox.usage()[0]
            self._threads = 0
            self.kernel.restart()
            replay, self.done = self.done, []
            log.info(
                "kernel restarted (%d/%d) in %.2f s; replaying %d cells",
                self.kernel.restarts,
                self.limits.max_restarts,
                time.monotonic() - started,
                len(replay),
            )
            if all(self._run_one(n, s) for n, s in replay):
                return True
            # A replayed cell failed this time: it is left out and we try again.

    # -- bridge calls ---------------------------------------------------------------------
    def serve(self, function: str, message: dict[str, Any]) -> None:
        """Serve one bridge request (see `SandboxedKernel.request`) under the call policy."""
        if function in self.poisoned:
            raise BridgeError(f"{function} was not called again: {self.poisoned[function]}")
        spent = self._over_budget()
        if spent:
            self.gave_up = True
            raise BridgeError(f"{function} was not called: {spent}")
        if self.gave_up:
            raise BridgeError(f"{function} was not called: the notebook's kernel kept failing")
        budget = min(self.limits.call_timeout_s, self.remaining())
        if budget <= 0:
            raise BridgeError(f"{function} was not called: the submission's time limit was reached")
        outcome = self.kernel.request(message, timeout=budget, watch=self._over_budget)
        kind = self._classify(outcome)
        if kind is None or kind == IncidentKind.ERROR:
            return
        if kind == IncidentKind.CPU:
            reason = outcome.error
            self.gave_up = True
            self._record(0, kind, outcome.error)
        else:
            reason = CALL_FAILURE.get(kind, CALL_FAILURE[IncidentKind.DIED]).format(
                budget=budget, memory=self.limits.memory_mib
            )
        self.poisoned[function] = reason
        log.warning("call of %s failed: %s; restarting the kernel", function, reason)
        self.recover()
        raise BridgeError(f"{function} failed: {reason}")

    def close(self) -> None:
        self.kernel.shutdown()
