"""The student release (nbgrader) and the answer key derived from the one source notebook."""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from autograder import release as release_mod
from autograder.config import load_config
from autograder.notebook import ANSWER, MANUAL, TEST, cell_role, grade_id
from autograder.release import (
    answer_key,
    solution_sources,
    source_digest,
    strip_solution_markers,
    write_answer_key,
)


def _source(toy):
    return nbformat.read(toy.notebook, as_version=4)


def test_release_metadata_lists_grade_ids(toy, toy_release):
    meta = toy_release.metadata["autograder"]
    assert meta == {
        "assignment": "toy",
        "grade_ids": ["intro", "setup", "add", "test_add", "scale", "test_scale", "train", "essay"],
    }
    assert meta["grade_ids"] == [grade_id(c) for c in _source(toy).cells]


def test_release_has_stubs_no_solutions_and_no_hidden_tests(toy, toy_release):
    text = nbformat.writes(toy_release)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
        assert marker not in text
    for line in (
        "return a + b",
        "return np.asarray(x, dtype=float) * k",
        "Addition is commutative",
        "assert add(-5, 2) == -3",
    ):
        assert line not in text
    cells = {grade_id(c): c for c in toy_release.cells}
    assert "raise NotImplementedError()" in cells["add"].source
    assert cells["test_add"].source.strip() == "assert add(1, 1) == 2"
    for c in toy_release.cells:
        nb_meta = c.metadata["nbgrader"]
        assert nb_meta.get("checksum"), grade_id(c)
        if cell_role(c) == TEST or nb_meta.get("locked"):
            assert c.metadata.get("editable") is False
    assert cells["train"].metadata["tags"] == ["training"]


def test_answer_key_answers_equal_the_source_solutions(toy, toy_release, toy_key):
    source = {grade_id(c): c for c in _source(toy).cells}
    key = {grade_id(c): c for c in toy_key.cells}
    assert list(key) == list(source)
    for gid, cell in key.items():
        if cell_role(cell) in (ANSWER, MANUAL):
            want = "\n".join(
                line
                for line in source[gid].source.splitlines()
                if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line
            )
            assert cell.source == want, gid
        else:
            # everything else is the release's cell, untouched
            rel = next(c for c in toy_release.cells if grade_id(c) == gid)
            assert cell == rel, gid
    assert key["add"].source == 'def add(a, b):\n    """Return a + b."""\n    return a + b'
    assert key["essay"].source == "Addition is commutative."
    assert toy_key.metadata == toy_release.metadata
    # the key is a copy: the release is unchanged
    stub = next(c for c in toy_release.cells if grade_id(c) == "add")
    assert "NotImplementedError" in stub.source


def test_solution_sources(toy):
    sols = solution_sources(toy)
    assert set(sols) == {"add", "scale", "essay"}
    assert all("SOLUTION" not in s for s in sols.values())


@pytest.mark.parametrize(
    "text, want",
    [
        ("a\n### BEGIN SOLUTION\nb\n### END SOLUTION\nc", "a\nb\nc"),
        ("  # BEGIN SOLUTION  \nx\n    #END SOLUTION", "x"),
        ("x = '### BEGIN SOLUTION'\ny", "x = '### BEGIN SOLUTION'\ny"),  # not a marker line
        ("# BEGIN SOLUTIONS\nz", "# BEGIN SOLUTIONS\nz"),
        ("", ""),
    ],
)
def test_strip_solution_markers(text, want):
    assert strip_solution_markers(text) == want


def test_release_notebook_is_cached_by_content(toy_dir, tmp_path, monkeypatch):
    folder = tmp_path / "toy"
    shutil.copytree(toy_dir, folder)
    cfg = load_config(folder / "assignment.toml")
    monkeypatch.setattr(release_mod, "CACHE_DIR", tmp_path / "cache")
    calls = []

    def fake_generate(config):
        calls.append(config.name)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"# {len(calls)}")])
        nb.metadata["autograder"] = {"assignment": config.name, "grade_ids": []}
        return nb

    monkeypatch.setattr(release_mod, "generate_release", fake_generate)
    first = release_mod.release_notebook(cfg)
    second = release_mod.release_notebook(cfg)
    assert calls == ["toy"] and first.cells[0].source == second.cells[0].source == "# 1"
    cached = list((tmp_path / "cache" / "release").iterdir())
    assert [p.name for p in cached] == [f"toy-{source_digest(cfg)}.ipynb"]
    # editing the source notebook invalidates the cache
    data = json.loads(cfg.notebook.read_text())
    data["cells"][0]["source"] = "# Toy assignment, edited"
    cfg.notebook.write_text(json.dumps(data))
    third = release_mod.release_notebook(cfg)
    assert calls == ["toy", "toy"] and third.cells[0].source == "# 2"


def test_write_answer_key_without_executing(toy, toy_release, tmp_path, monkeypatch):
    monkeypatch.setattr(release_mod, "release_notebook", lambda config: toy_release)
    path = write_answer_key(toy, tmp_path / "solutions", execute=False)
    assert path == tmp_path / "solutions" / "toy" / "toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert {grade_id(c): c.source for c in nb.cells} == {
        grade_id(c): c.source for c in answer_key(toy, toy_release).cells
    }


@pytest.mark.slow
def test_write_answer_key_executed_shows_outputs(toy, toy_release, tmp_path, monkeypatch):
    monkeypatch.setattr(release_mod, "release_notebook", lambda config: toy_release)
    path = write_answer_key(toy, tmp_path / "solutions", execute=True)
    nb = nbformat.read(path, as_version=4)
    cells = {grade_id(c): c for c in nb.cells}
    assert any("trained" in o.get("text", "") for o in cells["train"].outputs)
    for gid in ("test_add", "test_scale"):
        assert cells[gid].execution_count is not None
        assert not [o for o in cells[gid].outputs if o.output_type == "error"]
