"""The pytest plugin that runs an assignment's hidden checks in the grader's process.

Check files are ordinary pytest modules. They get:
- the `submission` fixture: calls into the student's code (see autograder.bridge);
- the `rng` fixture: a numpy Generator seeded from the check's name, so hidden
  inputs are random in shape but identical across runs and submissions;
- the `assignment` fixture: the validated AssignmentConfig (at collection time, e.g.
  in `pytest_generate_tests`, `assignment_config(metafunc.config)` returns it);
- markers `@pytest.mark.question("conv1d")` (usually as module `pytestmark`) and
  `@pytest.mark.points(w)`, the check's weight within its question.

Only the exception *message* of a failed check reaches feedback, never its
traceback or source, so hidden inputs and check code stay hidden.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder import logs
from autograder.bridge import Submission
from autograder.checks import CheckFailure
from autograder.config import AssignmentConfig
from autograder.exceptions import AutograderError, BridgeError
from autograder.scoring import CheckResult

MAX_MESSAGE = 1500
log = logs.get(__name__)
_pyc_lock = threading.Lock()
_pyc_users = 0  # runs inside compiled_checks_kept (threads of one process: Dask)
_pyc_saved: tuple[bool, str | None] = (False, None)


class AutograderPlugin:
    def __init__(
        self,
        submission: Submission,
        config: AssignmentConfig,
        skip: frozenset[str] = frozenset(),
        only: frozenset[str] | None = None,
    ) -> None:
        self._submission = submission
        self.config = config  # public: checks read it through assignment_config()
        self.skip, self.only = skip, only
        self.results: list[CheckResult] = []
        self.errors: list[str] = []
        self._setup_s: dict[str, float] = {}  # a check's fixture set-up, counted in its time

    # -- configuration -------------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "question(id): the question a check belongs to")
        config.addinivalue_line("markers", "points(weight): the check's weight in its question")

    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self, session: pytest.Session) -> Any:
        # Only while the check modules are imported: a library a check imports later (Keras
        # in a model host) must come from its own compiled files, not be compiled again.
        with compiled_checks_kept():
            return (yield)

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        keep, drop = [], []
        for item in items:
            qid = question_of(item)
            if qid is None or qid not in self.config.questions:
                self.errors.append(f"{item.nodeid}: no known @pytest.mark.question")
                drop.append(item)
            elif qid in self.skip or (self.only is not None and qid not in self.only):
                drop.append(item)
            else:
                keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            # The traceback names check source: it goes to the grader's log, never to feedback.
            log.error("cannot collect %s:\n%s", report.nodeid, report.longreprtext)
            self.errors.append(f"cannot collect {report.nodeid}")

    # -- fixtures -----------------------------------------------------------------------
    @pytest.fixture(scope="session")
    def submission(self) -> Submission:
        return self._submission

    @pytest.fixture(scope="session")
    def assignment(self) -> AssignmentConfig:
        return self.config

    @pytest.fixture
    def rng(self, request: pytest.FixtureRequest) -> np.random.Generator:
        digest = hashlib.sha256(request.node.nodeid.split("::", 1)[-1].encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    # -- outcomes -------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when == "setup" and report.passed:
            self._setup_s[item.nodeid] = report.duration
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            passed = report.passed
            message = "" if passed else failure_message(call.excinfo)
            notes = [str(v)[:500] for k, v in report.user_properties if k == "note"]
            self.results.append(
                CheckResult(
                    name=item.name,
                    question=question_of(item) or "",
                    weight=weight_of(item),
                    passed=passed,
                    message=message,
                    notes=notes,
                    # With its set-up: the first check using a module fixture (a model
                    # built once for the module) pays for it, as the submission does.
                    seconds=round(report.duration + self._setup_s.pop(item.nodeid, 0.0), 3),
                )
            )


def assignment_config(pytest_config: pytest.Config) -> AssignmentConfig | None:
    """The config the grading plugin runs with, for checks that need it at collection
    time (before fixtures exist); None when pytest runs the checks without the plugin."""
    for plugin in pytest_config.pluginmanager.get_plugins():
        if isinstance(plugin, AutograderPlugin):
            return plugin.config
    return None


def question_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("question")
    return str(marker.args[0]) if marker and marker.args else None


def weight_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    if marker and marker.args:
        return float(marker.args[0])
    return 1.0


def failure_message(excinfo: Any) -> str:
    """The part of a failure a student may see: the message, never the traceback."""
    if excinfo is None:
        return "failed"
    exc = excinfo.value
    if isinstance(exc, CheckFailure):
        text = str(exc)
    elif isinstance(exc, AutograderError):
        text = str(exc)
    elif isinstance(exc, AssertionError):
        # A bare assert in a check: pytest's rewritten message would show check
        # source, so only its first line (the author's own message) is shown.
        first = str(exc).split("\n", 1)[0]
        text = first if first and not first.startswith("assert ") else "a hidden check failed"
    elif isinstance(exc, pytest.fail.Exception):
        text = str(exc)
    else:
        text = f"the check could not run ({type(exc).__name__})"
    if isinstance(exc, BridgeError):
        text = str(exc)
    return text[:MAX_MESSAGE]


def pyc_cache_dir() -> Path | None:
    """The grader's own bytecode cache: `$XDG_CACHE_HOME/autograder/pyc` (~/.cache by default).

    None unless it is a real folder of this uid that no one else may write to: a .pyc
    planted there would run in the grader.
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "autograder"
    folder = base / "pyc"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in (base, folder):
            info = path.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
    except OSError:
        return None
    return folder


