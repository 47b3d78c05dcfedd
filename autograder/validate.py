"""`autograder validate`: prove an assignment's hidden checks before releasing it.

1. the source notebook runs offline top to bottom (quick budget);
2. the answer key scores full marks on every autograded question;
3. the released stubs score zero on every autograded question;
4. mutation testing: every known mistake (mutants/<question>/*.py, `# kind: mistake`)
   fails at least one check of its own question and loses nothing elsewhere;
   every alternative correct answer (`# kind: alternative`) gets full marks;
5. the checks are deterministic: the key graded twice gives identical results;
6. `limits.cpu_budget_s` is at least CPU_BUDGET_FACTOR times what the key's kernel used
   (measured here), so an honest student never meets it.

Everything is graded through the real pipeline (sandboxed kernel, bridge,
hidden checks), in one parallel batch.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.batch import grade_batch
from autograder.config import AssignmentConfig
from autograder.consistency import mismatches, mutant_folders
from autograder.notebook import ANSWER, cell_role, grade_id
from autograder.release import answer_key, release_notebook
from autograder.runenv import execute_notebook
from autograder.scoring import SubmissionResult

CPU_BUDGET_FACTOR = 5


@dataclass(frozen=True)
class Mutant:
    question: str
    name: str
    kind: str  # mistake | alternative
    why: str
    source: str


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class ValidationReport:
    assignment: str
    steps: list[Step] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)


def load_mutants(config: AssignmentConfig) -> list[Mutant]:
    mutants: list[Mutant] = []
    for path in (p for folder in mutant_folders(config) for p in sorted(folder.glob("*.py"))):
        text = path.read_text()
        head = dict(
            line[1:].strip().split(":", 1)
            for line in text.splitlines()[:5]
            if line.startswith("#") and ":" in line
        )
        kind = head.get("kind", "").strip()
        if kind not in ("mistake", "alternative"):
            continue
        mutants.append(Mutant(path.parent.name, path.stem, kind, head.get("why", "").strip(), text))
    return mutants


def _with_answer(key, question: str, source: str):
    nb = copy.deepcopy(key)
    for cell in nb.cells:
        if grade_id(cell) == question and cell_role(cell) == ANSWER:
            cell.source = source
    return nb


def run_source(config: AssignmentConfig) -> tuple[bool, str]:
    """Execute the instructor's source notebook with nbclient, offline, on the quick budget."""
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(config.notebook, as_version=4)
    try:
        execute_notebook(nb, timeout=900, env={"AUTOGRADER_OFFLINE": "1", **config.quick_env})
        return True, f"{sum(c.cell_type == 'code' for c in nb.cells)} code cells ran"
    except CellExecutionError as exc:
        return False, str(exc).strip().splitlines()[-1][:300]


def _own_failed(result: SubmissionResult, question: str) -> bool:
    q = result.questions.get(question)
    return bool(q and any(not c.passed for c in q.checks))


def _losses(result: SubmissionResult, config: AssignmentConfig, skip: set[str]) -> list[str]:
    return [
        qid
        for qid, q in result.questions.items()
        if qid in config.autograded and qid not in skip and (q.points or 0) < q.max_points
    ]


def sample_mutants(mutants: list[Mutant], per_question: int | None) -> list[Mutant]:
    """At most `per_question` mistakes and one alternative per question, chosen by name."""
    if per_question is None:
        return mutants
    kept: list[Mutant] = []
    seen: dict[tuple[str, str], int] = {}
    for m in sorted(mutants, key=lambda m: (m.question, m.kind, m.name)):
        key = (m.question, m.kind)
        limit = per_question if m.kind == "mistake" else 1
        if seen.get(key, 0) < limit:
            seen[key] = seen.get(key, 0) + 1
            kept.append(m)
    return kept


@dataclass
class _Graded:
    """The results of the one graded batch behind every step, by submission name."""

    full: dict[str, SubmissionResult]  # the key, twice, with every question
    fast: dict[str, SubmissionResult]  # stubs and mutants, without the accuracy question
    fast_skip: set[str]


@dataclass
class _MutantVerdicts:
    mistakes: int = 0
    caught: int = 0
    alternatives: int = 0
    alternatives_ok: int = 0
    survivors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # mistakes that also hurt elsewhere
    alternative_problems: list[str] = field(default_factory=list)


