"""Reading submitted notebooks and restoring what students may not change."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from autograder.exceptions import NotebookError
from autograder.notebook import (
    ANSWER,
    LOCKED,
    MANUAL,
    PLAIN,
    TEST,
    belongs_to,
    cell_role,
    code_cells_to_run,
    grade_id,
    read_notebook,
    restore,
)
from tests.conftest import build, write

ADD = "def add(a, b):\n    return b + a  # mine\n"


def _by_id(nb):
    return {grade_id(c): c for c in nb.cells if grade_id(c)}


def _ids(nb):
    return [grade_id(c) or f"<{c.source[:12]}>" for c in nb.cells]


def test_cell_roles(toy_release):
    roles = {grade_id(c): cell_role(c) for c in toy_release.cells}
    assert roles == {
        "intro": LOCKED,
        "setup": LOCKED,
        "add": ANSWER,
        "test_add": TEST,
        "scale": ANSWER,
        "test_scale": TEST,
        "train": LOCKED,
        "essay": MANUAL,
    }
    assert cell_role(new_code_cell("x")) == PLAIN
    weird = new_code_cell("x", metadata={"nbgrader": "yes"})
    assert cell_role(weird) == PLAIN and grade_id(weird) is None


def test_restore_of_the_key_is_the_key(toy_key, toy_release):
    r = restore(toy_key, toy_release)
    assert (r.missing, r.edited, r.duplicates) == ([], [], [])
    assert r.answers_found == ["add", "scale", "essay"]
    assert [c.source for c in r.notebook.cells] == [c.source for c in toy_key.cells]
    assert _ids(r.notebook) == _ids(toy_release)


def test_answers_and_extra_cells_stay_in_place(toy_key, toy_release):
    nb = build(toy_key, answers={"add": ADD}, extra={"add": "helper = 1", "scale": "print(2)"})
    nb.cells.insert(0, new_markdown_cell("my notes"))
    r = restore(nb, toy_release)
    ids = _ids(r.notebook)
    assert ids == [
        "<my notes>",
        "intro",
        "setup",
        "add",
        "<helper = 1>",
        "test_add",
        "scale",
        "<print(2)>",
        "test_scale",
        "train",
        "essay",
    ]
    assert _by_id(r.notebook)["add"].source == ADD
    assert r.answers_found == ["add", "scale", "essay"]
    assert r.edited == [] and r.missing == []


def test_edited_locked_and_test_cells_are_restored(toy_key, toy_release):
    nb = copy.deepcopy(toy_key)
    cells = _by_id(nb)
    cells["test_add"].source = "pass  # tests? what tests"
    cells["setup"].source = "import numpy as np\nnp.allclose = lambda *a, **k: True"
    cells["intro"].metadata["nbgrader"]["locked"] = False
    r = restore(nb, toy_release)
    assert sorted(r.edited) == ["intro", "setup", "test_add"]
    rel = _by_id(toy_release)
    for gid in ("test_add", "setup", "intro"):
        restored = _by_id(r.notebook)[gid]
        assert restored.source == rel[gid].source
        assert restored.metadata == rel[gid].metadata


def test_deleted_locked_and_test_cells_come_back(toy_key, toy_release):
    nb = copy.deepcopy(toy_key)
    nb.cells = [c for c in nb.cells if grade_id(c) not in ("setup", "test_scale", "intro")]
    r = restore(nb, toy_release)
    assert sorted(r.missing) == ["intro", "setup", "test_scale"]
    assert _ids(r.notebook) == _ids(toy_release)
    assert _by_id(r.notebook)["setup"].source == _by_id(toy_release)["setup"].source


def test_deleted_answer_cell_gets_the_stub(toy_key, toy_release):
    nb = copy.deepcopy(toy_key)
    nb.cells = [c for c in nb.cells if grade_id(c) != "add"]
    r = restore(nb, toy_release)
    assert "add" not in r.answers_found and "add" not in r.missing
    assert _by_id(r.notebook)["add"].source == _by_id(toy_release)["add"].source


def test_student_metadata_never_survives(toy_key, toy_release):
    nb = copy.deepcopy(toy_key)
    answer = _by_id(nb)["add"]
    answer.metadata["nbgrader"].update(points=1000, grade=True)
    answer.metadata["tags"] = ["training"]
    rogue = new_code_cell(
        "x = 1",
        metadata={
            "nbgrader": {"grade": True, "grade_id": "bonus", "points": 50, "solution": False},
            "tags": ["training"],
            "autograder": {"points": 99},
        },
    )
    rogue.outputs = [nbformat.v4.new_output("stream", text="old output")]
    rogue.execution_count = 7
    nb.cells.insert(3, rogue)
    nb.cells.append(new_raw_cell("raw", metadata={"tags": ["x"]}))
    r = restore(nb, toy_release)
    assert _by_id(r.notebook)["add"].metadata == _by_id(toy_release)["add"].metadata
    extra = [c for c in r.notebook.cells if c.source == "x = 1"]
    assert len(extra) == 1
    assert extra[0].metadata == {} and extra[0].outputs == [] and extra[0].execution_count is None
    assert grade_id(extra[0]) is None and cell_role(extra[0]) == PLAIN
    raw = [c for c in r.notebook.cells if c.cell_type == "raw"]
    assert len(raw) == 1 and raw[0].metadata == {}
    assert r.notebook.metadata == toy_release.metadata
    nbformat.validate(r.notebook)


def test_duplicates_count_once(toy_key, toy_release):
    nb = copy.deepcopy(toy_key)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if grade_id(cell) in ("add", "test_add"):
            dup = copy.deepcopy(cell)
            dup.source = "def add(a, b):\n    return 0\n" if grade_id(cell) == "add" else "pass"
            cells.append(dup)
    nb.cells = cells
    r = restore(nb, toy_release)
    assert sorted(r.duplicates) == ["add", "test_add"]
    assert _ids(r.notebook) == _ids(toy_release)  # the copies are dropped, not kept as extras
    assert _by_id(r.notebook)["add"].source == _by_id(toy_key)["add"].source
    assert all("return 0" not in c.source for c in r.notebook.cells)


def test_code_cells_to_run_leaves_out_tests_and_skip_tags(toy_key, toy_release):
    nb = restore(toy_key, toy_release).notebook
    run = code_cells_to_run(nb, ("training",))
    assert [grade_id(c) for _, c in run] == ["setup", "add", "scale"]
    numbers = [n for n, _ in run]
    wanted = ("setup", "add", "scale")
    assert numbers == [i + 1 for i, c in enumerate(nb.cells) if grade_id(c) in wanted]
    assert [grade_id(c) for _, c in code_cells_to_run(nb, ())] == ["setup", "add", "scale", "train"]


def test_belongs_to(toy_key, toy_release):
    assert belongs_to(toy_key, toy_release, "toy")
    other = new_notebook(
        cells=[
            new_code_cell(
                "x = 1",
                metadata={
                    "nbgrader": {
                        "grade_id": "lab9_q1",
                        "solution": True,
                        "grade": False,
                        "locked": False,
                    }
                },
            )
        ]
    )
    assert not belongs_to(other, toy_release, "toy")
    tagged_other = copy.deepcopy(toy_key)
    tagged_other.metadata["autograder"] = {"assignment": "lab9"}
    assert not belongs_to(tagged_other, toy_release, "toy")
    # a notebook with most cells deleted still counts if it is tagged as this assignment
    stripped = new_notebook(cells=[new_code_cell(ADD)])
    assert not belongs_to(stripped, toy_release, "toy")
    stripped.metadata["autograder"] = {"assignment": "toy"}
    assert belongs_to(stripped, toy_release, "toy")
    # half of the ids is enough
    half = copy.deepcopy(toy_key)
    half.metadata.pop("autograder", None)
    half.cells = half.cells[:4]
    assert belongs_to(half, toy_release, "toy")
    half.cells = half.cells[:3]
    assert not belongs_to(half, toy_release, "toy")


@pytest.mark.parametrize("junk", ["toy", ["toy"], 7, None])
def test_belongs_to_with_junk_autograder_metadata(toy_release, junk):
    nb = new_notebook(cells=[new_code_cell(ADD)])
    nb.metadata["autograder"] = junk
    assert belongs_to(nb, toy_release, "toy") is False


# -- read_notebook


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty file"),
        (b"this is not json {", "not a notebook (not JSON)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "not a notebook (not JSON)"),
        (b"[1, 2, 3]", "no nbformat version"),
        (b'{"cells": []}', "no nbformat version"),
        (b'{"nbformat": 99, "nbformat_minor": 0, "cells": []}', "not a notebook"),
        (
            b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": {"a": 1}}',
            "not a notebook",
        ),
        (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [5]}', "not a notebook"),
        (b"[" * 200_000, "not a notebook"),
    ],
    ids=["empty", "text", "png", "list", "no-version", "v99", "cells-dict", "cell-int", "deep"],
)
def test_read_notebook_errors(tmp_path, data, words):
    path = tmp_path / "s.ipynb"
    path.write_bytes(data)
    with pytest.raises(NotebookError) as info:
        read_notebook(path)
    assert words in str(info.value)
    assert info.value.exit_code == 5


def test_read_notebook_missing_and_too_large(tmp_path, monkeypatch):
    with pytest.raises(NotebookError, match="unreadable"):
        read_notebook(tmp_path / "none.ipynb")
    path = write(new_notebook(), tmp_path / "big.ipynb")
    with pytest.raises(NotebookError, match="too large"):
        read_notebook(path, max_bytes=10)


def test_read_notebook_refuses_too_many_cells_before_nbformat_builds_them(tmp_path):
    nb = new_notebook(cells=[new_code_cell("1") for _ in range(50)])
    path = write(nb, tmp_path / "many.ipynb")
    with pytest.raises(NotebookError, match="too many cells \\(50; the limit is 10\\)"):
        read_notebook(path, max_cells=10)
    assert len(read_notebook(path).cells) == 50


def test_read_notebook_refuses_a_container_bomb_before_parsing_it(tmp_path, toy_key):
    """10 million `{}` in one cell's metadata fit in 29 MiB and took 5 GB to build."""
    data = json.loads(nbformat.writes(toy_key))
    data["cells"][0]["metadata"]["x"] = [{}] * 200_000
    path = tmp_path / "bomb.ipynb"
    path.write_text(json.dumps(data))
    with pytest.raises(NotebookError, match="more than 100,000 JSON objects and arrays"):
        read_notebook(path)


