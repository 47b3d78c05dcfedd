"""The cnn-intro hidden checks are strong and fair, proved on mutants.

For each question in `assignments/cnn-intro/mutants/<question>/`: every alternative
answer gets full marks, every mistake fails at least one check of its own question
without crashing one, and the answer key's functions (taken from the source notebook,
with the locked cells they rely on) get full marks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.config import load_config
from autograder.notebook import grade_id

from . import mutant_cases as cases
from .mutant_cases import failures, grade, header, run_source

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = REPO / "assignments" / "cnn-intro"
MUTANTS = ASSIGNMENT / "mutants"
QUESTIONS = ("tensorboard", "conv_params", "data_prep", "deeper_model")
# Locked cells the answers use (imports, settings, small_cnn), then the answer cells.
CONTEXT = ("setup", "runtime", "small_cnn")


@pytest.fixture(autouse=True)
def _fast_nested_pytest(monkeypatch):
    """Each run_checks is a nested pytest session; skip its slow gc at exit (TF loaded)."""
    import _pytest.unraisableexception as unraisable

    if hasattr(unraisable, "gc_collect_harder"):
        monkeypatch.setattr(unraisable, "gc_collect_harder", lambda iterations: None)


def source_cells() -> dict[str, str]:
    nb = nbformat.read(ASSIGNMENT / "cnn-intro.ipynb", as_version=4)
    cells = {grade_id(c): c.source for c in nb.cells if c.cell_type == "code" and grade_id(c)}
    settings = [c.source for c in nb.cells if c.cell_type == "code" and "QUICK =" in c.source]
    cells["settings"] = settings[0]
    return cells


@pytest.fixture(scope="module")
def config():
    return load_config(ASSIGNMENT / "assignment.toml")


@pytest.fixture(scope="module")
def key_namespace() -> dict:
    cells = source_cells()
    ns: dict = {"__name__": "__main__"}
    for gid in ("setup", "settings", *CONTEXT[1:], *QUESTIONS):
        exec(compile(cells[gid], gid, "exec"), ns)  # the instructor's own notebook
    return ns


@pytest.mark.parametrize("question", QUESTIONS)
def test_question_has_mutants(question):
    cases.check_mutant_headers(MUTANTS, question)


def test_every_autograded_question_has_a_check_file(config):
    for q in config.autograded:
        assert (ASSIGNMENT / "checks" / f"test_{q}.py").is_file(), q


@pytest.mark.slow
@pytest.mark.parametrize("question", QUESTIONS)
def test_answer_key_gets_full_marks(config, key_namespace, question, tmp_path):
    results = grade(config, key_namespace, question, tmp_path)
    assert not failures(results), failures(results)
    assert sum(r.weight for r in results) >= 5, f"{question}: too few weighted checks"


@pytest.mark.slow
@pytest.mark.parametrize(("question", "path"), cases.params(MUTANTS, QUESTIONS, "alternative"))
def test_alternative_gets_full_marks(config, key_namespace, question, path, tmp_path):
    ns = run_source(path, dict(key_namespace))
    results = grade(config, ns, question, tmp_path)
    assert not failures(results), f"{path.name} ({header(path)[1]}): {failures(results)}"


@pytest.mark.slow
@pytest.mark.parametrize(("question", "path"), cases.params(MUTANTS, QUESTIONS, "mistake"))
def test_mistake_loses_points(config, key_namespace, question, path, tmp_path):
    ns = run_source(path, dict(key_namespace))
    results = grade(config, ns, question, tmp_path)
    assert failures(results), f"{path.name} ({header(path)[1]}) passed every check"
    for r in results:
        if not r.passed:
            assert r.message and len(r.message) <= 1500, r