def validate_assignment(
    config: AssignmentConfig,
    *,
    jobs: int = 2,
    run_notebook: bool = True,
    skip: tuple[str, ...] = (),
    mistakes_per_question: int | None = None,
) -> ValidationReport:
    """The steps of the module doc, in order.

    `mistakes_per_question` grades only that many mistakes (and one alternative) per
    question, a quicker run for CI; by default every mutant is graded.
    """
    report = ValidationReport(config.name)
    report.steps.append(step_config_matches_notebook(config))
    if run_notebook:
        report.steps.append(step_source_runs(config))
    all_mutants = load_mutants(config)
    mutants = sample_mutants(all_mutants, mistakes_per_question)
    graded = grade_everything(config, mutants, jobs=jobs, skip=skip)
    k1, k2 = graded.full["key_run1"], graded.full["key_run2"]
    report.steps.append(step_key_full_marks(config, k1, set(skip)))
    report.steps.append(step_cpu_budget(config, k1, k2))
    report.steps.append(step_stubs_zero(config, graded.fast["stubs"], graded.fast_skip))
    verdicts = judge_mutants(config, mutants, graded)
    report.survivors = verdicts.survivors
    report.steps.append(step_mistakes_caught(verdicts))
    report.steps.append(step_alternatives_full(verdicts))
    report.steps.append(step_enough_mutants(config, all_mutants, graded.fast_skip))
    report.steps.append(step_deterministic(k1, k2))
    return report


def step_config_matches_notebook(config: AssignmentConfig) -> Step:
    found = mismatches(config, nbformat.read(config.notebook, as_version=4))
    return Step(
        "assignment.toml names only the notebook's cells",
        not found,
        "; ".join(f"{m.key}: {m.problem}" for m in found[:5])
        or "questions, outputs and mutants folders all found",
    )


def step_source_runs(config: AssignmentConfig) -> Step:
    ok, detail = run_source(config)
    return Step("source notebook runs offline", ok, detail)


def grade_everything(
    config: AssignmentConfig, mutants: list[Mutant], *, jobs: int, skip: tuple[str, ...]
) -> _Graded:
    """The key twice (every question), then stubs and mutants (no accuracy question)."""
    release = release_notebook(config)
    key = answer_key(config, release)
    # Mutants and stubs skip the slow trained-accuracy question; the key does not.
    fast_skip = set(skip) | ({config.accuracy.question} if config.accuracy else set())
    with tempfile.TemporaryDirectory(prefix="ag-validate-") as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        key_dir, fast_dir = subs / "key", subs / "fast"
        for d in (key_dir, fast_dir):
            d.mkdir(parents=True)
        nbformat.write(key, key_dir / "key_run1.ipynb")
        nbformat.write(key, key_dir / "key_run2.ipynb")
        nbformat.write(release, fast_dir / "stubs.ipynb")
        for m in mutants:
            nbformat.write(
                _with_answer(key, m.question, m.source),
                fast_dir / f"{m.kind}__{m.question}__{m.name}.ipynb",
            )
        # No similarity report: mutants of one key are alike by construction.
        full = grade_batch(
            config, key_dir, out / "key", jobs=jobs, skip=tuple(skip), force=True, similarity=False
        )
        fast = grade_batch(
            config,
            fast_dir,
            out / "fast",
            jobs=jobs,
            skip=tuple(fast_skip),
            force=True,
            similarity=False,
        )
    return _Graded(
        {r.student: r for r in full.results}, {r.student: r for r in fast.results}, fast_skip
    )


def step_key_full_marks(config: AssignmentConfig, key: SubmissionResult, skip: set[str]) -> Step:
    short = _losses(key, config, skip)
    return Step(
        "answer key scores full marks",
        not short and key.status == "ok",
        f"{key.total:g}/{key.max_total:g} autograded+manual max; status {key.status}"
        + (f"; lost points on {', '.join(short)}" if short else ""),
    )


def step_cpu_budget(config: AssignmentConfig, k1: SubmissionResult, k2: SubmissionResult) -> Step:
    """An honest student must never meet the CPU budget: it is measured against the key."""
    needed = max(k1.cpu_seconds, k2.cpu_seconds)
    budget = config.limits.cpu_budget_s
    return Step(
        "the CPU budget leaves the key room",
        needed * CPU_BUDGET_FACTOR <= budget,
        f"the key used {needed:.1f} CPU s; limits.cpu_budget_s is {budget:g} "
        f"(at least {CPU_BUDGET_FACTOR}x the key's)",
    )


