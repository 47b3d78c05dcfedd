"""`make demo`: release Lab 4 and grade its bundled example submissions.

The examples (assignments/lab4-cnn/examples/) are a perfect submission, the
untouched release (stubs), and students with typical mistakes, so the
gradebook, feedback pages and class plot show something worth reading.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from autograder.cli import main as cli

OUT = Path("demo-out")


# Bundled example class: (student, {question: mutant}, extra cell after a grade_id or None).
EXAMPLES = [
    ("alice", {}, None),
    ("bob", {"conv2d": "flipped_kernel", "pooling": "default_stride_one"}, None),
    ("carol", {"conv1d": "off_by_one_length", "build_model": "no_pooling"}, None),
    ("eve", {"tf_conv": "sobel_swapped"}, ("setup", "while True:\n    pass  # forgot to remove\n")),
]


def make_examples(dest: Path) -> None:
    """Write the example submissions from the answer key and the validation mutants."""
    import nbformat
    from nbformat.v4 import new_code_cell

    from autograder.config import load_assignment
    from autograder.notebook import grade_id
    from autograder.release import answer_key, release_notebook

    config = load_assignment("lab4-cnn")
    release = release_notebook(config)
    key = answer_key(config, release)
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(release, dest / "dave.ipynb")  # handed in untouched: the stubs
    for student, mutants, extra in EXAMPLES:
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
        target = (
            dest / student / "lab4-cnn.ipynb" if student == "carol" else dest / f"{student}.ipynb"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    (dest / "carol" / "README.txt").write_text("carol's notes, handed in beside the notebook\n")


def main() -> int:
    if "--make-examples" in sys.argv:
        make_examples(Path("assignments/lab4-cnn/examples"))
        return 0
    runner = CliRunner()
    steps = [
        ["release", "lab4-cnn", "--out", str(OUT / "release")],
        [
            "grade",
            "lab4-cnn",
            str(Path("assignments/lab4-cnn/examples")),
            "--out",
            str(OUT / "graded"),
            "-j",
            "2",
        ],
    ]
    for args in steps:
        print(f"$ autograder {' '.join(args)}", flush=True)
        result = runner.invoke(cli, args, catch_exceptions=False)
        print(result.output, flush=True)
        if result.exit_code:
            return result.exit_code
    graded = (OUT / "graded").resolve()
    print("Results:")
    print(f"  student notebook  {(OUT / 'release' / 'lab4-cnn' / 'lab4-cnn.ipynb').resolve()}")
    print(f"  gradebook         {graded / 'gradebook.csv'}")
    print(f"  class summary     {graded / 'summary.json'}, {graded / 'summary.png'}")
    print(f"  feedback          {graded}/<student>/feedback.html, results.json (Gradescope)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
