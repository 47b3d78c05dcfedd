"""Warm kernels: forked from a zygote, yet each as confined and as fresh as a cold one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder import warm
from autograder.config import Limits
from autograder.kernel import SandboxedKernel
from autograder.sandbox import Sandbox, capabilities

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.skipif(
        not warm.available(), reason="warm kernels need bubblewrap, root and a cgroup"
    ),
]

LIMITS = Limits(memory_mib=512, max_processes=32, cpu_time_s=120)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def zygote():
    z = warm.Zygote(("numpy", "json"), [], warm.sandbox_env(Path("/tmp"), "/tmp"))
    yield z
    z.close()


def _run(zygote, code: str, timeout: float = 30):
    """Start a forked kernel, run code, return (outcome, sandbox facts), then clean up."""
    with Sandbox(zygote.new_scratch(), LIMITS, cgroup_parent=zygote.cgroup_name) as sb:
        k = SandboxedKernel(sb, zygote=zygote)
        try:
            k.start()
            out = k.execute(code, timeout=timeout)
            return out, {"uid": sb.uid, "memory": sb.memory_exceeded(), "kernel": k}
        finally:
            k.shutdown()
            assert not sb.cgroup_pids()  # nothing of the submission outlives it


def test_preloaded_modules_are_there_and_the_zygote_is_single_threaded(zygote):
    assert {"numpy", "json", "ipykernel.kernelapp"} <= set(zygote.imported)
    out, _ = _run(zygote, "import sys\nprint('numpy' in sys.modules)")
    assert (out.kind, out.stdout) == ("ok", "True\n")


def test_kernel_drops_to_its_uid_with_no_capabilities(zygote):
    code = (
        "import os\n"
        "st = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in l)\n"
        "print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), st['CapEff'].strip(),"
        " st['CapPrm'].strip(), st['NoNewPrivs'].strip())"
    )
    out, facts = _run(zygote, code)
    assert out.kind == "ok", out
    uid = facts["uid"]
    assert out.stdout.split() == [
        str(uid),
        str(uid),
        str(uid),
        "[]",
        "0000000000000000",
        "0000000000000000",
        "1",
    ]


def test_private_tmp_and_no_host_files_or_network(zygote):
    plant = (
        "open('/tmp/planted', 'w').write('x'); import os; print('planted' in os.listdir('/tmp'))"
    )
    out, _ = _run(zygote, plant)
    assert out.stdout == "True\n"
    code = (
        "import os, socket\n"
        f"print('planted' in os.listdir('/tmp'), os.path.exists({str(REPO / 'assignments')!r}),"
        f" os.path.exists({str(REPO / 'autograder')!r}))\n"
        "s = socket.socket(); s.settimeout(2)\n"
        "try:\n    s.connect(('1.1.1.1', 80)); print('NETWORK')\n"
        "except OSError as e:\n    print('no network')\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
        "c = socket.create_connection(srv.getsockname()); print('loopback ok')\n"
    )
    out, _ = _run(zygote, code)
    assert out.kind == "ok", out
    assert out.stdout.splitlines() == ["False False False", "no network", "loopback ok"]


def test_memory_cap_and_the_zygote_survives_its_children(zygote):
    out, facts = _run(zygote, "x = bytearray(900 << 20)\nx[::4096] = b'y' * len(x[::4096])")
    assert out.kind == "died" and facts["memory"]
    out, _ = _run(zygote, "import os\nos._exit(3)")
    assert out.kind == "died"
    assert zygote.alive()
    out, _ = _run(zygote, "print('still forking')")
    assert out.stdout == "still forking\n"


def test_restart_forks_a_fresh_kernel(zygote):
    with Sandbox(zygote.new_scratch(), LIMITS, cgroup_parent=zygote.cgroup_name) as sb:
        k = SandboxedKernel(sb, zygote=zygote)
        try:
            k.start()
            k.execute("state = 1", timeout=20)
            assert k.execute("while True:\n    pass", timeout=1).kind == "timeout"
            k.restart()
            out = k.execute("print(globals().get('state'))", timeout=20)
            assert (out.kind, out.stdout) == ("ok", "None\n")
        finally:
            k.shutdown()


def test_kernels_cannot_touch_the_zygote_or_each_other(zygote):
    code = (
        "import os, signal\n"
        "others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
        "denied = 0\n"
        "for p in others:\n"
        "    try:\n        os.kill(int(p), signal.SIGKILL)\n"
        "    except PermissionError:\n        denied += 1\n"
        "    except ProcessLookupError:\n        pass\n"
        "    try:\n        open(f'/proc/{p}/environ').read()\n"
        "    except (PermissionError, FileNotFoundError):\n        denied += 1\n"
        "print(len(others) > 0, denied >= len(others))\n"
        f"base = {str(zygote.base)!r}\n"
        "print(sorted(os.listdir(base)) if os.access(base, os.R_OK) else 'unlisted')\n"
    )
    out, _ = _run(zygote, code)
    assert out.kind == "ok", out
    assert out.stdout.splitlines() == ["True True", "unlisted"]
    assert zygote.alive()


def test_cold_when_disabled(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_WARM", "0")
    assert not warm.available()
    assert warm.zygote_for(("numpy",), [], LIMITS) is None
    monkeypatch.delenv("AUTOGRADER_WARM")
    assert warm.zygote_for((), [], LIMITS) is None  # nothing to preload: nothing to share
    assert capabilities().isolated


def test_a_broken_preload_is_reported_not_fatal():
    z = warm.Zygote(("no_such_module_xyz",), [], warm.sandbox_env(Path("/tmp"), "/tmp"))
    try:
        assert "no_such_module_xyz" in z.failed and z.alive()
        assert os.path.isdir(z.base)
    finally:
        z.close()
    assert not os.path.exists(z.base)


def test_folders_bound_under_tmp_stay_visible_in_a_fresh_tmp(tmp_path):
    """A virtualenv or data set under /tmp (a CI clone, say) survives the kernel's new /tmp."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("seen")
    assert Path("/tmp") in data.parents
    z = warm.Zygote(("json",), [data], warm.sandbox_env(Path("/tmp"), "/tmp"))
    try:
        code = (
            "import os\n"
            f"print(open({str(data / 'x.txt')!r}).read(), os.access({str(data)!r}, os.W_OK))\n"
            f"print(sorted(os.listdir({str(tmp_path)!r})))\n"
        )
        out, _ = _run(z, code)
        assert out.kind == "ok", out
        assert out.stdout.splitlines() == ["seen False", "['data']"]
    finally:
        z.close()


