"""A fake kernel for fast unit tests of the session policy: no process, no sandbox.

A cell's source says what it does: "ok ...", "error ...", "timeout ...", "died ...",
"output ...", "flaky ..." (ok the first time it runs, died every later time), "spin ..."
(returns at once, leaving threads that keep the CPU busy), "starve ..." (the same on a loaded
machine: the threads get a fifth of a core, and are runnable whenever looked at), "trickle ..."
(leaves a thread that uses a fifth of a core but sleeps whenever looked at) or "burn N ..."
(uses N CPU seconds). Time advances on a fake clock by `seconds` per execution ("slow N ..." takes N
seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autograder.kernel import CellOutcome


@dataclass
class Clock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeSandbox:
    memory_hit: bool = False
    cpu: float = 0.0
    threads: int = 4
    spinning: bool = False
    per_look: float = 0.1  # CPU seconds the spinning threads use between two looks
    runnable: int = 0  # threads in state R

    def memory_exceeded(self) -> bool:
        return self.memory_hit

    def busy_fraction(self, seconds: float) -> float | None:
        return min(1.0, self.per_look / 0.05) if self.spinning else 0.0

    def usage(self) -> tuple[float, int]:
        if self.spinning:
            self.cpu += self.per_look  # 0.1: a busy core between any two 50 ms looks
        return self.cpu, self.threads

    def runnable_threads(self) -> int:
        return self.runnable


@dataclass
class FakeKernel:
    clock: Clock
    sandbox: FakeSandbox = field(default_factory=FakeSandbox)
    seconds: float = 0.1
    zygote: object | None = None
    fail_start: bool = False
    executed: list[str] = field(default_factory=list)
    restarts: int = 0
    starts: int = 0
    shutdowns: int = 0
    seen: set[str] = field(default_factory=set)

    def start(self) -> None:
        self.starts += 1

    def restart(self) -> None:
        self.restarts += 1
        self.sandbox.cpu, self.sandbox.spinning = 0.0, False  # a fresh process
        self.sandbox.per_look, self.sandbox.runnable = 0.1, 0

    def shutdown(self) -> None:
        self.shutdowns += 1

    def request(self, message: dict, timeout: float, watch=None) -> CellOutcome:
        """A bridge request: its "code" is a fake cell source, as above."""
        return self.execute(message["code"], timeout, watch)

    def execute(self, source: str, timeout: float, watch=None) -> CellOutcome:
        self.executed.append(source)
        word, *rest = source.split()
        took = self.seconds
        if word == "slow":
            took, word = float(rest[0]), rest[1]
        if word in ("spin", "starve", "trickle"):
            self.sandbox.threads += 8
            self.sandbox.spinning = True
            if word != "spin":
                self.sandbox.per_look = 0.01  # a fifth of a core
            self.sandbox.runnable = 0 if word == "trickle" else 8
            word = "ok"
        if word == "burn":  # on one core: N CPU seconds take N seconds
            self.sandbox.cpu += float(rest[0])
            self.clock.now += float(rest[0])
            reason = watch() if watch is not None else None
            if reason:
                return CellOutcome("cpu", error=reason, seconds=took)
            word = "ok"
        if word == "flaky":
            word = "died" if source in self.seen else "ok"
        self.seen.add(source)
        if word == "timeout" or took > timeout:
            self.clock.now += timeout
            return CellOutcome("timeout", seconds=timeout)
        self.clock.now += took
        if word == "error":
            return CellOutcome("error", error=f"ValueError: {source}", seconds=took)
        if word in ("died", "output"):
            return CellOutcome(word, error=f"{word}: {source}", seconds=took)
        return CellOutcome("ok", seconds=took)


def fake_session(monkeypatch, limits, *, memory_hit: bool = False, seconds: float = 0.1):
    """A KernelSession on a FakeKernel and a fake clock; returns (session, kernel, clock)."""
    from autograder import session as session_mod

    clock = Clock()
    kernels: list[FakeKernel] = []

    def make_kernel(sandbox, **kwargs):
        kernels.append(FakeKernel(clock, sandbox, seconds=seconds, zygote=kwargs.get("zygote")))
        return kernels[-1]

    monkeypatch.setattr(session_mod, "SandboxedKernel", make_kernel)
    monkeypatch.setattr(session_mod, "time", clock)
    s = session_mod.KernelSession(FakeSandbox(memory_hit), limits)  # type: ignore[arg-type]
    return s, kernels[0], clock
