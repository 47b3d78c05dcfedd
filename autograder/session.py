"""Running a submission's cells in its kernel, and surviving what they do.

Policy: every code cell gets `cell_timeout_s`. An exception is recorded and
execution goes on (later questions may not need that cell). A timeout, a
dead kernel or an output flood restarts the kernel and replays every earlier
cell that completed, leaving the culprit out, so one bad cell costs only the
questions that need it. Restarts are bounded by `max_restarts`, and all
kernel work by `submission_timeout_s`.
"""

from __future__ import annotations

import time
from pathlib import Path

from autograder.config import Limits
from autograder.exceptions import BridgeError, SandboxError
from autograder.kernel import CellOutcome, SandboxedKernel
from autograder.sandbox import Sandbox
from autograder.scoring import Incident
from autograder.warm import Zygote, disable_warm

DESCRIBE = {
    "timeout": "timeout in cell {n}",
    "died": "kernel died in cell {n}",
    "memory": "memory limit in cell {n}",
    "output": "output limit in cell {n}",
}


class KernelSession:
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
            if inc.kind == "deadline":
                return "submission time limit"
        return "ok"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # -- cells ---------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.kernel.start()
        except SandboxError as exc:
            if self.kernel.zygote is None:
                raise
            # A warm start that fails once would fail for every submission: go cold for good.
            disable_warm(f"a warm kernel did not start ({exc})")
            self.kernel.shutdown()
            self.kernel.zygote = None
            self.kernel.start()

    def _classify(self, outcome: CellOutcome) -> str:
        if outcome.kind == "died" and self.sandbox.memory_exceeded():
            return "memory"
        return outcome.kind

    def _run_one(self, number: int, source: str) -> bool:
        """Run one cell; True if the kernel is still usable afterwards."""
        budget = min(self.limits.cell_timeout_s, self.remaining())
        if budget <= 0:
            self.incidents.append(Incident(number, "deadline", "submission time limit reached"))
            return False
        outcome = self.kernel.execute(source, timeout=budget)
        kind = self._classify(outcome)
        if kind == "timeout" and budget < self.limits.cell_timeout_s:
            kind = "deadline"
        if kind in ("ok", "error"):
            self.done.append((number, source))
            if kind == "error":
                self.incidents.append(Incident(number, "error", outcome.error))
            return True
        self.incidents.append(Incident(number, kind, outcome.error))
        return False

    def run_cells(self, cells: list[tuple[int, str]]) -> None:
        for number, source in cells:
            if self.gave_up or self.remaining() <= 0:
                if not any(i.kind == "deadline" for i in self.incidents) and not self.gave_up:
                    self.incidents.append(Incident(number, "deadline", "submission time limit"))
                return
            if not self._run_one(number, source) and not self.recover():
                return

    def recover(self) -> bool:
        """Fresh kernel, replay what completed before; False when out of restarts or time."""
        while True:
            if self.kernel.restarts >= self.limits.max_restarts or self.remaining() <= 0:
                self.gave_up = True
                return False
            self.kernel.restart()
            replay, self.done = self.done, []
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
        if kind in ("ok", "error"):
            return
        reason = {
            "timeout": f"it did not return within {budget:g} s",
            "died": "it crashed the kernel",
            "memory": f"it exceeded the memory limit ({self.limits.memory_mib} MiB)",
            "output": "it printed too much output",
        }[kind]
        self.poisoned[function] = reason
        self.recover()
        raise BridgeError(f"{function} failed: {reason}")

    def close(self) -> None:
        self.kernel.shutdown()
