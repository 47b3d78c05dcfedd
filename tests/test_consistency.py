"""assignment.toml may name only cells its source notebook has (autograder.consistency)."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from autograder.config import load_config
from autograder.consistency import mismatches, require_consistent
from autograder.exceptions import ConfigError
from autograder.release import release
from autograder.validate import step_config_matches_notebook
from tests.conftest import TOY


def _toy(tmp_path, edit_toml=None, edit_nb=None):
    dest = tmp_path / "toy"
    shutil.copytree(TOY, dest)
    if edit_toml:
        path = dest / "assignment.toml"
        path.write_text(edit_toml(path.read_text()))
    if edit_nb:
        nb = nbformat.read(dest / "toy.ipynb", as_version=4)
        edit_nb(nb)
        nbformat.write(nb, dest / "toy.ipynb")
    config = load_config(dest / "assignment.toml")
    return config, nbformat.read(config.notebook, as_version=4)


def test_the_bundled_assignments_and_the_toy_are_consistent(toy):
    from autograder.config import load_assignment

    for config in (toy, load_assignment("lab4-cnn"), load_assignment("cnn-intro")):
        assert mismatches(config, nbformat.read(config.notebook, as_version=4)) == []


def test_a_manual_question_without_its_cell_is_named_with_a_suggestion(tmp_path):
    config, nb = _toy(
        tmp_path,
        lambda t: t.replace("[questions.essay]", "[questions.esay]").replace(
            "questions.essay.rubric", "questions.esay.rubric"
        ),
    )
    found = {m.key: m.problem for m in mismatches(config, nb)}
    assert "did you mean 'essay'" in found["questions.esay"]
    # ...and the notebook's manual cell is now graded by no question
    assert "graded by no question" in found["questions.essay"]


def test_outputs_must_name_code_cells(tmp_path):
    config, nb = _toy(
        tmp_path,
        lambda t: t.replace("manual = true", 'manual = true\noutputs = ["setup", "intro", "nope"]'),
    )
    found = {m.key: m.problem for m in mismatches(config, nb)}
    assert set(found) == {"questions.essay.outputs[1]", "questions.essay.outputs[2]"}
    assert "'intro'" in found["questions.essay.outputs[1]"]  # a markdown cell has no outputs


def test_a_mutants_folder_must_name_an_answer_cell(tmp_path):
    config, nb = _toy(tmp_path)
    (config.mutants_dir / "ad").mkdir()
    (config.mutants_dir / "ad" / "one.py").write_text("# kind: mistake\n")
    found = {m.key: m.problem for m in mismatches(config, nb)}
    assert list(found) == ["mutants/ad"] and "did you mean 'add'" in found["mutants/ad"]


def test_release_refuses_and_validate_reports_a_mismatch(tmp_path):
    config, nb = _toy(
        tmp_path, lambda t: t.replace("manual = true", 'manual = true\noutputs = ["setpu"]')
    )
    with pytest.raises(ConfigError) as err:
        require_consistent(config, nb)
    text = str(err.value)
    assert "assignment.toml" in text and "questions.essay.outputs[0]" in text
    assert "did you mean 'setup'" in text and err.value.exit_code == 3
    with pytest.raises(ConfigError):
        release(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    step = step_config_matches_notebook(config)
    assert not step.ok and "questions.essay.outputs[0]" in step.detail


def test_a_manual_cell_of_an_autograded_question_and_a_wrong_role_are_named(tmp_path):
    def manual_code_cell(nb):
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "add":
                cell.metadata.nbgrader["grade"] = True  # solution + grade: a manual code cell

    config, nb = _toy(tmp_path / "a", edit_nb=manual_code_cell)
    found = {m.key: m.problem for m in mismatches(config, nb)}
    assert "add `manual = true`" in found["questions.add"]
    assert set(found) == {"questions.add", "mutants/add"}  # its mutants replace no answer now
    config, nb = _toy(
        tmp_path / "b",
        lambda t: t.replace(
            "[questions.scale]\npoints = 6", "[questions.scale]\npoints = 6\nmanual = true"
        ),
    )
    found = {m.key: m.problem for m in mismatches(config, nb)}
    assert list(found) == ["questions.scale"]
    assert "is an answer cell, not a manually graded answer" in found["questions.scale"]


def test_hidden_and_empty_mutants_folders_are_not_mutants(tmp_path):
    config, nb = _toy(tmp_path)
    from autograder.validate import load_mutants

    before = load_mutants(config)
    (config.mutants_dir / ".ipynb_checkpoints").mkdir()
    # An editor's checkpoint copy of a mutant: validate must not grade it as a question.
    (config.mutants_dir / ".ipynb_checkpoints" / "x.py").write_text("# kind: mistake\n")
    (config.mutants_dir / "__pycache__").mkdir()
    (config.mutants_dir / "drafts").mkdir()  # no .py file yet
    assert mismatches(config, nb) == []
    assert load_mutants(config) == before and before
    (config.mutants_dir / "drafts" / "one.py").write_text("# kind: mistake\n")
    assert [m.key for m in mismatches(config, nb)] == ["mutants/drafts"]


def test_release_of_an_unreadable_source_notebook_is_a_release_error(tmp_path):
    from autograder.exceptions import ReleaseError

    config, _ = _toy(tmp_path)
    config.notebook.write_text("{ not json")
    with pytest.raises(ReleaseError, match="cannot read the source notebook") as err:
        release(config, tmp_path / "out")
    assert err.value.exit_code == 6
