"""Does an assignment's config name only cells its source notebook has?

Threat: a typo in assignment.toml is an error nowhere else. A manual question whose id
is no cell's grade_id finds no answer (every student gets nothing to grade), a name in
`outputs` shows no outputs on the grading page, and a mutants folder named after no
answer cell grades the unchanged key, reported as a mistake the checks missed. Checked
when the student version is released and by `autograder validate`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode

from autograder.config import AssignmentConfig
from autograder.exceptions import ConfigError
from autograder.notebook import ANSWER, MANUAL, cell_role, grade_id


@dataclass(frozen=True)
class Mismatch:
    """One config key that names something the notebook does not have."""

    key: str  # dotted, as in assignment.toml (or the mutants folder's path)
    problem: str


def mismatches(config: AssignmentConfig, notebook: NotebookNode) -> list[Mismatch]:
    """Every config key naming a cell that the source notebook lacks, and every manual
    cell no question grades."""
    roles: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for cell in notebook.cells:
        gid = grade_id(cell)
        if gid and gid not in roles:
            roles[gid], kinds[gid] = cell_role(cell), cell.cell_type
    found: list[Mismatch] = []
    questions = config.questions
    for qid in (q.id for q in questions.values() if q.manual):
        role = roles.get(qid)
        if role != MANUAL:
            found.append(
                Mismatch(
                    f"questions.{qid}",
                    (
                        f"the cell with grade_id {qid!r} is {_article(role)} {role} cell, not a "
                        "manually graded answer"
                        if role
                        else f"no manual cell (nbgrader 'Manually graded answer') has grade_id "
                        f"{qid!r}" + _near(qid, [g for g, r in roles.items() if r == MANUAL])
                    ),
                )
            )
        for i, name in enumerate(questions[qid].outputs):
            if kinds.get(name) != "code":
                found.append(
                    Mismatch(
                        f"questions.{qid}.outputs[{i}]",
                        f"no code cell has grade_id {name!r}"
                        + _near(name, [g for g, k in kinds.items() if k == "code"]),
                    )
                )
    for gid, role in roles.items():
        if role == MANUAL and not (gid in questions and questions[gid].manual):
            problem = (
                "is an autograded question (add `manual = true`)"
                if gid in questions
                else "is graded by no question"
            )
            found.append(
                Mismatch(f"questions.{gid}", f"the notebook's manual cell {gid!r} {problem}")
            )
    answers = [g for g, r in roles.items() if r == ANSWER]
    for folder in mutant_folders(config):
        if folder.name not in answers:
            found.append(
                Mismatch(
                    f"mutants/{folder.name}",
                    f"no answer cell has grade_id {folder.name!r}, so its mutants "
                    "would replace nothing" + _near(folder.name, answers),
                )
            )
    return found


def mutant_folders(config: AssignmentConfig) -> list[Path]:
    """mutants/<question>/ folders holding .py files, by name; hidden ones (an editor's
    .ipynb_checkpoints copies, __pycache__) are not questions."""
    if not config.mutants_dir.is_dir():
        return []
    return sorted(
        p
        for p in config.mutants_dir.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and any(p.glob("*.py"))
    )


def _near(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def require_consistent(config: AssignmentConfig, notebook: NotebookNode) -> None:
    """Raise ConfigError naming the first mismatch (and how many more there are)."""
    found = mismatches(config, notebook)
    if found:
        first = found[0]
        others = ", ".join(m.key for m in found[1:4])
        more = f" ({len(found) - 1} more: {others})" if others else ""
        raise ConfigError(
            config.config_path,
            first.key,
            first.problem + more,
            f"Make the key name a cell of {config.notebook.name}, or the cell's grade_id match it",
        )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
