"""Reading files that untrusted code could have planted, and writing results atomically.

The grader runs with more rights than the sandbox. A student can leave a
symlink in the scratch folder pointing at the hidden checks; every read of a
scratch file goes through `read_untrusted`, which refuses links, non-regular
files, paths outside the scratch root and oversize files.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from autograder.exceptions import BridgeError


def read_untrusted(path: Path, root: Path, max_bytes: int) -> bytes:
    """Return the bytes of a regular file under `root`, following no links."""
    path = Path(path)
    root = Path(root).resolve()
    try:
        rel = path.resolve(strict=False).relative_to(root)
    except ValueError:
        raise BridgeError(f"{path.name}: outside the scratch folder") from None
    # Walk each component with O_NOFOLLOW so no link anywhere on the way is used.
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        parts = rel.parts
        for part in parts[:-1]:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
        try:
            ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            raise BridgeError(f"{path.name}: cannot be read ({exc.strerror})") from None
    except OSError as exc:
        raise BridgeError(f"{path.name}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    with os.fdopen(ffd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise BridgeError(f"{path.name}: not a regular file")
        if st.st_size > max_bytes:
            raise BridgeError(f"{path.name}: {st.st_size} bytes, over the {max_bytes}-byte limit")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BridgeError(f"{path.name}: over the {max_bytes}-byte limit")
    return data


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write via a temporary file and rename, so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
