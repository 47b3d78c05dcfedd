"""Warm kernels: import TensorFlow once per grading worker, not once per submission.

`import tensorflow` costs about as much as the rest of a Lab 4 notebook. A
grading worker therefore keeps one *zygote*: a long-lived Python process, in a
bubblewrap sandbox of its own, that has imported the assignment's `preload`
modules (assignment.toml) and forks a fresh kernel for each submission
(autograder.zygote_side confines the child: its own cgroup, mount, network and
IPC namespaces, /tmp, uid and rlimits, before any student code runs). A fork
shares the imported modules copy-on-write, so every kernel starts from the
same clean state, minus the import time.

jupyter_client launches kernels through provisioners; `ForkedProvisioner` is
one whose launch asks the zygote instead of spawning a process, so the rest of
the kernel machinery (connection files, restarts, shutdown) is unchanged.

Warm kernels need what the zygote needs: bubblewrap, root and a cgroup. Without
them, or with AUTOGRADER_WARM=0, kernels start cold, each in its own sandbox.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from autograder import logs, zygote_side
from autograder.config import Limits
from autograder.exceptions import SandboxError
from autograder.safeio import owned_prefix, sweep_stale_dirs
from autograder.sandbox import (
    Sandbox,
    bwrap_args,
    capabilities,
    create_cgroup,
    python_paths,
    remove_cgroup_dir,
    sandbox_env,
)

log = logs.get(__name__)

READY_TIMEOUT_S = 180.0
FORK_TIMEOUT_S = 30.0
WARM_PREFIX = "autograder-warm-"  # then the grader's pid: see safeio.sweep_stale_dirs
SHM = Path("/dev/shm")
SHM_MIN_FREE = 2 << 30  # bytes: below this (Docker's default is 64 MiB), /var/tmp instead
ZYGOTE_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN")


_DISABLED: list[str] = []


def warm_dir() -> Path:
    """Where zygotes keep their folders: every submission's scratch, and the bridge's calls.

    AUTOGRADER_WARM_DIR if set; else /dev/shm when it is a tmpfs with room; else /var/tmp.
    Why memory: each check call makes a folder and a few small files, and on a VM's ext4 a
    mkdir alone took 0.5 ms: in memory the grader spends half the CPU per Lab 4 submission.
    What a kernel writes there is charged to its cgroup, so `memory_mib` caps it too.
    """
    if chosen := os.environ.get("AUTOGRADER_WARM_DIR"):
        return Path(chosen)
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        tmpfs = any(line.split()[1:3] == [str(SHM), "tmpfs"] for line in mounts)
        st = os.statvfs(SHM)
        if tmpfs and st.f_bavail * st.f_frsize >= SHM_MIN_FREE and os.access(SHM, os.W_OK):
            return SHM
    except (OSError, IndexError):
        pass
    return Path("/var/tmp")


def available() -> bool:
    caps = capabilities()
    return bool(
        caps.isolated
        and caps.root
        and caps.cgroup
        and os.environ.get("AUTOGRADER_WARM") != "0"
        and not _DISABLED
    )


def disable_warm(reason: str) -> None:
    """Start every later kernel of this process cold, and say why once."""
    if not _DISABLED:
        log.warning("%s; starting kernels cold from now on", reason)
    _DISABLED.append(reason)


class Zygote:
    """One warm process in its own sandbox; `fork(...)` makes a kernel for one submission."""

    def __init__(self, preload: tuple[str, ...], readonly: list[Path], env: dict[str, str]):
        caps = capabilities()
        self.preload, self.readonly = preload, list(readonly)
        root = warm_dir()
        sweep_stale_dirs(root, WARM_PREFIX)  # what zygotes of killed graders left there
        prefix = owned_prefix(WARM_PREFIX)
        self.base = Path(tempfile.mkdtemp(prefix=prefix, dir=root)).resolve()
        os.chmod(self.base, 0o711)  # each submission's folder inside is its own uid's, 0700
        self.cgroup_name = f"{WARM_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.cgroup_dirs = create_cgroup(caps.cgroup, self.cgroup_name, delegate=True)
        argv = bwrap_args(
            caps.bwrap or "bwrap",
            readonly=self.readonly,
            writable=[self.base, *self.cgroup_dirs],
            cwd=self.base,
            keep_caps=ZYGOTE_CAPS,
        )
        # Kernels get a fresh /tmp and /dev/shm; what the sandbox binds under them (a
        # virtualenv in a clone under /tmp, this zygote's folder in /dev/shm) is bound again.
        keep = [
            str(p)
            for p in dict.fromkeys([*python_paths(), *self.readonly, self.base])
            if {Path("/tmp"), Path("/dev/shm")} & set(Path(p).parents)
        ]
        argv += [
            sys.executable,
            "-c",
            Path(zygote_side.__file__).read_text(),
            json.dumps(preload),
            json.dumps(keep),
        ]
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=self.base,
        )
        ready = self._read(READY_TIMEOUT_S)
        if not ready.get("ready"):
            self.close()
            raise SandboxError(f"the warm zygote did not start: {ready}")
        self.imported: list[str] = ready["imported"]
        self.failed: dict[str, str] = ready["failed"]
        if self.failed:
            log.warning(
                "preload modules failed to import in the sandbox (kernels import them "
                "themselves): %s",
                self.failed,
            )

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            code = self.proc.poll()
            raise SandboxError(
                "the warm zygote "
                + (
                    f"exited with code {code}"
                    if code is not None
                    else f"gave no answer in {timeout:g} s"
                )
                + ". Set AUTOGRADER_WARM=0 to start each kernel cold, and report this"
            )
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def new_scratch(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="sub-", dir=self.base))

    def fork(self, sandbox: Sandbox, argv: list[str], env: dict[str, str], cwd: str) -> int:
        """Ask for a kernel; returns its host pid once it sits in the submission's cgroup."""
        if sandbox.uid is None or not sandbox.cgroup_procs:
            raise SandboxError("a warm kernel needs the sandbox's own uid and cgroup")
        error_file = self.base / f"{sandbox.scratch.name}.err"
        req = {
            "op": "fork",
            "uid": sandbox.uid,
            "cgroup_procs": [str(p) for p in sandbox.cgroup_procs],
            "rlimits": {f"RLIMIT_{name}": value for name, value in sandbox.rlimits().items()},
            "env": env,
            "cwd": cwd,
            "argv": argv,
            "error_file": str(error_file),
        }
        with self.lock:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write((json.dumps(req) + "\n").encode())
                self.proc.stdin.flush()
            except OSError as exc:
                raise SandboxError(f"the warm zygote is gone ({exc})") from exc
            reply = self._read(FORK_TIMEOUT_S)
        if "pid" not in reply:
            raise SandboxError(f"the warm zygote could not fork: {reply.get('error', reply)}")
        deadline = time.monotonic() + FORK_TIMEOUT_S
        while time.monotonic() < deadline:
            pids = sandbox.cgroup_pids()
            if pids:
                error_file.unlink(missing_ok=True)
                return min(pids)
            if error_file.exists() and error_file.stat().st_size:
                break
            time.sleep(0.005)
        detail = error_file.read_text()[-1500:] if error_file.exists() else "no detail"
        raise SandboxError(f"the forked kernel did not confine itself: {detail}")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for d in self.cgroup_dirs:
            for child in d.iterdir() if d.is_dir() else []:
                if child.is_dir():
                    remove_cgroup_dir(child)
            remove_cgroup_dir(d)
        shutil.rmtree(self.base, ignore_errors=True)


