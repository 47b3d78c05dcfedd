"""nbgrader's formgrader: the graded submissions in the course folder and gradebook.db, the
real server showing one over HTTP (loopback), and manual scores coming back."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import build, write
from tests.test_manual import _invoke

ESSAY = "Addition is commutative: 2 + 3 == 3 + 2 == 5, computed above. FORMGRADER-MARKER"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, deadline: float) -> tuple[int, str]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
def test_formgrader_shows_the_graded_submission_and_scores_come_back(tmp_path, toy_dir, toy_key):
    from nbgrader.api import Gradebook

    out, course = tmp_path / "out", tmp_path / "course"
    subs = course / "submitted"  # as `nbgrader collect` leaves them
    write(build(toy_key, {"essay": ESSAY}), subs / "alice" / "toy" / "toy.ipynb")
    write(toy_key, subs / "bob" / "toy" / "toy.ipynb")
    for student in ("alice", "bob"):
        (subs / student / "toy" / "timestamp.txt").write_text("2026-03-01 10:00:00.000000 UTC")
        (subs / student / "toy" / "submission_secret.txt").write_text(f"secret-{student}")
    db = course / "gradebook.db"
    result = _invoke("grade", toy_dir, subs, "--out", out, "--nbgrader-db", db)
    assert result.exit_code == 0, result.output

    notebook = course / "autograded" / "alice" / "toy" / "toy.ipynb"
    assert ESSAY in notebook.read_text()
    with Gradebook(f"sqlite:///{db}") as gb:
        assert gb.find_grade("test_add", "toy", "toy", "alice").auto_score == 4
        essay = gb.find_grade("essay", "toy", "toy", "alice")
        assert essay.needs_manual_grade and essay.max_score == 5
        submission_id = gb.find_submission_notebook("toy", "toy", "alice").id

    # The real formgrader, on loopback, token auth, bounded in time.
    port, token = _free_port(), "t0k3n-autograder-test"
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "jcfg")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--port-retries=0",
            "--no-browser",
            f"--ServerApp.root_dir={course}",
            f"--IdentityProvider.token={token}",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        ],
        cwd=course,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/formgrader/submissions/{submission_id}/?token={token}"
        status, page = _get(url, time.monotonic() + 60)
        assert status == 200, page[:2000]
        assert "FORMGRADER-MARKER" in page  # alice's answer, on formgrader's grading page
        status, _ = _get(url.replace(token, "wrong"), time.monotonic() + 5)
        assert status in (302, 403, 404) or "login" in _.lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # A grader scores the essay in formgrader (nbgrader's API, as its handlers do).
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.find_grade("essay", "toy", "toy", "alice").manual_score = 4
        gb.find_comment("essay", "toy", "toy", "alice").manual_comment = "Nice example."
        gb.db.commit()
    result = _invoke("grade", toy_dir, subs, "--out", out, "--nbgrader-db", db)
    assert result.exit_code == 0 and "graded 0, reused 2" in result.output
    with (out / "gradebook.csv").open(newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert rows["alice"]["essay"] == "4" and rows["alice"]["total"] == "14"
    assert rows["bob"]["essay"] == ""
    assert "Nice example." in (out / "alice" / "feedback.html").read_text()
    # nbgrader's feedback layout: `nbgrader release_feedback` sends it to the exchange, under
    # the name the student's `nbgrader fetch_feedback` looks for.
    from nbgrader.utils import notebook_hash

    assert (course / "feedback" / "alice" / "toy" / "toy.html").is_file()
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "release_feedback", "toy", "--course", "c101",
         f"--Exchange.root={exchange}"],
        cwd=course, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    name = notebook_hash(secret="secret-alice", notebook_id="toy")
    released = exchange / "c101" / "feedback" / f"{name}.html"
    assert "Nice example." in released.read_text()
