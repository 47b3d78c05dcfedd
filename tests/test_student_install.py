"""The student install: `pip install` of the package without extras, as in Colab.

It must not bring TensorFlow or nbgrader (Colab's own TensorFlow stays as it is), and
`autograder check NOTEBOOK` must work with only the base dependencies. A fresh virtual
environment gets the package from this repository (`pip install REPO`, base dependencies
from the package index or pip's cache), then checks a released notebook of each assignment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from autograder.config import load_config
from autograder.notebook import grade_id
from autograder.release import release_notebook

REPO = Path(__file__).resolve().parents[1]


def _run(args: list, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def public_dir():
    """A folder every uid can read: as root, the checker's kernel runs under a sandbox uid
    of its own, which must reach the venv's Python (pytest's tmp_path is private)."""
    with tempfile.TemporaryDirectory(prefix="ag-student-", dir="/var/tmp") as tmp:
        os.chmod(tmp, 0o755)
        yield Path(tmp)


@pytest.mark.slow
def test_light_install_checks_a_released_notebook(tmp_path, public_dir):
    venv = public_dir / "student-venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    python = venv / "bin" / "python"
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AUTOGRADER_NO_BWRAP": "1",  # as in Colab: no bubblewrap there
        "AUTOGRADER_WARM": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **{k: v for k, v in os.environ.items() if k.startswith(("PIP_", "http", "HTTP"))},
    }
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "autograder", source / "autograder", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    install = _run([python, "-m", "pip", "install", "-q", source], env)
    assert install.returncode == 0, install.stderr[-3000:]
    for heavy in ("tensorflow", "keras", "nbgrader", "pytest"):
        probe = _run([python, "-c", f"import {heavy}"], env)
        assert probe.returncode != 0, f"the student install brought {heavy}"

    notebook = tmp_path / "lab4-cnn.ipynb"
    released = release_notebook(load_config(REPO / "assignments/lab4-cnn/assignment.toml"))
    nbformat.write(released, notebook)
    check = _run([venv / "bin" / "autograder", "check", notebook], env)
    # Submittable; the visible tests fail (no answers yet, and no TensorFlow here): exit 1.
    assert check.returncode == 1, (check.stdout[-2000:], check.stderr[-2000:])
    assert "NOT SUBMITTABLE" not in check.stdout
    assert "FAIL test_conv1d" in check.stdout

    edited = nbformat.read(notebook, as_version=4)
    next(c for c in edited.cells if grade_id(c) == "test_conv1d").source += "\n# changed"
    nbformat.write(edited, notebook)
    check = _run([venv / "bin" / "autograder", "check", notebook], env)
    assert check.returncode == 5, (check.stdout[-2000:], check.stderr[-2000:])
    assert "locked cell 'test_conv1d' was edited" in check.stdout

    # The practice assignment, as downloaded from Colab: the same light checker.
    notebook = tmp_path / "cnn-intro.ipynb"
    released = release_notebook(load_config(REPO / "assignments/cnn-intro/assignment.toml"))
    nbformat.write(released, notebook)
    check = _run([venv / "bin" / "autograder", "check", notebook], env)
    assert check.returncode == 1, (check.stdout[-2000:], check.stderr[-2000:])
    assert "NOT SUBMITTABLE" not in check.stdout
    assert "FAIL test_tensorboard" in check.stdout
