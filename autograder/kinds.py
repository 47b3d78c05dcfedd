"""What running student code can end in, as enums instead of bare strings.

`OutcomeKind` is what one execution in the kernel did (autograder.kernel.CellOutcome);
`IncidentKind` is what the session records and the status line names. Both are
`StrEnum`s: they compare equal to their values and serialise as plain strings in
grade.json, so results written before this module existed still load.
"""

from __future__ import annotations

from enum import StrEnum


class OutcomeKind(StrEnum):
    OK = "ok"
    ERROR = "error"  # the code raised; the kernel is fine
    TIMEOUT = "timeout"
    DIED = "died"
    OUTPUT = "output"  # output flood: the kernel is restarted
    CPU = "cpu"  # the submission's CPU budget is spent (autograder.session's watch)


class IncidentKind(StrEnum):
    ERROR = "error"
    TIMEOUT = "timeout"
    DIED = "died"
    MEMORY = "memory"  # died, and the cgroup says it hit the memory cap
    OUTPUT = "output"
    DEADLINE = "deadline"  # the submission's time limit, not one cell's
    SPINNING = "spinning"  # the cell left threads burning CPU after it returned
    CPU = "cpu"  # the submission's CPU budget is spent

    @classmethod
    def of(cls, outcome: str) -> IncidentKind:
        """The incident a (non-ok) execution outcome records."""
        return cls(str(outcome))
