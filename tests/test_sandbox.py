"""The sandbox: its own uid, no network, no grader files, a private /tmp, no leftovers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from autograder import sandbox as sandbox_mod
from autograder.config import Limits
from autograder.sandbox import UID_BASE, UID_COUNT, Capabilities, Sandbox, capabilities
from tests.conftest import REPO

CAPS = capabilities()
_no_bwrap = pytest.mark.skipif(
    not CAPS.isolated,
    reason="bubblewrap is not usable here (install Debian's bubblewrap and run as root)",
)
_no_uid = pytest.mark.skipif(
    not (CAPS.root and CAPS.setpriv), reason="a separate uid needs root and setpriv"
)


def isolated(fn):
    """A test of what bubblewrap isolates."""
    return pytest.mark.sandbox(_no_bwrap(fn))


def needs_uid(fn):
    """A test of the sandbox's own uid (bubblewrap, root and setpriv)."""
    return isolated(_no_uid(fn))


LIMITS = Limits(memory_mib=512, max_processes=32, cpu_time_s=60, file_size_mib=16)


@pytest.fixture
def box(tmp_path):
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        yield sb


def _py(box: Sandbox, code: str, timeout: float = 30) -> subprocess.CompletedProcess:
    res = box.run([sys.executable, "-c", textwrap.dedent(code)], timeout=timeout)
    res.text = res.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    return res


def _uid_processes(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@needs_uid
def test_runs_as_its_own_unprivileged_uid(box):
    res = _py(
        box,
        """
        import os
        print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
        print(open('/proc/self/status').read())
    """,
    )
    assert res.returncode == 0, res.text
    first = res.text.splitlines()[0].split(" ", 3)
    uid = int(first[0])
    assert uid == box.uid and UID_BASE <= uid < UID_BASE + UID_COUNT
    assert first[1] == first[0] and first[2] == first[0] and first[3] == "[]"
    status = dict(line.split(":", 1) for line in res.text.splitlines()[1:] if ":" in line)
    assert int(status["CapEff"].strip(), 16) == 0 and int(status["CapBnd"].strip(), 16) == 0
    assert status["NoNewPrivs"].strip() == "1"


@isolated
def test_network_is_unreachable(box):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        res = _py(
            box,
            f"""
            import socket
            for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
                try:
                    socket.create_connection((host, port), timeout=2).close()
                    print("CONNECTED", host)
                except OSError as e:
                    print("blocked", host, e.errno)
            import os
        """,
        )
        assert res.returncode == 0, res.text
        assert "CONNECTED" not in res.text
        assert res.text.count("blocked") == 3
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


@isolated
def test_the_repo_and_grader_files_are_not_visible(box, toy_dir):
    secret = toy_dir / "checks" / "test_add.py"
    assert secret.is_file()
    res = _py(
        box,
        f"""
        import os
        for p in [{str(REPO / "tests")!r}, {str(REPO / "autograder")!r},
                  {str(REPO / "assignments")!r}, {str(secret)!r}, {str(toy_dir)!r},
                  '/root/.cache', '/work/shared', '/home']:
            print(p, os.path.exists(p))
        print('REPO', sorted(os.listdir({str(REPO)!r})))
        try:
            import autograder
            print('IMPORTED', autograder.__file__)
        except ImportError:
            print('no autograder')
    """,
    )
    assert res.returncode == 0, res.text
    for line in res.text.splitlines():
        if line.startswith("/"):
            assert line.endswith(" False"), line
    assert "IMPORTED" not in res.text
    listing = next(line for line in res.text.splitlines() if line.startswith("REPO "))
    assert eval(listing[5:]) in ([], [".venv"])  # only the virtualenv, read-only


@isolated
def test_python_and_venv_are_read_only(box):
    res = _py(
        box,
        f"""
        import os
        for p in [{sys.prefix!r}, '/usr', '/etc']:
            try:
                open(os.path.join(p, 'pwned'), 'w')
                print('WROTE', p)
            except OSError as e:
                print('refused', p)
    """,
    )
    assert "WROTE" not in res.text and res.text.count("refused") == 3


@isolated
def test_tmp_is_private(box):
    marker = f"/tmp/ag-host-{uuid.uuid4().hex}"
    Path(marker).write_text("host")
    inner = f"/tmp/ag-inner-{uuid.uuid4().hex}"
    try:
        res = _py(
            box,
            f"""
            import os
            print('SEES_HOST', os.path.exists({marker!r}))
            open({inner!r}, 'w').write('x')
            print('TMP', len(os.listdir('/tmp')))
        """,
        )
        assert res.returncode == 0, res.text
        assert "SEES_HOST False" in res.text
        assert not Path(inner).exists()
    finally:
        Path(marker).unlink()


@isolated
def test_scratch_is_writable_and_env_is_clean(box, monkeypatch):
    monkeypatch.setenv("AG_SECRET_TOKEN", "hunter2")
    res = _py(
        box,
        """
        import os
        open('out.txt', 'w').write('hello')
        print(os.getcwd())
        print(sorted(os.environ))
        print(os.environ['HOME'])
    """,
    )
    assert res.returncode == 0, res.text
    assert (box.scratch / "work" / "out.txt").read_text() == "hello"
    lines = res.text.splitlines()
    assert lines[0] == str(box.scratch / "work")
    assert "AG_SECRET_TOKEN" not in res.text and "hunter2" not in res.text
    assert lines[2] == str(box.scratch / "home")


@needs_uid
def test_the_scratch_folder_and_calls_stay_the_graders(box, tmp_path):
    """The uid owns home, tmp, work and run; it cannot plant a link where the grader will
    create a path by name under .calls, nor swap .calls or the scratch folder's entries."""
    uid = box.uid
    for sub in ("home", "tmp", "work", "run"):
        info = (box.scratch / sub).stat()
        assert (info.st_uid, info.st_mode & 0o777) == (uid, 0o700), sub
    for path in (box.scratch, box.calls_dir):
        info = path.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (os.getuid(), 0o711), path
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    res = _py(
        box,
        f"""
        import os
        calls, scratch = {str(box.calls_dir)!r}, {str(box.scratch)!r}
        attempts = {{
            "link in .calls": lambda: os.symlink({str(target)!r}, calls + "/7"),
            "dir in .calls": lambda: os.mkdir(calls + "/8"),
            "rename .calls": lambda: os.rename(calls, scratch + "/old"),
            "link in scratch": lambda: os.symlink({str(target)!r}, scratch + "/x"),
            "rename work": lambda: os.rename(scratch + "/work", scratch + "/w"),
            "list .calls": lambda: os.listdir(calls),
        }}
        for name, attempt in attempts.items():
            try:
                attempt()
                print("DONE", name)
            except OSError as exc:
                print("refused", name, exc.errno)
    """,
    )
    assert res.returncode == 0, res.text
    assert "DONE" not in res.text and res.text.count("refused") == 6, res.text
    assert (target.stat().st_mode & 0o777) == 0o700 and not list(target.iterdir())


def test_a_sandbox_without_student_code_may_write_at_its_top(tmp_path):
    with Sandbox(tmp_path / "train", LIMITS, writable_top=True) as sb:
        if sb.uid is not None:
            assert sb.scratch.stat().st_uid == sb.uid


@isolated
def test_run_times_out_and_kills(box):
    start = time.monotonic()
    res = box.run(["sh", "-c", "echo before; sleep 60"], timeout=1.5)
    assert res.returncode == -9
    assert b"before" in res.stdout
    assert time.monotonic() - start < 15


@isolated
def test_file_size_limit(box):
    res = _py(
        box,
        """
        try:
            with open('big.bin', 'wb') as fh:
                fh.write(b'x' * (32 << 20))
            print('WROTE')
        except OSError as e:
            print('limited', e.errno)
    """,
    )
    assert "WROTE" not in res.text
    assert (box.scratch / "work" / "big.bin").stat().st_size <= 16 << 20


@needs_uid
def test_kill_all_leaves_no_process(tmp_path):
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        uid = sb.uid
        script = "for i in 1 2 3 4; do setsid sleep 600 >/dev/null 2>&1 & done; exec sleep 600"
        proc = subprocess.Popen(
            sb.wrap(["sh", "-c", script]),
            env=sb.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 20
            while len(_uid_processes(uid)) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(_uid_processes(uid)) >= 5
            sb.kill_all()
            assert _uid_processes(uid) == []
            assert proc.wait(timeout=10) is not None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    assert _uid_processes(uid) == []


@needs_uid
def test_close_frees_the_uid_and_cgroup(tmp_path):
    sb = Sandbox(tmp_path / "a", LIMITS)
    uid = sb.uid
    cgroup_dirs = list(sb._cgroup.dirs) if sb._cgroup else []
    other = Sandbox(tmp_path / "b", LIMITS)
    try:
        assert other.uid != uid  # two live sandboxes never share a uid
    finally:
        other.close()
    sb.close()
    assert all(not d.exists() for d in cgroup_dirs)
    again = Sandbox(tmp_path / "c", LIMITS)
    try:
        assert again.uid is not None
    finally:
        again.close()
    assert (tmp_path / "a" / "work").stat().st_uid == uid  # the scratch belongs to the sandbox


def test_capabilities_without_bwrap(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_NO_BWRAP", "1")
    caps = capabilities.__wrapped__()
    assert caps.bwrap is None and not caps.isolated
    assert "NO bubblewrap" in caps.describe()
    fake = Capabilities(bwrap=None, setpriv=None, prlimit="/usr/bin/prlimit", cgroup="", root=False)
    monkeypatch.setattr(sandbox_mod, "capabilities", lambda: fake)
    with pytest.warns(UserWarning, match="NOT isolated"):
        msg = sandbox_mod.warn_if_not_isolated()
    assert "bubblewrap" in msg and "separate uid" not in msg
    real = Capabilities(bwrap="/usr/bin/bwrap", setpriv=None, prlimit=None, cgroup="v2", root=True)
    monkeypatch.setattr(sandbox_mod, "capabilities", lambda: real)
    assert sandbox_mod.warn_if_not_isolated() is None


def test_wrap_without_bwrap_still_applies_rlimits(tmp_path):
    caps = Capabilities(bwrap=None, setpriv=None, prlimit=CAPS.prlimit, cgroup="", root=False)
    with Sandbox(tmp_path / "s", LIMITS, caps=caps) as sb:
        argv = sb.wrap(["true"])
        assert "bwrap" not in " ".join(argv) and argv[-1] == "true"
        if CAPS.prlimit:
            assert f"--cpu={LIMITS.cpu_time_s}" in argv
        env = sb.env()
        assert env["TMPDIR"] == str(sb.scratch / "tmp") and env["HOME"] == str(sb.scratch / "home")


@needs_uid
def test_a_quick_exact_look_tells_an_idle_sandbox_from_a_busy_one(tmp_path):
    """busy_fraction sees 10 ms of work (the session's first look for spinning threads),
    including a loop of short-lived children, whose CPU the exact clock alone misses."""
    code = """
        import os, sys, time
        if sys.argv[1] == "busy":
            while True: pass
        while sys.argv[1] == "forks":
            if os.fork() == 0:
                t = time.monotonic()
                while time.monotonic() - t < 0.004: pass
                os._exit(0)
            os.wait()
        time.sleep(600)
    """
    with Sandbox(tmp_path / "scratch", LIMITS) as sb:
        for mode in ("idle", "busy", "forks"):
            proc = subprocess.Popen(
                sb.wrap([sys.executable, "-c", textwrap.dedent(code), mode]),
                env=sb.env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                time.sleep(0.5)  # started and settled
                fractions = [sb.busy_fraction(0.01) for _ in range(5)]
                assert None not in fractions, mode
                if mode == "idle":
                    assert max(fractions) < 0.1, fractions
                else:
                    assert sorted(fractions)[2] > 0.6, (mode, fractions)  # the median look
                if mode != "forks":  # a spinning thread is runnable whenever looked at
                    runnable = [sb.runnable_threads() for _ in range(5)]
                    assert (min(runnable) >= 1) if mode == "busy" else (max(runnable) == 0)
            finally:
                sb.kill_all()
                proc.wait(timeout=10)
