"""Running a submission's cells in its kernel, and surviving what they do.

Policy: every code cell gets `cell_timeout_s`. An exception is recorded and
execution goes on (later questions may not need that cell). A timeout, a
dead kernel or an output flood restarts the kernel and replays every earlier
cell that completed, leaving the culprit out, so one bad cell costs only the
questions that need it. Restarts are bounded by `max_restarts`, and all
kernel work by `submission_timeout_s`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

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
}
# Why a bridge call was given up, per incident kind (`{budget}` and `{memory}` filled in).
CALL_FAILURE = {
    IncidentKind.TIMEOUT: "it did not return within {budget:g} s",
    IncidentKind.DIED: "it crashed the kernel",
    IncidentKind.MEMORY: "it exceeded the memory limit ({memory} MiB)",
    IncidentKind.OUTPUT: "it printed too much output",
}


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

    # -- status --------------------------------------------------------------------------
    @property
    def status(self) -> str:
        for inc in self.incidents:
            if inc.kind in DESCRIBE:
                text = DESCRIBE[inc.kind].format(n=inc.cell)
                return text + (" (gave up after repeated failures)" if self.gave_up else "")
            if inc.kind == IncidentKind.DEADLINE:
                return "submission time limit"
        return "ok"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

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
        outcome = self.kernel.execute(source, timeout=budget)
        kind = self._classify(outcome)
        log.debug("cell %d: %s in %.2f s", number, outcome.kind, outcome.seconds)
        if kind == IncidentKind.TIMEOUT and budget < self.limits.cell_timeout_s:
            kind = IncidentKind.DEADLINE
        if kind is None or kind == IncidentKind.ERROR:
            self.done.append((number, source))
            if kind == IncidentKind.ERROR:
                self._record(number, kind, outcome.error)
            return True
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
            if self.kernel.restarts >= self.limits.max_restarts or self.remaining() <= 0:
                self.gave_up = True
                log.warning(
                    "gave up after %d restarts (%.0f s left)",
                    self.kernel.restarts,
                    max(self.remaining(), 0),
                )
                return False
            started = time.monotonic()
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
    def serve(self, calldir: Path, function: str, code: str) -> None:
        if function in self.poisoned:
            raise BridgeError(f"{function} was not called again: {self.poisoned[function]}")
        if self.gave_up:
            raise BridgeError(f"{function} was not called: the notebook's kernel kept failing")
        budget = min(self.limits.call_timeout_s, self.remaining())
        if budget <= 0:
            raise BridgeError(f"{function} was not called: the submission's time limit was reached")
        outcome = self.kernel.execute(code, timeout=budget)
        kind = self._classify(outcome)
        if kind is None or kind == IncidentKind.ERROR:
            return
        reason = CALL_FAILURE.get(kind, CALL_FAILURE[IncidentKind.DIED]).format(
            budget=budget, memory=self.limits.memory_mib
        )
        self.poisoned[function] = reason
        log.warning("call of %s failed: %s; restarting the kernel", function, reason)
        self.recover()
        raise BridgeError(f"{function} failed: {reason}")

    def close(self) -> None:
        self.kernel.shutdown()
