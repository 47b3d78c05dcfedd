"""How long grading takes per submission, and where the time goes.

    python bench/bench_grading.py [--n 20] [-j 2] [--seed 0]
    python bench/bench_grading.py --scaling [--sizes 20,200] [-j 2]

Default mode: generates N lab4-cnn submissions (bench/make_submissions.py), grades them
with `autograder grade lab4-cnn SUBS --out OUT -j J --skip accuracy --force` and times
it; then splits one submission's grading time into the notebook's own work and the
grader's overhead, and sets that overhead against the unavoidable cost of starting
Python and importing TensorFlow (which any tool that runs a notebook in a fresh
process pays). Writes bench/results/grading.json.

--scaling: grades 20 and 200 submissions of the toy assignment (tests/fixtures/toy, no
TensorFlow) and reports time per submission and the grader's peak memory at each size
(psutil samples of the grader process tree, and getrusage max RSS). Writes
bench/results/scaling.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

VENV_BIN = Path(sys.executable).parent
TOY = REPO / "tests" / "fixtures" / "toy"


# -- shared helpers (bench_nbgrader imports these) -----------------------------------------


def bench_env() -> dict[str, str]:
    """The environment for the commands we time: the venv's bin first (nbgrader needs alembic)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def machine() -> dict:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem, 1),
        "gpu": "none (CPU only)",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_when_saved": [round(x, 2) for x in os.getloadavg()],
    }


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def timed(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None) -> tuple[float, str]:
    """Run cmd, raise with its output on failure; return (wall seconds, output)."""
    start = time.monotonic()
    proc = subprocess.run(
        cmd, env=env or bench_env(), cwd=cwd, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return seconds, proc.stdout + proc.stderr


def import_tensorflow_seconds(runs: int = 3) -> list[float]:
    """Wall time of `python -c "import tensorflow"` (a fresh process each time)."""
    return [round(timed([sys.executable, "-c", "import tensorflow"])[0], 3) for _ in range(runs)]


def autograder_cmd(assignment: str, subs: Path, out: Path, jobs: int, *extra: str) -> list[str]:
    return [
        str(VENV_BIN / "autograder"), "grade", assignment, str(subs), "--out", str(out),
        "-j", str(jobs), *extra,
    ]  # fmt: skip


def grade_records(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/grade.json"))}


def med(values) -> float:
    values = list(values)
    return round(statistics.median(values), 3) if values else float("nan")


class tee:
    """Copy everything printed to bench/results/<name> as well (the run's text report)."""

    def __init__(self, name: str) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.path = RESULTS / name

    def __enter__(self):
        self.file = self.path.open("w")
        self.stdout = sys.stdout
        sys.stdout = self
        return self

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stdout.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.stdout.flush()

    def __exit__(self, *exc) -> None:
        sys.stdout = self.stdout
        self.file.close()


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


# -- one submission, phase by phase ----------------------------------------------------------


def phase_times(notebook: Path, assignment: str, runs: int = 3, skip=("accuracy",)) -> dict:
    """Grade `notebook` alone, `runs` times, with the real grade_submission, timing its phases.

    The phases are timed by wrapping what grade_submission calls (the sandbox's set-up and
    close, the kernel's start, cells and shutdown, the checks), so grading itself is
    unchanged. Runs in this process, one submission at a time: the latency of one
    submission, not the -j throughput.
    """
    import autograder.grade as grade
    from autograder.config import load_assignment
    from autograder.release import release_notebook
    from autograder.submissions import SubmissionInput

    config = load_assignment(assignment)
    release = release_notebook(config)
    spent: dict[str, float] = {}

    def clock(name, fn):
        def wrapper(*args, **kwargs):
            t = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.monotonic() - t

        return wrapper

    patches = [
        (grade.KernelSession, "start", "kernel_start_s"),
        (grade.KernelSession, "run_cells", "cells_s"),
        (grade.KernelSession, "close", "kernel_close_s"),
        (grade.Sandbox, "__post_init__", "sandbox_setup_s"),
        (grade.Sandbox, "close", "sandbox_close_s"),
        (grade, "run_checks", "checks_s"),
    ]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    table: dict[str, list] = {}
    try:
        for obj, attr, name in patches:
            setattr(obj, attr, clock(name, getattr(obj, attr)))
        for _ in range(runs):
            spent.clear()
            t = time.monotonic()
            result = grade.grade_submission(
                SubmissionInput("probe", notebook), config, release, skip=frozenset(skip)
            )
            spent["total_s"] = time.monotonic() - t
            spent["other_s"] = 2 * spent["total_s"] - sum(spent.values())
            for k, v in spent.items():
                table.setdefault(k, []).append(round(v, 3))
            table.setdefault("score", []).append(result.total)
            table.setdefault("status", []).append(result.status)
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)
    return table


# -- default mode ------------------------------------------------------------------------------


def bench_lab4(n: int, jobs: int, seed: int, probe_runs: int = 3) -> dict:
    from make_submissions import make_submissions

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        base = Path(tmp)
        subs, out = base / "subs", base / "out"
        manifest = make_submissions(n, subs, seed)
        (subs / "manifest.json").unlink()  # not a submission
        print(f"{n} lab4-cnn submissions in {subs}; grading with -j {jobs} --skip accuracy ...")
        cmd = autograder_cmd("lab4-cnn", subs, out, jobs, "--skip", "accuracy", "--force")
        wall, _ = timed(cmd)
        records = grade_records(out)
        if len(records) != n:
            raise SystemExit(f"expected {n} graded submissions, found {len(records)} in {out}")
        print("measuring python -c 'import tensorflow' (3 runs) ...")
        tf_import = import_tensorflow_seconds(3)
        print(f"grading the answer key alone, {probe_runs} times, timing each phase ...")
        probe = phase_times(subs / "student01.ipynb", "lab4-cnn", probe_runs)

    latency = {s: r["seconds"] for s, r in records.items()}
    T = med(tf_import)
    # The breakdown of the run with the median total, so that its parts add up.
    totals = probe["total_s"]
    mid = sorted(range(len(totals)), key=totals.__getitem__)[len(totals) // 2]
    P = {k: v[mid] for k, v in probe.items() if k.endswith("_s")}
    L, C, K, D = P["total_s"], P["cells_s"], P["kernel_start_s"], P["checks_s"]
    S = round(P["sandbox_setup_s"] + P["sandbox_close_s"] + P["kernel_close_s"], 3)
    R = P["other_s"]
    overhead = round(L - C, 3)
    per_sub = round(wall / n, 3)
    ratio = round(overhead / T, 2) if T else None
    result = {
        "benchmark": "bench_grading",
        "date": now(),
        "machine": machine(),
        "command": " ".join(["autograder", "grade", "lab4-cnn", "SUBS", "--out", "OUT"] + cmd[6:]),
        "n": n,
        "jobs": jobs,
        "seed": seed,
        "correct_submissions": sum(s["correct"] for s in manifest["students"].values()),
        "wall_s": round(wall, 2),
        "latency_under_load_s": latency,
        "import_tensorflow_s": tf_import,
        "phases_alone": probe,
        "summary": {
            "throughput_s_per_submission": per_sub,
            "median_latency_under_load_s": med(latency.values()),
            "alone_total_s": L,
            "alone_kernel_start_s": K,
            "alone_notebook_cells_s": C,
            "alone_checks_s": D,
            "alone_sandbox_and_kernel_teardown_s": S,
            "alone_other_s": R,
            "overhead_excluding_notebook_s": overhead,
            "import_tensorflow_s": T,
            "overhead_over_import_tensorflow": ratio,
        },
    }
    lines = [
        f"graded {n} lab4-cnn submissions with -j {jobs} --skip accuracy in {wall:.1f} s: "
        f"{per_sub:.2f} s per submission (throughput = wall / N)",
        f"each submission's own time under that load (grade.json 'seconds'): median "
        f"{med(latency.values()):.1f} s, range {min(latency.values()):.1f}-"
        f"{max(latency.values()):.1f} s",
        "",
        f"One submission (the answer key) graded alone, {probe_runs} times; the run with the "
        "median total, by phase:",
        f"  L  end to end (grade_submission)                               {L:7.2f} s",
        f"  K  sandboxed kernel start (bwrap, cgroup, ipykernel)           {K:7.2f} s",
        "  C  the notebook's own work: its cells, training cells skipped,",
        f"     `import tensorflow` and the data set load included          {C:7.2f} s",
        f"  D  hidden checks (pytest, calls into the kernel)               {D:7.2f} s",
        f"     (the first run in a fresh process: {probe['checks_s'][0]:.2f} s, starting the "
        "worker's warm model host once)",
        f"  S  sandbox set-up and teardown, kernel shutdown                {S:7.2f} s",
        f"  R  the rest (read, restore, score) = L - K - C - D - S         {R:7.2f} s",
        f"  overhead excluding the notebook's own work = L - C = K + D + S + R = {overhead:.2f} s",
        f"  T  python -c 'import tensorflow', median of 3 "
        f"({', '.join(f'{x:.2f}' for x in tf_import)}) = {T:.2f} s",
        f"  (L - C) / T = {overhead:.2f} / {T:.2f} = {ratio}: the grader's whole per-submission",
        "  overhead in units of one Python + TensorFlow start-up, a cost that any runner giving",
        "  each notebook a fresh kernel (nbgrader included) pays inside C anyway.",
    ]
    print("\n".join(lines))
    result["explanation"] = lines
    path = save("grading.json", result)
    print(f"saved {path.relative_to(REPO)}")
    return result


# -- scaling mode ------------------------------------------------------------------------------


class TreeSampler:
    """Peak RSS of a process, of its direct children (pool workers) and of the whole tree."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_main = self.peak_tree = self.peak_workers = 0
        self.samples = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            try:
                main = self.proc.memory_info().rss
                kids = self.proc.children(recursive=False)
                tree = self.proc.children(recursive=True)
            except psutil.Error:
                continue
            workers = tree_total = 0
            for p in tree:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                tree_total += rss
                if p in kids:
                    workers += rss
            self.peak_main = max(self.peak_main, main)
            self.peak_workers = max(self.peak_workers, workers)
            self.peak_tree = max(self.peak_tree, main + tree_total)
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


RUSAGE_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"
    ".returncode\n"
    "print(json.dumps({'rc': rc, 'seconds': time.monotonic() - t,\n"
    "  'children_maxrss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)


def toy_submissions(n: int, dest: Path) -> None:
    """n toy submissions: the answer key, every third one with a wrong `add`."""
    import copy

    import nbformat

    from autograder.config import load_config
    from autograder.notebook import grade_id
    from autograder.release import answer_key

    key = answer_key(load_config(TOY / "assignment.toml"))
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        nb = copy.deepcopy(key)
        if i % 3 == 2:
            for cell in nb.cells:
                if grade_id(cell) == "add":
                    cell.source = "def add(a, b):\n    return a - b\n"
        nbformat.write(nb, dest / f"s{i:04d}.ipynb")


def bench_scaling(sizes: list[int], jobs: int) -> dict:
    import psutil  # noqa: F401 - comes with dask[distributed]; fail early if missing

    runs = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
            subs, out = Path(tmp) / "subs", Path(tmp) / "out"
            toy_submissions(n, subs)
            cmd = autograder_cmd(str(TOY), subs, out, jobs, "--force")
            print(f"grading {n} toy submissions with -j {jobs} ...", flush=True)
            wrapper = subprocess.Popen(
                [sys.executable, "-c", RUSAGE_WRAPPER, *cmd],
                env=bench_env(), stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            sampler = None
            deadline = time.monotonic() + 30
            import psutil

            while sampler is None and time.monotonic() < deadline:
                kids = psutil.Process(wrapper.pid).children()
                if kids:
                    sampler = TreeSampler(kids[0].pid)
                else:
                    time.sleep(0.05)
            stdout, _ = wrapper.communicate()
            if sampler:
                sampler.stop()
            report = json.loads(stdout.strip().splitlines()[-1])
            if report["rc"] != 0:
                raise SystemExit(f"grading {n} toy submissions failed (exit {report['rc']})")
            rows = (out / "gradebook.csv").read_text().splitlines()[1:]
            if len(rows) != n:
                raise SystemExit(f"expected {n} gradebook rows, got {len(rows)}")
            mib = 1 / 2**20
            runs.append(
                {
                    "n": n,
                    "wall_s": round(report["seconds"], 2),
                    "s_per_submission": round(report["seconds"] / n, 3),
                    "peak_rss_grader_mib": round(sampler.peak_main * mib, 1) if sampler else None,
                    "peak_rss_pool_workers_mib": round(sampler.peak_workers * mib, 1)
                    if sampler
                    else None,
                    "peak_rss_tree_mib": round(sampler.peak_tree * mib, 1) if sampler else None,
                    "rusage_children_maxrss_mib": round(report["children_maxrss_kib"] / 1024, 1),
                    "samples": sampler.samples if sampler else 0,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    first, last = runs[0], runs[-1]
    result = {
        "benchmark": "bench_grading --scaling",
        "date": now(),
        "machine": machine(),
        "assignment": "toy (tests/fixtures/toy)",
        "jobs": jobs,
        "runs": runs,
        "ratios_last_over_first": {
            "s_per_submission": round(last["s_per_submission"] / first["s_per_submission"], 2),
            "peak_rss_grader": round(last["peak_rss_grader_mib"] / first["peak_rss_grader_mib"], 2)
            if first["peak_rss_grader_mib"]
            else None,
            "peak_rss_tree": round(last["peak_rss_tree_mib"] / first["peak_rss_tree_mib"], 2)
            if first["peak_rss_tree_mib"]
            else None,
        },
        "notes": [
            "peak_rss_grader: the `autograder grade` process (psutil, sampled every 0.25 s)",
            "peak_rss_pool_workers: the sum over its direct children (the -j worker processes)",
            "peak_rss_tree: everything under it, sandboxed kernels included",
            "rusage_children_maxrss: getrusage(RUSAGE_CHILDREN).ru_maxrss of a wrapper process"
            " = the largest single process of the run",
        ],
    }
    a, b = first, last
    print(
        f"time per submission: {a['s_per_submission']:.2f} s at {a['n']}, "
        f"{b['s_per_submission']:.2f} s at {b['n']} "
        f"(x{result['ratios_last_over_first']['s_per_submission']}); grader peak RSS "
        f"{a['peak_rss_grader_mib']} MiB at {a['n']}, {b['peak_rss_grader_mib']} MiB at {b['n']}; "
        f"whole tree {a['peak_rss_tree_mib']} -> {b['peak_rss_tree_mib']} MiB"
    )
    path = save("scaling.json", result)
    print(f"saved {path.relative_to(REPO)}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="lab4-cnn submissions to grade")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-runs", type=int, default=3,
                        help="runs of the kernel start + cells measurement")  # fmt: skip
    parser.add_argument("--scaling", action="store_true",
                        help="toy assignment: time and peak memory at each of --sizes")  # fmt: skip
    parser.add_argument("--sizes", default="20,200")
    args = parser.parse_args(argv)
    if args.scaling:
        with tee("scaling.txt"):
            bench_scaling([int(s) for s in args.sizes.split(",")], args.jobs)
    else:
        with tee("grading.txt"):
            bench_lab4(args.n, args.jobs, args.seed, args.probe_runs)


if __name__ == "__main__":
    main()
