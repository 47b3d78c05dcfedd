"""A class in one batch: outputs, log.txt, reuse of unchanged grades, typed tasks."""

from __future__ import annotations

import json
import os

import pytest

from autograder.batch import GRADE_FILE, LOG_FILE, grade_batch, local_executor
from autograder.exceptions import AutograderError, ConfigError
from autograder.scoring import CheckResult
from autograder.tasks import GradeTask, grade_task
from tests.conftest import build, write
from tests.fakes.grading import install

CHECKS = [CheckResult("test_a", "add", 1.0, True), CheckResult("test_s", "scale", 1.0, True)]


@pytest.fixture
def subs(tmp_path, toy_key, toy_release):
    folder = tmp_path / "subs"
    write(toy_key, folder / "alice.ipynb")
    write(toy_release, folder / "bob.ipynb")
    return folder


class Recording:
    """An Executor that grades in this process and remembers which students it got."""

    def __init__(self) -> None:
        self.students: list[str] = []

    def __call__(self, tasks: list[GradeTask]):
        for task in tasks:
            assert isinstance(task, GradeTask)
            self.students.append(task.student)
            yield grade_task(task)


def test_every_student_gets_reports_a_log_and_grade_json_last(tmp_path, toy, subs, monkeypatch):
    install(monkeypatch, CHECKS)
    batch = grade_batch(toy, subs, tmp_path / "out", executor=Recording())
    assert (batch.graded, batch.reused) == (2, 0)
    for sid in ("alice", "bob"):
        folder = tmp_path / "out" / sid
        names = sorted(p.name for p in folder.iterdir())
        assert names == [
            "answers.json",
            "feedback.html",
            GRADE_FILE,
            "graded.ipynb",
            LOG_FILE,
            "results.json",
        ]
        log = (folder / LOG_FILE).read_text()
        assert f"grading '{sid}' (toy)" in log
        assert "check test_a (add): passed" in log
        assert "status ok; 10/15 points" in log
        assert json.loads((folder / GRADE_FILE).read_text())["student"] == sid
    assert (tmp_path / "out" / "gradebook.csv").is_file()


def test_unchanged_submissions_are_reused_and_force_regrades(tmp_path, toy, subs, monkeypatch):
    install(monkeypatch, CHECKS)
    out = tmp_path / "out"
    grade_batch(toy, subs, out, executor=Recording())
    again = Recording()
    batch = grade_batch(toy, subs, out, executor=again)
    assert (batch.graded, batch.reused, again.students) == (0, 2, [])
    write(
        build(json_nb(subs / "bob.ipynb"), {"add": "def add(a, b):\n    return 0\n"}),
        subs / "bob.ipynb",
    )
    changed = Recording()
    assert grade_batch(toy, subs, out, executor=changed).graded == 1
    assert changed.students == ["bob"]
    forced = Recording()
    grade_batch(toy, subs, out, executor=forced, force=True)
    assert sorted(forced.students) == ["alice", "bob"]


def json_nb(path):
    import nbformat

    return nbformat.read(path, as_version=4)


def test_a_grader_error_is_a_zero_that_is_graded_again(tmp_path, toy, subs, monkeypatch):
    import autograder.grade as grade

    def broken(*a, **k):
        raise AutograderError("checks are broken")

    monkeypatch.setattr(grade, "grade_submission", broken)
    out = tmp_path / "out"
    batch = grade_batch(toy, subs, out, executor=Recording())
    assert all(r.status.startswith("grader error: checks are broken") for r in batch.results)
    assert "grading 'alice' failed: checks are broken" in (out / "alice" / LOG_FILE).read_text()
    again = Recording()
    grade_batch(toy, subs, out, executor=again)
    assert sorted(again.students) == ["alice", "bob"]  # never cached


def test_unknown_skip_is_a_config_error_naming_the_key(tmp_path, toy, subs):
    with pytest.raises(ConfigError, match="key 'questions'.*'nope'"):
        grade_batch(toy, subs, tmp_path / "out", skip=("nope",))


