"""Generate N lab4-cnn submissions, deterministically, from the answer key and the mutants.

    python bench/make_submissions.py N OUTDIR [--seed S] [--assignment lab4-cnn]

Writes OUTDIR/<student>.ipynb and OUTDIR/manifest.json. Every submission starts as
the answer key (`autograder.release.answer_key`: the released notebook with the
instructor's answers); then answer cells are swapped for mutants from
`assignments/lab4-cnn/mutants/<question>/*.py` (each file starts `# kind: mistake` or
`# kind: alternative`). Student i gets, by i % 4:

    0: nothing swapped: the answer key (correct) for student 1, one `alternative`
       mutant for the others (so that no two submissions are the same notebook);
    1: one or two `alternative` mutants (correct, written differently);
    2, 3: one to three `mistake` mutants on different questions (and, for 3, one
       alternative on another question).

Every submission is distinct (a plan already drawn is drawn again, up to 100 times), so
each one really executes: nothing can be reused from another student's result. Uses
whatever mutants and notebook exist at run time; the same N, seed and files give
byte-identical notebooks. The manifest records each student's swaps and whether the
submission is expected to score full marks (`correct`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402

from autograder.config import load_assignment  # noqa: E402
from autograder.notebook import ANSWER, cell_role, grade_id  # noqa: E402
from autograder.release import answer_key  # noqa: E402


def read_mutants(mutants_dir: Path, answer_ids: set[str]) -> dict[str, dict[str, list[Path]]]:
    """question -> {"mistake": [...], "alternative": [...]} (sorted; unknown kinds ignored)."""
    found: dict[str, dict[str, list[Path]]] = {}
    if not mutants_dir.is_dir():
        return found
    for folder in sorted(p for p in mutants_dir.iterdir() if p.is_dir()):
        if folder.name not in answer_ids:
            continue  # no answer cell of that id in the notebook (any more)
        for path in sorted(folder.glob("*.py")):
            first = path.read_text(encoding="utf-8").splitlines()[:1]
            kind = first[0].partition("kind:")[2].strip() if first else ""
            if kind in ("mistake", "alternative"):
                found.setdefault(folder.name, {"mistake": [], "alternative": []})[kind].append(path)
    return found


def mutant_source(path: Path) -> str:
    """The mutant without its `# kind:` / `# why:` header, as a student would write it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and lines[0].startswith(("# kind:", "# why:")):
        lines.pop(0)
    return "\n".join(lines).strip("\n") + "\n"


def plan(i: int, rng: random.Random, mutants: dict) -> list[tuple[str, str, Path]]:
    """The (question, kind, file) swaps for student i."""

    def pick(kind: str, k: int, avoid: set[str]) -> list[tuple[str, str, Path]]:
        questions = sorted(q for q, kinds in mutants.items() if kinds[kind] and q not in avoid)
        chosen = rng.sample(questions, min(k, len(questions)))
        return [(q, kind, rng.choice(mutants[q][kind])) for q in sorted(chosen)]

    slot = i % 4
    if slot == 0:
        return [] if i == 0 else pick("alternative", 1, set())
    if slot == 1:
        return pick("alternative", rng.randint(1, 2), set())
    swaps = pick("mistake", rng.randint(1, 3), set())
    if slot == 3:
        swaps += pick("alternative", 1, {q for q, _, _ in swaps})
    return swaps


def make_submissions(n: int, out: Path, seed: int = 0, assignment: str = "lab4-cnn") -> dict:
    config = load_assignment(assignment)
    key = answer_key(config)
    answer_ids = {gid for c in key.cells if (gid := grade_id(c)) and cell_role(c) == ANSWER}
    mutants = read_mutants(config.mutants_dir, answer_ids)
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"assignment": config.name, "seed": seed, "students": {}}
    width = max(2, len(str(n)))
    drawn: set[tuple] = set()
    for i in range(n):
        student = f"student{i + 1:0{width}d}"
        for _ in range(100):
            swaps = plan(i, rng, mutants)
            if (signature := tuple((q, str(path)) for q, _, path in swaps)) not in drawn:
                break
        drawn.add(signature)
        sources = {q: mutant_source(path) for q, _, path in swaps}
        nb = nbformat.from_dict(json.loads(json.dumps(key)))  # a deep copy
        for cell in nb.cells:
            if (gid := grade_id(cell)) in sources:
                cell.source = sources[gid]
        nbformat.write(nb, out / f"{student}.ipynb")
        manifest["students"][student] = {
            "correct": all(kind == "alternative" for _, kind, _ in swaps),
            "swaps": [
                {"question": q, "kind": kind, "mutant": str(path.relative_to(config.root))}
                for q, kind, path in swaps
            ],
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--assignment", default="lab4-cnn")
    args = parser.parse_args(argv)
    manifest = make_submissions(args.n, args.outdir, args.seed, args.assignment)
    correct = sum(s["correct"] for s in manifest["students"].values())
    print(f"wrote {args.n} submissions to {args.outdir} ({correct} expected to score full marks)")


if __name__ == "__main__":
    main()
