"""The `autograder` command: a thin layer over the library's functions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from autograder import logs
from autograder.exceptions import (
    EXIT_OK,
    AutograderError,
    NotSubmittable,
    ValidationFailed,
    VisibleTestsFailed,
)


def _fail(exc: AutograderError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group()
@click.version_option(package_name="autograder")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More diagnostics on stderr: -v for each submission's progress, -vv for debugging.",
)
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS, case_sensitive=False),
    default=None,
    help="Diagnostics shown on stderr (default WARNING; overrides -v).",
)
def main(verbose: int, log_level: str | None) -> None:
    """Release, check and grade nbgrader-format notebook assignments, safely and in parallel."""
    logs.configure(log_level or ("WARNING", "INFO", "DEBUG")[min(verbose, 2)])


@main.command()
@click.argument("assignment")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder to write DIR/<assignment>/<notebook>.ipynb into.",
)
def release(assignment: str, out: Path) -> None:
    """Write the student version of ASSIGNMENT (nbgrader generate_assignment)."""
    from autograder.config import load_assignment
    from autograder.release import release as do_release

    try:
        path = do_release(load_assignment(assignment), out)
    except AutograderError as exc:
        _fail(exc)
    click.echo(f"released {path}")


@main.command()
@click.argument("assignment")
@click.option(
    "--out", "out", type=click.Path(path_type=Path), default=Path("solutions"), show_default=True
)
@click.option("--no-execute", is_flag=True, help="Write the key without running it.")
@click.option(
    "--quick",
    is_flag=True,
    help="Run the key with the assignment's quick_env (a smoke test; a published key is "
    "run in full).",
)
def solutions(assignment: str, out: Path, no_execute: bool, quick: bool) -> None:
    """Write the answer key of ASSIGNMENT (generated from the source notebook), executed
    in full so that its outputs are the numbers its written answers quote."""
    from autograder.config import load_assignment
    from autograder.release import write_answer_key

    try:
        config = load_assignment(assignment)
        env = dict(config.quick_env) if quick else {}
        path = write_answer_key(config, out, execute=not no_execute, env=env)
    except AutograderError as exc:
        _fail(exc)
    click.echo(f"answer key {path}")


@main.command()
@click.argument("assignment")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Submissions graded in parallel.",
)
@click.option("--skip", multiple=True, metavar="QUESTION", help="Leave a question ungraded.")
@click.option("--force", is_flag=True, help="Re-grade submissions already graded unchanged.")
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS",
    help="Grade on a Dask cluster (tcp://SCHEDULER:8786).",
)
@click.option(
    "--nbgrader-db",
    type=click.Path(path_type=Path),
    help="Also write scores into this nbgrader gradebook.db.",
)
@click.option(
    "--manual",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Merge a filled OUT/manual/scores.csv (see `autograder manual`).",
)
@click.option(
    "--times",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Submission times, a student,submitted_at CSV (late policy).",
)
def grade(
    assignment: str,
    submissions: Path,
    out: Path,
    jobs: int,
    skip: tuple[str, ...],
    force: bool,
    dask_address: str | None,
    nbgrader_db: Path | None,
    manual: Path | None,
    times: Path | None,
) -> None:
    """Grade every submission in SUBMISSIONS (folder or .zip) into OUT."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from autograder.batch import grade_batch
    from autograder.config import load_assignment
    from autograder.reports.summary import console_table, hardest_checks_table
    from autograder.sandbox import warn_if_not_isolated

    if dask_address and jobs != 1:
        raise click.UsageError(
            "-j has no effect with --dask: the cluster's workers grade in parallel. "
            "Start more workers (or use --nthreads 1 per worker) instead"
        )
    console = Console(stderr=True)
    try:
        config = load_assignment(assignment)
        warning = warn_if_not_isolated()
        if warning:
            console.print(f"[bold red]{warning}[/]")
        executor = None
        if dask_address:
            from autograder.distributed import dask_executor

            executor = dask_executor(dask_address)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("grading", total=None)

            def progress(result, done, total):
                bar.update(
                    task, completed=done, total=total, description=f"graded {result.student[:30]}"
                )

            batch = grade_batch(
                config,
                submissions,
                out,
                jobs=jobs,
                skip=skip,
                force=force,
                executor=executor,
                progress=progress,
                nbgrader_db=nbgrader_db,
                manual=manual,
                times=times,
            )
    except AutograderError as exc:
        _fail(exc)
    for warning in batch.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(console_table(batch.results, config))
    hardest = hardest_checks_table(batch.results)
    if hardest is not None:
        console.print(hardest)
    click.echo(
        f"graded {batch.graded}, reused {batch.reused} unchanged, in {batch.seconds:.1f} s; "
        f"results in {out}/ (gradebook.csv, summary.json, summary.png, <student>/feedback.html)"
    )


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--assignment", help="The assignment this notebook must belong to.")
def check(notebook: Path, assignment: str | None) -> None:
    """Run NOTEBOOK's visible tests and say whether it can be submitted."""
    from autograder.student_check import check_notebook, find_config

    try:
        config = find_config(notebook, assignment)
        report = check_notebook(notebook, assignment=assignment, config=config)
    except AutograderError as exc:
        _fail(exc)
    for gid, outcome in report.tests.items():
        mark = (
            click.style("PASS", fg="green")
            if outcome == "passed"
            else click.style("FAIL", fg="red")
        )
        click.echo(f"{mark} {gid}" + ("" if outcome == "passed" else f": {outcome[:200]}"))
    if not report.submittable:
        for problem in report.problems:
            click.echo(click.style("NOT SUBMITTABLE: ", fg="red") + problem)
        sys.exit(NotSubmittable.exit_code)
    passed = sum(v == "passed" for v in report.tests.values())
    click.echo(f"{passed}/{len(report.tests)} visible tests pass; the notebook can be submitted.")
    sys.exit(EXIT_OK if report.all_passed else VisibleTestsFailed.exit_code)


