"""Student models that attack the grader's memory, graded for real on Lab 4.

The attack that motivated autograder.model_host: `build_model()` returns a genuine
Keras model whose `save()` rewrites the archive's config.json to declare one Dense
layer of 2,000,000 units (2.3 billion parameters, 9 GB). Built in the grader, it took
the grading process from 0.7 GB to 10.4 GB. Here it comes through `build_model`
(also the accuracy question's model), through `build_deeper_model`, and as a
handed-in `model.keras`, in one `-j 2` batch beside an honest submission: the
targeted questions earn nothing with a message, the others are graded as usual, and
no grading worker grows by more than 1.5 GB.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import zipfile

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.config import load_config
from autograder.release import answer_key, release_notebook
from autograder.sandbox import capabilities
from tests.conftest import REPO, build, write

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sandbox,
    pytest.mark.skipif(not capabilities().isolated, reason="bubblewrap is not usable here"),
]

LAB4 = REPO / "assignments" / "lab4-cnn"
UNITS = 2_000_000

DECLARE_HUGE = f'''
def _declare_huge(model):
    """Make the model's config say that its first Dense has {UNITS:,} units: whatever form
    the bridge saves it in (a .keras file, config.json and weights.npz), the config is
    Keras's get_config, which the student's code can replace."""
    real_get_config = model.get_config

    def get_config():
        config = real_get_config()
        dense = [l for l in config["layers"] if l["class_name"] == "Dense"]
        dense[0]["config"]["units"] = {UNITS}
        return config

    model.get_config = get_config
    return model
'''


def _hostile(source: str, function: str) -> str:
    honest = source.replace(f"def {function}(", f"def _honest_{function}(", 1)
    return (
        honest
        + DECLARE_HUGE
        + f"\ndef {function}(input_shape=(28, 28, 1), num_classes=10):\n"
        + f"    return _declare_huge(_honest_{function}(input_shape, num_classes))\n"
    )


def _huge_archive(path):
    """A handed-in model.keras: config only, one Dense of 2,000,000 units on 784 inputs."""
    layer = {"module": "keras.layers", "class_name": "Dense", "config": {"units": UNITS}}
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, 784]},
                },
                {**layer, "build_config": {"input_shape": [None, 784]}},
            ]
        },
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile-models")
    lab = base / "lab4-cnn"
    shutil.copytree(LAB4, lab, ignore=shutil.ignore_patterns("examples", "mutants"))
    toml = (lab / "assignment.toml").read_text()
    toml = toml.replace("train_samples = 12000", "train_samples = 1000")
    (lab / "assignment.toml").write_text(toml.replace("test_samples = 2000", "test_samples = 300"))
    config = load_config(lab / "assignment.toml")
    key = answer_key(config, release_notebook(config))
    sources = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in key.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    subs = base / "subs"
    write(key, subs / "honest" / "lab4-cnn.ipynb")
    write(
        build(key, {"build_model": _hostile(sources["build_model"], "build_model")}),
        subs / "huge_build" / "lab4-cnn.ipynb",
    )
    write(
        build(key, {"deeper_model": _hostile(sources["deeper_model"], "build_deeper_model")}),
        subs / "huge_deeper" / "lab4-cnn.ipynb",
    )
    _huge_archive(subs / "huge_deeper" / "model.keras")
    out = base / "out"
    result = CliRunner().invoke(
        main, ["grade", str(lab), str(subs), "--out", str(out), "-j", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    results = {s: json.loads((out / s / "grade.json").read_text()) for s in rows}
    return rows, results


def _messages(result, question):
    return [c["message"] for c in result["questions"][question]["checks"] if not c["passed"]]


def _notes(result, question):
    return [n for c in result["questions"][question]["checks"] for n in c["notes"]]


def test_a_huge_build_model_earns_nothing_there_and_the_rest_is_graded(graded):
    rows, results = graded
    row, result = rows["huge_build"], results["huge_build"]
    assert row["status"] == "ok"
    assert float(row["build_model"]) == 0 and float(row["accuracy"]) == 0
    for q in ("conv1d", "conv2d", "pooling", "tensorboard"):
        assert row[q] == rows["honest"][q], q
    assert float(row["deeper_model"]) == 5  # compared against 2 Conv2D layers, as documented
    billions = re.compile(r"declares \d,\d{3},\d{3},\d{3} parameters")  # refused from JSON
    assert any(billions.search(m) for m in _messages(result, "build_model")), result
    accuracy = _messages(result, "accuracy")
    assert accuracy and all(
        "cannot be trained by the grader" in m and billions.search(m) for m in accuracy
    )


def test_a_huge_deeper_model_and_a_huge_handed_in_file(graded):
    rows, results = graded
    row, result = rows["huge_deeper"], results["huge_deeper"]
    assert float(row["deeper_model"]) == 0 and float(row["build_model"]) == 10
    assert any("declares" in m for m in _messages(result, "deeper_model"))
    notes = _notes(result, "accuracy")
    assert any(
        "your submitted model.keras could not be evaluated" in n and "1,570,000,000" in n
        for n in notes
    ), notes


def test_no_grading_worker_grows_by_more_than_1_5_gb(graded):
    _, results = graded
    for student, result in results.items():
        growth = result["grader_peak_mib"] - result["grader_rss_mib"]
        print(
            f"{student}: grader worker {result['grader_rss_mib']:.0f} -> "
            f"{result['grader_peak_mib']:.0f} MiB"
        )
        assert result["grader_peak_mib"] > 0
        assert growth < 1536, (student, growth)