_ZYGOTES: dict[tuple, Zygote] = {}
_ZLOCK = threading.Lock()


def zygote_for(
    preload: tuple[str, ...],
    readonly: list[Path],
    limits: Limits,
    env: dict[str, str] | None = None,
) -> Zygote | None:
    """This process's zygote for these modules and read-only folders, started on first use.

    `env` is the assignment's kernel environment: the preloaded modules read some of it
    once, at import (TensorFlow's log level and thread pools), so the zygote imports them
    under it.
    """
    if not preload or not available():
        return None
    env = dict(env or {})
    key = (tuple(preload), tuple(str(p) for p in readonly), tuple(sorted(env.items())))
    with _ZLOCK:
        zygote = _ZYGOTES.get(key)
        if zygote is not None and zygote.alive():
            return zygote
        if zygote is not None:
            zygote.close()
        zygote = Zygote(tuple(preload), readonly, {**sandbox_env(Path("/tmp"), "/tmp"), **env})
        _ZYGOTES[key] = zygote
        return zygote


@atexit.register
def close_all() -> None:
    with _ZLOCK:
        for zygote in _ZYGOTES.values():
            zygote.close()
        _ZYGOTES.clear()


class _ForkedProcess:
    """What LocalProvisioner expects of a Popen, for a kernel the zygote forked."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, sandbox: Sandbox):
        self.pid, self.sandbox = pid, sandbox
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self.pid not in self.sandbox.cgroup_pids():
            self.returncode = -9  # the zygote reaps it; its real status is not ours to see
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("kernel", timeout or 0)
            time.sleep(0.02)
        return self.returncode or 0

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(9)

    def terminate(self) -> None:
        self.send_signal(15)


class ForkedProvisioner(LocalProvisioner):
    """Launches the kernel by asking the zygote to fork (see the module docstring)."""

    zygote: Zygote | None = None
    sandbox: Sandbox | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        assert self.zygote is not None and self.sandbox is not None
        # cmd is `python -m ipykernel_launcher ARGS`; the forked child runs the app with ARGS.
        args = cmd[cmd.index("ipykernel_launcher") + 1 :]
        pid = self.zygote.fork(self.sandbox, args, dict(kwargs["env"]), str(kwargs["cwd"]))
        self.process = _ForkedProcess(pid, self.sandbox)  # type: ignore[assignment]
        self.pid, self.pgid = pid, None
        self.cwd = kwargs.get("cwd")
        return self.connection_info
