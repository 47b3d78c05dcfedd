"""autograder vs nbgrader on the same lab4-cnn submissions (what `make bench` runs).

    python bench/bench_nbgrader.py [--n 6] [--runs 3] [-j 2] [--seed 0]

1. Generates N submissions (bench/make_submissions.py: the answer key, correct
   alternatives, and submissions with mistakes).
2. nbgrader: builds a course in a temporary folder (`source/lab4-cnn/lab4-cnn.ipynb` is the
   source notebook, whose test cells carry `### BEGIN HIDDEN TESTS` blocks), runs
   `nbgrader generate_assignment lab4-cnn`, puts the submissions under
   `submitted/<student>/lab4-cnn/lab4-cnn.ipynb` and times `nbgrader autograde lab4-cnn`.
   Equal coverage: autograder skips the cells tagged `training` (and the `accuracy`
   question is skipped with --skip accuracy), so those cells are removed from the source
   notebook and from the submissions nbgrader gets. nbgrader executes each notebook,
   sequentially, in a kernel with a 60 s cell timeout (autograder's cell_timeout_s).
3. autograder: times `autograder grade lab4-cnn SUBS --out OUT -j J --skip accuracy`, then
   the same command again with nothing changed (no --force): the re-grade.
4. the floor: the same notebooks' cells alone, in the same warm kernels and sandboxes with
   `-j J`, and no check at all (`autograder grade ... --skip` every autograded question:
   no check session, no model host). What grading adds on top is the overhead.
Repeats 2 and 3 R times (fresh folders each time) and reports medians. Then compares the
per-question scores of the correct submissions (nbgrader's per-test-cell scores from its
gradebook, `nbgrader.api.Gradebook`, against our gradebook.csv) and, for information,
how each tool scored the submissions with mistakes. Writes bench/results/nbgrader.json.
The last line is `throughput vs nbgrader: <R>x, overhead vs floor: <P>%, regrade: <S>x
faster`, where R = nbgrader's seconds per submission / autograder's, P = (autograder's
time - the floor's) / the floor's, and S = autograder's first grading time / its re-grade
time, each taken within a run (same load) and then the median over the runs. The
submissions are distinct notebooks (make_submissions), so every one really executes.
"""

from __future__ import annotations

import argparse
import copy
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import nbformat  # noqa: E402
from bench_grading import (  # noqa: E402
    autograder_cmd,
    bench_env,
    machine,
    med,
    now,
    save,
    tee,
    timed,
)
from make_submissions import make_submissions  # noqa: E402

from autograder.config import load_assignment  # noqa: E402

ASSIGNMENT = "lab4-cnn"
CELL_TIMEOUT_S = 60

NBGRADER_CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "bench"
c.CourseDirectory.db_url = {db!r}
c.Exchange.root = {exchange!r}
c.GenerateAssignment.create_assignment = True
c.Autograde.create_student = True
c.Execute.timeout = {timeout}
"""


def strip_tagged(nb, tags: tuple[str, ...]):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not set(c.get("metadata", {}).get("tags", [])) & set(tags)]
    return nb


def nbgrader_template(root: Path, config) -> Path:
    """A course folder with the (training-stripped) source, released: copied for each run."""
    (root / "exchange").mkdir(parents=True)
    source = nbformat.read(config.notebook, as_version=4)
    src = root / "source" / ASSIGNMENT / config.notebook.name
    src.parent.mkdir(parents=True)
    nbformat.write(strip_tagged(source, config.skip_tags), src)
    write_config(root)
    timed(["nbgrader", "generate_assignment", ASSIGNMENT, "--force"], cwd=root)
    return root


def write_config(root: Path) -> None:
    (root / "nbgrader_config.py").write_text(
        NBGRADER_CONFIG.format(
            root=str(root),
            db=f"sqlite:///{root / 'gradebook.db'}",
            exchange=str(root / "exchange"),
            timeout=CELL_TIMEOUT_S,
        )
    )


def nbgrader_course(template: Path, root: Path, config, subs: Path, students: list[str]) -> Path:
    """A fresh copy of the released course, with the (training-stripped) submissions."""
    shutil.copytree(template, root)
    write_config(root)
    for student in students:
        nb = nbformat.read(subs / f"{student}.ipynb", as_version=4)
        dest = root / "submitted" / student / ASSIGNMENT / config.notebook.name
        dest.parent.mkdir(parents=True)
        nbformat.write(strip_tagged(nb, config.skip_tags), dest)
    return root


def nbgrader_scores(root: Path, config, students: list[str]) -> dict[str, dict[str, float]]:
    """student -> question -> points, from nbgrader's gradebook (autograded test cells)."""
    from nbgrader.api import Gradebook

    notebook = config.notebook.stem
    scores: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in students:
            nb = gb.find_submission_notebook(notebook, ASSIGNMENT, student)
            row = {}
            for grade in nb.grades:
                qid = grade.name.removeprefix("test_")
                if qid in config.questions and not config.questions[qid].manual:
                    row[qid] = float(grade.score or 0.0)
            scores[student] = row
    return scores


