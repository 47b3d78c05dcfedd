"""`autograder check`: is the notebook submittable, and do its visible tests pass?"""

from __future__ import annotations

import copy

import pytest
from nbformat.v4 import new_code_cell

from autograder.config import Limits
from autograder.notebook import grade_id
from autograder.student_check import CheckReport, check_notebook, submittability
from tests.conftest import build, write


def _without(nb, *ids):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if grade_id(c) not in ids]
    return nb


def _cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


# -- submittability (no kernel)


def test_key_and_release_are_submittable(toy_key, toy_release):
    assert submittability(toy_key, "toy") == ("toy", [])
    assert submittability(toy_release, None) == ("toy", [])


def test_answers_may_change(toy_key):
    nb = build(toy_key, answers={"add": "def add(a, b):\n    return 0\n"}, extra={"add": "x = 1"})
    _cell(nb, "essay").source = "My essay."
    assert submittability(nb, "toy")[1] == []


def test_deleted_cells_are_named(toy_key):
    _, problems = submittability(_without(toy_key, "test_add", "intro"), "toy")
    assert len(problems) == 2
    assert any("cell 'test_add' was deleted" in p for p in problems)
    assert any("cell 'intro' was deleted" in p for p in problems)
    assert all("download the notebook again" in p for p in problems)


def test_duplicated_cells_are_named(toy_key):
    nb = copy.deepcopy(toy_key)
    nb.cells.append(copy.deepcopy(_cell(nb, "scale")))
    _, problems = submittability(nb, "toy")
    assert problems == ["cell 'scale' appears more than once: delete the copy"]


@pytest.mark.parametrize("gid", ["test_add", "setup", "intro", "train"])
def test_edited_locked_or_test_cell_is_named(toy_key, gid):
    nb = copy.deepcopy(toy_key)
    _cell(nb, gid).source += "\n# changed"
    _, problems = submittability(nb, "toy")
    assert problems == [f"locked cell {gid!r} was edited: undo your changes to it"]


def test_inflated_points_are_an_edit(toy_key):
    nb = copy.deepcopy(toy_key)
    _cell(nb, "test_add").metadata["nbgrader"]["points"] = 1000
    _, problems = submittability(nb, "toy")
    assert problems == ["locked cell 'test_add' was edited: undo your changes to it"]


def test_wrong_assignment(toy_key):
    name, problems = submittability(toy_key, "lab4-cnn")
    assert name == "toy"
    assert problems == ["this is the notebook of 'toy', not 'lab4-cnn'"]


def test_untagged_notebook_uses_the_given_name(toy_key):
    nb = copy.deepcopy(toy_key)
    del nb.metadata["autograder"]
    assert submittability(nb, "toy") == ("toy", [])
    assert submittability(nb, None) == (None, [])


@pytest.mark.parametrize("where", ["grade_ids", "nbgrader"])
def test_odd_metadata_does_not_crash(toy_key, where):
    nb = copy.deepcopy(toy_key)
    if where == "grade_ids":
        nb.metadata["autograder"]["grade_ids"] = 7
    else:
        _cell(nb, "test_add").metadata["nbgrader"] = "locked"
    _, problems = submittability(nb, "toy")
    assert problems


def test_report_properties():
    assert CheckReport("toy").submittable and CheckReport("toy").all_passed
    r = CheckReport("toy", ["deleted"], {"a": "passed", "b": "AssertionError: "})
    assert not r.submittable and not r.all_passed


def test_unreadable_notebook_needs_no_kernel(tmp_path):
    path = tmp_path / "toy.ipynb"
    path.write_bytes(b"")
    report = check_notebook(path)
    assert report.problems == [f"{path}: empty file"] and report.tests == {}


# -- running the visible tests (a sandboxed kernel)


LIMITS = Limits(
    cell_timeout_s=8,
    call_timeout_s=5,
    submission_timeout_s=60,
    memory_mib=1024,
    max_processes=32,
    cpu_time_s=120,
)


@pytest.mark.slow
def test_visible_tests_pass_and_fail(tmp_path, toy_key):
    nb = build(
        toy_key,
        answers={"scale": "def scale(x, k=2.0):\n    return x\n"},
        extra={"setup": "import sys\nprint('noise', file=sys.stderr)"},
    )
    # a cell tagged "training" is skipped: this one would break add if it ran
    saboteur = new_code_cell("def add(a, b):\n    return 0\n", metadata={"tags": ["training"]})
    nb.cells.insert(nb.cells.index(_cell(nb, "add")) + 1, saboteur)
    report = check_notebook(write(nb, tmp_path / "toy.ipynb"), limits=LIMITS)
    assert report.assignment == "toy" and report.submittable
    assert report.tests["test_add"] == "passed"
    assert report.tests["test_scale"].startswith("AssertionError")
    assert set(report.tests) == {"test_add", "test_scale"}
    assert not report.all_passed


@pytest.mark.slow
def test_check_runs_tests_even_when_not_submittable(tmp_path, toy_key):
    nb = _without(toy_key, "test_scale")
    report = check_notebook(write(nb, tmp_path / "toy.ipynb"), assignment="toy", limits=LIMITS)
    assert report.problems == [
        "cell 'test_scale' was deleted: download the notebook again and copy your answers in"
    ]
    assert report.tests == {"test_add": "passed"}


def test_find_config_by_name_or_metadata_and_none_for_students(
    tmp_path, toy_dir, toy_key, monkeypatch
):
    from autograder.student_check import find_config

    monkeypatch.setenv("AUTOGRADER_ASSIGNMENTS", str(toy_dir.parent))
    path = write(toy_key, tmp_path / "toy.ipynb")
    assert find_config(path).name == "toy"  # from the notebook's metadata
    assert find_config(path, "toy").name == "toy"
    assert find_config(path, "not-here") is None  # a student has only the notebook
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json")
    assert find_config(bad) is None


def test_check_uses_the_assignments_limits_skip_tags_and_env(tmp_path, toy, toy_key, monkeypatch):
    from dataclasses import replace

    import autograder.student_check as student_check
    from autograder.config import Limits

    made = []

    class Session:
        def __init__(self, sandbox, limits, env=None):
            made.append((limits, env))
            self.incidents = []
            self.ran = []

        def start(self):
            pass

        def run_cells(self, cells):
            self.ran += [src for _, src in cells]

        def close(self):
            made.append(self.ran)

    monkeypatch.setattr(student_check, "KernelSession", Session)
    limits = Limits(cell_timeout_s=3)
    config = replace(toy, limits=limits, env={"X": "1"}, skip_tags=("nothing",))
    report = student_check.check_notebook(write(toy_key, tmp_path / "toy.ipynb"), config=config)
    assert made[0] == (limits, {"X": "1"})
    assert any("trained" in src for src in made[1])  # the `training` cell runs: not skipped
    assert report.submittable
    made.clear()
    student_check.check_notebook(write(toy_key, tmp_path / "toy.ipynb"), config=toy)
    assert not any("trained" in src for src in made[1])


def test_student_entry_point_imports_no_grading_stack():
    """`autograder check` must work from the base install (no extras): importing the CLI
    and the checker loads neither TensorFlow, Keras, nbgrader nor pytest."""
    import subprocess
    import sys

    code = (
        "import sys, autograder.cli, autograder.student_check; "
        "heavy = ('tensorflow', 'keras', 'nbgrader', 'pytest', 'rich', 'scipy', 'matplotlib'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout
