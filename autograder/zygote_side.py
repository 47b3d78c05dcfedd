"""The warm zygote: runs inside a bubblewrap sandbox, forks one kernel per submission.

Sent to `python -c` as text (the grader's package is not visible in the sandbox),
so it uses the standard library and the modules it preloads only. It starts as
root inside the sandbox with CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN, imports
the assignment's heavy modules once, then serves JSON lines on stdin/stdout
(autograder.warm is the other end). Each forked child confines itself before
any student code runs, in this order:

1. joins the submission's cgroup (memory and process caps, and how the grader
   finds and kills it);
2. unshares its mount, network and IPC namespaces, with a fresh /tmp and
   /dev/shm (the folders the sandbox binds under them bound again), so nothing
   is shared with the submissions before or after it;
3. lowers its rlimits, drops to the submission's uid (which clears every
   capability) and sets no_new_privs;
4. closes every inherited file (the control pipe included) and becomes an
   ipykernel on the connection file the grader wrote.

Forking is only safe while this process has one thread; it checks before
every fork and refuses otherwise (the grader then starts kernels cold).
"""

import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys
import traceback

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1

libc = ctypes.CDLL(None, use_errno=True)


def _ok(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _threads():
    return len(os.listdir("/proc/self/task"))


def _loopback_up():
    """A new network namespace has only `lo`, and it is down: bring it up, as bwrap does."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def _tmpfs(target):
    _ok(
        libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777"),
        f"tmpfs on {target}",
    )


def _fresh_tmpfs(target, keep):
    """A new, empty tmpfs on `target` (/tmp, /dev/shm), except for the folders of `keep`
    under it that the sandbox binds (a virtualenv, data sets, the zygote's own folder):
    held open by O_PATH before the new mount hides them, then bound again from the fd."""
    under = [p for p in keep if os.path.commonpath([p, target]) == target and p != target]
    held = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in under]
    _tmpfs(target)
    for path, fd in held:
        os.makedirs(path, 0o755, exist_ok=True)
        source = f"/proc/self/fd/{fd}".encode()
        _ok(libc.mount(source, path.encode(), None, MS_BIND | MS_REC, None), f"keep {path}")
        os.close(fd)


def _private_namespaces(keep):
    _ok(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
    _ok(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    _fresh_tmpfs("/tmp", keep)
    if os.path.isdir("/dev/shm"):
        _fresh_tmpfs("/dev/shm", keep)
    _loopback_up()


def _become_kernel(req):
    """In the forked child: confine, then run the kernel. Never returns."""
    code = 0
    # Opened now, as root: the zygote's folder, unlike the submission's, is root's.
    err = open(req["error_file"], "w")  # noqa: SIM115
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        for procs in req["cgroup_procs"]:
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
        _ok(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
        _private_namespaces(KEEP)
        for name, value in req["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        uid = req["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to a plain uid: every capability is cleared
        _ok(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if os.getuid() == 0 or os.geteuid() == 0:
            raise RuntimeError("still root after setresuid")
        os.umask(0o022)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        err.close()
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        sys.argv = ["ipykernel_launcher", *req["argv"]]
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(req["argv"])
        app.start()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return
        try:
            err.write(traceback.format_exc()[-4000:])
            err.close()
        except Exception:  # noqa: BLE001 - closed already: the failure came later
            pass
        code = 70
    os._exit(code)


def _reply(out, data):
    out.write(json.dumps(data) + "\n")
    out.flush()


KEEP: list = []  # folders under /tmp or /dev/shm that kernels must still see (from the grader)


def main():
    global KEEP
    out = sys.stdout
    preload = json.loads(sys.argv[1])
    KEEP = json.loads(sys.argv[2])
    imported, failed = [], {}
    for name in ["ipykernel.kernelapp", *preload]:
        try:
            __import__(name)
            imported.append(name)
        except BaseException as exc:  # noqa: BLE001 - reported, not fatal
            failed[name] = f"{type(exc).__name__}: {exc}"[:500]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    _reply(out, {"ready": True, "imported": imported, "failed": failed, "threads": _threads()})
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") != "fork":
            break
        threads = _threads()
        if threads != 1:
            _reply(out, {"error": f"the zygote has {threads} threads; forking is unsafe"})
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            _reply(out, {"error": f"fork failed: {exc}"})
            continue
        if pid == 0:
            _become_kernel(req)
        _reply(out, {"pid": pid})


if __name__ == "__main__":
    main()
