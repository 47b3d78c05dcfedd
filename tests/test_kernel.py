"""One Jupyter kernel inside a Sandbox: outcomes, deadlines, floods, restarts, silence."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from autograder.bridge import decode_response, encode_request
from autograder.config import Limits
from autograder.kernel import BRIDGE_MODULE, SandboxedKernel
from autograder.sandbox import UID_BASE, UID_COUNT, Sandbox, capabilities

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.skipif(
        not capabilities().isolated,
        reason="bubblewrap is not usable here (install Debian's bubblewrap and run as root)",
    ),
]

LIMITS = Limits(memory_mib=1024, max_processes=32, cpu_time_s=120)


def _sandbox_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = entry.stat().st_uid
            except OSError:
                continue
            if UID_BASE <= uid < UID_BASE + UID_COUNT:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    sb = Sandbox(tmp_path_factory.mktemp("kernel") / "scratch", LIMITS)
    k = SandboxedKernel(sb, max_output_bytes=1000, flood_bytes=1 << 20)
    try:
        k.start()
        yield k
    finally:
        k.shutdown()
        sb.close()


def test_ok_and_error_outcomes(kernel):
    ok = kernel.execute("print('hello'); x = 41", timeout=20)
    assert (ok.kind, ok.error, ok.stdout) == ("ok", "", "hello\n")
    assert not ok.fatal
    ok = kernel.execute("print(x + 1)", timeout=20)
    assert ok.stdout == "42\n"  # state persists between executes
    err = kernel.execute("1 / 0", timeout=20)
    assert err.kind == "error" and err.error == "ZeroDivisionError: division by zero"
    assert not err.fatal
    assert kernel.execute("print('after')", timeout=20).stdout == "after\n"


def test_the_bridge_is_installed_and_serves_calls(kernel, tmp_path):
    out = kernel.execute(f"import sys; print({BRIDGE_MODULE!r} in sys.modules)", timeout=20)
    assert out.stdout == "True\n"
    kernel.execute(
        "import numpy as np\ndef twice(a, k=2):\n    return np.asarray(a) * k", timeout=20
    )
    calldir = kernel.sandbox.scratch / ".calls" / "t1"
    encode_request(calldir, "twice", (np.arange(3.0),), {"k": 3})
    calldir.chmod(0o777)
    outcome = kernel.execute(kernel.request_code({"op": "call", "dir": str(calldir)}), 20)
    assert outcome.kind == "ok", outcome
    got = decode_response(calldir, kernel.sandbox.scratch, "twice", 1 << 20)
    np.testing.assert_array_equal(got, [0.0, 3.0, 6.0])


def _call(kernel, n: int, function: str, *args, timeout: float = 20.0, **kwargs):
    calldir = kernel.sandbox.scratch / ".calls" / f"loop{n}-{time.monotonic_ns()}"
    encode_request(calldir, function, args, kwargs)
    calldir.chmod(0o777)
    outcome = kernel.request({"op": "call", "dir": str(calldir)}, timeout=timeout)
    return outcome, calldir


def test_many_calls_share_one_execute_and_cells_still_run_after(kernel):
    kernel.execute("def inc(x):\n    return x + 1", timeout=20)
    for n in range(5):
        outcome, calldir = _call(kernel, n, "inc", n)
        assert outcome.kind == "ok", outcome
        assert decode_response(calldir, kernel.sandbox.scratch, "inc", 1 << 20) == n + 1
    assert kernel._loop is not None  # one loop served all five
    # A cell ends the loop first, then runs; the next call starts a new loop.
    assert kernel.execute("print('cell')", timeout=20).stdout == "cell\n"
    assert kernel._loop is None
    outcome, calldir = _call(kernel, 9, "inc", 41)
    assert decode_response(calldir, kernel.sandbox.scratch, "inc", 1 << 20) == 42


def test_a_function_that_breaks_the_loop_costs_its_own_call_only(kernel):
    """Closing or writing into the loop's socket: the grader goes back to one execute a call."""
    kernel.execute(
        "import os, socket\n"
        "def close_all():\n"
        "    os.closerange(3, 4096)\n"
        "    return 1\n"
        "def forge():\n"
        "    for fd in range(3, 512):\n"
        "        try:\n"
        "            s = socket.socket(fileno=os.dup(fd))\n"
        "            if s.family == socket.AF_UNIX and s.type == socket.SOCK_STREAM:\n"
        "                s.send(b'999\\n' * 10_000)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 2\n"
        "def ok():\n"
        "    return 3\n",
        timeout=20,
    )
    for n, name in enumerate(("forge", "close_all")):
        outcome, _ = _call(kernel, 20 + n, name, timeout=15)
        # The call may be lost, or the kernel with it (closed sockets): never the grader.
        if outcome.fatal:
            kernel.restart()
            kernel.execute("def ok():\n    return 3\n", timeout=20)
        outcome, calldir = _call(kernel, 30 + n, "ok")
        assert outcome.kind == "ok", (name, outcome)
        assert decode_response(calldir, kernel.sandbox.scratch, "ok", 1 << 20) == 3


