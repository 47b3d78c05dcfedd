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
