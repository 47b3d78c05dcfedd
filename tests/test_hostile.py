"""Hostile, broken and cheating submissions, graded in ONE batch with normal ones.

Each case asserts its outcome; then the batch as a whole must have leaked
nothing, changed nothing outside the sandbox, left no process behind, sent
no connection out, and kept its outputs small.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.notebook import grade_id
from autograder.sandbox import UID_BASE, UID_COUNT, capabilities
from tests.conftest import REPO, build, write
from tests.fixtures.hostile.cases import BROKEN, CASES

pytestmark = pytest.mark.slow


def _mutate(nb, how):
    nb = copy.deepcopy(nb)
    if how == "inflate":
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if grade_id(cell) == "test_add":
                cell.source = "pass"
                meta["points"] = 1000
            if grade_id(cell) == "add":
                meta.update(grade=True, points=1000)
    elif how == "delete_setup_and_tests":
        nb.cells = [
            c for c in nb.cells if grade_id(c) not in ("setup", "test_add", "test_scale", "intro")
        ]
    elif how == "duplicate":
        out = []
        for cell in nb.cells:
            out.append(cell)
            if grade_id(cell) in ("setup", "test_add"):
                out.append(copy.deepcopy(cell))
            if grade_id(cell) == "add":
                wrong = copy.deepcopy(cell)
                wrong.source = "def add(a, b):\n    return 0\n"
                out.append(wrong)
        nb.cells = out
    return nb


class _Listener:
    """A TCP server on 127.0.0.1 that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def _parent(pid: int) -> tuple[int, str, int]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return ppid, comm, Path(f"/proc/{pid}").stat().st_uid


def _sandbox_processes() -> list[str]:
    """Sandbox processes whose grader is gone (orphans); others' live gradings don't count."""
    orphans = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not UID_BASE <= entry.stat().st_uid < UID_BASE + UID_COUNT:
                continue
            pid = int(entry.name)
            while True:  # climb past the sandbox's own processes and bwrap
                ppid, comm, uid = _parent(pid)
                if UID_BASE <= uid < UID_BASE + UID_COUNT or comm == "bwrap":
                    pid = ppid
                    continue
                break
            if pid <= 1:
                orphans.append(entry.name)
        except (OSError, ValueError):
            continue
    return orphans


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, toy, toy_dir, toy_key):
    base = tmp_path_factory.mktemp("hostile")
    subs, out, canary = base / "subs", base / "out", base / "canary"
    canary.mkdir()
    listener = _Listener()
    holders = {
        "{CHECKS}": str(toy_dir / "checks" / "test_add.py"),
        "{SOURCE}": str(toy.notebook),
        "{OTHER}": str(subs / "perfect.ipynb"),
        "{OUT}": str(out),
        "{CANARY}": str(canary),
        "{PORT}": str(listener.port),
        "{REPO}": str(REPO),
    }

    def fill(text):
        for k, v in holders.items():
            text = text.replace(k, v)
        return text

    for name, case in CASES.items():
        answers = {k: fill(v) for k, v in case.get("answers", {}).items()}
        extra = {k: fill(v) for k, v in case.get("extra", {}).items()}
        nb = build(toy_key, answers, extra)
        if case.get("mutate"):
            nb = _mutate(nb, case["mutate"])
        write(nb, subs / f"{name}.ipynb")
    for name, (data, _) in BROKEN.items():
        if data is not None:
            (subs / f"{name}.ipynb").write_bytes(data)
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    other.cells[0].metadata["nbgrader"] = {
        "grade_id": "lab9_q1",
        "solution": True,
        "grade": False,
        "locked": False,
        "schema_version": 3,
    }
    write(other, subs / "wrong_assignment.ipynb")
    cell = {"cell_type": "raw", "metadata": {}, "source": "x"}
    many = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell] * 200_000}
    (subs / "cells_200000.ipynb").write_text(json.dumps(many))
    with (subs / "notebook_500mb.ipynb").open("wb") as fh:
        fh.write(b'{"nbformat": 4, "cells": [')
        fh.truncate(500 << 20)  # sparse: 500 MB to the grader, no disk used
    # nbformat v3 with the right answers: converted and graded normally.
    v3 = nbformat.convert(copy.deepcopy(toy_key), 3)
    (subs / "old_v3.ipynb").write_text(nbformat.writes(v3, version=3))
    # Student ids with spaces, unicode and dots, as folders with extra files.
    for sid in ("Ana María López", "李雷", "a..b", "-=cmd()"):
        write(toy_key, subs / sid / "toy.ipynb")
        (subs / sid / "notes.txt").write_text("extra file")
    before_tmp = set(os.listdir("/tmp"))
    result = CliRunner().invoke(
        main,
        ["grade", str(toy_dir), str(subs), "--out", str(out), "-j", "2"],
        catch_exceptions=False,
    )
    listener.close()
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    graded = {
        p.parent.name: json.loads(p.read_text()) for p in out.glob("*/grade.json") if p.is_file()
    }
    yield {
        "result": result,
        "rows": rows,
        "out": out,
        "canary": canary,
        "listener": listener,
        "toy_dir": toy_dir,
        "new_tmp": set(os.listdir("/tmp")) - before_tmp,
        "graded": graded,
    }


