"""Where the hidden checks' time goes: the grader, the student's kernel, the model host.

    python bench/bench_checks.py [--n 8] [--seed 0] [--subs DIR]

Generates N lab4-cnn submissions (bench/make_submissions.py) and grades each one in this
process (`grade.grade_submission`, warm kernels, `--skip accuracy` as in `make bench`),
after one submission to warm up. Around `grade.run_checks` it reads the wall time, this
process's CPU time (the grader: pytest, the bridge, decoding), the CPU time of the
student's sandbox and of the model host's sandbox (each from /proc, `Sandbox.usage`), and
counts the round trips into the kernel (each function's calls, and the `has:`
questions). `--subs DIR` grades the first N notebooks of DIR instead (the same files for
two versions of the code: the mutants decide what a seed draws). Prints medians per
submission; writes bench/results/checks.json. Run it back to back on two versions of the
code to compare them: the machine is shared and noisy, so only figures of one sitting
compare.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from bench_grading import machine, now, save, tee  # noqa: E402
from make_submissions import make_submissions  # noqa: E402

from autograder import bridge, grade, model_host  # noqa: E402
from autograder.config import load_assignment  # noqa: E402
from autograder.release import release_notebook  # noqa: E402
from autograder.submissions import SubmissionInput  # noqa: E402

ASSIGNMENT = "lab4-cnn"


def _host_cpu() -> float:
    """CPU seconds of every live model host of this process (their sandboxes)."""
    return sum(
        host._sandbox.usage()[0] for host in model_host._HOSTS.values() if host._sandbox is not None
    )


def measure(notebooks: list[Path]) -> dict:
    config = load_assignment(ASSIGNMENT)
    release = release_notebook(config)
    rows: list[dict] = []
    calls: collections.Counter = collections.Counter()
    run_checks, serve, ask = (
        grade.run_checks,
        bridge.KernelSubmission._serve,
        bridge.KernelSubmission._ask,
    )

    def counted(self, calldir, function):  # noqa: ANN001 - the method's own signature
        calls[function] += 1
        return serve(self, calldir, function)

    def asked(self, op, name):  # noqa: ANN001 - `has` round trips
        calls[f"{op}:{name}"] += 1
        return ask(self, op, name)

    def timed(checks_dir, submission, *args, **kwargs):  # noqa: ANN001
        sandbox = submission.session.sandbox
        kernel, host = sandbox.usage()[0], _host_cpu()
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return run_checks(checks_dir, submission, *args, **kwargs)
        finally:
            rows.append(
                {
                    "wall_s": time.perf_counter() - wall,
                    "grader_cpu_s": time.process_time() - cpu,
                    "kernel_cpu_s": sandbox.usage()[0] - kernel,
                    "host_cpu_s": _host_cpu() - host,
                }
            )

    grade.run_checks, bridge.KernelSubmission._serve = timed, counted
    bridge.KernelSubmission._ask = asked
    try:
        for notebook in [notebooks[0], *notebooks]:  # the first one warms up
            grade.grade_submission(
                SubmissionInput(notebook.stem, notebook), config, release,
                skip=frozenset({"accuracy"}),
            )  # fmt: skip
    finally:
        grade.run_checks, bridge.KernelSubmission._serve = run_checks, serve
        bridge.KernelSubmission._ask = ask
    graded = rows[1:]
    n = len(graded)
    return {
        "submissions": n,
        "median_per_submission": {
            key: round(statistics.median(r[key] for r in graded), 3) for key in graded[0]
        },
        "calls_per_submission": {
            name: round(count / (n + 1), 1) for name, count in calls.most_common()
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="submissions (distinct)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subs", type=Path, help="grade these notebooks instead")
    args = parser.parse_args(argv)
    with tee("checks.txt"), tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        subs = args.subs
        if subs is None:
            subs = Path(tmp) / "subs"
            make_submissions(args.n, subs, args.seed)
        found = measure(sorted(subs.glob("*.ipynb"))[: args.n])
        medians = found["median_per_submission"]
        print(f"{found['submissions']} warm lab4-cnn submissions graded in-process, medians:")
        for key, value in medians.items():
            print(f"  {key:14s} {value:6.3f}")
        print("  bridge calls per submission: " + ", ".join(
            f"{name} {count:g}" for name, count in found["calls_per_submission"].items()
        ))  # fmt: skip
        options = {**vars(args), "subs": None if args.subs is None else str(args.subs)}
        save("checks.json", {"date": now(), "machine": machine(), "args": options, **found})


if __name__ == "__main__":
    main()