def test_local_executor_with_one_job_grades_in_one_capped_worker(toy, toy_release):
    """Even -j 1 grades outside the CLI's process, and reports the worker's memory."""
    from autograder.submissions import SubmissionInput

    tasks = [
        GradeTask(
            SubmissionInput(s, None), str(toy.config_path), dict(toy_release), frozenset(), "d"
        )
        for s in ("x", "y")
    ]
    outcomes = list(local_executor(1)(tasks))
    assert [o.result.student for o in outcomes] == ["x", "y"]  # one worker: in order
    for outcome in outcomes:
        assert outcome.result.status == "no notebook found" and "status" in outcome.log
        assert 0 < outcome.result.grader_rss_mib <= outcome.result.grader_peak_mib


def test_a_batch_removes_what_killed_graders_left_in_the_temporary_folder(tmp_path):
    import os
    import subprocess
    import sys

    from autograder.batch import BATCH_TMP, sweep_killed
    from autograder.safeio import SUBMISSION_TMP, _host_tag

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = _host_tag()
    left = [tmp_path / f"{p}{dead.pid}-{tag}-a" for p in (BATCH_TMP, SUBMISSION_TMP)]
    mine = [tmp_path / f"{p}{os.getpid()}-{tag}-b" for p in (BATCH_TMP, SUBMISSION_TMP)]
    for folder in left + mine:
        (folder / "submitted").mkdir(parents=True)
    assert sorted(sweep_killed(tmp_path)) == sorted(left)
    assert all(f.is_dir() for f in mine) and not any(f.exists() for f in left)


def test_lone_surrogates_anywhere_never_stop_the_batch(tmp_path, toy, toy_key, monkeypatch):
    """A lone surrogate is a valid JSON escape (a notebook, a kernel's error message) and a
    file name may hold undecodable bytes: the batch used to end with UnicodeEncodeError."""
    bad = "\ud800"
    install(
        monkeypatch,
        [
            CheckResult("test_a", "add", 0.0, False, message=f"add raised ValueError({bad})"),
            CheckResult("test_s", "scale", 1.0, True),
        ],
    )
    nb = build(toy_key)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source += f"\n# {bad}"
    subs = tmp_path / "subs"
    subs.mkdir()
    text = json.dumps(nb)  # ASCII: the surrogate as an escape
    (subs / "alice.ipynb").write_text(text)
    (subs.joinpath(os.fsdecode(b"b\xffob.ipynb"))).write_text(text)
    out = tmp_path / "out"
    batch = grade_batch(toy, subs, out, executor=Recording())
    assert sorted(r.student for r in batch.results) == ["alice", "b\\udcffob"]
    for folder in (out / "alice", out / "b_udcffob"):
        grade = json.loads((folder / GRADE_FILE).read_text())
        assert "ValueError(\\ud800)" in grade["questions"]["add"]["checks"][0]["message"]
        assert "\\ud800" in (folder / "feedback.html").read_text()
        graded = json.loads((folder / "graded.ipynb").read_text())
        assert any("# \\ud800" in "".join(c["source"]) for c in graded["cells"])
    assert "b\\udcffob" in (out / "gradebook.csv").read_text()


def test_a_batch_removes_what_its_killed_workers_left(tmp_path, toy, subs, monkeypatch):
    """A worker killed at its memory cap cannot clean up: its submission folder, its
    zygote's folder in /dev/shm (4 GiB of a student's files, once) and its model store
    stayed until a later batch. The batch that saw it die removes them."""
    import subprocess
    import sys
    import tempfile

    from autograder.batch import BATCH_TMP, SUBMISSION_TMP
    from autograder.model_host import STORE_PREFIX
    from autograder.safeio import _host_tag
    from autograder.warm import WARM_PREFIX

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp, shm = tmp_path / "tmp", tmp_path / "shm"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("AUTOGRADER_WARM_DIR", str(shm))
    left = [
        tmp / f"{SUBMISSION_TMP}{dead.pid}-{_host_tag()}-a",
        tmp / f"{STORE_PREFIX}{dead.pid}-{_host_tag()}-b",
        shm / f"{WARM_PREFIX}{dead.pid}-{_host_tag()}-c",
    ]
    seen: list[bool] = []

    def killed_worker(tasks):
        for folder in left:
            (folder / "files").mkdir(parents=True)
        seen.append(True)
        yield from Recording()(tasks)

    install(monkeypatch, CHECKS)
    grade_batch(toy, subs, tmp_path / "out", executor=killed_worker)
    assert seen and not any(folder.exists() for folder in left)
    assert not list(tmp.glob(f"{BATCH_TMP}*"))
