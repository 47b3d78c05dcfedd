"""Points from check outcomes (weights, manual and skipped questions) and typed results."""

from __future__ import annotations

import json

from autograder.kinds import IncidentKind
from autograder.scoring import CheckResult, Incident, SubmissionResult, score, zero_result


def check(question: str, passed: bool, weight: float = 1.0, name: str = "t") -> CheckResult:
    return CheckResult(name=name, question=question, weight=weight, passed=passed)


def test_points_split_over_checks_by_weight(toy):
    checks = [check("add", True, 3), check("add", False, 1), check("scale", True)]
    q = score(toy, checks)
    assert list(q) == list(toy.questions)  # the config's order
    assert q["add"].points == 3.0  # 4 points * 3/4
    assert q["scale"].points == 6.0
    assert q["essay"].points is None and q["essay"].manual


def test_a_question_without_checks_scores_zero(toy):
    assert score(toy, [])["add"].points == 0.0


def test_skipped_questions_score_nothing_and_say_so(toy):
    q = score(toy, [check("add", True)], frozenset({"add"}))
    assert q["add"].points is None and q["add"].skipped


def test_max_points_come_from_the_config_only(toy):
    q = score(toy, [check("add", True, weight=1000)])
    assert (q["add"].max_points, q["add"].points) == (4.0, 4.0)


def test_zero_result(toy):
    r = zero_result(toy, "alice", "empty file", notes=["n"])
    assert (r.total, r.max_total, r.status, r.notes) == (0.0, 15.0, "empty file", ["n"])
    assert r.questions["essay"].points is None


def test_round_trip_through_json_keeps_types(toy):
    r = SubmissionResult(
        student="bob",
        assignment="toy",
        status="timeout in cell 3",
        questions=score(toy, [check("add", True), check("scale", False)]),
        incidents=[Incident(3, IncidentKind.TIMEOUT, "slow")],
        content_hash="abc",
    )
    data = json.loads(json.dumps(r.to_dict()))
    assert data["incidents"][0]["kind"] == "timeout"  # a plain string in grade.json
    back = SubmissionResult.from_dict(data)
    assert back == r
    assert back.incidents[0].kind is IncidentKind.TIMEOUT
    assert (data["total"], data["max_total"]) == (4.0, 15.0)


def test_every_incident_kind_the_session_records_is_known():
    assert {k.value for k in IncidentKind} == {
        "error",
        "timeout",
        "died",
        "memory",
        "output",
        "deadline",
        "spinning",
        "cpu",
    }
