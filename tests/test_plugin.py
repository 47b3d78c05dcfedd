"""The pytest plugin: hidden checks run against a submission; only their messages come out."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.bridge import LocalSubmission
from autograder.exceptions import AutograderError
from autograder.plugin import run_checks

GOOD = {"add": lambda a, b: a + b, "scale": lambda x, k=2.0: x * k}
BAD = {"add": lambda a, b: a - b, "scale": lambda x, k=2.0: x}

CHECK_ADD = """
import pytest
from autograder.checks import expect_int

pytestmark = pytest.mark.question("add")

@pytest.mark.points(1)
def test_small(submission):
    expect_int(submission.call("add", 2, 3), 5, what="add(2, 3)")

@pytest.mark.points(3)
def test_random(submission, rng, record_property):
    values = rng.integers(-1000, 1000, size=(4, 2)).tolist()
    record_property("note", json.dumps(values))
    for a, b in values:
        expect_int(submission.call("add", a, b), a + b, what="add of two integers")

def test_other_random(submission, rng, record_property):
    record_property("note", json.dumps(rng.integers(-1000, 1000, size=(4, 2)).tolist()))
""".replace("import pytest\n", "import json\nimport pytest\n", 1)

CHECK_SCALE = """
import numpy as np
import pytest
from autograder.checks import expect_array

pytestmark = pytest.mark.question("scale")

def test_vector(submission, rng):
    x = rng.normal(size=5)
    expect_array(submission.call("scale", x, 3.0), 3.0 * x, what="scale of a 5-vector")

def test_bare_assert(submission):
    SECRET_INPUT_7731 = 12345
    assert submission.call("add", SECRET_INPUT_7731, 1) == SECRET_INPUT_7731 + 1

def test_author_message(submission):
    got = submission.call("add", 1, 1)
    assert got == 2, "add(1, 1) should be 2"

def test_raises_other(submission):
    hidden = {"secret_key_9921": 1}
    hidden[submission.call("add", 0, 0)]

def test_missing_function(submission):
    submission.call("nonexistent_fn")
"""


def _checks(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "checks"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def _run(tmp_path, folder, toy, namespace, **kw):
    sub = LocalSubmission(namespace, tmp_path / "scratch")
    return {r.name: r for r in run_checks(folder, sub, toy, **kw)}


@pytest.fixture
def checks(tmp_path):
    return _checks(tmp_path, {"test_add.py": CHECK_ADD, "test_scale.py": CHECK_SCALE})


def test_questions_points_and_outcomes(tmp_path, toy, checks):
    results = _run(tmp_path, checks, toy, GOOD)
    assert set(results) == {
        "test_small",
        "test_random",
        "test_other_random",
        "test_vector",
        "test_bare_assert",
        "test_author_message",
        "test_raises_other",
        "test_missing_function",
    }
    assert results["test_small"].question == "add" and results["test_small"].weight == 1.0
    assert results["test_random"].weight == 3.0 and results["test_other_random"].weight == 1.0
    assert results["test_vector"].question == "scale"
    for name in (
        "test_small",
        "test_random",
        "test_vector",
        "test_bare_assert",
        "test_author_message",
    ):
        assert results[name].passed and results[name].message == "", name
    assert not results["test_raises_other"].passed  # KeyError: 5 is not in the dict
    bad = _run(tmp_path, checks, toy, BAD)
    assert not bad["test_small"].passed and not bad["test_vector"].passed
    assert bad["test_small"].message == "add(2, 3): expected 5, got -1"
    assert "scale of a 5-vector" in bad["test_vector"].message


def test_failure_messages_never_show_check_source(tmp_path, toy, checks):
    results = _run(tmp_path, checks, toy, BAD)
    source = CHECK_ADD + CHECK_SCALE
    assert results["test_bare_assert"].message == "a hidden check failed"
    assert results["test_author_message"].message == "add(1, 1) should be 2"
    assert results["test_raises_other"].message == "the check could not run (KeyError)"
    assert "no function named 'nonexistent_fn'" in results["test_missing_function"].message
    for r in results.values():
        for secret in (
            "SECRET_INPUT_7731",
            "12345",
            "secret_key_9921",
            "assert ",
            "hidden[",
            "rng.integers",
            "record_property",
        ):
            assert secret not in r.message, (r.name, r.message)
        for line in source.splitlines():
            if len(line.strip()) > 20:
                assert line.strip() not in r.message, (r.name, line)


def _notes(results, name):
    return json.loads(results[name].notes[0])


def test_rng_is_deterministic_per_check(tmp_path, toy, checks):
    first = _run(tmp_path, checks, toy, GOOD)
    second = _run(tmp_path, checks, toy, GOOD)
    assert _notes(first, "test_random") == _notes(second, "test_random")
    assert _notes(first, "test_other_random") == _notes(second, "test_other_random")
    assert _notes(first, "test_random") != _notes(first, "test_other_random")
    # the seed depends on the check, not on where the checks folder lives
    moved = _checks(tmp_path / "elsewhere", {"test_add.py": CHECK_ADD})
    third = _run(tmp_path, moved, toy, GOOD)
    assert _notes(third, "test_random") == _notes(first, "test_random")


def test_skip_and_only(tmp_path, toy, checks):
    skipped = _run(tmp_path, checks, toy, GOOD, skip={"scale"})
    assert {r.question for r in skipped.values()} == {"add"}
    only = _run(tmp_path, checks, toy, GOOD, only={"scale"})
    assert {r.question for r in only.values()} == {"scale"}
    assert _run(tmp_path, checks, toy, GOOD, skip={"add", "scale"}) == {}


def test_module_without_question_marker_is_an_error(tmp_path, toy, checks):
    (checks / "test_orphan.py").write_text("def test_lonely(submission):\n    pass\n")
    with pytest.raises(AutograderError) as info:
        _run(tmp_path, checks, toy, GOOD)
    assert "test_orphan.py" in str(info.value) and "question" in str(info.value)


def test_unknown_question_id_is_an_error(tmp_path, toy):
    folder = _checks(
        tmp_path,
        {
            "test_x.py": "import pytest\n"
            "pytestmark = pytest.mark.question('nope')\n"
            "def test_x(submission):\n    pass\n"
        },
    )
    with pytest.raises(AutograderError, match="test_x.py"):
        _run(tmp_path, folder, toy, GOOD)


def test_broken_check_module_is_an_error(tmp_path, toy):
    folder = _checks(tmp_path, {"test_broken.py": "import pytest\ndef test_x(:\n"})
    with pytest.raises(AutograderError, match="test_broken.py"):
        _run(tmp_path, folder, toy, GOOD)


def test_unknown_marker_is_an_error(tmp_path, toy):
    folder = _checks(
        tmp_path,
        {
            "test_m.py": "import pytest\n"
            "pytestmark = pytest.mark.question('add')\n"
            "@pytest.mark.pointz(2)\n"
            "def test_x(submission):\n    pass\n"
        },
    )
    with pytest.raises(AutograderError):
        _run(tmp_path, folder, toy, GOOD)


def test_empty_checks_folder_gives_no_results(tmp_path, toy):
    assert _run(tmp_path, _checks(tmp_path, {}), toy, GOOD) == {}


def test_fixture_error_counts_as_a_failed_check(tmp_path, toy):
    folder = _checks(
        tmp_path,
        {
            "test_f.py": """
        import pytest
        pytestmark = pytest.mark.question("add")

        @pytest.fixture
        def data():
            raise RuntimeError("secret fixture detail")

        def test_uses(submission, data):
            pass
    """
        },
    )
    results = _run(tmp_path, folder, toy, GOOD)
    assert not results["test_uses"].passed
    assert "secret fixture detail" not in results["test_uses"].message
    assert results["test_uses"].message == "the check could not run (RuntimeError)"


def test_checks_can_import_their_helpers_and_leave_no_trace(tmp_path, toy):
    folder = _checks(
        tmp_path,
        {
            "_ref_helper_4417.py": "def expected(a, b):\n    return a + b\n",
            "test_h.py": """
            import pytest
            from _ref_helper_4417 import expected
            pytestmark = pytest.mark.question("add")

            def test_h(submission):
                assert submission.call("add", 4, 5) == expected(4, 5), "add(4, 5) is wrong"
        """,
        },
    )
    path_before = list(sys.path)
    results = _run(tmp_path, folder, toy, GOOD)
    assert results["test_h"].passed
    assert sys.path == path_before
    assert "_ref_helper_4417" not in sys.modules
    files = [str(getattr(m, "__file__", "") or "") for m in list(sys.modules.values())]
    assert not any(str(folder) in f for f in files)
    results = _run(tmp_path, folder, toy, BAD)
    assert results["test_h"].message == "add(4, 5) is wrong"


def test_toy_checks_against_local_functions(tmp_path, toy):
    import numpy as np

    good = {"add": lambda a, b: a + b, "scale": lambda x, k=2.0: np.asarray(x, float) * k}
    results = run_checks(toy.checks_dir, LocalSubmission(good, tmp_path / "s"), toy)
    assert len(results) == 4 and all(r.passed for r in results)
    assert sorted((r.question, r.weight) for r in results) == [
        ("add", 1.0),
        ("add", 3.0),
        ("scale", 1.0),
        ("scale", 2.0),
    ]


def test_checks_see_the_config_at_collection_time(tmp_path, toy):
    """`assignment_config` is the public way (no private attribute) to parametrize by it."""
    folder = _checks(
        tmp_path,
        {
            "test_param.py": """
            import pytest
            from autograder.plugin import assignment_config

            pytestmark = pytest.mark.question("add")

            def pytest_generate_tests(metafunc):
                config = assignment_config(metafunc.config)
                metafunc.parametrize("qid", sorted(config.questions))

            def test_each(submission, qid):
                assert qid in ("add", "essay", "scale")
            """
        },
    )
    results = run_checks(folder, LocalSubmission(GOOD, tmp_path / "scratch"), toy)
    assert [r.name for r in results] == ["test_each[add]", "test_each[essay]", "test_each[scale]"]
    assert all(r.passed for r in results)


def test_assignment_config_without_the_plugin_is_none(pytestconfig):
    from autograder.plugin import assignment_config

    assert assignment_config(pytestconfig) is None


def test_check_modules_are_compiled_once_into_the_graders_own_cache(
    tmp_path, toy, checks, monkeypatch
):
    """pytest's assert rewriting runs once per check module, not once per submission, even
    with PYTHONDONTWRITEBYTECODE; its .pyc go to the grader's cache, not the assignment's
    folder, and the interpreter's own settings come back afterwards."""
    from _pytest.assertion import rewrite

    from autograder import plugin

    rewritten = []
    real = rewrite._rewrite_test
    monkeypatch.setattr(
        rewrite, "_rewrite_test", lambda fn, config: rewritten.append(fn.name) or real(fn, config)
    )
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for namespace in (GOOD, BAD, GOOD):
        assert _run(tmp_path, checks, toy, namespace)["test_small"].passed == (namespace is GOOD)
    assert sorted(rewritten) == ["test_add.py", "test_scale.py"]
    assert sys.dont_write_bytecode is True and sys.pycache_prefix is None
    assert not (checks / "__pycache__").exists()
    folder = tmp_path / "cache" / "autograder" / "pyc"
    assert plugin.pyc_cache_dir() == folder and folder.stat().st_mode & 0o777 == 0o700
    assert any(p.name.startswith("test_add.") for p in folder.rglob("*.pyc"))
    (checks / "test_add.py").write_text((checks / "test_add.py").read_text() + "\n# edited\n")
    _run(tmp_path, checks, toy, GOOD)
    assert sorted(rewritten) == ["test_add.py", "test_add.py", "test_scale.py"]
    # A folder that goes away (a Dask task's) takes its bytecode with it; the rest stays.
    other = _checks(tmp_path / "other", {"test_add.py": CHECK_ADD})
    _run(tmp_path, other, toy, GOOD)
    plugin.forget_compiled(checks)
    assert not any(p.name.startswith("test_scale.") for p in folder.rglob("*.pyc"))
    assert any(p.name.startswith("test_add.") for p in folder.rglob("*.pyc"))


def test_the_cache_is_used_only_while_the_check_modules_are_imported(tmp_path, toy, monkeypatch):
    """A library a check imports while it runs (Keras, in a model host) must load from its
    own compiled files: under the cache prefix it would be compiled again from source."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seen = tmp_path / "seen.txt"
    check = f"""
        import sys
        import pytest
        pytestmark = pytest.mark.question("add")
        AT_IMPORT = sys.pycache_prefix

        def test_where(submission):
            with open({str(seen)!r}, "w") as fh:
                fh.write(f"{{AT_IMPORT}}|{{sys.pycache_prefix}}")
    """
    _run(tmp_path, _checks(tmp_path, {"test_where.py": check}), toy, GOOD)
    at_import, at_run = seen.read_text().split("|")
    assert at_import == str(tmp_path / "cache" / "autograder" / "pyc")
    assert at_run == str(sys.pycache_prefix)


def test_a_cache_folder_others_may_write_to_is_not_used(tmp_path, monkeypatch):
    from autograder import plugin

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "autograder" / "pyc").mkdir(parents=True)
    (tmp_path / "autograder").chmod(0o777)
    assert plugin.pyc_cache_dir() is None
    (tmp_path / "autograder").chmod(0o755)
    assert plugin.pyc_cache_dir() == tmp_path / "autograder" / "pyc"
    (tmp_path / "autograder" / "pyc").rmdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "autograder" / "pyc").symlink_to(tmp_path / "elsewhere")
    assert plugin.pyc_cache_dir() is None


def test_a_check_stuck_in_the_grader_is_stopped_by_the_safety_net(tmp_path, toy):
    """pytest-timeout is loaded by name (entry-point plugins are not autoloaded) and stops
    a check that would hang the batch, past the submission's whole time budget."""
    import dataclasses
    import time

    folder = _checks(
        tmp_path,
        {
            "test_stuck.py": """
            import time
            import pytest

            pytestmark = pytest.mark.question("add")

            def test_stuck(submission):
                time.sleep(60)
            """
        },
    )
    quick = dataclasses.replace(
        toy, limits=dataclasses.replace(toy.limits, submission_timeout_s=1.0), accuracy=None
    )
    started = time.monotonic()
    results = _run(tmp_path, folder, quick, GOOD)
    assert time.monotonic() - started < 30
    assert not results["test_stuck"].passed
    assert "imeout" in results["test_stuck"].message


def test_a_checks_time_includes_the_fixtures_it_set_up(tmp_path, toy):
    """The first check to use a module fixture (a model built once) is charged for it."""
    folder = _checks(
        tmp_path,
        {
            "test_fixture_time.py": """
            import time
            import pytest

            pytestmark = pytest.mark.question("add")

            @pytest.fixture(scope="module")
            def slow():
                time.sleep(0.3)
                return 1

            def test_first(slow):
                pass

            def test_second(slow):
                pass
            """
        },
    )
    results = _run(tmp_path, folder, toy, GOOD)
    assert results["test_first"].seconds >= 0.3
    assert results["test_second"].seconds < 0.3


def test_checks_on_a_worker_thread_know_the_timeout_marker(tmp_path, toy):
    """Off the main thread (a Dask worker) there is no timeout, but pytest-timeout is still
    loaded: a check marked @pytest.mark.timeout collects under --strict-markers there too."""
    import threading

    folder = _checks(
        tmp_path,
        {
            "test_marked.py": """
            import pytest

            pytestmark = pytest.mark.question("add")

            @pytest.mark.timeout(30)
            def test_marked(submission):
                assert submission.call("add", 1, 2) == 3
            """
        },
    )
    results: dict = {}
    worker = threading.Thread(target=lambda: results.update(_run(tmp_path, folder, toy, GOOD)))
    worker.start()
    worker.join(60)
    assert results["test_marked"].passed


def test_the_fixtures_and_styles_check_authors_use_still_work(tmp_path, toy):
    """The grader runs pytest without its terminal-only plugins: tmp_path, monkeypatch,
    capsys, recwarn, record_property and unittest-style checks still work."""
    folder = _checks(
        tmp_path,
        {
            "test_fixtures.py": """
            import os
            import unittest
            import warnings
            import pytest

            pytestmark = pytest.mark.question("add")

            def test_tmp_path_and_monkeypatch(submission, tmp_path, monkeypatch):
                monkeypatch.setenv("CHECK_VALUE", "5")
                (tmp_path / "x.txt").write_text(os.environ["CHECK_VALUE"])
                assert submission.call("add", 2, 3) == int((tmp_path / "x.txt").read_text())

            def test_capsys_and_recwarn(submission, capsys, recwarn, record_property):
                print("shown to the check only")
                warnings.warn("a check's own warning")
                assert capsys.readouterr().out == "shown to the check only\\n"
                assert len(recwarn) == 1
                record_property("note", "recorded")

            class TestStyle(unittest.TestCase):
                pytestmark = pytest.mark.question("add")

                def test_unittest_style(self):
                    self.assertEqual(1 + 1, 2)
            """
        },
    )
    results = _run(tmp_path, folder, toy, GOOD)
    assert sorted(results) == [
        "test_capsys_and_recwarn",
        "test_tmp_path_and_monkeypatch",
        "test_unittest_style",
    ]
    assert all(r.passed for r in results.values()), results
