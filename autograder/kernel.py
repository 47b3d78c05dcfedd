"""One Jupyter kernel running inside a Sandbox, reached over IPC sockets.

TCP on loopback does not cross bubblewrap's `--unshare-net`, so the kernel
listens on Unix sockets in the sandbox's run folder, which is bind-mounted at
the same path on both sides. jupyter_client does the protocol; this module
adds what graders need and nbclient does not: a hard per-cell deadline that
ends in a restart, a cap on how much output is kept and on how much may flood
in, and telling a dead kernel from a slow one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
from jupyter_client import BlockingKernelClient, KernelManager
from zmq.utils.monitor import recv_monitor_message

from autograder import kernel_side
from autograder.cleantext import encodable, without_ansi
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

    async def _async_interrupt_kernel(self) -> None:
        """Never interrupt: the grader kills the sandbox's processes before any shutdown or
        restart, and jupyter_client's interrupt (sent first by both) is a message on the
        control socket, whose send blocks for good once a kernel has mangled that link."""

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        # The kernel runs as the sandbox's uid and must read the file it connects with.
        os.chmod(self.connection_file, 0o644)


LOOP_START_S = 10.0  # for the kernel's side of the call loop to connect
LOOP_SEND_S = 5.0  # for a request line to be taken (a few bytes, into an idle loop)
MAX_REPLY_BYTES = 1024  # replies are short numbers: more is a kernel playing games


@dataclass
class _Output:
    """What one run printed: kept up to a limit, counted in full."""

    limit: int
    kept: list[str] = field(default_factory=list)
    kept_bytes: int = 0
    seen: int = 0
    error: str = ""

    def add(self, mtype: str, content: dict[str, Any]) -> bool:
        """Count one iopub message; True when it says the kernel is idle again."""
        if mtype == "status" and content.get("execution_state") == "idle":
            return True
        if mtype == "stream":
            text = str(content.get("text", ""))
            self.seen += len(text)
            if self.kept_bytes < self.limit:
                piece = text[: self.limit - self.kept_bytes]
                self.kept.append(piece)
                self.kept_bytes += len(piece)
        elif mtype == "error":
            self.error = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"[:2000]
        elif mtype in ("display_data", "execute_result", "update_display_data"):
            self.seen += sum(len(str(v)) for v in content.get("data", {}).values())
        return False

    def outcome(self, kind: OutcomeKind, error: str, start: float) -> CellOutcome:
        # The kernel's text reaches logs and reports: writable, without terminal colours.
        error, output = without_ansi(encodable(error)), without_ansi(encodable("".join(self.kept)))
        return CellOutcome(kind, error, output, time.monotonic() - start, self.seen)


@dataclass
class _Loop:
    """The grader's end of a running call loop: the socket and the execute serving it."""

    conn: socket.socket
    msg_id: str
    number: int = 0
    buffer: bytes = b""

    def read(self) -> list[int] | None:
        """Reply numbers now readable; None when the socket closed or sent garbage."""
        try:
            chunk = self.conn.recv(MAX_REPLY_BYTES, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > MAX_REPLY_BYTES:
            return None
        try:
            return [int(line) for line in lines]
        except ValueError:
            return None


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
        self._loop: _Loop | None = None
        self._loop_broken = False  # the kernel's side broke its loop: execute each request
        self._loop_count = 0

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        km = _SandboxedKernelManager(kernel_name="python3", transport="ipc")
        km.sandbox = self.sandbox
        run = self.sandbox.run_dir
        km.connection_file = str(self.sandbox.calls_dir / "kernel.json")  # chmod by path
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
        # No heartbeat: liveness comes from the kernel manager (the process), and the
        # heartbeat's thread can block for good on a link the kernel has mangled.
        self.kc.start_channels(hb=False)
        # Tells a connection dropped for a message over MAXMSGSIZE from a silent kernel.
        self._monitor = self.kc.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._wait_until_ready(self.startup_timeout)
        self._install_bridge()

    def _wait_until_ready(self, timeout: float) -> None:
        """Return once the kernel answers kernel_info on shell and its iopub reaches us.

        jupyter_client's `wait_for_ready` does the same, then drains iopub until 0.2 s
        pass with no message: a fixed 0.2 s with the core idle, of a warm start's 0.44 s.
        Here the kernel_info request's own `idle` status on iopub proves the subscription,
        and whatever else is on iopub is left there: `_follow` reads only its own
        request's messages. A status published before the subscription reached the kernel
        is lost (ZeroMQ's slow joiner): then ask again, after a wait that starts at 10 ms
        and doubles up to jupyter_client's 0.2 s.
        """
        assert self.kc is not None
        deadline = time.monotonic() + timeout
        wait = 0.01
        while True:
            msg_id = self.kc.kernel_info()
            if self._shell_reply_to(msg_id, wait=min(1.0, deadline - time.monotonic())):
                if self._iopub_idle_after(msg_id, wait=wait):
                    return
                wait = min(2 * wait, 0.2)
            if not self.is_alive():
                raise SandboxError("the sandboxed kernel did not start: it died before replying")
            if time.monotonic() > deadline:
                raise SandboxError(f"the sandboxed kernel did not start: no reply in {timeout:g} s")

    def _shell_reply_to(self, msg_id: str, wait: float) -> bool:
        """True once shell carries the reply to `msg_id` (earlier, late replies are skipped)."""
        assert self.kc is not None
        deadline = time.monotonic() + max(wait, 0.01)
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply = self.kc.get_shell_msg(timeout=left)
            except Empty:
                return False
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return True
        return False

    def _iopub_idle_after(self, msg_id: str, wait: float) -> bool:
        """True once iopub carries `msg_id`'s idle status; False after `wait` s without it."""
        assert self.kc is not None
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except Empty:
                return False
            if (
                msg.get("parent_header", {}).get("msg_id") == msg_id
                and msg.get("msg_type") == "status"
                and msg.get("content", {}).get("execution_state") == "idle"
            ):
                return True
        return False

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
        self._forget_loop()
        self._loop_broken = False  # a new kernel process gets a fresh chance
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
        # Killed first: jupyter_client's kill then finds the kernel gone, instead of polling
        # its exit at 0.1 s intervals (0.11 s per submission, idle).
        self.sandbox.kill_all()
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
        if self._loop is not None:
            self._end_loop(timeout)
        msg_id = self.kc.execute(code, silent=False, store_history=False, allow_stdin=False)
        outcome = self._follow(msg_id, timeout, watch)
        assert outcome is not None  # no fd to wait for: it ends with the kernel idle
        return outcome

    def _follow(
        self,
        msg_id: str,
        timeout: float,
        watch: Callable[[], str | None] | None,
        fd: int | None = None,
    ) -> CellOutcome | None:
        """Follow `msg_id`'s output until the kernel is idle or something fatal happens.

        With `fd`, also return None as soon as `fd` is readable (a call loop's reply),
        after counting the output that arrived first.
        """
        assert self.kc is not None
        start = time.monotonic()
        deadline = start + timeout
        out = _Output(self.max_output_bytes)
        last_check = start
        poller, pending = zmq.Poller(), zmq.Poller()
        poller.register(self.kc.iopub_channel.socket, zmq.POLLIN)
        # Asked before each read: get_iopub_msg runs an event loop each time (~0.5 ms),
        # which a call loop's 128 replies with no output at all would pay for nothing.
        pending.register(self.kc.iopub_channel.socket, zmq.POLLIN)
        if fd is not None:
            poller.register(fd, zmq.POLLIN)
        while True:
            now = time.monotonic()
            if now > deadline:
                return out.outcome(OutcomeKind.TIMEOUT, f"ran longer than {timeout:g} s", start)
            if now - last_check > 0.5:
                last_check = now
                problem = self._problem(watch)
                if problem is not None:
                    kind, reason = problem
                    if kind == OutcomeKind.OUTPUT:
                        out.seen += self._max_message  # at least that much was sent
                    return out.outcome(kind, reason, start)
            wait_ms = max(int(1000 * min(0.2, deadline - now)), 1)
            ready = dict(poller.poll(timeout=wait_ms))
            while pending.poll(0):  # every message already there, before looking at the reply
                try:
                    msg = self.kc.get_iopub_msg(timeout=0)
                except Empty:
                    break
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if out.add(msg["msg_type"], msg["content"]):
                    # Drain the shell reply so the next execute starts clean.
                    try:
                        self.kc.get_shell_msg(timeout=5)
                    except Empty:
                        pass
                    kind = OutcomeKind.ERROR if out.error else OutcomeKind.OK
                    return out.outcome(kind, out.error, start)
                if out.seen > self.flood_bytes:
                    reason = f"printed more than {self.flood_bytes >> 20} MiB of output"
                    return out.outcome(OutcomeKind.OUTPUT, reason, start)
            if fd is not None and fd in ready:
                return None

    def _problem(self, watch: Callable[[], str | None] | None) -> tuple[OutcomeKind, str] | None:
        """What ends a run although the kernel said nothing: death, a dropped link, `watch`."""
        if not self.is_alive():
            return OutcomeKind.DIED, "the kernel died"
        if self._message_dropped():
            mib = self._max_message >> 20
            return OutcomeKind.OUTPUT, f"sent more than {mib} MiB in one message"
        reason = watch() if watch is not None else None
        return (OutcomeKind.CPU, reason) if reason else None

    # -- the call loop -------------------------------------------------------------------
    def request(
        self,
        message: dict[str, Any],
        timeout: float,
        watch: Callable[[], str | None] | None = None,
    ) -> CellOutcome:
        """Serve one bridge request (`kernel_side.serve_request`: op, dir, ...) in the kernel.

        Requests go through one long-running execute, a line each on a Unix socket
        (`kernel_side.serve_loop`); when that loop cannot run (the kernel's side broke
        it), the request is executed as code instead. Outcomes are those of `execute`.
        """
        assert self.kc is not None
        started = time.monotonic()
        fallback = self.request_code(message)
        if self._loop is None and not self._loop_broken:
            failed = self._start_loop(min(timeout, LOOP_START_S), watch)
            if failed is not None:
                return failed
        loop = self._loop
        if loop is None:
            return self.execute(fallback, timeout, watch)
        loop.number += 1
        try:
            loop.conn.sendall(json.dumps({**message, "n": loop.number}).encode() + b"\n")
        except OSError:
            self._loop_lost(timeout, watch)
            return self.execute(fallback, max(timeout - (time.monotonic() - started), 1.0), watch)
        while True:
            left = timeout - (time.monotonic() - started)
            outcome = self._follow(loop.msg_id, max(left, 0.0), watch, fd=loop.conn.fileno())
            if outcome is not None:  # the loop ended (broken on the kernel's side) or worse
                self._forget_loop()
                if not outcome.fatal:
                    self._loop_broken = True
                return outcome
            replies = loop.read()
            if replies is None or any(n != loop.number for n in replies):
                # Closed, garbage or a number never asked for: the kernel's side broke
                # the protocol, so it is not trusted to keep it from now on.
                return self._loop_lost(max(left, 1.0), watch)
            if replies:
                return CellOutcome(OutcomeKind.OK, seconds=time.monotonic() - started)

    def _start_loop(
        self, timeout: float, watch: Callable[[], str | None] | None
    ) -> CellOutcome | None:
        """Start the call loop; None when it runs (or cannot, and execute is used instead)."""
        assert self.kc is not None
        self._loop_count += 1
        path = self.sandbox.calls_dir / f"calls{self._loop_count}.sock"  # chmod by path
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            os.chmod(path, 0o777)  # the kernel runs as the sandbox's uid
            listener.listen(1)
            code = (
                f"__import__('sys').modules[{BRIDGE_MODULE!r}].serve_loop("
                f"{str(path)!r}, __import__('IPython').get_ipython().user_ns)"
            )
            msg_id = self.kc.execute(code, silent=False, store_history=False, allow_stdin=False)
            outcome = self._follow(msg_id, timeout, watch, fd=listener.fileno())
            if outcome is not None:
                if not outcome.fatal:  # the loop ran and returned at once: do without it
                    self._loop_broken = True
                    return None
                return outcome
            listener.settimeout(1.0)
            try:
                conn, _ = listener.accept()
            except OSError:
                self._loop_broken = True
                outcome = self._follow(msg_id, timeout, watch)
                return outcome if outcome is not None and outcome.fatal else None
            conn.settimeout(LOOP_SEND_S)
            self._loop = _Loop(conn, msg_id)
            return None
        finally:
            listener.close()
            path.unlink(missing_ok=True)

    def _loop_lost(self, timeout: float, watch: Callable[[], str | None] | None) -> CellOutcome:
        """The loop's socket broke: let its execute finish, and use execute from now on."""
        loop = self._loop
        assert loop is not None
        self._forget_loop()
        self._loop_broken = True
        outcome = self._follow(loop.msg_id, timeout, watch)
        assert outcome is not None
        return outcome

    def _end_loop(self, timeout: float) -> None:
        """Stop the call loop so that the kernel is free to run code again.

        Closing the socket is the stop: the kernel's loop returns when it reads the end.
        """
        loop = self._loop
        assert loop is not None
        self._forget_loop()
        self._follow(loop.msg_id, timeout, None)

    def _forget_loop(self) -> None:
        if self._loop is not None:
            self._loop.conn.close()
            self._loop = None

    def request_code(self, message: dict[str, Any]) -> str:
        """The request as one line of code (strings and numbers only: repr is a literal)."""
        return (
            f"__import__('sys').modules[{BRIDGE_MODULE!r}].serve_request("
            f"{message!r}, __import__('IPython').get_ipython().user_ns)"
        )