def test_json_counts_brackets_and_commas_outside_strings_past_the_rough_bound(monkeypatch):
    from autograder import notebook

    text = rb'{"a": "{{[[,", "b": ["\\", "\"{,"], "c": {}}'
    assert json.loads(text) == {"a": "{{[[,", "b": ["\\", '"{,'], "c": {}}
    assert notebook.json_counts(text) == (8, 14)  # every bracket and comma: enough
    monkeypatch.setattr(notebook, "MAX_JSON_CONTAINERS", 3)
    # the object, the list, the inner object; and 3 commas: 7 values in all
    assert notebook.json_counts(text) == (3, 7)


def test_a_notebook_of_millions_of_short_strings_is_refused_before_parsing(tmp_path, toy_key):
    """6.4 million two-letter strings in one output (31 MiB) cost 1.2 GB once parsed."""
    nb = copy.deepcopy(toy_key)
    stream = {"output_type": "stream", "name": "stdout", "text": ["ab"] * 2_000_000}
    nb.cells[1]["outputs"] = [stream]
    nb.cells[1]["cell_type"] = "code"
    path = tmp_path / "strings.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(NotebookError, match="more than 1,000,000 JSON values"):
        read_notebook(path)


def test_read_notebook_writes_lone_surrogates_as_escapes(tmp_path, toy_key):
    """A lone surrogate is valid JSON (an escape) but no UTF-8 writer takes it."""
    nb = copy.deepcopy(toy_key)
    nb.cells[1].source += "\n# \ud800 end"
    path = tmp_path / "s.ipynb"
    path.write_text(json.dumps(nb))  # ASCII, with the surrogate as `\\ud800`
    read = read_notebook(path)
    assert read.cells[1].source.endswith("# \\ud800 end")
    nbformat.writes(read).encode("utf-8")