def nbgrader_errors(root: Path, config, student: str) -> dict[str, str]:
    """question -> the error nbgrader's autograded notebook shows in that question's test cell."""
    path = root / "autograded" / student / ASSIGNMENT / config.notebook.name
    errors = {}
    for cell in nbformat.read(path, as_version=4).cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and gid.startswith("test_"):
                errors[gid.removeprefix("test_")] = f"{output.ename}: {output.evalue}"[:300]
    return errors


def our_scores(out: Path, config) -> dict[str, dict[str, float]]:
    scores = {}
    with (out / "gradebook.csv").open() as fh:
        for row in csv.DictReader(fh):
            scores[row["student"]] = {
                q: float(row[q]) for q in config.autograded if row.get(q) not in (None, "")
            }
    return scores


def compare(manifest: dict, theirs: dict, ours: dict, config) -> dict:
    """Per-question scores side by side: the correct submissions, then the others."""
    correct, flawed = [], []
    for student, info in manifest["students"].items():
        for qid in sorted(set(theirs.get(student, {})) & set(ours.get(student, {}))):
            full = config.questions[qid].points
            item = {
                "student": student,
                "question": qid,
                "nbgrader": theirs[student][qid],
                "autograder": ours[student][qid],
                "max": full,
                "mutated": next((s["mutant"] for s in info["swaps"] if s["question"] == qid), ""),
                "kind": next((s["kind"] for s in info["swaps"] if s["question"] == qid), ""),
            }
            (correct if info["correct"] else flawed).append(item)
    mismatched = [c for c in correct if abs(c["nbgrader"] - c["autograder"]) > 1e-6]
    mistakes = [f for f in flawed if f["kind"] == "mistake"]
    return {
        "correct": correct,
        "correct_mismatches": mismatched,
        "flawed": flawed,
        "mistakes": len(mistakes),
        "mistakes_full_marks_nbgrader": [f for f in mistakes if f["nbgrader"] >= f["max"]],
        "mistakes_full_marks_autograder": [f for f in mistakes if f["autograder"] >= f["max"]],
        "mistakes_partial_autograder": [f for f in mistakes if 0 < f["autograder"] < f["max"]],
    }


def one_run(
    i: int, config, subs: Path, students: list[str], jobs: int, work: Path, template: Path
) -> dict:
    env = bench_env()
    env["AUTOGRADER_OFFLINE"] = "1"  # the data set is on disk; never try the network
    course = nbgrader_course(template, work / f"course{i}", config, subs, students)
    t_nb, _ = timed(["nbgrader", "autograde", ASSIGNMENT], cwd=course, env=env)
    graded = sorted(p.parent.parent.name for p in course.glob(f"autograded/*/{ASSIGNMENT}/*.ipynb"))
    if graded != students:
        raise SystemExit(f"nbgrader autograded {graded}, expected {students}")
    out = work / f"out{i}"
    cmd = autograder_cmd(ASSIGNMENT, subs, out, jobs, "--skip", "accuracy")
    t_ag, _ = timed(cmd)
    run = {"nbgrader_s": round(t_nb, 2), "autograder_s": round(t_ag, 2)}
    for _ in range(3):
        t_re, log = timed(cmd)
        if f"graded 0, reused {len(students)}" in log:
            break
        # The grader's code or the assignment changed under us (a shared checkout being
        # edited): every hash changed, so it graded again. Time the next, unchanged, one.
        run.setdefault("notes", []).append(
            f"re-grade {t_re:.1f} s re-graded submissions: the grader's code or the "
            "assignment changed during the run; timed the next re-grade instead"
        )
    else:
        raise SystemExit(f"the re-grade keeps grading again:\n{log[-2000:]}")
    run["autograder_regrade_s"] = round(t_re, 2)
    skip_all = [arg for q in config.autograded for arg in ("--skip", q)]
    t_floor, _ = timed(autograder_cmd(ASSIGNMENT, subs, work / f"floor{i}", jobs, *skip_all))
    run["floor_s"] = round(t_floor, 2)
    if i == 0:  # nbgrader skips what it graded already (by timestamp): for information
        run["nbgrader_rerun_s"] = round(timed(["nbgrader", "autograde", ASSIGNMENT], cwd=course,
                                              env=env)[0], 2)  # fmt: skip
    run["course"], run["out"] = course, out
    return run


