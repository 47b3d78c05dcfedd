"""One exception family. Every message says what was wrong, where, and what to do.

Each class carries its exit code, and the CLI exits only with these codes, so
scripts can tell a bad input from a grading failure without parsing text.
"""

from __future__ import annotations


class AutograderError(Exception):
    """Base class: an error the user can act on."""

    exit_code = 1


class ConfigError(AutograderError):
    """assignment.toml is missing, malformed, or has a bad key."""

    exit_code = 3

    def __init__(self, path: object, key: str | None, problem: str, fix: str = "") -> None:
        where = f"{path}" + (f", key '{key}'" if key else "")
        msg = f"{where}: {problem}"
        if fix:
            msg += f". {fix}"
        super().__init__(msg)
        self.path = path
        self.key = key


class AssignmentNotFound(AutograderError):
    exit_code = 3


class SubmissionError(AutograderError):
    """The submissions input cannot be read at all (not one student's bad notebook)."""

    exit_code = 4


class UnsafeArchive(SubmissionError):
    """A zip that tries to escape its folder, or is too large."""


class NotebookError(AutograderError):
    """One notebook cannot be read or does not belong to the assignment."""

    exit_code = 5


class NotSubmittable(NotebookError):
    """`autograder check`: the notebook would be refused (wrong assignment, edited cells)."""


class VisibleTestsFailed(AutograderError):
    """`autograder check`: the notebook is submittable but some visible tests fail."""


class ReleaseError(AutograderError):
    exit_code = 6


class SandboxError(AutograderError):
    """The sandbox could not be set up (not: the student's code misbehaved)."""

    exit_code = 7


class BridgeError(AutograderError):
    """A call into the student's kernel produced no usable plain-data result."""


class StudentCodeError(BridgeError):
    """The student's function raised; the message carries its exception line."""


class UnsafeModel(BridgeError):
    """A Keras model that safe loading refuses (Lambda layers, custom objects)."""


class DatasetUnavailable(AutograderError):
    exit_code = 8


class ReferenceModelError(AutograderError):
    """The assignment's reference model cannot be built or trained: the grader's problem."""

    exit_code = 8


class ValidationFailed(AutograderError):
    """`autograder validate` found checks that do not hold."""

    exit_code = 9


class ExportError(AutograderError):
    """Grades cannot be exported: unmatched students, an unreadable roster or gradebook."""

    exit_code = 10


class ManualScoresError(AutograderError):
    """A filled-in manual scores sheet has bad rows; nothing was merged."""

    exit_code = 11


class TimesError(AutograderError):
    """Submission times (timestamp.txt, --times) cannot be read."""

    exit_code = 12


EXIT_OK = 0