def test_a_failed_warm_start_falls_back_to_cold_for_good(zygote, monkeypatch, caplog):
    from autograder.exceptions import SandboxError
    from autograder.session import KernelSession

    def broken(*args, **kwargs):
        raise SandboxError("simulated fork failure")

    monkeypatch.setattr(warm, "_DISABLED", [])
    monkeypatch.setattr(zygote, "fork", broken)
    with Sandbox(zygote.new_scratch(), LIMITS, cgroup_parent=zygote.cgroup_name) as sb:
        session = KernelSession(sb, LIMITS, zygote=zygote)
        try:
            session.start()
            out = session.kernel.execute("print('cold')", timeout=20)
        finally:
            session.close()
    assert out.stdout == "cold\n"
    assert not warm.available()
    assert "starting kernels cold from now on" in caplog.text  # logged once, as a warning


def test_warm_dir_prefers_a_roomy_tmpfs(monkeypatch):
    """Call folders are many small files: in memory when there is room, else on disk."""
    monkeypatch.setenv("AUTOGRADER_WARM_DIR", "/srv/grading")
    assert warm.warm_dir() == Path("/srv/grading")
    monkeypatch.delenv("AUTOGRADER_WARM_DIR")
    monkeypatch.setattr(warm, "SHM_MIN_FREE", 1 << 62)  # more room than any /dev/shm has
    assert warm.warm_dir() == Path("/var/tmp")
    monkeypatch.setattr(warm, "SHM", Path("/var/tmp"))  # not a tmpfs mount point
    monkeypatch.setattr(warm, "SHM_MIN_FREE", 0)
    assert warm.warm_dir() == Path("/var/tmp")


@pytest.mark.skipif(warm.warm_dir() != warm.SHM, reason="/dev/shm is not a roomy tmpfs here")
def test_a_zygote_in_dev_shm_still_gives_each_kernel_a_private_dev_shm(monkeypatch):
    """The zygote's folder in /dev/shm stays bound in each kernel's fresh /dev/shm, and a
    kernel sees neither what an earlier one left there nor the zygote's other folders."""
    monkeypatch.delenv("AUTOGRADER_WARM_DIR", raising=False)
    z = warm.Zygote(("json",), [], warm.sandbox_env(Path("/tmp"), "/tmp"))
    try:
        assert warm.SHM in z.base.parents
        plant = (
            "import os\n"
            "open('/dev/shm/planted', 'w').write('x')\n"
            "open('mine.txt', 'w').write('kept')\n"  # the cwd: this kernel's scratch
            "print(sorted(os.listdir('/dev/shm')), open('mine.txt').read())\n"
        )
        out, _ = _run(z, plant)
        assert out.kind == "ok", out
        assert out.stdout.splitlines() == [f"['{z.base.name}', 'planted'] kept"]
        out, _ = _run(z, "import os\nprint(sorted(os.listdir('/dev/shm')))")
        assert out.stdout.splitlines() == [f"['{z.base.name}']"]
        assert not (warm.SHM / "planted").exists()
        # Files in a scratch folder in memory are charged to the kernel's cgroup.
        fill = "import os\nfor i in range(12):\n    open(f'f{i}', 'wb').write(os.urandom(64 << 20))"
        out, facts = _run(z, fill)
        assert out.kind == "died" and facts["memory"]
    finally:
        z.close()


def test_a_new_zygote_removes_what_a_killed_grader_left_in_its_folder(tmp_path, monkeypatch):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from autograder.safeio import _host_tag

    left = tmp_path / f"{warm.WARM_PREFIX}{dead.pid}-{_host_tag()}-x" / "sub-y"
    left.mkdir(parents=True)
    monkeypatch.setenv("AUTOGRADER_WARM_DIR", str(tmp_path))
    z = warm.Zygote(("json",), [], warm.sandbox_env(Path("/tmp"), "/tmp"))
    try:
        assert not left.parent.exists()
        assert z.base.name.startswith(f"{warm.WARM_PREFIX}{os.getpid()}-")
    finally:
        z.close()
