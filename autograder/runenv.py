"""Running trusted instructor notebooks and nbgrader with the environment they need.

The one home for environment handling outside the sandbox: the source notebook and
the answer key run in an nbclient kernel that is handed its environment
(jupyter_client's `start_kernel(env=...)`), so this process's `os.environ` is never
swapped. The single exception is PATH for nbgrader, which shells out to `alembic`
without a way to pass an environment.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nbformat import NotebookNode


def kernel_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, then what a notebook run with no one watching needs,
    then `extra` on top.

    AUTOGRADER_HEADLESS=1 tells a notebook to skip what only a person can use (e.g. a
    TensorBoard server in an output cell); matplotlib draws off-screen; and when
    AUTOGRADER_DATA_DIR is unset, a `shared/datasets` folder found above the working
    folder or this package (autograder.datasets) is passed on, because the kernel runs in
    a throwaway folder from which the notebook's own search would not find it.
    """
    env = {**os.environ, "MPLBACKEND": "Agg", "AUTOGRADER_HEADLESS": "1"}
    if not env.get("AUTOGRADER_DATA_DIR"):
        from autograder.datasets import shared_mnist_dirs

        found = shared_mnist_dirs()
        if found:
            env["AUTOGRADER_DATA_DIR"] = str(found[0].parent)
    return {**env, **(extra or {})}


def execute_notebook(
    nb: NotebookNode, *, timeout: int, env: dict[str, str] | None = None
) -> NotebookNode:
    """Run every cell in a fresh python3 kernel in a throwaway folder; raises on an error.

    `env` adds to the kernel's environment only (CellExecutionError on a failing cell).
    """
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="ag-run-") as tmp:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": tmp}}
        )
        return client.execute(env=kernel_env(env))


@contextlib.contextmanager
def python_bin_on_path() -> Iterator[None]:
    """The virtualenv's bin/ on PATH, for tools nbgrader runs as subprocesses (alembic).

    The grader may run from a virtualenv that was never activated.
    """
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{saved}"
    try:
        yield
    finally:
        os.environ["PATH"] = saved