def test_calls_that_time_out_flood_or_kill_the_kernel(tmp_path):
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        k = SandboxedKernel(sb, max_output_bytes=1000, flood_bytes=256 << 10)
        try:
            k.start()
            code = (
                "import os\n"
                "def spin():\n    while True: pass\n"
                "def flood():\n    while True: print('z' * 1000)\n"
                "def die():\n    os._exit(3)\n"
                "def fine():\n    return 1\n"
            )
            for name, kind in (("spin", "timeout"), ("flood", "output"), ("die", "died")):
                k.execute(code, timeout=20)
                assert _call(k, 0, "fine")[0].kind == "ok"
                outcome, _ = _call(k, 1, name, timeout=3)
                assert outcome.kind == kind and outcome.fatal, (name, outcome)
                k.restart()
        finally:
            k.shutdown()


def test_kept_output_is_capped_but_counted(kernel):
    out = kernel.execute("print('y' * 50_000)", timeout=20)
    assert out.kind == "ok"
    assert len(out.stdout) == 1000 and out.output_bytes >= 50_000


def test_outcomes_that_need_a_restart(tmp_path):
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        k = SandboxedKernel(sb, max_output_bytes=1000, flood_bytes=256 << 10)
        try:
            k.start()
            k.execute("state = 'kept'", timeout=20)

            start = time.monotonic()
            out = k.execute("while True:\n    pass", timeout=1.5)
            assert out.kind == "timeout" and out.fatal and "1.5 s" in out.error
            assert time.monotonic() - start < 10
            k.restart()
            assert k.restarts == 1
            after = k.execute("print(globals().get('state'))", timeout=20)
            assert (after.kind, after.stdout) == ("ok", "None\n")  # a fresh kernel

            out = k.execute("import os\nos._exit(3)", timeout=20)
            assert out.kind == "died" and out.fatal
            assert not k.is_alive()
            k.restart()
            assert k.is_alive() and k.execute("print(1)", timeout=20).stdout == "1\n"

            out = k.execute("while True:\n    print('z' * 1000)", timeout=30)
            assert out.kind == "output" and out.fatal and "more than" in out.error
            assert out.output_bytes > 256 << 10 and len(out.stdout) <= 1000
            k.restart()
            assert k.execute("print(2)", timeout=20).stdout == "2\n"

            # Big writes in a tight loop can fill the kernel's output buffer past the
            # memory cap before its first flush reaches us: stopped either way.
            flood = "import sys\nwhile True:\n    sys.stdout.write('z' * 65536)"
            out = k.execute(flood, timeout=30)
            assert out.fatal
            assert out.kind == "output" or (out.kind == "died" and sb.memory_exceeded())
            k.restart()
            assert k.execute("print(3)", timeout=20).stdout == "3\n"
            assert k.restarts == 4
        finally:
            k.shutdown()
        uid = sb.uid
    if uid is not None:
        assert not [p for p in _sandbox_processes() if Path(f"/proc/{p}").stat().st_uid == uid]


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_one_huge_message_never_reaches_the_graders_memory(tmp_path):
    """A single 150 MB display message is dropped by ZeroMQ, not decoded in the grader."""
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        k = SandboxedKernel(sb, max_output_bytes=1000, flood_bytes=1 << 20)
        try:
            k.start()
            Path("/proc/self/clear_refs").write_text("5")  # reset this process's peak RSS
            before = _peak_rss_mib()
            code = "display({'text/plain': 'x' * (150 << 20)}, raw=True)"
            out = k.execute(code, timeout=8)
            grown = _peak_rss_mib() - before
            assert (out.kind, out.error) == ("output", "sent more than 32 MiB in one message"), out
            assert grown < 100, f"the grader grew by {grown:.0f} MiB"
            k.restart()
            assert k.execute("print('fresh')", timeout=20).stdout == "fresh\n"
        finally:
            k.shutdown()


def test_kernel_stderr_never_reaches_the_grader(tmp_path, capfd):
    capfd.readouterr()
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        k = SandboxedKernel(sb)
        try:
            k.start()
            out = k.execute(
                "import os, sys, subprocess\n"
                "os.write(2, b'FDLEAK-2\\n'); os.write(1, b'FDLEAK-1\\n')\n"
                "sys.__stderr__.write('DUNDERLEAK\\n'); sys.__stderr__.flush()\n"
                "subprocess.run(['sh', '-c', 'echo CHILDLEAK >&2; echo CHILDOUT'])\n"
                "import warnings; warnings.warn('WARNLEAK')\n"
                "print('visible')\n",
                timeout=30,
            )
            assert out.kind == "ok", out
            assert "visible" in out.stdout
            k.execute("import os\nos._exit(1)", timeout=20)  # a crash prints nothing either
        finally:
            k.shutdown()
    captured = capfd.readouterr()
    for marker in ("FDLEAK", "DUNDERLEAK", "CHILDLEAK", "CHILDOUT", "WARNLEAK"):
        assert marker not in captured.err, captured.err
        assert marker not in captured.out, captured.out


def test_shutdown_leaves_no_process(tmp_path):
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        k = SandboxedKernel(sb)
        k.start()
        k.execute(
            "import subprocess\n"
            "kids = [subprocess.Popen(['sleep', '600'], start_new_session=True) for _ in range(5)]",
            timeout=20,
        )
        uid = sb.uid
        if uid is not None:
            mine = [p for p in _sandbox_processes() if Path(f"/proc/{p}").stat().st_uid == uid]
            assert len(mine) >= 6  # the kernel and its five children
        k.shutdown()
        assert not k.is_alive()
        if uid is not None:
            left = []
            for p in _sandbox_processes():
                try:
                    if Path(f"/proc/{p}").stat().st_uid == uid:
                        left.append(p)
                except OSError:
                    pass
            assert left == []
