"""`autograder validate`'s steps, each on made-up results: fast, no grading."""

from __future__ import annotations

# -- the steps, on made-up results (no grading)


def _result(toy, student, failing=(), status="ok"):
    from autograder.scoring import CheckResult, SubmissionResult, score

    checks = [CheckResult(f"test_{q}", q, 1.0, q not in failing) for q in ("add", "scale")]
    return SubmissionResult(student, "toy", status, score(toy, checks))


def _graded(toy, fast):
    from autograder.validate import _Graded

    return _Graded({}, {r.student: r for r in fast}, set())


def test_judge_mutants_sorts_caught_survivors_and_collateral(toy):
    from autograder.validate import (
        Mutant,
        judge_mutants,
        step_alternatives_full,
        step_mistakes_caught,
    )

    mutants = [
        Mutant("add", "caught", "mistake", "w", ""),
        Mutant("add", "survives", "mistake", "w", ""),
        Mutant("add", "spills", "mistake", "w", ""),
        Mutant("scale", "fine", "alternative", "w", ""),
        Mutant("scale", "wrongly_failed", "alternative", "w", ""),
    ]
    fast = [
        _result(toy, "mistake__add__caught", {"add"}),
        _result(toy, "mistake__add__survives"),
        _result(toy, "mistake__add__spills", {"add", "scale"}),
        _result(toy, "alternative__scale__fine"),
        _result(toy, "alternative__scale__wrongly_failed", {"scale"}),
    ]
    v = judge_mutants(toy, mutants, _graded(toy, fast))
    assert (v.mistakes, v.caught, v.alternatives, v.alternatives_ok) == (3, 1, 2, 1)
    assert len(v.survivors) == 1 and v.survivors[0].startswith("add/survives: survived")
    assert v.problems == ["add/spills: also lost points on scale"]
    assert (
        "scale/wrongly_failed (correct alternative) lost points on scale"
        in (v.alternative_problems[0])
    )
    assert not step_mistakes_caught(v).ok
    assert step_alternatives_full(v).detail.startswith("1/2 full")


def test_key_stubs_mutant_counts_and_determinism_steps(toy):
    from autograder.validate import (
        Mutant,
        step_deterministic,
        step_enough_mutants,
        step_key_full_marks,
        step_stubs_zero,
    )

    key = _result(toy, "key")
    assert step_key_full_marks(toy, key, set()).ok
    short = step_key_full_marks(toy, _result(toy, "key", {"scale"}), set())
    assert not short.ok and "lost points on scale" in short.detail
    assert step_stubs_zero(toy, _result(toy, "stubs", {"add", "scale"}), set()).ok
    assert not step_stubs_zero(toy, _result(toy, "stubs", {"add"}), set()).ok
    few = [Mutant("add", str(i), "mistake", "", "") for i in range(4)]
    assert step_enough_mutants(toy, few, {"scale"}).ok is False  # no alternative for add
    enough = [*few, Mutant("add", "alt", "alternative", "", "")]
    assert step_enough_mutants(toy, enough, {"scale"}).ok
    assert step_deterministic(key, _result(toy, "key")).ok
    assert not step_deterministic(key, _result(toy, "key", {"add"})).ok