def test_batch_completes_with_a_row_each(corpus):
    assert corpus["result"].exit_code == 0, corpus["result"].output
    expected = set(CASES) | set(BROKEN) | {"old_v3", "Ana María López", "李雷", "a..b", "'-=cmd()"}
    assert set(corpus["rows"]) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_outcome(corpus, name):
    row = corpus["rows"][name]
    for key, want in CASES[name]["expect"].items():
        if key == "status":
            assert want in row["status"], row
        else:
            assert float(row[key]) == want, (name, key, row)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_input_status(corpus, name):
    row = corpus["rows"][name]
    assert BROKEN[name][1] in row["status"]
    assert float(row["total"]) == 0 and float(row["max_total"]) == 15


def test_old_format_and_odd_ids_are_graded(corpus):
    for sid in ("old_v3", "Ana María López", "李雷", "a..b", "'-=cmd()"):
        row = corpus["rows"][sid]
        assert (row["add"], row["scale"], row["status"]) == ("4", "6", "ok"), row
    names = {p.name for p in corpus["out"].iterdir() if p.is_dir()}
    assert all(n not in (".", "..") and "/" not in n and not n.startswith(".") for n in names)


def test_nothing_written_outside_the_sandbox(corpus):
    assert list(corpus["canary"].iterdir()) == []  # nothing unpickled, nothing written
    assert not Path("/root/pwned-autograder").exists()
    assert not Path("/tmp/pwned-autograder").exists()
    assert not (REPO / "pwned").exists()
    assert not (corpus["out"] / "results.json").exists()
    assert "pwned" not in (corpus["out"] / "gradebook.csv").read_text()


def test_no_hidden_check_text_in_any_output(corpus):
    secrets = []
    for path in (corpus["toy_dir"] / "checks").glob("*.py"):
        secrets += [
            line.strip() for line in path.read_text().splitlines() if len(line.strip()) > 25
        ]
    assert secrets
    for path in corpus["out"].rglob("*"):
        if path.is_file() and path.suffix != ".png":
            text = path.read_text(errors="ignore")
            for line in secrets:
                assert line not in text, (path, line)


def test_no_connection_left_the_sandbox(corpus):
    if not capabilities().isolated:
        pytest.skip("no bubblewrap: the network is not isolated (see README)")
    assert corpus["listener"].connections == 0


def test_no_process_outlives_grading(corpus):
    assert _sandbox_processes() == []
    out = subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True, text=True).stdout
    assert out.strip() == ""


