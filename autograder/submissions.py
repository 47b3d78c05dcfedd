"""Finding each student's notebook in whatever a TA downloaded.

Layouts (detected, in this order):
- nbgrader's `submitted/<student>/<assignment>/<notebook>.ipynb` (nbgrader collect);
- a folder of `<student>/` folders, each with the notebook and any extra files;
- a folder of `<student>.ipynb` files;
- a .zip of any of these (an LMS download), extracted with no path escapes,
  no links, and limits on members and size.
Links are never followed: a symlinked notebook or folder is reported, not read.
"""

from __future__ import annotations

import dataclasses
import re
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from autograder.cleantext import encodable
from autograder.exceptions import SubmissionError, UnsafeArchive

MAX_ZIP_MEMBERS = 20_000
# A member's name: an LMS download nests a few folders (nbgrader's layout is 4 deep). Path
# work on a name of 32,700 folders cost 0.8 s of grader CPU a member before.
MAX_MEMBER_NAME = 1024
MAX_MEMBER_DEPTH = 32
MAX_ZIP_BYTES = 4 << 30
MAX_MEMBER_BYTES = 512 << 20
MAX_EXTRA_FILE = 256 << 20  # larger extra files are neither graded nor hashed
# All of one student's extra files: each is copied into the sandbox (in memory, charged
# to the grading worker's cgroup), hashed and shipped to Dask workers.
MAX_EXTRA_FILES = 16
MAX_EXTRA_BYTES = 256 << 20


@dataclass(frozen=True)
class SubmissionInput:
    student: str
    notebook: Path | None
    files: Path | None = None  # the student's own folder (extra files), if any
    problem: str = ""


def submission_files(sub: SubmissionInput) -> list[Path]:
    """The extra files graded with a notebook (a trained `model.keras`, say).

    The one rule for what is copied into the sandbox, shipped to a Dask worker and
    hashed for re-grading: regular files beside the notebook, no links, no dotfiles,
    none larger than MAX_EXTRA_FILE; in name order, the first MAX_EXTRA_FILES of them
    that fit in MAX_EXTRA_BYTES together.
    """
    if sub.files is None:
        return []
    found, total = [], 0
    for path in sorted(sub.files.iterdir()):
        if path.name.startswith(".") or path == sub.notebook:
            continue
        if path.is_symlink() or not path.is_file():
            continue
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if size > MAX_EXTRA_FILE or total + size > MAX_EXTRA_BYTES:
            continue
        found.append(path)
        total += size
        if len(found) == MAX_EXTRA_FILES:
            break
    return found


def safe_name(student: str) -> str:
    """A folder name for a student id: no separators, no dot-names, no control characters."""
    text = unicodedata.normalize("NFC", student)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[\\/:*?\"<>|\s]+", "_", text).strip("._") or "student"
    return text[:100]


def extract_zip(archive: Path, dest: Path) -> list[str]:
    """Extract safely; return warnings about members that were left out."""
    warnings: list[str] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(
            f"{archive}: not a readable zip file ({exc}). Download the submissions again"
        ) from None
    dest = dest.resolve()
    total = 0
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise UnsafeArchive(f"{archive}: {len(members)} members, over {MAX_ZIP_MEMBERS}")
        for info in members:
            name = info.filename
            mode = info.external_attr >> 16
            if len(name) > MAX_MEMBER_NAME or name.count("/") + name.count("\\") > MAX_MEMBER_DEPTH:
                warnings.append(f"left out {name[:80]!r}...: its name is too long or too deep")
                continue
            parts = Path(name.replace("\\", "/")).parts
            if (
                name.startswith(("/", "\\"))
                or ".." in parts
                or (parts and re.match(r"^[A-Za-z]:", parts[0]))
            ):
                warnings.append(f"left out {name!r}: path escapes the archive")
                continue
            if stat.S_ISLNK(mode):
                warnings.append(f"left out {name!r}: symbolic link")
                continue
            target = (dest / Path(*parts)).resolve() if parts else dest
            if not target.is_relative_to(dest):
                warnings.append(f"left out {name!r}: path escapes the archive")
                continue
            if info.is_dir():
                try:
                    target.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    warnings.append(f"left out {name!r}: cannot be created ({exc.strerror})")
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                warnings.append(f"left out {name!r}: larger than {MAX_MEMBER_BYTES >> 20} MiB")
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise UnsafeArchive(f"{archive}: expands to more than {MAX_ZIP_BYTES >> 30} GiB")
            written = 0
            opened = False
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    opened = True
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > MAX_MEMBER_BYTES:  # the header lied about the size
                            break
                        out.write(chunk)
            except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
                # A corrupt member, or a name that clashes with a folder: leave it out.
                if opened:
                    target.unlink(missing_ok=True)
                warnings.append(f"left out {name!r}: cannot be extracted ({exc})")
                continue
            if written > MAX_MEMBER_BYTES:
                target.unlink()
                warnings.append(f"left out {name!r}: larger than declared")
    return warnings