@contextlib.contextmanager
def compiled_checks_kept() -> Iterator[None]:
    """Let pytest keep the check modules it rewrites, for later submissions and batches.

    pytest rewrites the asserts of every check module and compiles it again on each run,
    about 40 ms a submission, unless it may cache the result as a .pyc; with
    PYTHONDONTWRITEBYTECODE set (as here) it never may. While the checks are imported,
    bytecode goes to the grader's own cache (`pyc_cache_dir`), never into the assignment's folder.
    Python then reads every module first imported meanwhile from there too, so this is
    held only while pytest collects (imports) the check modules (`AutograderPlugin`).
    pytest checks each .pyc against its source's size and mtime, so an edited check is
    compiled again. Without a usable cache folder, nothing changes. Checks in a folder
    that is never seen again (a Dask task's) call `forget_compiled` when done.
    """
    global _pyc_users, _pyc_saved
    folder = pyc_cache_dir()
    if folder is None:
        yield
        return
    with _pyc_lock:
        if _pyc_users == 0:
            _pyc_saved = sys.dont_write_bytecode, sys.pycache_prefix
            sys.dont_write_bytecode, sys.pycache_prefix = False, str(folder)
        _pyc_users += 1
    try:
        yield
    finally:
        with _pyc_lock:
            _pyc_users -= 1
            if _pyc_users == 0:
                sys.dont_write_bytecode, sys.pycache_prefix = _pyc_saved


def forget_compiled(folder: Path) -> None:
    """Remove the cached bytecode of the modules under `folder` (about to be deleted)."""
    cache = pyc_cache_dir()
    if cache is not None:
        where = folder.resolve()
        shutil.rmtree(cache / where.relative_to(where.anchor), ignore_errors=True)


# Not `debugging` (pytest's unittest support reads its options) nor `junitxml`
# (`record_property`).
_UNUSED_PLUGINS = (
    "doctest", "pastebin", "stepwise", "setuponly", "setupplan", "faulthandler",
    "threadexception",
)  # fmt: skip


def run_checks(
    checks_dir: Path,
    submission: Submission,
    config: AssignmentConfig,
    *,
    skip: frozenset[str] | set[str] = frozenset(),
    only: frozenset[str] | set[str] | None = None,
    quiet: bool = True,
) -> list[CheckResult]:
    """Run every check under `checks_dir` against one submission; return the outcomes."""
    plugin = AutograderPlugin(
        submission, config, frozenset(skip), None if only is None else frozenset(only)
    )
    # A safety net, not a limit students meet: a check stuck in the grader must not
    # hang the batch. Only the signal method is safe in-process, so only on the main thread.
    budget = config.limits.submission_timeout_s + (
        config.accuracy.timeout_s if config.accuracy else 0
    )
    timeout_args = (
        [f"--timeout={budget:g}", "--timeout_method=signal"]
        if threading.current_thread() is threading.main_thread()
        else []
    )
    args = [
        # Only the plugins named here: loading every installed one through its entry
        # point costs ~20 ms a submission. pytest-timeout always, so that its `timeout`
        # marker is known (--strict-markers) on every thread, as in `validate`.
        "--disable-plugin-autoload",
        "-p",
        "pytest_timeout",
        *timeout_args,
        str(checks_dir),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:unraisableexception",  # its gc.collect() calls cost ~1.7 s once TF is loaded
        # Log capture, ~20 ms a submission of ~120 checks: what a check could capture is
        # the grader's own logging (the student's runs in the kernel), so no `caplog`.
        "-p",
        "no:logging",
        # Plugins for a developer at a terminal, not for checks (~20 ms a submission with
        # the capture below); the fixtures check authors use (tmp_path, monkeypatch,
        # capsys, recwarn, record_property) and unittest-style checks stay.
        *(arg for name in _UNUSED_PLUGINS for arg in ("-p", f"no:{name}")),
        # Output captured at the sys level: a check's output is the grader's own, never
        # a C library's, and file-descriptor capture costs system calls around every check.
        "--capture=sys",
        "--import-mode=importlib",
        "--rootdir",
        str(checks_dir),
        "-c",
        os.devnull,
        "--strict-markers",
        "-o",
        "console_output_style=classic",
        "--tb=no",
        "-qq" if quiet else "-q",
    ]
    added = str(checks_dir) not in sys.path
    if added:
        sys.path.insert(0, str(checks_dir))  # so checks can import their own helpers
    before = set(sys.modules)
    try:
        if quiet:
            with open(os.devnull, "w") as devnull, _redirect(devnull):
                code = pytest.main(args, plugins=[plugin])
        else:
            code = pytest.main(args, plugins=[plugin])
    finally:
        if added:
            sys.path.remove(str(checks_dir))
        for name in set(sys.modules) - before:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and str(checks_dir) in str(file):
                del sys.modules[name]
    if plugin.errors:
        raise AutograderError(
            f"the checks in {checks_dir} are broken: "
            + "; ".join(plugin.errors[:3])
            + ". Fix the check files (run `autograder validate`)"
        )
    if code not in (
        pytest.ExitCode.OK,
        pytest.ExitCode.TESTS_FAILED,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    ):
        raise AutograderError(f"pytest could not run the checks in {checks_dir} (exit {code})")
    return plugin.results


class _redirect:
    """Silence pytest's terminal output at the file-descriptor level of sys.stdout."""

    def __init__(self, sink) -> None:
        self.sink = sink

    def __enter__(self):
        self.saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.sink

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved
