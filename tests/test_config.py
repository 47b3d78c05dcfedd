"""assignment.toml: a valid file loads; every error names the file and the dotted key."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from autograder.config import (
    CONFIG_NAME,
    SCHEMA_VERSION,
    AccuracyMode,
    Limits,
    assignment_search_path,
    load_assignment,
    load_config,
)
from autograder.exceptions import AssignmentNotFound, ConfigError

BASE = """\
schema_version = 1

[assignment]
name = "demo"
notebook = "demo.ipynb"

[questions.conv]
points = 4
[questions.model]
points = 6
[questions.essay]
points = 2
manual = true
"""

ACCURACY = """
[accuracy]
question = "model"
max_params = 50000

[accuracy.gpu]
epochs = 5
batch_size = 64
thresholds = [[0.85, 1.0], [0.80, 0.5]]

[accuracy.cpu]
epochs = 2
batch_size = 128
thresholds = [[0.80, 1.0], [0.75, 0.5]]
"""


def _write(tmp_path: Path, text: str, notebook: bool = True) -> Path:
    folder = tmp_path / "demo"
    folder.mkdir(exist_ok=True)
    if notebook:
        (folder / "demo.ipynb").write_text("{}")
    path = folder / CONFIG_NAME
    path.write_text(textwrap.dedent(text))
    return path


def _error(tmp_path: Path, text: str, **kw) -> ConfigError:
    path = _write(tmp_path, text, **kw)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value), "the message must name the file"
    assert info.value.path == path
    return info.value


# -- a valid file ------------------------------------------------------------------------


def test_valid_file_loads_with_defaults(tmp_path):
    path = _write(tmp_path, BASE)
    cfg = load_config(path)
    assert cfg.name == "demo"
    assert cfg.root == path.parent and cfg.config_path == path
    assert cfg.notebook == path.parent / "demo.ipynb"
    assert cfg.checks_dir == path.parent / "checks"
    assert cfg.mutants_dir == path.parent / "mutants"
    assert list(cfg.questions) == ["conv", "model", "essay"]  # file order is kept
    assert cfg.questions["conv"].points == 4.0 and not cfg.questions["conv"].manual
    assert cfg.questions["essay"].manual
    assert cfg.autograded == ["conv", "model"]
    assert cfg.max_total == 12
    assert cfg.limits == Limits()
    assert cfg.skip_tags == ("training",)
    assert cfg.accuracy is None


def test_valid_file_with_limits_and_accuracy(tmp_path):
    text = BASE.replace(
        'notebook = "demo.ipynb"',
        'notebook = "demo.ipynb"\nchecks = "hidden"\nskip_tags = ["slow", "training"]',
    )
    text += "\n[limits]\ncell_timeout_s = 2.5\nmemory_mib = 512\n" + ACCURACY
    cfg = load_config(_write(tmp_path, text))
    assert cfg.checks_dir.name == "hidden"
    assert cfg.skip_tags == ("slow", "training")
    assert cfg.limits.cell_timeout_s == 2.5 and cfg.limits.memory_mib == 512
    assert cfg.limits.max_restarts == Limits().max_restarts
    acc = cfg.accuracy
    assert acc is not None and acc.question == "model" and acc.max_params == 50000
    # thresholds are sorted best first
    assert acc.gpu.thresholds == ((0.85, 1.0), (0.80, 0.5))
    assert acc.cpu.epochs == 2 and acc.cpu.batch_size == 128
    assert acc.dataset == "fashion_mnist" and acc.function == "build_model"


def test_relative_accuracy_reads_reference_seeds_and_ratios(tmp_path):
    text = BASE + ACCURACY.replace(
        "max_params = 50000",
        'max_params = 50000\nmode = "relative"\nreference = "ref.py"\nseeds = [7, 1, 2]',
    ).replace("batch_size = 64\n", "batch_size = 64\nratios = [[0.9, 0.5], [0.97, 1.0]]\n")
    text = text.replace("batch_size = 128\n", "batch_size = 128\nratios = [[0.95, 1.0]]\n")
    path = _write(tmp_path, text)
    (path.parent / "ref.py").write_text("def build_reference(input_shape, num_classes): ...\n")
    acc = load_config(path).accuracy
    assert acc is not None and acc.mode is AccuracyMode.RELATIVE
    assert acc.reference == (path.parent / "ref.py").resolve()
    assert acc.training_seeds == (7, 1, 2)
    assert acc.gpu.ratios == ((0.97, 1.0), (0.9, 0.5))  # best first, like thresholds
    assert acc.tiers(acc.gpu) == acc.gpu.ratios and acc.tiers(acc.cpu) == ((0.95, 1.0),)


def test_relative_mode_needs_ratios_on_both_devices(tmp_path):
    text = BASE + ACCURACY.replace(
        "max_params = 50000", 'max_params = 50000\nmode = "relative"\nreference = "ref.py"'
    ).replace("batch_size = 64\n", "batch_size = 64\nratios = [[0.97, 1.0]]\n")
    path = _write(tmp_path, text)
    (path.parent / "ref.py").write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "accuracy.cpu.ratios" and "is missing" in str(info.value)


def test_absolute_mode_stays_the_default(tmp_path):
    acc = load_config(_write(tmp_path, BASE + ACCURACY)).accuracy
    assert acc is not None and acc.mode is AccuracyMode.ABSOLUTE and acc.reference is None
    assert acc.training_seeds == (acc.seed,) and acc.tiers(acc.cpu) == acc.cpu.thresholds


def test_toy_fixture_config_is_valid(toy):
    assert toy.name == "toy"
    assert toy.autograded == ["add", "scale"]
    assert toy.questions["essay"].manual
    assert toy.limits.cell_timeout_s == 8


# -- errors name the file and the dotted key ---------------------------------------------------


@pytest.mark.parametrize(
    "edit, key, words",
    [
        # unknown keys, at each level
        (lambda t: "stray = 1\n" + t, "stray", "not a known key"),
        (
            lambda t: t.replace('name = "demo"', 'name = "demo"\nnotbook = "x"'),
            "assignment.notbook",
            "not a known key",
        ),
        (lambda t: t + "\n[limits]\nmemory_mb = 10\n", "limits.memory_mb", "not a known key"),
        (
            lambda t: t.replace("points = 4", "points = 4\npoint = 3"),
            "questions.conv.point",
            "not a known key",
        ),
        (
            lambda t: t + ACCURACY.replace("epochs = 5", "epochs = 5\nepoch = 5"),
            "accuracy.gpu.epoch",
            "not a known key",
        ),
        # wrong types
        (lambda t: t + '\n[limits]\nmemory_mib = "lots"\n', "limits.memory_mib", "must be int"),
        (lambda t: t + "\n[limits]\nmemory_mib = 1.5\n", "limits.memory_mib", "must be int"),
        (lambda t: t.replace("points = 4", 'points = "4"'), "questions.conv.points", "must be"),
        (lambda t: t.replace('name = "demo"', "name = 3"), "assignment.name", "must be str"),
        (
            lambda t: t.replace("manual = true", 'manual = "yes"'),
            "questions.essay.manual",
            "must be bool",
        ),
        (
            lambda t: t.replace(
                'notebook = "demo.ipynb"', 'notebook = "demo.ipynb"\nskip_tags = [1]'
            ),
            "assignment.skip_tags",
            "list of strings",
        ),
        (
            lambda t: t.replace("[questions.conv]\npoints = 4", "[questions]\nconv = 4"),
            "questions.conv",
            "must be dict",
        ),
        # a boolean where a number goes
        (lambda t: t + "\n[limits]\nmax_restarts = true\n", "limits.max_restarts", "not a boolean"),
        (
            lambda t: t + "\n[limits]\ncell_timeout_s = false\n",
            "limits.cell_timeout_s",
            "not a boolean",
        ),
        (
            lambda t: t.replace("points = 4", "points = true"),
            "questions.conv.points",
            "not a boolean",
        ),
        # non-positive
        (lambda t: t + "\n[limits]\nmemory_mib = 0\n", "limits.memory_mib", "positive"),
        (lambda t: t.replace("points = 4", "points = -1"), "questions.conv.points", "positive"),
        # missing keys
        (lambda t: t.replace("points = 4\n", ""), "questions.conv.points", "is missing"),
        (lambda t: t.replace('name = "demo"\n', ""), "assignment.name", "is missing"),
        (lambda t: t.replace('notebook = "demo.ipynb"\n', ""), "assignment.notebook", "is missing"),
        (lambda t: t.replace("schema_version = 1\n", ""), "schema_version", "is missing"),
        (
            lambda t: t + ACCURACY.replace("max_params = 50000\n", ""),
            "accuracy.max_params",
            "is missing",
        ),
        (
            lambda t: t + ACCURACY.replace("batch_size = 128\n", ""),
            "accuracy.cpu.batch_size",
            "is missing",
        ),
        # accuracy settings
        (
            lambda t: t + ACCURACY.replace('question = "model"', 'question = "essay"'),
            "accuracy.question",
            "not an autograded question",
        ),
        (
            lambda t: t + ACCURACY.replace('question = "model"', 'question = "nope"'),
            "accuracy.question",
            "not an autograded question",
        ),
        (
            lambda t: (
                t
                + ACCURACY.replace("max_params = 50000", 'max_params = 50000\ndataset = "imagenet"')
            ),
            "accuracy.dataset",
            "must be one of",
        ),
        (
            lambda t: t + ACCURACY.replace("[[0.85, 1.0], [0.80, 0.5]]", "[[85, 1.0]]"),
            "accuracy.gpu.thresholds[0]",
            "min_accuracy",
        ),
        (
            lambda t: t + ACCURACY.replace("[[0.85, 1.0], [0.80, 0.5]]", "[[0.85, 1.0], [0.8, 0]]"),
            "accuracy.gpu.thresholds[1]",
            "min_accuracy",
        ),
        (
            lambda t: t + ACCURACY.replace("[[0.85, 1.0], [0.80, 0.5]]", "[[0.85, 1.0, 2]]"),
            "accuracy.gpu.thresholds[0]",
            "min_accuracy",
        ),
        (
            lambda t: t + ACCURACY.replace("[[0.85, 1.0], [0.80, 0.5]]", "[[true, 1.0]]"),
            "accuracy.gpu.thresholds[0]",
            "min_accuracy",
        ),
        (
            lambda t: t + ACCURACY.replace("[[0.80, 1.0], [0.75, 0.5]]", "[]"),
            "accuracy.cpu.thresholds",
            "at least one",
        ),
        # relative grading
        (
            lambda t: t + ACCURACY.replace("max_params = 50000", 'max_params = 50000\nmode = "x"'),
            "accuracy.mode",
            "must be one of absolute, relative",
        ),
        (
            lambda t: (
                t + ACCURACY.replace("max_params = 50000", 'max_params = 50000\nmode = "relative"')
            ),
            "accuracy.reference",
            "is missing",
        ),
        (
            lambda t: (
                t
                + ACCURACY.replace(
                    "max_params = 50000", 'max_params = 50000\nreference = "nowhere.py"'
                )
            ),
            "accuracy.reference",
            "not a Python file",
        ),
        (
            lambda t: (
                t + ACCURACY.replace("max_params = 50000", "max_params = 50000\nseeds = [1, 1]")
            ),
            "accuracy.seeds",
            "distinct integers",
        ),
        (
            lambda t: (
                t + ACCURACY.replace("max_params = 50000", 'max_params = 50000\nseeds = ["1"]')
            ),
            "accuracy.seeds",
            "distinct integers",
        ),
        (
            lambda t: (
                t + ACCURACY.replace("batch_size = 64\n", "batch_size = 64\nratios = [[3, 1.0]]\n")
            ),
            "accuracy.gpu.ratios[0]",
            "min_ratio",
        ),
    ],
)
def test_errors_name_file_and_dotted_key(tmp_path, edit, key, words):
    err = _error(tmp_path, edit(BASE))
    assert err.key == key
    assert f"key '{key}'" in str(err)
    assert words in str(err)


def test_schema_version_mismatch(tmp_path):
    text = BASE.replace("schema_version = 1", f"schema_version = {SCHEMA_VERSION + 1}")
    err = _error(tmp_path, text)
    assert err.key == "schema_version"
    assert f"is {SCHEMA_VERSION + 1}" in str(err) and f"version {SCHEMA_VERSION}" in str(err)


def test_missing_notebook(tmp_path):
    err = _error(tmp_path, BASE, notebook=False)
    assert err.key == "assignment.notebook"
    assert "demo.ipynb" in str(err) and "missing" in str(err)


def test_no_questions(tmp_path):
    text = BASE.split("[questions.conv]")[0] + "[questions]\n"
    err = _error(tmp_path, text)
    assert err.key == "questions" and "no question" in str(err)


def test_invalid_toml_and_missing_file(tmp_path):
    err = _error(tmp_path, BASE + "\n[[[broken\n")
    assert err.key is None and "not valid TOML" in str(err)
    missing = tmp_path / "nowhere" / CONFIG_NAME
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


def test_config_that_is_not_text_or_not_a_file(tmp_path):
    path = _write(tmp_path, BASE)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    folder = tmp_path / "dir" / CONFIG_NAME
    folder.mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        load_config(folder)
    assert str(folder) in str(info.value)


def test_config_error_exit_code(tmp_path):
    assert _error(tmp_path, BASE + "\nstray = 1\n").exit_code == 3


# -- finding an assignment ------------------------------------------------------------------


def test_load_assignment_by_path_folder_and_file(tmp_path):
    path = _write(tmp_path, BASE)
    assert load_assignment(path.parent).name == "demo"
    assert load_assignment(str(path)).config_path == path


def test_load_assignment_by_name_via_env(tmp_path, monkeypatch):
    _write(tmp_path, BASE)
    other = tmp_path / "empty"
    other.mkdir()
    monkeypatch.chdir(other)
    monkeypatch.setenv("AUTOGRADER_ASSIGNMENTS", os.pathsep.join([str(other), str(tmp_path)]))
    cfg = load_assignment("demo")
    assert cfg.name == "demo" and cfg.root == tmp_path / "demo"
    assert assignment_search_path()[:2] == [other, tmp_path]


def test_load_assignment_by_name_under_cwd_assignments(tmp_path, monkeypatch):
    (tmp_path / "assignments").mkdir()
    path = _write(tmp_path / "assignments", BASE)
    monkeypatch.delenv("AUTOGRADER_ASSIGNMENTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_assignment("demo").config_path == path


def test_unknown_assignment_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOGRADER_ASSIGNMENTS", str(tmp_path / "mine"))
    with pytest.raises(AssignmentNotFound) as info:
        load_assignment("no-such-lab")
    text = str(info.value)
    assert "unknown assignment 'no-such-lab'" in text
    assert str(tmp_path / "mine" / "no-such-lab" / CONFIG_NAME) in text
    assert str(tmp_path / "assignments" / "no-such-lab" / CONFIG_NAME) in text
    assert "AUTOGRADER_ASSIGNMENTS" in text
    assert info.value.exit_code == 3


def test_broken_config_found_by_name_still_raises_config_error(tmp_path, monkeypatch):
    _write(tmp_path, BASE + "\nstray = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOGRADER_ASSIGNMENTS", str(tmp_path))
    with pytest.raises(ConfigError, match="stray"):
        load_assignment("demo")


def test_kernel_env_and_quick_env_tables(tmp_path):
    text = BASE.replace(
        'notebook = "demo.ipynb"',
        'notebook = "demo.ipynb"\nenv = { TF_CPP_MIN_LOG_LEVEL = "2" }\nquick_env = { Q = "1" }',
    )
    cfg = load_config(_write(tmp_path, text))
    assert cfg.env == {"TF_CPP_MIN_LOG_LEVEL": "2"} and cfg.quick_env == {"Q": "1"}
    (tmp_path / "2").mkdir()
    assert load_config(_write(tmp_path / "2", BASE)).env == {}


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ("env = { X = 1 }", "assignment.env.X", "must be a string"),
        ('env = { "1X" = "1" }', "assignment.env.1X", "not a variable name"),
        ("quick_env = { Q = true }", "assignment.quick_env.Q", "must be a string"),
        ('env = "X=1"', "assignment.env", "must be dict"),
    ],
)
def test_env_errors_name_the_variable(tmp_path, table, key, words):
    err = _error(
        tmp_path, BASE.replace('notebook = "demo.ipynb"', f'notebook = "demo.ipynb"\n{table}')
    )
    assert err.key == key and words in str(err)


def test_data_set_names_come_from_the_registry(tmp_path):
    from autograder.datasets import NAMES

    for name in NAMES:
        (tmp_path / name).mkdir()
        text = BASE + ACCURACY.replace(
            "max_params = 50000", f'max_params = 50000\ndataset = "{name}"'
        )
        assert load_config(_write(tmp_path / name, text)).accuracy.dataset == name
