"""Reading files that untrusted code could have planted, writing results atomically, and
removing the folders a killed grader process left behind.

The grader runs with more rights than the sandbox. A student can leave a
symlink in the scratch folder pointing at the hidden checks; every read of a
scratch file goes through `read_untrusted`, which refuses links, non-regular
files, paths outside the scratch root and oversize files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from autograder.exceptions import BridgeError


def read_untrusted(path: Path, root: Path, max_bytes: int) -> bytes:
    """Return the bytes of a regular file under `root`, following no links.

    Called for every response, array and archive of every check call, so it works on
    strings (pathlib's parsing was half its cost) and reads what the file's size says, not
    `max_bytes` (a buffer of that size was allocated for each read).
    """
    name = os.path.basename(path)
    # Lexical paths only: resolving would follow the very links we must refuse.
    given_root = os.path.abspath(root)
    target = os.path.abspath(path)
    parts = _parts_under(target, given_root)
    if parts is None:  # the root given through a link of the grader's own (resolved only then)
        parts = _parts_under(target, os.path.realpath(given_root))
    if parts is None:
        raise BridgeError(f"{name}: outside the scratch folder")
    if not parts:
        raise BridgeError(f"{name}: not a regular file")
    # Walk each component with O_NOFOLLOW so no link anywhere on the way is used.
    try:
        fd = os.open(given_root, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, ValueError) as exc:
        raise BridgeError(f"{name}: cannot be read ({_reason(exc)})") from None
    try:
        for part in parts[:-1]:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
        ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise BridgeError(f"{name}: cannot be read ({_reason(exc)})") from None
    finally:
        os.close(fd)
    try:
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode):
            raise BridgeError(f"{name}: not a regular file")
        if st.st_size > max_bytes:
            raise BridgeError(f"{name}: {st.st_size} bytes, over the {max_bytes}-byte limit")
        fh = os.fdopen(ffd, "rb")
    except BaseException:
        os.close(ffd)
        raise
    with fh:
        data = fh.read(st.st_size + 1)
        if len(data) > st.st_size:  # grown since fstat (its writer is at work): to the limit
            data += fh.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:
        raise BridgeError(f"{name}: over the {max_bytes}-byte limit")
    return data


def _parts_under(target: str, root: str) -> list[str] | None:
    """`target`'s components below `root` (both absolute and normalised), or None when it
    is not under it."""
    if target == root:
        return []
    prefix = root if root.endswith(os.sep) else root + os.sep
    if not target.startswith(prefix):
        return None
    return target[len(prefix) :].split(os.sep)


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write via a temporary file and rename, so a kill never leaves half a file.

    Text is UTF-8. A lone surrogate (valid as a JSON escape in a student's notebook or a
    kernel's message, not encodable) is written as its escape, `\\ud800`: one student's
    text must never stop the batch.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide reports from other staff
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# A submission's temporary folder in the grading process (autograder.grade), then its pid.
SUBMISSION_TMP = "autograder-sub-"


def _host_tag() -> str:
    """This machine's boot and pid namespace, short: a pid means something only there."""
    parts = []
    for path, read in (
        ("/proc/sys/kernel/random/boot_id", lambda p: Path(p).read_text().strip()),
        ("/proc/self/ns/pid", os.readlink),
    ):
        try:
            parts.append(read(path))
        except OSError:
            parts.append("")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def owned_prefix(prefix: str) -> str:
    """`<prefix><pid>-<host tag>-`: a folder name `sweep_stale_dirs` can tell is this
    process's, on this machine and in this pid namespace."""
    return f"{prefix}{os.getpid()}-{_host_tag()}-"


def sweep_stale_dirs(root: Path, prefix: str) -> list[Path]:
    """Remove folders named by `owned_prefix(prefix)` under `root` whose process is gone
    (SIGKILL, OOM).

    A live process removes its own; a killed one cannot, and in /dev/shm what it left
    (a submission's scratch, say) would hold memory until the next reboot. Only this uid's,
    and only this machine's and pid namespace's: a temporary folder shared with other
    hosts or containers holds live folders whose pids mean nothing here.
    """
    removed = []
    tag = _host_tag()
    for path in Path(root).glob(f"{prefix}*-{tag}-*"):
        pid, _, rest = path.name[len(prefix) :].partition("-")
        if not pid.isdigit() or not rest.startswith(tag + "-"):
            continue
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            if path.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except OSError:
            continue  # alive under another uid, or gone already
    return removed
