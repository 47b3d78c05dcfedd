"""Shared fixtures: the toy assignment (fast, no TensorFlow) and submission builders."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from autograder.config import AssignmentConfig, load_config
from autograder.notebook import grade_id
from autograder.release import answer_key, release_notebook

REPO = Path(__file__).resolve().parent.parent
TOY = REPO / "tests" / "fixtures" / "toy"


@pytest.fixture(scope="session", autouse=True)
def reference_cache(tmp_path_factory) -> Iterator[Path]:
    """The reference model's accuracies are cached per test session, never in ~/.cache.

    Set in os.environ so that `autograder grade` run as a subprocess uses it too; a test
    that needs an empty cache sets AUTOGRADER_REFERENCE_CACHE itself (monkeypatch).
    """
    folder = tmp_path_factory.mktemp("reference-cache")
    old = os.environ.get("AUTOGRADER_REFERENCE_CACHE")
    os.environ["AUTOGRADER_REFERENCE_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("AUTOGRADER_REFERENCE_CACHE", None)
    else:
        os.environ["AUTOGRADER_REFERENCE_CACHE"] = old


@pytest.fixture(autouse=True)
def no_kept_models() -> Iterator[None]:
    """Each test starts with no model kept by an in-process model host (model_side.IDLE)."""
    from autograder import model_side

    for kept in (model_side.IDLE, model_side.REUSABLE):
        kept.clear()
    yield


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> Path:
    """A copy of the toy assignment outside the source tree."""
    dest = tmp_path_factory.mktemp("assignments") / "toy"
    shutil.copytree(TOY, dest)
    return dest


@pytest.fixture(scope="session")
def toy(toy_dir) -> AssignmentConfig:
    return load_config(toy_dir / "assignment.toml")


@pytest.fixture(scope="session")
def toy_release(toy):
    return release_notebook(toy)


@pytest.fixture(scope="session")
def toy_key(toy, toy_release):
    return answer_key(toy, toy_release)


def build(key, answers=None, extra=None):
    """A submission from the answer key: replaced answer cells, extra cells after ids."""
    nb = copy.deepcopy(key)
    cells = []
    for cell in nb.cells:
        gid = grade_id(cell)
        if answers and gid in answers:
            cell.source = answers[gid]
        cells.append(cell)
        if extra and gid in extra:
            cells.append(new_code_cell(extra[gid]))
    nb.cells = cells
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