def _notebooks(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix == ".ipynb" and not p.name.startswith(".") and not p.is_dir()
    )


def _pick(folder: Path, notebook_name: str, student: str) -> SubmissionInput:
    if folder.is_symlink():
        return SubmissionInput(student, None, None, "submission folder is a link")
    candidates = _notebooks(folder)
    named = [p for p in candidates if p.name == notebook_name]
    chosen = named or candidates
    if not chosen:
        return SubmissionInput(student, None, folder, "no notebook found")
    nb = chosen[0]
    if nb.is_symlink():
        return SubmissionInput(student, None, folder, "notebook is a link")
    return SubmissionInput(student, nb, folder)


def _visible(path: Path) -> list[Path]:
    return sorted(
        p
        for p in path.iterdir()
        if not p.name.startswith(".") and p.name not in ("__MACOSX", "feedback", "autograded")
    )


def discover(
    path: Path,
    assignment: str,
    notebook_name: str,
    workdir: Path,
    warnings: list[str] | None = None,
) -> list[SubmissionInput]:
    """Every submission under `path` (a folder or a .zip), one per student.

    Members a zip had to leave out are reported in `warnings`.
    """
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder. Pass the submissions folder or zip")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise SubmissionError(f"{path}: not a folder and not a zip file")
        root = Path(workdir) / "unzipped"
        root.mkdir(parents=True, exist_ok=True)
        left_out = extract_zip(path, root)
        if warnings is not None:
            warnings.extend(left_out)
        path = root
        entries = _visible(path)
        # An LMS zip often wraps everything in one top folder.
        while len(entries) == 1 and entries[0].is_dir() and not _notebooks(path):
            inner = entries[0]
            if _looks_like_student_dir(inner, notebook_name) or inner.name == "submitted":
                break
            path, entries = inner, _visible(inner)
    # nbgrader's layout, unless `submitted` is a student's own folder (it holds the notebook)
    # beside the others': then everyone else would be missed.
    nbgrader = path / "submitted"
    if nbgrader.is_dir() and not _looks_like_student_dir(nbgrader, notebook_name):
        path = nbgrader
    entries = _visible(path)
    found: list[SubmissionInput] = []
    for entry in entries:
        if entry.is_symlink():
            found.append(
                SubmissionInput(
                    entry.stem if entry.is_file() else entry.name,
                    None,
                    None,
                    "submission is a link",
                )
            )
            continue
        if entry.is_dir():
            nbgrader_dir = entry / assignment
            folder = (
                nbgrader_dir if nbgrader_dir.is_dir() and not nbgrader_dir.is_symlink() else entry
            )
            found.append(_pick(folder, notebook_name, entry.name))
        elif entry.suffix == ".ipynb":
            found.append(SubmissionInput(entry.stem, entry, None))
    if not found:
        raise SubmissionError(
            f"{path}: no submissions found (expected <student>.ipynb files, <student>/ folders, "
            "or nbgrader's submitted/<student>/<assignment>/ layout)"
        )
    # A name with undecodable bytes: an id any report can print (the paths stay as found).
    found = [dataclasses.replace(sub, student=encodable(sub.student)) for sub in found]
    # A repeated id becomes `<id>#2`, `#3` ..., skipping any id a submission already has:
    # `x.ipynb` beside `x/` and `x#2.ipynb` must not make one result overwrite another.
    taken = {sub.student for sub in found}
    seen: set[str] = set()
    unique = []
    for sub in found:
        if sub.student in seen:
            n = 2
            while f"{sub.student}#{n}" in taken:
                n += 1
            sub = dataclasses.replace(sub, student=f"{sub.student}#{n}")
            taken.add(sub.student)
        seen.add(sub.student)
        unique.append(sub)
    return unique


def _looks_like_student_dir(folder: Path, notebook_name: str) -> bool:
    """One student's folder (holds the assignment's notebook, or a single notebook), as
    opposed to a wrapper folder of `<student>.ipynb` files."""
    if (folder / notebook_name).is_file():
        return True
    return len(_notebooks(folder)) == 1
