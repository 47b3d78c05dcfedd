"""One Jupyter kernel running inside a Sandbox, reached over IPC sockets.

TCP on loopback does not cross bubblewrap's `--unshare-net`, so the kernel
listens on Unix sockets in the sandbox's run folder, which is bind-mounted at
the same path on both sides. jupyter_client does the protocol; this module
adds what graders need and nbclient does not: a hard per-cell deadline that
ends in a restart, a cap on how much output is kept and on how much may flood
in, and telling a dead kernel from a slow one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import zmq
from jupyter_client import BlockingKernelClient, KernelManager
from zmq.utils.monitor import recv_monitor_message

from autograder import kernel_side
from autograder.exceptions import SandboxError
from autograder.kinds import OutcomeKind
from autograder.sandbox import Sandbox
from autograder.warm import ForkedProvisioner, Zygote

BRIDGE_MODULE = "__autograder_bridge__"
# Room for one flush of a fast print loop (the flood cap then stops it), not for a
# single message the grader would have to hold and decode whole.
MAX_MESSAGE_BYTES = 32 << 20


FATAL = (OutcomeKind.TIMEOUT, OutcomeKind.DIED, OutcomeKind.OUTPUT, OutcomeKind.CPU)


@dataclass
class CellOutcome:
    """What running one piece of code did. `kind`: ok, error, timeout, died, output, cpu."""

    kind: OutcomeKind
    error: str = ""
    stdout: str = ""
    seconds: float = 0.0
    output_bytes: int = 0

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL


class _SandboxedKernelManager(KernelManager):
    """A KernelManager whose launch command is wrapped by the sandbox."""

    sandbox: Sandbox | None = None
    warm: bool = False  # launched by a zygote's fork (autograder.warm), not by this command

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        assert self.sandbox is not None
        argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            self.connection_file,
            "--HistoryManager.enabled=False",
            # pid 1 here is bwrap's init, which ipykernel would take for a dead parent;
            # bwrap --die-with-parent already ties the kernel to the grader.
            "--IPKernelApp.parent_handle=1",
        ]
        return argv if self.warm else self.sandbox.wrap(argv)

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        # The kernel runs as the sandbox's uid and must read the file it connects with.
        os.chmod(self.connection_file, 0o644)


@dataclass
class SandboxedKernel:
    sandbox: Sandbox
    startup_timeout: float = 90.0
    max_output_bytes: int = 64 << 10
    flood_bytes: int = 8 << 20
    env: dict[str, str] = field(default_factory=dict)
    zygote: Zygote | None = None

    def __post_init__(self) -> None:
        self.km: _SandboxedKernelManager | None = None
        self.kc: BlockingKernelClient | None = None
        self.restarts = 0
        self._context: zmq.Context | None = None
        self._monitor: zmq.Socket | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        km = _SandboxedKernelManager(kernel_name="python3", transport="ipc")
        km.sandbox = self.sandbox
        run = self.sandbox.run_dir
        km.connection_file = str(run / "kernel.json")
        km.ip = str(run / "k")
        spec = km.kernel_spec
        assert spec is not None, "no python3 kernel spec: is ipykernel installed?"
        spec.interrupt_mode = "message"  # signals don't cross bwrap's session
        if self.zygote is not None:
            km.warm = True
            km.kernel_id = str(uuid.uuid4())
            provisioner = ForkedProvisioner(
                kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km
            )
            provisioner.zygote, provisioner.sandbox = self.zygote, self.sandbox
            km.provisioner = provisioner
        try:
            km.start_kernel(
                env=self.sandbox.env(self.env),
                cwd=str(self.sandbox.scratch / "work"),
                stdout=subprocess.DEVNULL,  # the student's stderr must not reach the grader's
                stderr=subprocess.DEVNULL,
            )
        except Exception as exc:  # noqa: BLE001 - any launch failure is a setup problem
            raise SandboxError(
                f"could not start a sandboxed kernel ({exc}). Check that ipykernel is installed "
                "in the grader's virtualenv and that bubblewrap works (`bwrap --version`)"
            ) from exc
        self.km = km
        self._connect()

    def _connect(self) -> None:
        assert self.km is not None
        if self._context is None:
            # A message over this size makes ZeroMQ drop the connection instead of handing
            # the grader one huge frame to decode (a 1 GB display_data, say): the cell then
            # times out and the kernel is restarted, like any other flood.
            self._context = zmq.Context()
            self._context.setsockopt(zmq.MAXMSGSIZE, self._max_message)
        self.kc = self.km.client(context=self._context)
        self.kc.start_channels()
        # Tells a connection dropped for a message over MAXMSGSIZE from a silent kernel.
        self._monitor = self.kc.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError as exc:
            raise SandboxError(f"the sandboxed kernel did not start: {exc}") from exc
        self._install_bridge()

    def _install_bridge(self) -> None:
        code = (
            "def __ag_install():\n"
            "    import sys, types\n"
            f"    m = types.ModuleType({BRIDGE_MODULE!r})\n"
            f"    exec(compile({Path(kernel_side.__file__).read_text()!r}, 'autograder-bridge', "
            "'exec'), m.__dict__)\n"
            f"    sys.modules[{BRIDGE_MODULE!r}] = m\n"
            "__ag_install()\n"
            "del __ag_install\n"
        )
        outcome = self.execute(code, timeout=60)
        if outcome.kind != OutcomeKind.OK:
            raise SandboxError(f"could not install the bridge in the kernel: {outcome.error}")

    def _stop_client(self) -> None:
        if self.kc is not None:
            if self._monitor is not None:
                self.kc.iopub_channel.socket.disable_monitor()
                self._monitor.close(linger=0)
                self._monitor = None
            self.kc.stop_channels()

    @property
    def _max_message(self) -> int:
        return max(self.flood_bytes * 4, MAX_MESSAGE_BYTES)

    def _message_dropped(self) -> bool:
        """True once ZeroMQ dropped the kernel's output connection (one oversized message)."""
        if self._monitor is None:
            return False
        try:
            while True:
                event = recv_monitor_message(self._monitor, flags=zmq.NOBLOCK)
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    return True
        except zmq.Again:
            return False

    def restart(self) -> None:
        """A fresh kernel process (the old one and everything it spawned is killed)."""
        assert self.km is not None
        self._stop_client()
        self.sandbox.kill_all()
        self.restarts += 1
        self.km.restart_kernel(now=True)
        self._connect()

    def shutdown(self) -> None:
        if self.kc is not None:
            self._stop_client()
            self.kc = None
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001
                pass
            self.km = None
        self.sandbox.kill_all()
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    def is_alive(self) -> bool:
        return bool(self.km and self.km.is_alive())

    # -- execution -------------------------------------------------------------------
    def execute(
        self, code: str, timeout: float, watch: Callable[[], str | None] | None = None
    ) -> CellOutcome:
        """Run code; never raises for what the code does, only reports it.

        `watch` is asked about twice a second while the code runs; a reason it returns
        (the submission's CPU budget is spent, say) ends the run as kind "cpu".
        """
        assert self.kc is not None
        start = time.monotonic()
        deadline = start + timeout
        msg_id = self.kc.execute(code, silent=False, store_history=False, allow_stdin=False)
        kept: list[str] = []
        kept_bytes = 0
        seen_bytes = 0
        error = ""
        idle = False
        last_alive_check = start
        while not idle:
            now = time.monotonic()
            if now > deadline:
                return CellOutcome(
                    OutcomeKind.TIMEOUT,
                    f"ran longer than {timeout:g} s",
                    "".join(kept),
                    now - start,
                    seen_bytes,
                )
            try:
                msg = self.kc.get_iopub_msg(timeout=min(0.2, max(deadline - now, 0.01)))
            except Empty:
                if now - last_alive_check > 0.5:
                    last_alive_check = now
                    if not self.is_alive():
                        return CellOutcome(
                            OutcomeKind.DIED,
                            "the kernel died",
                            "".join(kept),
                            now - start,
                            seen_bytes,
                        )
                    if self._message_dropped():
                        return CellOutcome(
                            OutcomeKind.OUTPUT,
                            f"sent more than {self._max_message >> 20} MiB in one message",
                            "".join(kept),
                            now - start,
                            seen_bytes + self._max_message,  # at least that much was sent
                        )
                    reason = watch() if watch is not None else None
                    if reason:
                        kept_text = "".join(kept)
                        return CellOutcome(
                            OutcomeKind.CPU, reason, kept_text, now - start, seen_bytes
                        )
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            mtype, content = msg["msg_type"], msg["content"]
            if mtype == "status" and content.get("execution_state") == "idle":
                idle = True
            elif mtype == "stream":
                text = str(content.get("text", ""))
                seen_bytes += len(text)
                if kept_bytes < self.max_output_bytes:
                    piece = text[: self.max_output_bytes - kept_bytes]
                    kept.append(piece)
                    kept_bytes += len(piece)
            elif mtype == "error":
                error = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"[:2000]
            elif mtype in ("display_data", "execute_result", "update_display_data"):
                seen_bytes += sum(len(str(v)) for v in content.get("data", {}).values())
            if seen_bytes > self.flood_bytes:
                return CellOutcome(
                    OutcomeKind.OUTPUT,
                    f"printed more than {self.flood_bytes >> 20} MiB of output",
                    "".join(kept),
                    time.monotonic() - start,
                    seen_bytes,
                )
        # Drain the shell reply so the next execute starts clean.
        try:
            self.kc.get_shell_msg(timeout=5)
        except Empty:
            pass
        kind = OutcomeKind.ERROR if error else OutcomeKind.OK
        return CellOutcome(kind, error, "".join(kept), time.monotonic() - start, seen_bytes)

    def call_code(self, calldir: Path) -> str:
        """The one line that asks the kernel-side bridge to serve a call."""
        return (
            f"__import__('sys').modules[{BRIDGE_MODULE!r}].serve_call("
            f"{str(calldir)!r}, __import__('IPython').get_ipython().user_ns)"
        )
