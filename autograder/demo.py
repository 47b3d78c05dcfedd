"""`make demo`: release both course assignments and grade their bundled example classes.

The examples (assignments/<name>/examples/) are a perfect submission, the untouched
release (stubs), and students with typical mistakes, so the gradebook, feedback pages
and class plot show something worth reading. The only module of the package that names
an assignment: it is the demo of the bundled ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from autograder.cli import main as cli

OUT = Path("demo-out")


# Bundled example classes: (student, {question: mutant}, extra cell after a grade_id or None).
# carol hands in a folder (her notebook and a note beside it).
Example = tuple[str, dict[str, str], tuple[str, str] | None]
EXAMPLES: dict[str, list[Example]] = {
    "lab4-cnn": [
        ("alice", {}, None),
        ("bob", {"conv2d": "flipped_kernel", "pooling": "default_stride_one"}, None),
        ("carol", {"conv1d": "off_by_one_length", "build_model": "no_pooling"}, None),
        (
            "eve",
            {"tf_conv": "sobel_swapped"},
            ("setup", "while True:\n    pass  # forgot to remove\n"),
        ),
    ],
    "cnn-intro": [
        ("alice", {}, None),
        ("bob", {"conv_params": "ignores_dilation", "data_prep": "no_channel_axis"}, None),
        ("carol", {"tensorboard": "no_validation_split", "deeper_model": "three_conv"}, None),
    ],
}
ASSIGNMENTS = tuple(EXAMPLES)


def make_examples(name: str, dest: Path) -> None:
    """Write the example submissions from the answer key and the validation mutants."""
    import nbformat
    from nbformat.v4 import new_code_cell

    from autograder.config import load_assignment
    from autograder.notebook import grade_id
    from autograder.release import answer_key, release_notebook

    config = load_assignment(name)
    release = release_notebook(config)
    key = answer_key(config, release)
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(release, dest / "dave.ipynb")  # handed in untouched: the stubs
    for student, mutants, extra in EXAMPLES[name]:
        nb = nbformat.from_dict(key)
        cells = []
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid in mutants:
                cell.source = (config.mutants_dir / gid / f"{mutants[gid]}.py").read_text()
            cells.append(cell)
            if extra and gid == extra[0]:
                cells.append(new_code_cell(extra[1]))
        nb.cells = cells
        notebook = config.notebook.name
        target = dest / student / notebook if student == "carol" else dest / f"{student}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    (dest / "carol" / "README.txt").write_text("carol's notes, handed in beside the notebook\n")


def main() -> int:
    if "--make-examples" in sys.argv:
        for name in ASSIGNMENTS:
            make_examples(name, Path("assignments") / name / "examples")
        return 0
    runner = CliRunner()
    for name in ASSIGNMENTS:
        graded = OUT / name / "graded"
        steps = [
            ["release", name, "--out", str(OUT / "release")],
            ["grade", name, str(Path("assignments") / name / "examples"), "--out", str(graded)],
        ]
        for args in steps:
            args += ["-j", "2"] if args[0] == "grade" else []
            print(f"$ autograder {' '.join(args)}", flush=True)
            result = runner.invoke(cli, args, catch_exceptions=False)
            print(result.output, flush=True)
            if result.exit_code:
                return result.exit_code
    print("Results:")
    for name in ASSIGNMENTS:
        graded = (OUT / name / "graded").resolve()
        print(f"  {name}:")
        print(f"    student notebook  {(OUT / 'release' / name / f'{name}.ipynb').resolve()}")
        print(f"    gradebook         {graded / 'gradebook.csv'}")
        print(f"    class summary     {graded / 'summary.json'}, {graded / 'summary.png'}")
        print(f"    feedback          {graded}/<student>/feedback.html, results.json (Gradescope)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