def step_stubs_zero(config: AssignmentConfig, stub: SubmissionResult, skip: set[str]) -> Step:
    scored = [q for q in config.autograded if q not in skip and (stub.questions[q].points or 0) > 0]
    return Step(
        "released stubs score zero",
        not scored,
        "all autograded questions 0" if not scored else f"stubs earn points on {', '.join(scored)}",
    )


def judge_mutants(
    config: AssignmentConfig, mutants: list[Mutant], graded: _Graded
) -> _MutantVerdicts:
    """A mistake must fail its own question and nothing else; an alternative loses nothing."""
    v = _MutantVerdicts()
    for m in mutants:
        r = graded.fast[f"{m.kind}__{m.question}__{m.name}"]
        losses = _losses(r, config, graded.fast_skip)
        if m.kind == "mistake":
            v.mistakes += 1
            others = [q for q in losses if q != m.question]
            if _own_failed(r, m.question) and not others:
                v.caught += 1
            elif not _own_failed(r, m.question):
                v.survivors.append(
                    f"{m.question}/{m.name}: survived ({m.why}); checks of '{m.question}' "
                    "should have caught it"
                )
            else:
                v.problems.append(f"{m.question}/{m.name}: also lost points on {', '.join(others)}")
        else:
            v.alternatives += 1
            if losses:
                v.alternative_problems.append(
                    f"{m.question}/{m.name} (correct alternative) lost points on "
                    + ", ".join(losses)
                    + "; "
                    + _first_failure(r, losses)
                )
            else:
                v.alternatives_ok += 1
    return v


def step_mistakes_caught(v: _MutantVerdicts) -> Step:
    return Step(
        "every mistake caught on its own question only",
        v.caught == v.mistakes and not v.problems and v.mistakes > 0 and not v.survivors,
        f"{v.caught}/{v.mistakes} caught"
        + (f"; {len(v.survivors)} survived" if v.survivors else "")
        + ("; " + "; ".join(v.problems) if v.problems else ""),
    )


def step_alternatives_full(v: _MutantVerdicts) -> Step:
    return Step(
        "every alternative correct answer full marks",
        v.alternatives_ok == v.alternatives,
        f"{v.alternatives_ok}/{v.alternatives} full"
        + ("; " + "; ".join(v.alternative_problems) if v.alternative_problems else ""),
    )


def step_enough_mutants(
    config: AssignmentConfig, all_mutants: list[Mutant], skip: set[str]
) -> Step:
    """The "at least 4 and 1" rule counts the whole set, not the sample graded."""
    counts: dict[str, dict[str, int]] = {}
    for m in all_mutants:
        counts.setdefault(m.question, {"mistake": 0, "alternative": 0})[m.kind] += 1
    thin = [
        q
        for q in config.autograded
        if q not in skip
        and (counts.get(q, {}).get("mistake", 0) < 4 or counts.get(q, {}).get("alternative", 0) < 1)
    ]
    return Step(
        "at least 4 mistakes and 1 alternative per question",
        not thin,
        "ok" if not thin else "too few mutants for " + ", ".join(thin),
    )


def step_deterministic(k1: SubmissionResult, k2: SubmissionResult) -> Step:
    same = _fingerprint(k1) == _fingerprint(k2)
    return Step(
        "checks are deterministic",
        same,
        "two runs identical" if same else "two runs of the key differ",
    )


def _first_failure(result: SubmissionResult, questions: list[str]) -> str:
    for qid in questions:
        for c in result.questions[qid].checks:
            if not c.passed:
                return f"{qid}/{c.name}: {c.message[:200]}"
    return ""


def _fingerprint(result: SubmissionResult) -> list:
    return [
        (qid, q.points, [(c.name, c.passed, c.message) for c in q.checks])
        for qid, q in result.questions.items()
    ]


def render_table(report: ValidationReport) -> str:
    rows = [("check", "result", "detail")] + [
        (s.name, "PASS" if s.ok else "FAIL", s.detail) for s in report.steps
    ]
    w0 = max(len(r[0]) for r in rows)
    lines = [f"| {r[0]:<{w0}} | {r[1]:<6} | {r[2]} |" for r in rows]
    lines.insert(1, f"|{'-' * (w0 + 2)}|--------|--------|")
    out = [f"autograder validate {report.assignment}", "", *lines]
    if report.survivors:
        out += ["", "Surviving mutants:"] + [f"  - {s}" for s in report.survivors]
    out.append("")
    out.append("VALID" if report.ok else "NOT VALID")
    return "\n".join(out)
