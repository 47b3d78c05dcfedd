"""Diagnostics through the standard `logging` module.

Two audiences: the operator at the console (`autograder -v` / `--log-level`), and the
TA who opens OUT/<student>/log.txt to see why a grade looks wrong (kernel starts,
restarts, timeouts, each check's duration). The second is a handler attached for the
time one submission is graded, in whatever process grades it, so the text travels back
with the result from a pool worker or a Dask worker.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

LOGGER = "autograder"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_SUBMISSION_LINES = 5000  # a submission that fails in every cell cannot flood log.txt

_CONSOLE_FORMAT = "autograder: %(student)s%(message)s"
_SUBMISSION_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(message)s"


def get(name: str) -> logging.Logger:
    """The logger of one module, under the package's `autograder` logger."""
    return logging.getLogger(name if name.startswith(LOGGER) else f"{LOGGER}.{name}")


_current_student = ""  # the submission this process is grading (one at a time)


class _Console(logging.StreamHandler):
    """The console handler `configure` installs (so a second call adjusts it).

    Its lines name the student being graded: with `-j N` several workers write at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_name_student)


def _name_student(record: logging.LogRecord) -> bool:
    record.student = f"[{_current_student}] " if _current_student else ""
    return True


def configure(level: int | str = logging.WARNING) -> None:
    """Show the package's records at `level` and above on stderr (the CLI calls this)."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, _Console)]:
        logger.removeHandler(old)  # bound to the stderr of its day (a test runner's, say)
    console = _Console()
    console.setFormatter(logging.Formatter(_CONSOLE_FORMAT))
    console.setLevel(numeric)
    logger.addHandler(console)
    logger.setLevel(numeric)


def console_level() -> int:
    """The console's level in this process (WARNING when `configure` was never called)."""
    logger = logging.getLogger(LOGGER)
    console = next((h for h in logger.handlers if isinstance(h, _Console)), None)
    return console.level if console is not None else logging.WARNING


def has_console() -> bool:
    return any(isinstance(h, _Console) for h in logging.getLogger(LOGGER).handlers)


class SubmissionLog(logging.Handler):
    """Collects one submission's records as text lines (for OUT/<student>/log.txt)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter(_SUBMISSION_FORMAT, "%Y-%m-%d %H:%M:%S"))
        self.lines: list[str] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) >= MAX_SUBMISSION_LINES:
            self.dropped += 1
            return
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a bad record must not fail a grading
            self.handleError(record)

    def text(self) -> str:
        tail = [f"... {self.dropped} more lines left out"] if self.dropped else []
        return "\n".join([*self.lines, *tail]) + "\n"


@contextlib.contextmanager
def capture_submission(student: str = "", level: int = logging.INFO) -> Iterator[SubmissionLog]:
    """Record what the package logs while one submission is graded (one at a time)."""
    global _current_student
    logger = logging.getLogger(LOGGER)
    handler = SubmissionLog(level)
    saved = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    _current_student = student[:40]
    try:
        yield handler
    finally:
        _current_student = ""
        logger.removeHandler(handler)
        logger.setLevel(saved)
