"""Feedback where students get it: one zip per student (LMS upload) and nbgrader's
`feedback/<student>/<assignment>/<notebook>.html` layout, which `nbgrader release_feedback`
sends and the students' `nbgrader fetch_feedback` brings home."""

from __future__ import annotations

import zipfile
from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.safeio import atomic_write
from autograder.scoring import SubmissionResult

ZIP_DIR = "feedback-zips"
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # same bytes for the same feedback


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, FIXED_TIME), data)
    return buf.getvalue()


def write_feedback_bundles(
    results: list[SubmissionResult],
    config: AssignmentConfig,
    out: Path,
    dirs: dict[str, str],
    course: Path | None = None,
    handed_in: dict[str, Path] | None = None,
) -> None:
    """OUT/feedback-zips/<student>.zip; with a course folder, its feedback/ layout too, with
    the `timestamp.txt` and `submission_secret.txt` that `nbgrader collect` left beside each
    submission (release_feedback names the released file from them)."""
    out = Path(out)
    for result in results:
        folder = out / dirs[result.student]
        files = {}
        for name in ("feedback.html", "results.json"):
            if (folder / name).is_file():
                files[f"{config.name}-{name}"] = (folder / name).read_bytes()
        if not files:
            continue
        atomic_write(out / ZIP_DIR / f"{dirs[result.student]}.zip", _zip_bytes(files))
        if course is not None and (folder / "feedback.html").is_file():
            dest = course / "feedback" / dirs[result.student] / config.name
            page = (folder / "feedback.html").read_bytes()
            atomic_write(dest / f"{config.notebook.stem}.html", page)
            source = (handed_in or {}).get(result.student)
            for name in NBGRADER_FILES:
                path = source / name if source else None
                if path and path.is_file() and not path.is_symlink() and path.stat().st_size < 4096:
                    atomic_write(dest / name, path.read_bytes())