def test_the_grading_workers_memory_stays_bounded(corpus):
    """What any one submission made a grading worker hold: well under 1.5 GB."""
    graded = corpus["graded"]
    measured = {k: g for k, g in graded.items() if g["grader_peak_mib"] > 0}
    assert len(measured) == len(graded), "every submission reports its worker's memory"
    growth = {k: g["grader_peak_mib"] - g["grader_rss_mib"] for k, g in measured.items()}
    worst = max(growth, key=growth.get)
    print(f"largest growth of a grading worker: {growth[worst]:.0f} MiB ({worst})")
    assert growth[worst] < 1536, (worst, growth[worst])


def test_threads_left_spinning_cost_seconds_not_minutes(corpus):
    graded = corpus["graded"]
    normal = graded["perfect"]["seconds"]
    spinning = graded["threads_left_spinning"]
    assert spinning["seconds"] < normal + 20, (spinning["seconds"], normal)
    assert any("CPU after it finished" in i["message"] for i in spinning["incidents"])


def test_outputs_stay_bounded(corpus):
    total = sum(p.stat().st_size for p in corpus["out"].rglob("*") if p.is_file())
    assert total < 8 << 20
    for path in corpus["out"].rglob("feedback.html"):
        assert path.stat().st_size <= 256 << 10


def test_sigkill_mid_batch_loses_nothing(tmp_path, toy_dir, toy_key):
    subs, out = tmp_path / "subs", tmp_path / "out"
    slow = build(toy_key, extra={"scale": "import time\ntime.sleep(2)\n"})
    for i in range(6):
        write(slow, subs / f"s{i}.ipynb")
    cmd = [
        sys.executable,
        "-m",
        "autograder.cli",
        "grade",
        str(toy_dir),
        str(subs),
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = 120
        import time

        start = time.monotonic()
        while time.monotonic() - start < deadline and len(list(out.glob("*/grade.json"))) < 2:
            time.sleep(0.2)
        done_before = {p.parent.name for p in out.glob("*/grade.json")}
        assert len(done_before) >= 2
        os.killpg(proc.pid, 9)
    finally:
        proc.wait()
    time.sleep(1)
    assert _sandbox_processes() == []  # bwrap --die-with-parent took the kernels down
    result = CliRunner().invoke(main, ["grade", str(toy_dir), str(subs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"reused {len(done_before)}" in result.output or "reused" in result.output
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert len(rows) == 6 and all(r["total"] == "10" for r in rows)
    reused = int(result.output.split("reused ")[1].split()[0])
    assert reused >= len(done_before)


def test_the_cpu_budget_stops_a_submission_that_burns_cpu(tmp_path, toy_dir, toy_key):
    """Each call burns 2.5 CPU seconds, within its time limit; the budget is 3 in all."""
    lab = tmp_path / "toy"
    shutil.copytree(toy_dir, lab)
    toml = (lab / "assignment.toml").read_text()
    toml = toml.replace("call_timeout_s = 5", "call_timeout_s = 30")  # CPU, not wall, ends it
    (lab / "assignment.toml").write_text(toml.replace("[limits]\n", "[limits]\ncpu_budget_s = 3\n"))
    burn = (
        "def add(a, b):\n    import time\n    start = time.process_time()\n"
        "    while time.process_time() - start < 2.5:\n        pass\n    return a + b\n"
    )
    subs, out = tmp_path / "subs", tmp_path / "out"
    write(build(toy_key, {"add": burn}), subs / "burner.ipynb")
    write(toy_key, subs / "honest.ipynb")
    result = CliRunner().invoke(main, ["grade", str(lab), str(subs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert (rows["honest"]["status"], rows["honest"]["total"]) == ("ok", "10")
    assert rows["burner"]["status"] == "CPU time limit during the checks", rows["burner"]
    burner = json.loads((out / "burner" / "grade.json").read_text())
    assert burner["cpu_seconds"] < 8 and burner["seconds"] < 45, burner
    messages = [c["message"] for q in burner["questions"].values() for c in q["checks"]]
    assert any("more than the 3 s it may use" in m for m in messages), messages
