"""Similarity: copydetect per answer cell, starter code left out, a copied pair first."""

from __future__ import annotations

import csv

import pytest

from autograder.config import SimilarityConfig
from autograder.similarity import find_similar

STARTER = 'def add(a, b):\n    """Return a + b."""\n    raise NotImplementedError\n'

ORIGINAL = '''def add(a, b):
    """Return a + b."""
    result = 0
    for value in (a, b):
        if value is None:
            continue
        result = result + value
    checked = result
    return checked
'''
RENAMED = ORIGINAL.replace("result", "total").replace("value", "item").replace("checked", "answer")
OTHERS = [
    'def add(a, b):\n    """Return a + b."""\n    import operator\n    return operator.add(a, b)\n',
    'def add(a, b):\n    """Return a + b."""\n    out = sum([a, b])\n    assert out is not None\n'
    "    print('sum is', out)\n    return out\n",
    'def add(a, b):\n    """Return a + b."""\n    if a == 0:\n        return b\n'
    "    if b == 0:\n        return a\n    return (a * 1) + (b * 1)\n",
]


def _answers():
    students = {"ann": ORIGINAL, "ben": RENAMED, "cid": OTHERS[0], "dee": OTHERS[1]}
    students["eva"] = OTHERS[2]
    students["fay"] = STARTER  # handed in the starter code: never compared
    return {s: {"add": src} for s, src in students.items()}


def test_renamed_copy_ranks_first_and_starter_is_left_out():
    report = find_similar(_answers(), {"add": STARTER}, {"add"}, SimilarityConfig(min_tokens=5))
    top = report.pairs[0]
    assert (top.student_a, top.student_b) == ("ann", "ben")
    assert top.similarity > 0.9 and top.flagged
    assert all(not p.flagged for p in report.pairs[1:])
    assert report.compared == {"add": 5}
    assert all("fay" not in (p.student_a, p.student_b) for p in report.pairs)
    assert top.slices_a  # copied stretches to highlight


def test_starter_code_alone_is_not_similarity():
    answers = {s: {"add": STARTER + "    # done\n"} for s in ("x", "y")}
    report = find_similar(answers, {"add": STARTER}, {"add"}, SimilarityConfig(min_tokens=5))
    assert not any(p.flagged for p in report.pairs)


def test_written_answers_compare_as_text():
    text = (
        "More filters helped because the network can learn more feature detectors, "
        "while 5x5 kernels grew the receptive field at a higher parameter cost."
    )
    answers = {
        "a": {"essay": text},
        "b": {"essay": text.replace("helped", "improved accuracy")},
        "c": {"essay": "Pooling halves the feature maps; stride two does the same but learns."},
    }
    report = find_similar(answers, {"essay": ""}, set(), SimilarityConfig(min_tokens=5))
    assert (report.pairs[0].student_a, report.pairs[0].student_b) == ("a", "b")
    assert report.pairs[0].flagged


@pytest.mark.slow
def test_batch_writes_similarity_with_the_copied_pair_first(tmp_path, toy_dir, toy_key):
    from tests.conftest import build, write
    from tests.test_manual import _invoke

    subs, out = tmp_path / "subs", tmp_path / "out"
    for name, src in {"ann": ORIGINAL, "ben": RENAMED, "cid": OTHERS[0], "dee": OTHERS[1]}.items():
        write(build(toy_key, {"add": src}), subs / f"{name}.ipynb")
    result = _invoke("grade", toy_dir, subs, "--out", out)
    assert result.exit_code == 0, result.output
    with (out / "similarity.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["question"] == "add"
    assert {rows[0]["student_a"], rows[0]["student_b"]} == {"ann", "ben"}
    assert rows[0]["flagged"] == "yes" and rows[0]["rank"] == "1"
    page = (out / "similarity.html").read_text()
    assert "ann and ben" in page and "<mark>" in page


def test_identical_answers_are_fingerprinted_once_and_every_pair_is_still_reported(monkeypatch):
    import autograder.similarity as similarity

    made = []
    real = similarity._fingerprint
    monkeypatch.setattr(
        similarity, "_fingerprint", lambda src, *a: made.append(src) or real(src, *a)
    )
    answers = _answers()
    answers |= {f"copy{i}": {"add": ORIGINAL} for i in range(3)}
    report = find_similar(answers, {"add": STARTER}, {"add"}, SimilarityConfig(min_tokens=5))
    assert made.count(ORIGINAL) == 1
    copies = {"ann", "copy0", "copy1", "copy2"}
    same = [p for p in report.pairs if {p.student_a, p.student_b} <= copies]
    assert len(same) == 6 and all(p.similarity == 1.0 and p.flagged for p in same)
    assert report.compared == {"add": 8}


def test_the_report_is_the_same_whatever_python_salts_its_hashes_with():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_similarity import _answers, STARTER\n"
        "from autograder.config import SimilarityConfig\n"
        "from autograder.similarity import find_similar\n"
        "r = find_similar(_answers(), {'add': STARTER}, {'add'}, SimilarityConfig(min_tokens=5))\n"
        "print(json.dumps([(p.student_a, p.student_b, p.similarity, p.matched_tokens) "
        "for p in r.pairs]))\n"
    )
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env={**__import__("os").environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    ]
    assert json.loads(runs[0]) and runs[0] == runs[1] == runs[2]


def test_a_batch_can_leave_out_the_similarity_report(monkeypatch, tmp_path, toy):
    """`validate` grades mutants of one key, alike by construction: no report for them."""
    import autograder.similarity as similarity
    from autograder import classwork

    called = []
    monkeypatch.setattr(similarity, "write_similarity", lambda *a: called.append(a))
    monkeypatch.setattr("autograder.reports.bundles.write_feedback_bundles", lambda *a: None)
    classwork.after_reports([], toy, tmp_path, {}, None, similarity=False)
    assert called == []
    classwork.after_reports([], toy, tmp_path, {}, None)
    assert len(called) == 1
