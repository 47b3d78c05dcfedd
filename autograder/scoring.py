"""Typed grading results and the arithmetic that turns check outcomes into points.

Points and max points come only from the assignment's config (the source),
never from the submission. Within a question, each check's weight comes from
its `@pytest.mark.points(w)` marker (default 1), and the question earns
`points * passed_weight / total_weight`: partial credit per check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from autograder.config import AssignmentConfig
from autograder.kinds import IncidentKind


@dataclass
class CheckResult:
    name: str
    question: str
    weight: float
    passed: bool
    message: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class QuestionResult:
    id: str
    max_points: float
    points: float | None
    manual: bool = False
    skipped: bool = False
    checks: list[CheckResult] = field(default_factory=list)
    # Manual questions, once a TA's scores are merged: the rubric items as
    # {"id", "description", "points", "max_points"} and the TA's comment.
    rubric: list[dict[str, Any]] = field(default_factory=list)
    comment: str = ""


@dataclass
class Incident:
    """Something that went wrong while running the student's cells."""

    cell: int
    kind: IncidentKind
    message: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(int(data["cell"]), IncidentKind(data["kind"]), str(data.get("message", "")))


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    status: str
    questions: dict[str, QuestionResult] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    content_hash: str = ""
    seconds: float = 0.0
    isolation: str = ""
    # The grading worker's resident memory when this submission started, and its peak
    # while grading it (MiB; 0 when graded in-process): what one student cost the grader.
    grader_rss_mib: float = 0.0
    grader_peak_mib: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the submission's own processes (all kernels)
    # Late policy (autograder.late): points taken off the raw total, and why.
    penalty: float = 0.0
    late_note: str = ""
    submitted_at: str = ""

    @property
    def total(self) -> float:
        """The raw total: every question's points, before any late penalty."""
        return round(sum(q.points or 0.0 for q in self.questions.values()), 4)

    @property
    def final_total(self) -> float:
        return round(max(0.0, self.total - self.penalty), 4)

    @property
    def max_total(self) -> float:
        return round(sum(q.max_points for q in self.questions.values()), 4)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total"], data["max_total"] = self.total, self.max_total
        data["final_total"] = self.final_total
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        questions = {
            qid: QuestionResult(**{**q, "checks": [CheckResult(**c) for c in q.get("checks", [])]})
            for qid, q in data["questions"].items()
        }
        return cls(
            student=data["student"],
            assignment=data["assignment"],
            status=data["status"],
            questions=questions,
            incidents=[Incident.from_dict(i) for i in data.get("incidents", [])],
            notes=list(data.get("notes", [])),
            content_hash=data.get("content_hash", ""),
            seconds=float(data.get("seconds", 0.0)),
            isolation=data.get("isolation", ""),
            grader_rss_mib=float(data.get("grader_rss_mib", 0.0)),
            grader_peak_mib=float(data.get("grader_peak_mib", 0.0)),
            cpu_seconds=float(data.get("cpu_seconds", 0.0)),
            penalty=float(data.get("penalty", 0.0)),
            late_note=data.get("late_note", ""),
            submitted_at=data.get("submitted_at", ""),
        )


def score(
    config: AssignmentConfig,
    checks: list[CheckResult],
    skipped: frozenset[str] | set[str] = frozenset(),
) -> dict[str, QuestionResult]:
    """One QuestionResult per question of the config, in the config's order."""
    by_question: dict[str, list[CheckResult]] = {}
    for check in checks:
        by_question.setdefault(check.question, []).append(check)
    results: dict[str, QuestionResult] = {}
    for qid, q in config.questions.items():
        mine = by_question.get(qid, [])
        if q.manual or qid in skipped:
            results[qid] = QuestionResult(qid, q.points, None, q.manual, qid in skipped, mine)
            continue
        total = sum(c.weight for c in mine)
        earned = sum(c.weight for c in mine if c.passed)
        points = round(q.points * earned / total, 4) if total else 0.0
        results[qid] = QuestionResult(qid, q.points, points, False, False, mine)
    return results


def zero_result(
    config: AssignmentConfig, student: str, status: str, notes: list[str] | None = None
) -> SubmissionResult:
    """A submission that could not be graded at all: every autograded question scores 0."""
    questions = {
        qid: QuestionResult(qid, q.points, None if q.manual else 0.0, q.manual)
        for qid, q in config.questions.items()
    }
    return SubmissionResult(
        student=student,
        assignment=config.name,
        status=status,
        questions=questions,
        notes=list(notes or []),
    )
