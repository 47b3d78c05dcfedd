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


def main() -> int:
    runner = CliRunner()
    steps = [
        ["release", "lab4-cnn", "--out", str(OUT / "release")],
        ["grade", "lab4-cnn", str(Path("assignments/lab4-cnn/examples")), "--out",
         str(OUT / "graded"), "-j", "2"],
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
