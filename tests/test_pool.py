"""autograder.pool: capped grading workers; one that dies costs one submission."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from autograder.batch import _worker_died
from autograder.cli import main
from autograder.pool import GRADER_MEMORY_LIMIT, CappedPool, TaskMemory
from autograder.sandbox import capabilities
from autograder.submissions import SubmissionInput
from autograder.tasks import GradeTask
from tests.conftest import build, write

CAPPED = capabilities().root and bool(capabilities().cgroup)


def _square(x):
    return {"value": x * x, "pid": os.getpid()}


def _die_on_three(x):
    if x == 3:
        os._exit(7)
    return {"value": x}


def _died(task, reason):
    return {"value": None, "reason": reason, "task": task}


def test_results_come_back_with_the_workers_memory():
    pool = CappedPool(_square, jobs=2, memory_mib=512, on_death=_died)
    got = list(pool.run(list(range(6))))
    assert sorted(r["value"] for r, _ in got) == [0, 1, 4, 9, 16, 25]
    assert len({r["pid"] for r, _ in got}) <= 2  # workers are reused, not one per task
    for _, memory in got:
        assert isinstance(memory, TaskMemory)
        assert 0 < memory.start_mib <= memory.peak_mib and memory.growth_mib >= 0


def test_a_worker_that_dies_costs_only_its_task():
    pool = CappedPool(_die_on_three, jobs=2, memory_mib=512, on_death=_died)
    got = [r for r, _ in pool.run(list(range(6)))]
    assert sorted(r["value"] for r in got if r["value"] is not None) == [0, 1, 2, 4, 5]
    (dead,) = [r for r in got if r["value"] is None]
    assert dead["task"] == 3 and dead["reason"] == "grader worker died (exit code 7)"


@pytest.mark.parametrize(
    ("reason", "says", "never"),
    [
        (GRADER_MEMORY_LIMIT, "more than the 4096 MiB a grading worker may use", "stopped while"),
        ("grader worker died (exit code 7)", "stopped while grading this submission", "MiB"),
    ],
)
def test_a_dead_workers_note_names_memory_only_when_the_cap_killed_it(toy, reason, says, never):
    task = GradeTask(SubmissionInput("ann", None), str(toy.config_path), {}, frozenset(), "d", 20)
    outcome = _worker_died(task, reason)
    (note,) = outcome.result.notes
    assert outcome.result.status == reason and says in note and never not in note
    assert outcome.result.content_hash == ""  # graded again on the next run


HOG_CHECK = '''
import pytest

pytestmark = pytest.mark.question("add")


def test_hog(submission):
    """Stands for a decode path nobody bounded: it makes the grader hold 2 GB."""
    if submission.student == "hog":
        hold = bytearray(2 << 30)
        hold[::4096] = b"x" * len(hold[::4096])
'''


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.skipif(not CAPPED, reason="the workers' memory cap needs root and a cgroup")
def test_a_worker_killed_by_its_memory_cap_leaves_a_status_and_a_complete_gradebook(
    tmp_path, toy_dir, toy_key
):
    lab = tmp_path / "toy"
    shutil.copytree(toy_dir, lab)
    toml = (lab / "assignment.toml").read_text()
    (lab / "assignment.toml").write_text(
        toml.replace("[limits]\n", "[limits]\ngrader_memory_mib = 600\n")
    )
    (lab / "checks" / "test_hog.py").write_text(HOG_CHECK)
    subs, out = tmp_path / "subs", tmp_path / "out"
    for name in ("ann", "hog", "bob", "cy"):
        write(build(toy_key), subs / f"{name}.ipynb")
    result = CliRunner().invoke(main, ["grade", str(lab), str(subs), "--out", str(out), "-j", "2"])
    assert result.exit_code == 0, result.output
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert set(rows) == {"ann", "hog", "bob", "cy"}
    assert rows["hog"]["status"] == GRADER_MEMORY_LIMIT and rows["hog"]["total"] == "0"
    for name in ("ann", "bob", "cy"):
        assert (rows[name]["status"], rows[name]["total"]) == ("ok", "10"), rows[name]
    hog = json.loads((out / "hog" / "grade.json").read_text())
    assert hog["content_hash"] == ""  # never cached: the next run grades it again
    assert any("600 MiB" in note for note in hog["notes"])
    assert "grader memory limit" in (out / "hog" / "feedback.html").read_text()