@main.command()
@click.argument("assignment")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "--mistakes-per-question",
    type=click.IntRange(1, 1000),
    default=None,
    help="Grade only this many mistakes (and one alternative) per question.",
)
def validate(assignment: str, jobs: int, mistakes_per_question: int | None) -> None:
    """Prove ASSIGNMENT's checks: key scores full, stubs zero, every mutant caught."""
    from autograder.config import load_assignment
    from autograder.validate import render_table, validate_assignment

    try:
        report = validate_assignment(
            load_assignment(assignment), jobs=jobs, mistakes_per_question=mistakes_per_question
        )
    except AutograderError as exc:
        _fail(exc)
    click.echo(render_table(report))
    sys.exit(EXIT_OK if report.ok else ValidationFailed.exit_code)


@main.command()
@click.argument("assignment")
@click.argument("out", type=click.Path(path_type=Path, exists=True, file_okay=False))
def manual(assignment: str, out: Path) -> None:
    """Write OUT/manual/<question>.html (every answer to a question, with the rubric) and
    OUT/manual/scores.csv to fill; merge it with `grade ... --manual`."""
    from autograder.config import load_assignment
    from autograder.manual import write_sheets

    try:
        paths = write_sheets(load_assignment(assignment), out)
    except AutograderError as exc:
        _fail(exc)
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(
        f"fill {paths[-1]}, then: autograder grade {assignment} SUBMISSIONS --out {out} "
        f"--manual {paths[-1]}"
    )


@main.command()
@click.argument("out", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["canvas", "moodle", "csv"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--roster",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The course roster (Canvas: Grades > Export; Moodle: participants CSV).",
)
@click.option("--to", "dest", type=click.Path(path_type=Path), help="[default: OUT/export-FMT.csv]")
@click.option("--column", default="", help="The LMS assignment column [default: its name].")
@click.option("--skip-unmatched", is_flag=True, help="Export without students not on the roster.")
def export(
    out: Path, fmt: str, roster: Path | None, dest: Path | None, column: str, skip_unmatched: bool
) -> None:
    """Write OUT's grades as a file the LMS imports as is."""
    from autograder.export import ExportFormat, export_grades

    try:
        path, plan = export_grades(
            out,
            ExportFormat(fmt),
            roster_path=roster,
            dest=dest,
            skip_unmatched=skip_unmatched,
            column=column,
        )
    except AutograderError as exc:
        _fail(exc)
    for u in plan.unmatched:
        click.echo(f"unmatched (left out): {u.student}: {u.reason}", err=True)
    if plan.gradebook.ungraded_manual:
        waiting = plan.gradebook.ungraded_manual
        click.echo(
            f"warning: {len(waiting)} student(s) have manual questions not graded yet (their "
            f"total lacks those points): {', '.join(waiting[:10])}. See `autograder manual`",
            err=True,
        )
    if plan.no_submission:
        names = ", ".join(e.display_name or e.login or e.email for e in plan.no_submission[:20])
        click.echo(f"{len(plan.no_submission)} on the roster without a submission: {names}")
    click.echo(f"exported {len(plan.matched)} grade(s) to {path}")


if __name__ == "__main__":
    main()