def main(argv: list[str] | None = None) -> None:
    with tee("nbgrader.txt"):
        run_benchmark(argv)


def run_benchmark(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="submissions (distinct)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (medians reported)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="autograder's -j")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = args.n
    config = load_assignment(ASSIGNMENT)
    if shutil.which("nbgrader", path=bench_env()["PATH"]) is None:
        raise SystemExit("nbgrader is not installed in this environment (pip install nbgrader)")
    with tempfile.TemporaryDirectory(prefix="bench-nbgrader-") as tmp:
        work = Path(tmp)
        subs = work / "subs"
        manifest = make_submissions(n, subs, args.seed)
        (subs / "manifest.json").unlink()
        students = sorted(manifest["students"])
        template = nbgrader_template(work / "template", config)
        runs = []
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}: nbgrader autograde, then autograder grade (x2) ...",
                  flush=True)  # fmt: skip
            t = time.monotonic()
            run = one_run(i, config, subs, students, args.jobs, work, template)
            print(
                f"  nbgrader {run['nbgrader_s']:.1f} s, autograder {run['autograder_s']:.1f} s, "
                f"re-grade {run['autograder_regrade_s']:.1f} s, floor {run['floor_s']:.1f} s"
                + (f" (nbgrader re-run {run['nbgrader_rerun_s']:.1f} s)" if i == 0 else "")
                + f"; the run took {time.monotonic() - t:.0f} s",
                flush=True,
            )
            for note in run.get("notes", []):
                print(f"  note: {note}", flush=True)
            runs.append(run)
        last = runs[-1]
        theirs = nbgrader_scores(last["course"], config, students)
        ours = our_scores(last["out"], config)
        cmp = compare(manifest, theirs, ours, config)
        for c in cmp["correct_mismatches"] + cmp["mistakes_full_marks_autograder"]:
            c["nbgrader_error"] = nbgrader_errors(last["course"], config, c["student"]).get(
                c["question"], ""
            )
    for run in runs:
        del run["course"], run["out"]

    nb_s = med(r["nbgrader_s"] for r in runs)
    ag_s = med(r["autograder_s"] for r in runs)
    re_s = med(r["autograder_regrade_s"] for r in runs)
    floor_s = med(r["floor_s"] for r in runs)
    nb_per, ag_per, re_per = nb_s / n, ag_s / n, re_s / n
    # Ratios are taken within each run (the two tools timed minutes apart, under the same
    # load), then the median over runs; the ratio of the medians is printed beside it.
    for r in runs:
        r["throughput_ratio"] = round(r["nbgrader_s"] / r["autograder_s"], 3)
        r["regrade_speedup"] = round(r["autograder_s"] / r["autograder_regrade_s"], 2)
        r["overhead_percent"] = round(100 * (r["autograder_s"] - r["floor_s"]) / r["floor_s"], 1)
    ratio = round(med(r["throughput_ratio"] for r in runs), 2)
    overhead = round(med(r["overhead_percent"] for r in runs), 1)
    regrade = round(med(r["regrade_speedup"] for r in runs), 1)

    print()
    print(f"{n} submissions, {args.runs} runs, medians; nbgrader runs notebooks one at a time,")
    print(f"autograder with -j {args.jobs} (2 CPU cores, no GPU):")
    print(f"  nbgrader autograde      {nb_s:8.1f} s  = {nb_per:6.2f} s per submission")
    print(f"  autograder grade        {ag_s:8.1f} s  = {ag_per:6.2f} s per submission")
    print(f"  autograder re-grade     {re_s:8.1f} s  (nothing changed: every result reused)")
    print(f"  floor (cells, no check) {floor_s:8.1f} s  = {floor_s / n:6.2f} s per submission")
    print(
        f"  overhead of grading over the floor: {overhead}% (runs: "
        f"{', '.join(str(r['overhead_percent']) for r in runs)})"
    )
    print(
        f"  ratio nbgrader / autograder per submission: {ratio}x (median of the runs' ratios "
        f"{', '.join(str(r['throughput_ratio']) for r in runs)}; ratio of the medians "
        f"{nb_per / ag_per:.2f}x)"
    )
    print(
        f"  re-grade speed-up, autograder grade / re-grade: {regrade}x (runs: "
        f"{', '.join(str(r['regrade_speedup']) for r in runs)})"
    )
    print(
        f"  (for information: `nbgrader autograde` run again took {runs[0]['nbgrader_rerun_s']:.1f}"
        " s: it skips every submission it has graded unless --force or a newer timestamp.txt,"
        " without looking at the contents; autograder re-grades exactly what changed, by"
        " content hash of the submission, the checks, the config and the grader's code)"
    )
    print()
    print("Per-question scores on the correct submissions (nbgrader test cell vs our checks):")
    by_student: dict[str, list] = {}
    for c in cmp["correct"]:
        by_student.setdefault(c["student"], []).append(c)
    for student, items in by_student.items():
        same = all(abs(c["nbgrader"] - c["autograder"]) < 1e-6 for c in items)
        text = ", ".join(f"{c['question']} {c['nbgrader']:g}/{c['autograder']:g}" for c in items)
        print(f"  {student}: {'same' if same else 'DIFFERENT'}: {text}")
    for c in cmp["correct_mismatches"]:
        print(
            f"  difference: {c['student']} {c['question']}: nbgrader {c['nbgrader']:g}, "
            f"autograder {c['autograder']:g} of {c['max']:g}"
            + (f" (alternative answer {c['mutated']})" if c["mutated"] else "")
            + (
                f"; nbgrader's test cell failed with {c['nbgrader_error']}"
                if c.get("nbgrader_error")
                else ""
            )
        )
    explanation = [
        "Why scores can differ: nbgrader scores a test cell all or nothing from the asserts in",
        "the notebook (visible and hidden tests); autograder ignores those cells and runs its",
        "hidden checks (tests in assignments/lab4-cnn/checks), with partial credit per check.",
        "On a correct submission both give full marks unless one of the tools rejects a valid",
        "alternative (e.g. a list instead of an array, a float32 result).",
    ]
    m = cmp["mistakes"]
    explanation.append(
        f"On the {m} mutated answers with a mistake: nbgrader gave full marks to "
        f"{len(cmp['mistakes_full_marks_nbgrader'])}, autograder to "
        f"{len(cmp['mistakes_full_marks_autograder'])}; autograder gave partial credit to "
        f"{len(cmp['mistakes_partial_autograder'])}."
    )
    for f in cmp["mistakes_full_marks_nbgrader"]:
        explanation.append(
            f"  nbgrader missed {f['mutated']} ({f['student']}): autograder "
            f"{f['autograder']:g}/{f['max']:g}"
        )
    for f in cmp["mistakes_full_marks_autograder"]:
        explanation.append(
            f"  autograder missed {f['mutated']} ({f['student']}): nbgrader "
            f"{f['nbgrader']:g}/{f['max']:g}"
        )
    print("\n".join(explanation))
    result = {
        "benchmark": "bench_nbgrader",
        "date": now(),
        "machine": machine(),
        "n": n,
        "runs": runs,
        "jobs": args.jobs,
        "seed": args.seed,
        "commands": {
            "nbgrader": "nbgrader autograde lab4-cnn  (course with training-tagged cells removed)",
            "autograder": "autograder grade lab4-cnn SUBS --out OUT "
            f"-j {args.jobs} --skip accuracy",
            "regrade": "the same autograder command again, nothing changed, no --force",
            "floor": "autograder grade lab4-cnn SUBS --out OUT2 "
            f"-j {args.jobs} --skip <every autograded question>  (cells only, no checks)",
        },
        "median_s": {
            "nbgrader": nb_s,
            "autograder": ag_s,
            "autograder_regrade": re_s,
            "floor": floor_s,
        },
        "per_submission_s": {
            "nbgrader": round(nb_per, 3),
            "autograder": round(ag_per, 3),
            "autograder_regrade": round(re_per, 3),
        },
        "throughput_ratio": ratio,
        "throughput_ratio_of_medians": round(nb_per / ag_per, 3),
        "regrade_speedup": regrade,
        "overhead_percent": overhead,
        "comparison": cmp,
        "explanation": explanation,
        "nbgrader_scores": theirs,
        "autograder_scores": ours,
        "manifest": manifest,
    }
    path = save("nbgrader.json", result)
    print(f"saved {path.relative_to(REPO)}")
    print(
        f"throughput vs nbgrader: {ratio}x, overhead vs floor: {overhead}%, "
        f"regrade: {regrade}x faster"
    )


if __name__ == "__main__":
    main()
