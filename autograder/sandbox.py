"""Isolation for untrusted student code: bubblewrap, a throwaway uid, cgroups and rlimits.

Layers, outermost first (each used when this machine allows it):
1. a cgroup (v1 `memory` + `pids`, or v2) capping the whole process tree's memory
   and process count, and giving us every process to kill at the end;
2. `prlimit`: CPU seconds, address space, file size, open files, no core dumps;
3. `bwrap`: new pid, net (loopback only), ipc and uts namespaces; a root
   filesystem holding only the OS, Python and the virtualenv read-only, plus
   the submission's scratch folder read-write; the assignment, its checks,
   `solutions/`, other students and the grader's output are simply not there;
4. `setpriv`: a uid of its own (61000+) with no capabilities and no_new_privs,
   so RLIMIT_NPROC counts only this submission's processes and it cannot signal
   the grader.
Without bubblewrap we still apply 1, 2 and 4 and say loudly that the
filesystem and network are NOT isolated.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from autograder.config import Limits
from autograder.exceptions import SandboxError

UID_BASE = 61000
UID_COUNT = 1000
LOCK_DIR = Path("/tmp/autograder-uids")
CGROUP_ROOTS = {
    "memory": Path("/sys/fs/cgroup/memory"),
    "pids": Path("/sys/fs/cgroup/pids"),
}
CGROUP_V2 = Path("/sys/fs/cgroup")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Capabilities:
    bwrap: str | None
    setpriv: str | None
    prlimit: str | None
    cgroup: str  # "v1", "v2" or ""
    root: bool

    @property
    def isolated(self) -> bool:
        return bool(self.bwrap)

    def describe(self) -> str:
        parts = []
        parts.append(
            "bubblewrap (no network, private filesystem)" if self.bwrap else "NO bubblewrap"
        )
        parts.append(f"cgroup {self.cgroup}" if self.cgroup else "no cgroup")
        parts.append("own uid" if self.setpriv and self.root else "same uid as the grader")
        parts.append("rlimits" if self.prlimit else "no rlimits")
        return ", ".join(parts)


def _bwrap_works(path: str) -> bool:
    try:
        res = subprocess.run(
            [
                path,
                "--ro-bind",
                "/",
                "/",
                "--unshare-net",
                "--unshare-pid",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "true",
            ],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def _cgroup_kind() -> str:
    if os.geteuid() != 0:
        return ""
    if all(root.is_dir() and os.access(root, os.W_OK) for root in CGROUP_ROOTS.values()):
        return "v1"
    controllers = CGROUP_V2 / "cgroup.controllers"
    if controllers.is_file() and os.access(CGROUP_V2, os.W_OK):
        text = controllers.read_text()
        if "memory" in text and "pids" in text:
            return "v2"
    return ""


@functools.cache
def capabilities() -> Capabilities:
    """What isolation this machine offers (probed once per process)."""
    if os.environ.get("AUTOGRADER_NO_BWRAP") == "1":
        bwrap = None
    else:
        bwrap = shutil.which("bwrap")
        if bwrap and not _bwrap_works(bwrap):
            bwrap = None
    return Capabilities(
        bwrap=bwrap,
        setpriv=shutil.which("setpriv"),
        prlimit=shutil.which("prlimit"),
        cgroup=_cgroup_kind(),
        root=os.geteuid() == 0,
    )


def warn_if_not_isolated() -> str | None:
    caps = capabilities()
    if caps.isolated:
        return None
    msg = (
        "WARNING: bubblewrap is not available, so submissions are NOT isolated: student code "
        "can read files the grader can read and open network connections. Only rlimits"
        + (", a cgroup" if caps.cgroup else "")
        + (" and a separate uid" if caps.setpriv and caps.root else "")
        + " apply. Install Debian's `bubblewrap` package and run as root to isolate them."
    )
    warnings.warn(msg, stacklevel=2)
    return msg


class _UidLease:
    """A uid no other live sandbox on this machine is using (flock-ed lock file)."""

    def __init__(self) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        start = (os.getpid() * 7) % UID_COUNT
        for i in range(UID_COUNT):
            n = (start + i) % UID_COUNT
            fh = open(LOCK_DIR / f"{n}.lock", "w")  # noqa: SIM115 - held for the lease
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            self.uid, self._fh = UID_BASE + n, fh
            return
        raise SandboxError(f"all {UID_COUNT} sandbox uids are in use; lower -j")

    def release(self) -> None:
        self._fh.close()


def cgroup_dirs(kind: str, name: str) -> list[Path]:
    """The folders of cgroup `name`: v1, one per controller (memory, pids); v2, one."""
    if kind == "v1":
        return [root / name for root in CGROUP_ROOTS.values()]
    return [CGROUP_V2 / name]


def create_cgroup(kind: str, name: str, *, delegate: bool = False) -> list[Path]:
    """Make cgroup `name`; `delegate` lets it hold child cgroups with their own caps (v2).

    The one place cgroups are created: each sandbox's, and a warm zygote's parent
    cgroup (autograder.warm) whose children are the sandboxes of its kernels.
    """
    dirs = cgroup_dirs(kind, name)
    for d in dirs:
        d.mkdir()
    if kind == "v2" and delegate:
        (dirs[0] / "cgroup.subtree_control").write_text("+memory +pids")
    return dirs


class _Cgroup:
    """A cgroup (v1 memory+pids, or v2) for one sandbox; killed and removed on release."""

    def __init__(self, kind: str, limits: Limits, parent: str = "") -> None:
        self.kind = kind
        name = f"{parent}/" * bool(parent) + f"autograder-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dirs = create_cgroup(kind, name)
        memory = limits.memory_mib << 20
        if kind == "v1":
            (self.dirs[0] / "memory.limit_in_bytes").write_text(str(memory))
            (self.dirs[1] / "pids.max").write_text(str(limits.max_processes))
        else:
            (self.dirs[0] / "memory.max").write_text(str(memory))
            (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "pids.max").write_text(str(limits.max_processes))

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def memory_exceeded(self) -> bool:
        try:
            if self.kind == "v1":
                return int((self.dirs[0] / "memory.failcnt").read_text()) > 0
            events = (self.dirs[0] / "memory.events").read_text()
            return any(
                line.split()[0] in ("oom", "oom_kill") and int(line.split()[1]) > 0
                for line in events.splitlines()
            )
        except (OSError, ValueError, IndexError):
            return False

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files:
            try:
                found |= {int(p) for p in f.read_text().split()}
            except OSError:
                pass
        return found

    def kill_all(self) -> None:
        pause = 0.002  # a killed kernel is usually gone within a few ms: look again soon
        for _ in range(60):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(pause)
            pause = min(2 * pause, 0.02)

    def release(self) -> None:
        self.kill_all()
        for d in self.dirs:
            remove_cgroup_dir(d)


def remove_cgroup_dir(d: Path) -> None:
    """rmdir a cgroup, retrying while the kernel finishes reaping its last processes."""
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if str(p) != "/"]


def python_paths() -> list[Path]:
    """Folders the sandboxed Python needs: the virtualenv and the base installation."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    return sorted(p for p in paths if not str(p).startswith("/usr"))


MAX_TASKS_LOOKED_AT = 4096  # threads per process read by runnable_threads
STUDENT_DIRS = ("home", "tmp", "work", "run")  # the sandbox's uid owns these
CALLS_DIR = ".calls"  # the grader's: what it hands the kernel (see Sandbox._hand_over)


def _stat_fields(path: Path) -> list[str]:
    """The fields of a /proc stat file after the command, whose name may hold ") ".

    The state is [0]; utime, stime, cutime, cstime [11:15]; num_threads [17] (man 5 proc).
    """
    return path.read_text().rsplit(")", 1)[1].split()


@dataclass
class Sandbox:
    """One submission's sandbox: a scratch folder, a uid, a cgroup, and a command wrapper.

    `wrap(argv)` returns the command that runs argv inside it; `close()` kills
    every process the submission left and frees the uid and cgroup.
    """

    scratch: Path
    limits: Limits
    readonly: list[Path] = field(default_factory=list)
    caps: Capabilities = field(default_factory=capabilities)
    gpu: bool = False  # pass NVIDIA device nodes through (training workers only)
    cgroup_parent: str = ""  # a warm zygote's cgroup (autograder.warm), else top level
    # The sandbox's processes may write in the scratch folder itself: only for one that
    # runs no student code (a training worker writes its report there).
    writable_top: bool = False

    def __post_init__(self) -> None:
        self.scratch = Path(self.scratch).resolve()
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._uid: _UidLease | None = None
        self._cgroup: _Cgroup | None = None
        if self.caps.root and self.caps.setpriv:
            self._uid = _UidLease()
        if self.caps.cgroup:
            try:
                self._cgroup = _Cgroup(self.caps.cgroup, self.limits, self.cgroup_parent)
            except OSError:
                self._cgroup = None
        for sub in (*STUDENT_DIRS, CALLS_DIR):
            (self.scratch / sub).mkdir(exist_ok=True)
        if self.uid is not None:
            self._hand_over()

    def _hand_over(self) -> None:
        """Give the sandbox's uid its folders; keep the scratch folder and `.calls` the grader's.

        The grader creates paths under `.calls` (each call's folder, `scratch_path`'s
        folders, the call loop's socket, the kernel's connection file) and then writes
        and chmods them by path as root. Were the sandbox's uid the owner of the scratch
        folder or of `.calls`, a student's process could put a link where the next path
        will be (`.calls/7 -> /etc`), and the grader's chmod would follow it. So the uid
        gets only home, tmp, work and run (0700); the scratch folder and `.calls` are the
        grader's, 0711: the uid can reach what it is handed, and can neither list, add,
        rename nor remove.
        """
        assert self.uid is not None
        tops = [self.scratch] if self.writable_top else [self.scratch / s for s in STUDENT_DIRS]
        for top in tops:
            for path in [top, *top.rglob("*")]:
                if not path.is_symlink():
                    os.chown(path, self.uid, self.uid)
        if not self.writable_top:
            for sub in STUDENT_DIRS:
                (self.scratch / sub).chmod(0o700)
            for path in (self.scratch, self.calls_dir):
                path.chmod(0o711)

    @property
    def uid(self) -> int | None:
        return self._uid.uid if self._uid else None

    @property
    def run_dir(self) -> Path:
        """Where the kernel's IPC sockets live (inside the scratch)."""
        return self.scratch / "run"

    @property
    def calls_dir(self) -> Path:
        """The grader's folder in the scratch: call folders, the call loop's socket, the
        kernel's connection file. The sandbox's uid cannot add, rename or remove in it."""
        return self.scratch / CALLS_DIR

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment: nothing of the grader's (tokens, proxies) leaks in."""
        tmpdir = "/tmp" if self.caps.isolated else str(self.scratch / "tmp")
        env = sandbox_env(self.scratch / "home", tmpdir)
        env["JUPYTER_RUNTIME_DIR"] = str(self.run_dir)
        env.update(extra or {})
        return env

    def rlimits(self) -> dict[str, int]:
        """The submission's rlimits (names as prlimit's options, without RLIMIT_).

        NPROC counts per uid, so it is only set when the sandbox has a uid of its own.
        """
        lim = self.limits
        limits = {
            "CPU": lim.cpu_time_s,
            "AS": max(lim.memory_mib * 2, 6144) << 20,
            "FSIZE": lim.file_size_mib << 20,
            "NOFILE": 1024,
            "CORE": 0,
        }
        if self.uid is not None:
            limits["NPROC"] = lim.max_processes
        return limits

    @property
    def cgroup_procs(self) -> list[Path]:
        """The cgroup.procs files a process writes its pid to, to join this sandbox."""
        return self._cgroup.procs_files if self._cgroup else []

    def cgroup_pids(self) -> set[int]:
        return self._cgroup.pids() if self._cgroup else set()

    def wrap(self, argv: list[str], cwd: Path | None = None) -> list[str]:
        cwd = Path(cwd or self.scratch / "work")
        cmd: list[str] = []
        if self._cgroup:
            joins = " && ".join(f'echo $$ > "{f}"' for f in self._cgroup.procs_files)
            cmd += ["/bin/sh", "-c", f'{joins} && exec "$@"', "sandbox"]
        if self.caps.prlimit:
            cmd.append(self.caps.prlimit)
            cmd += [f"--{name.lower()}={value}" for name, value in self.rlimits().items()]
            cmd.append("--")
        if self.caps.bwrap:
            cmd += self._bwrap_args(cwd)
        if self.uid is not None:
            cmd += [
                self.caps.setpriv or "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        return cmd + list(argv)

    def _bwrap_args(self, cwd: Path) -> list[str]:
        return bwrap_args(
            self.caps.bwrap or "bwrap",
            readonly=self.readonly,
            writable=[self.scratch],
            cwd=cwd,
            gpu=self.gpu,
        )

    def kill_all(self) -> None:
        """Kill every process of this submission (cgroup first, then by uid)."""
        if self._cgroup:
            self._cgroup.kill_all()
        if self.uid is not None:
            kill_uid(self.uid)

    def memory_exceeded(self) -> bool:
        return bool(self._cgroup and self._cgroup.memory_exceeded())

    def busy_fraction(self, seconds: float) -> float | None:
        """The share of one core the sandbox's processes use over the next `seconds`.

        `usage()` counts in clock ticks (10 ms): too coarse for a 10 ms look. Linux's
        per-process CPU clock (`clock_getcpuclockid`, here as the clock id it computes:
        `(~pid << 3) | CPUCLOCK_SCHED`) is exact, but does not count children already
        reaped: so a process that started or ended meanwhile, or children time reaped
        meanwhile, counts as a busy core (1.0). None where the kernel refuses the clock.
        """
        before = self._exact_cpu()
        time.sleep(seconds)
        after = self._exact_cpu()
        if before is None or after is None:
            return None
        if before[1:] != after[1:]:
            return 1.0
        return (after[0] - before[0]) / 1e9 / seconds

    def runnable_threads(self) -> int:
        """Threads of the sandbox's processes that are running or waiting for a core (R).

        A thread left spinning is always runnable, however little CPU a loaded machine
        gives it; a kernel at rest sleeps (S).
        """
        count = 0
        for pid in self.cgroup_pids():
            try:
                tasks = list(Path(f"/proc/{pid}/task").iterdir())
            except OSError:
                continue
            for task in tasks[:MAX_TASKS_LOOKED_AT]:
                try:
                    state = _stat_fields(task / "stat")[0]
                except (OSError, IndexError):
                    continue
                count += state == "R"
        return count

    def _exact_cpu(self) -> tuple[int, frozenset[int], int] | None:
        """(CPU ns of the live processes, their pids, their reaped children's ticks)."""
        total, pids, reaped = 0, set(), 0
        for pid in self.cgroup_pids():
            try:
                total += time.clock_gettime_ns(((~pid) << 3) | 2)
                fields = _stat_fields(Path(f"/proc/{pid}/stat"))
            except OSError as exc:
                if (
                    exc.errno in (errno.ESRCH, errno.EINVAL, errno.ENOENT)
                    and not Path(f"/proc/{pid}").exists()
                ):
                    continue  # gone since the listing (6.x kernels say EINVAL)
                return None  # the clock is refused: say so, never "idle"
            pids.add(pid)
            reaped += int(fields[13]) + int(fields[14])  # cutime, cstime (man 5 proc)
        return total, frozenset(pids), reaped

    def usage(self) -> tuple[float, int]:
        """(CPU seconds, threads) of the sandbox's live processes, from /proc.

        CPU counts every thread and the children each process has reaped; a process
        that was killed takes its time with it (autograder.session keeps a total).
        """
        ticks, threads = 0, 0
        for pid in self.cgroup_pids():
            try:
                fields = _stat_fields(Path(f"/proc/{pid}/stat"))
            except (OSError, IndexError):
                continue
            ticks += sum(int(v) for v in fields[11:15])
            threads += int(fields[17])
        return ticks / CLOCK_TICKS, threads

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a command to completion inside the sandbox (used for training workers)."""
        proc = subprocess.Popen(
            self.wrap(argv, cwd),
            env=self.env(env),
            cwd=cwd or self.scratch / "work",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            self.kill_all()
            out, _ = proc.communicate()
            return subprocess.CompletedProcess(proc.args, -9, out[-20000:] if out else b"")
        finally:
            self.kill_all()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out[-20000:])

    def close(self) -> None:
        self.kill_all()
        if self._cgroup:
            self._cgroup.release()
            self._cgroup = None
        if self._uid:
            self._uid.release()
            self._uid = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sandbox_env(home: Path, tmpdir: str) -> dict[str, str]:
    """The whole environment of sandboxed Python: single-threaded numerics, no GPU, no config.

    Generic on purpose: what one library or assignment needs (TensorFlow's threads and
    log level, a Keras backend) is declared by the assignment (assignment.toml `env`).
    """
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": tmpdir,
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{home}/.mpl",
        "IPYTHONDIR": f"{home}/.ipython",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }


def bwrap_args(
    bwrap: str,
    *,
    readonly: list[Path],
    writable: list[Path],
    cwd: Path,
    gpu: bool = False,
    keep_caps: tuple[str, ...] = (),
) -> list[str]:
    """bubblewrap's arguments for the filesystem, namespaces and session of a sandbox.

    Only the OS, Python and the virtualenv (read-only), `readonly` and `writable`
    are visible; the rest of the host (the assignment, its checks, other
    students, the grader's output) is not there at all.
    """
    args = [bwrap]
    for name in ("usr", "etc"):
        args += ["--ro-bind", f"/{name}", f"/{name}"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        target = Path("/") / name
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), f"/{name}"]
        elif target.is_dir():
            args += ["--ro-bind", f"/{name}", f"/{name}"]
    # /dev and /tmp first: /tmp a private tmpfs (charged to the cgroup's memory), /dev a
    # minimal one with its own /dev/shm, so that a scratch folder can itself live under the
    # host's /tmp or /dev/shm (a tmpfs: see warm.warm_dir) and be bound on top of them.
    args += ["--dev", "/dev"]
    if gpu:
        for node in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(node), str(node)]
    args += ["--perms", "1777", "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/usr"), Path("/etc"), Path("/tmp"), Path("/dev"), Path("/dev/shm")}
    binds = [(p, "--ro-bind") for p in [*python_paths(), *readonly]]
    binds += [(p, "--bind") for p in writable]
    for path, how in binds:
        for anc in _ancestors(path):
            if anc not in made and not any(str(anc).startswith(f"/{n}/") for n in ("usr", "etc")):
                args += ["--perms", "0755", "--dir", str(anc)]
                made.add(anc)
        args += [how, str(path), str(path)]
        made.add(path)
    for cap in keep_caps:
        args += ["--cap-add", cap]
    args += [
        "--proc",
        "/proc",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--chdir",
        str(cwd),
    ]
    return args + ["--"]


def kill_uid(uid: int) -> None:
    """SIGKILL every process owned by `uid` (they can only be the sandbox's)."""
    for _ in range(20):
        found = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid != uid:
                    continue
                os.kill(int(entry.name), signal.SIGKILL)
                found = True
            except (OSError, ProcessLookupError):
                continue
        if not found:
            return
        time.sleep(0.02)