def test_read_notebook_v4_and_v3(tmp_path, toy_key):
    path = write(toy_key, tmp_path / "v4.ipynb")
    nb = read_notebook(path)
    assert nb.nbformat == 4 and _ids(nb) == _ids(toy_key)
    v3 = nbformat.convert(copy.deepcopy(toy_key), 3)
    old = tmp_path / "v3.ipynb"
    old.write_text(nbformat.writes(v3, version=3))
    assert json.loads(old.read_text())["nbformat"] == 3
    nb3 = read_notebook(old)
    assert nb3.nbformat == 4
    assert _by_id(nb3)["add"].source == _by_id(toy_key)["add"].source


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(metadata=[]),
        lambda c: c.update(source=["a", 1]),
        lambda c: c["metadata"].update(nbgrader=["x"]),
        lambda c: c["metadata"]["nbgrader"].update(grade_id=["add"]),
    ],
    ids=["metadata-list", "source-int", "nbgrader-list", "grade-id-list"],
)
def test_odd_cell_shapes_never_crash_restore(tmp_path, toy_key, toy_release, edit):
    data = json.loads(nbformat.writes(toy_key))
    add = next(
        c for c in data["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "add"
    )
    edit(add)
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(data))
    try:
        nb = read_notebook(path)
    except NotebookError:
        return  # refused cleanly is fine
    r = restore(nb, toy_release)
    ids = [grade_id(c) for c in r.notebook.cells if grade_id(c)]
    assert ids == [grade_id(c) for c in toy_release.cells]


def test_nbgrader_checksum_matches_nbgrader(toy_key):
    """The student checker's checksum is nbgrader's, for every kind of cell (and edits)."""
    from nbgrader.utils import compute_checksum

    from autograder.notebook import nbgrader_checksum

    cells = [c for c in toy_key.cells if "nbgrader" in c.metadata]
    assert cells
    for cell in cells:
        assert nbgrader_checksum(cell) == compute_checksum(cell)
        edited = copy.deepcopy(cell)
        edited.source += "\n# edited"
        assert nbgrader_checksum(edited) == compute_checksum(edited) != compute_checksum(cell)
