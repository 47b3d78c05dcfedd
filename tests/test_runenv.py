"""Trusted notebooks run with their environment handed to the kernel, not swapped in."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.runenv import execute_notebook, kernel_env, python_bin_on_path


def test_kernel_env_layers():
    env = kernel_env({"MPLBACKEND": "svg", "X": "1"})
    assert env["X"] == "1" and env["MPLBACKEND"] == "svg"
    assert kernel_env()["MPLBACKEND"] == "Agg"
    assert kernel_env()["AUTOGRADER_HEADLESS"] == "1"


def test_kernel_env_passes_a_shared_data_folder_on(tmp_path, monkeypatch):
    """A trusted notebook runs in a throwaway folder: a shared/datasets folder found from
    here is handed to it, unless AUTOGRADER_DATA_DIR says where the data is."""
    (tmp_path / "shared" / "datasets" / "mnist").mkdir(parents=True)
    work = tmp_path / "course" / "repo"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv("AUTOGRADER_DATA_DIR", raising=False)
    assert kernel_env()["AUTOGRADER_DATA_DIR"] == str(tmp_path / "shared" / "datasets")
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", "/data")
    assert kernel_env()["AUTOGRADER_DATA_DIR"] == "/data"


def test_python_bin_on_path_is_restored(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    with python_bin_on_path():
        assert os.environ["PATH"].endswith(os.pathsep + "/usr/bin")
    assert os.environ["PATH"] == "/usr/bin"


@pytest.mark.slow
def test_execute_notebook_passes_env_to_the_kernel_only(monkeypatch):
    monkeypatch.delenv("AG_TEST_VAR", raising=False)
    nb = new_notebook(cells=[new_code_cell("import os; print(os.environ['AG_TEST_VAR'])")])
    before = dict(os.environ)
    ran = execute_notebook(nbformat.from_dict(nb), timeout=60, env={"AG_TEST_VAR": "seen"})
    assert ran.cells[0].outputs[0]["text"].strip() == "seen"
    assert dict(os.environ) == before
