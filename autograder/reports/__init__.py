"""Renderers: each turns typed results into one output format, and nothing else."""

from __future__ import annotations

from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.reports.feedback import feedback_html
from autograder.reports.gradebook import gradebook_rows, write_gradebook
from autograder.reports.gradescope import gradescope_json
from autograder.reports.plots import class_plot
from autograder.reports.summary import summary_dict
from autograder.safeio import atomic_write
from autograder.scoring import SubmissionResult

__all__ = [
    "feedback_html",
    "gradebook_rows",
    "gradescope_json",
    "class_plot",
    "summary_dict",
    "write_student_reports",
    "write_class_reports",
]


def write_student_reports(result: SubmissionResult, config: AssignmentConfig, folder: Path) -> None:
    import json

    atomic_write(folder / "results.json", json.dumps(gradescope_json(result), indent=1))
    atomic_write(folder / "feedback.html", feedback_html(result, config))


def _plot_if_changed(results: list[SubmissionResult], config: AssignmentConfig, path: Path) -> None:
    """Draw the class plot unless the same inputs already drew the one on disk.

    Plotting is most of the cost of re-grading an unchanged class; the key
    (results, config, plotting code) is kept beside the PNG.
    """
    import hashlib
    import json

    from autograder.reports import plots

    h = hashlib.sha256(Path(plots.__file__).read_bytes())
    h.update(config.config_path.read_bytes())
    h.update(json.dumps([r.to_dict() for r in results], sort_keys=True, default=str).encode())
    key_file = path.with_name(f".{path.name}.key")
    key = h.hexdigest()
    try:
        if path.is_file() and key_file.read_text() == key:
            return
    except OSError:
        pass
    class_plot(results, config, path)
    atomic_write(key_file, key)


def write_class_reports(
    results: list[SubmissionResult],
    config: AssignmentConfig,
    out: Path,
    *,
    nbgrader_db: Path | None = None,
) -> None:
    import json

    write_gradebook(results, config, out / "gradebook.csv")
    summary = json.dumps(summary_dict(results, config), indent=1)
    atomic_write(out / "summary.json", summary)
    if results:
        _plot_if_changed(results, config, out / "summary.png")
    if nbgrader_db is not None:
        from autograder.reports.nbgrader_db import write_nbgrader_scores

        write_nbgrader_scores(results, config, nbgrader_db)
