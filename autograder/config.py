"""`assignment.toml`: one typed, validated config per assignment.

Every key is checked against a schema; an unknown key, a wrong type or a missing
key raises ConfigError naming the file and the dotted key, so a typo in a
threshold never silently falls back to a default.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from autograder.datasets import NAMES as DATASET_NAMES
from autograder.exceptions import AssignmentNotFound, ConfigError

SCHEMA_VERSION = 1
CONFIG_NAME = "assignment.toml"
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Limits:
    """Per-submission resource limits (seconds, MiB, counts)."""

    cell_timeout_s: float = 60.0
    call_timeout_s: float = 30.0
    submission_timeout_s: float = 900.0
    memory_mib: int = 3072
    max_processes: int = 64
    cpu_time_s: int = 1800
    cell_output_kib: int = 64
    output_flood_mib: int = 8
    file_size_mib: int = 256
    max_restarts: int = 3
    # CPU seconds of all the submission's processes together (every thread counts), checked
    # while cells and calls run: threads left spinning cost seconds, not the whole deadline.
    cpu_budget_s: float = 600.0
    # The student's notebook file, as read by the grader.
    notebook_mib: int = 32
    max_cells: int = 2000
    # Student models are built only in the capped model host (autograder.model_host).
    model_memory_mib: int = 2048
    model_params_max: int = 20_000_000
    model_activation_max: int = 16_000_000  # values one layer outputs per image
    # Each grading worker process (pytest, checks, decoding), whatever a submission does.
    grader_memory_mib: int = 4096


@dataclass(frozen=True)
class RubricItem:
    """One thing a TA looks for in a manual answer, worth up to `points`."""

    id: str
    points: float
    description: str


@dataclass(frozen=True)
class Question:
    id: str
    points: float
    manual: bool = False
    rubric: tuple[RubricItem, ...] = ()
    # grade_ids of code cells whose outputs the manual-grading page shows beside the answer
    # (default: the last code cell before the answer cell).
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class LatePolicy:
    """Points taken off late work: `per_day_percent` of the raw total per started day after
    `due` plus `grace_minutes`, at most `max_percent`."""

    due: datetime
    grace_minutes: float = 0.0
    per_day_percent: float = 10.0
    max_percent: float = 100.0


@dataclass(frozen=True)
class SimilarityConfig:
    """copydetect's parameters and the score from which a pair is flagged for a person."""

    threshold: float = 0.6
    noise_tokens: int = 8  # copydetect noise_t: shortest match that counts, in tokens
    guarantee_tokens: int = 12  # copydetect guarantee_t: every match this long is found
    min_tokens: int = 20  # answers shorter than this (after the starter code) are not compared


@dataclass(frozen=True)
class TrainingBudget:
    """One training recipe's budget and its tiers, each (minimum, fraction of points).

    `thresholds` are absolute accuracies; `ratios` are accuracies relative to the
    reference model trained the same way (used when the question's mode is relative).
    """

    epochs: int
    batch_size: int
    thresholds: tuple[tuple[float, float], ...]
    train_samples: int | None = None
    test_samples: int | None = None
    label: str = ""
    ratios: tuple[tuple[float, float], ...] = ()


class AccuracyMode(StrEnum):
    """How a trained accuracy becomes points."""

    ABSOLUTE = "absolute"  # the budget's `thresholds`, as numbers
    RELATIVE = "relative"  # the budget's `ratios` of the reference's accuracy


@dataclass(frozen=True)
class AccuracyConfig:
    question: str
    max_params: int
    gpu: TrainingBudget
    cpu: TrainingBudget
    function: str = "build_model"
    dataset: str = "fashion_mnist"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    seed: int = 0
    timeout_s: float = 1800.0
    mode: AccuracyMode = AccuracyMode.ABSOLUTE
    # A trusted instructor module defining build_reference(input_shape, num_classes).
    reference: Path | None = None
    # Every model is trained once per seed; the mean accuracy counts. Default: (seed,).
    seeds: tuple[int, ...] = ()

    @property
    def training_seeds(self) -> tuple[int, ...]:
        return self.seeds or (self.seed,)

    def tiers(self, budget: TrainingBudget) -> tuple[tuple[float, float], ...]:
        """The (minimum, fraction) tiers scores are compared with under this mode."""
        return budget.ratios if self.mode is AccuracyMode.RELATIVE else budget.thresholds


@dataclass(frozen=True)
class AssignmentConfig:
    name: str
    root: Path
    config_path: Path
    notebook: Path
    checks_dir: Path
    mutants_dir: Path
    questions: dict[str, Question]
    limits: Limits = field(default_factory=Limits)
    skip_tags: tuple[str, ...] = ("training",)
    accuracy: AccuracyConfig | None = None
    quick_env: dict[str, str] = field(default_factory=dict)
    # Set in every sandboxed kernel of this assignment (threads, log levels, backends):
    # the engine itself sets only generic variables (autograder.sandbox.sandbox_env).
    env: dict[str, str] = field(default_factory=dict)
    # Modules every submission imports: loaded once per grading worker and shared by
    # forking (autograder.warm), instead of once per submission.
    preload: tuple[str, ...] = ()
    late: LatePolicy | None = None
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)

    @property
    def autograded(self) -> list[str]:
        return [q.id for q in self.questions.values() if not q.manual]

    @property
    def max_total(self) -> float:
        return sum(q.points for q in self.questions.values())


class _Reader:
    """Typed access to a TOML table that reports errors with the dotted key."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str = "") -> None:
        self.path, self.table, self.prefix = path, table, prefix
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def get(self, name: str, types: type | tuple[type, ...], default: Any = ..., check=None) -> Any:
        self.seen.add(name)
        if name not in self.table:
            if default is ...:
                raise ConfigError(self.path, self.key(name), "is missing", "Add it")
            return default
        value = self.table[name]
        if isinstance(value, bool) and bool not in _as_tuple(types):
            raise ConfigError(self.path, self.key(name), f"must be {_tname(types)}, not a boolean")
        if not isinstance(value, types):
            raise ConfigError(self.path, self.key(name), f"must be {_tname(types)}, got {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(self.path, self.key(name), problem)
        return value

    def sub(self, name: str) -> _Reader:
        table = self.get(name, dict)
        return _Reader(self.path, table, f"{self.prefix}{name}.")

    def optional_sub(self, name: str) -> _Reader | None:
        if name not in self.table:
            self.seen.add(name)
            return None
        return self.sub(name)

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            raise ConfigError(
                self.path,
                self.key(unknown[0]),
                "is not a known key",
                "Check its spelling against the README's assignment.toml reference",
            )


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _tname(types) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(types))


def _positive(value) -> str | None:
    return None if value > 0 else f"must be positive, got {value!r}"


def _read_env(r: _Reader, name: str) -> dict[str, str]:
    """A table of environment variables: names as the shell spells them, string values."""
    table = r.get(name, dict, {})
    for key, value in table.items():
        if not (isinstance(key, str) and _ENV_NAME.fullmatch(key)):
            raise ConfigError(r.path, f"{r.key(name)}.{key}", "is not a variable name")
        if not isinstance(value, str):
            raise ConfigError(
                r.path, f"{r.key(name)}.{key}", f"must be a string, got {value!r}", 'Quote it: "1"'
            )
    return dict(table)


def _read_limits(r: _Reader | None) -> Limits:
    if r is None:
        return Limits()
    values = {}
    for f in fields(Limits):
        types = (int, float) if f.type in ("float",) else int
        values[f.name] = r.get(f.name, types, getattr(Limits, f.name), _positive)
    r.done()
    return Limits(**values)


def _read_tiers(
    r: _Reader, name: str, what: str, top: float, required: bool
) -> tuple[tuple[float, float], ...]:
    """[[minimum, fraction], ...] with minimum in [0, top] and fraction in (0, 1]."""
    raw = r.get(name, list, ... if required else [])
    tiers = []
    for i, item in enumerate(raw):
        ok = (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item)
            and 0 <= item[0] <= top
            and 0 < item[1] <= 1
        )
        if not ok:
            raise ConfigError(
                r.path,
                f"{r.key(name)}[{i}]",
                f"must be [{what}, fraction_of_points] with {what} in [0, {top:g}] and "
                f"fraction in (0, 1], got {item!r}",
            )
        tiers.append((float(item[0]), float(item[1])))
    if required and not tiers:
        raise ConfigError(r.path, r.key(name), f"needs at least one [{what}, fraction]")
    tiers.sort(reverse=True)
    return tuple(tiers)


def _read_budget(r: _Reader) -> TrainingBudget:
    budget = TrainingBudget(
        epochs=r.get("epochs", int, check=_positive),
        batch_size=r.get("batch_size", int, check=_positive),
        thresholds=_read_tiers(r, "thresholds", "min_accuracy", 1.0, required=True),
        train_samples=r.get("train_samples", int, None, _positive),
        test_samples=r.get("test_samples", int, None, _positive),
        label=r.get("label", str, ""),
        ratios=_read_tiers(r, "ratios", "min_ratio", 2.0, required=False),
    )
    r.done()
    return budget


def _read_seeds(r: _Reader) -> tuple[int, ...]:
    seeds = r.get("seeds", list, [])
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(
        set(seeds)
    ) != len(seeds):
        raise ConfigError(
            r.path, r.key("seeds"), f"must be a list of distinct integers, got {seeds!r}"
        )
    return tuple(seeds)


def _read_reference(r: _Reader, root: Path) -> Path | None:
    name = r.get("reference", str, None)
    if name is None:
        return None
    path = (root / name).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise ConfigError(
            r.path,
            r.key("reference"),
            f"points to {path}, which is not a Python file",
            "Name a module in the assignment folder defining build_reference(input_shape, "
            "num_classes)",
        )
    return path


def _read_accuracy(
    r: _Reader | None, questions: dict[str, Question], root: Path
) -> AccuracyConfig | None:
    if r is None:
        return None
    question = r.get("question", str)
    if question not in questions or questions[question].manual:
        raise ConfigError(
            r.path, r.key("question"), f"names '{question}', which is not an autograded question"
        )
    cfg = AccuracyConfig(
        question=question,
        max_params=r.get("max_params", int, check=_positive),
        gpu=_read_budget(r.sub("gpu")),
        cpu=_read_budget(r.sub("cpu")),
        function=r.get("function", str, "build_model"),
        dataset=r.get(
            "dataset",
            str,
            "fashion_mnist",
            lambda v: None if v in DATASET_NAMES else "must be one of " + ", ".join(DATASET_NAMES),
        ),
        optimizer=r.get("optimizer", str, "adam"),
        learning_rate=float(r.get("learning_rate", (int, float), 1e-3, _positive)),
        seed=r.get("seed", int, 0),
        timeout_s=float(r.get("timeout_s", (int, float), 1800.0, _positive)),
        mode=AccuracyMode(
            r.get(
                "mode",
                str,
                "absolute",
                lambda v: (
                    None
                    if v in {m.value for m in AccuracyMode}
                    else f"must be one of {', '.join(m.value for m in AccuracyMode)}, got {v!r}"
                ),
            )
        ),
        reference=_read_reference(r, root),
        seeds=_read_seeds(r),
    )
    r.done()
    if cfg.mode is AccuracyMode.RELATIVE:
        if cfg.reference is None:
            raise ConfigError(
                r.path,
                r.key("reference"),
                "is missing: mode 'relative' compares with a reference model",
                'Add reference = "checks/_reference_model.py", or use mode = "absolute"',
            )
        for device in ("gpu", "cpu"):
            if not getattr(cfg, device).ratios:
                raise ConfigError(
                    r.path,
                    r.key(f"{device}.ratios"),
                    "is missing: mode 'relative' needs tiers as [min_ratio, fraction]",
                    "Add e.g. ratios = [[0.97, 1.0], [0.90, 0.5]]",
                )
    return cfg


_RUBRIC_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _read_rubric(q: _Reader, qid: str, points: float, manual: bool) -> tuple[RubricItem, ...]:
    raw = q.get("rubric", list, [])
    if raw and not manual:
        raise ConfigError(
            q.path, q.key("rubric"), "is only for manual questions", "Add manual = true"
        )
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(q.path, f"{q.key('rubric')}[{i}]", "must be a table")
        r = _Reader(q.path, entry, f"{q.key('rubric')}[{i}].")
        item = RubricItem(
            id=r.get(
                "id",
                str,
                check=lambda v: (
                    None
                    if _RUBRIC_ID.fullmatch(v)
                    and v not in ("student", "question", "points", "comment")
                    else "must be a short name (letters, digits, _ and -), not a sheet column name"
                ),
            ),
            points=float(r.get("points", (int, float), check=_positive)),
            description=r.get("description", str),
        )
        r.done()
        items.append(item)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ConfigError(q.path, q.key("rubric"), f"repeats an item id in {ids}")
    total = sum(item.points for item in items)
    if items and abs(total - points) > 1e-9:
        raise ConfigError(
            q.path,
            q.key("rubric"),
            f"items add up to {total:g} points, question '{qid}' is worth {points:g}",
            "Make the rubric's points add up to the question's points",
        )
    return tuple(items)


def _read_late(r: _Reader | None) -> LatePolicy | None:
    if r is None:
        return None
    due = r.get(
        "due",
        datetime,
        check=lambda v: (
            None
            if v.tzinfo is not None
            else "needs a time zone, e.g. 2026-03-01T23:59:00+01:00 (a TOML date-time, unquoted)"
        ),
    )
    policy = LatePolicy(
        due=due,
        grace_minutes=float(
            r.get(
                "grace_minutes",
                (int, float),
                0.0,
                lambda v: None if v >= 0 else f"must be 0 or more, got {v!r}",
            )
        ),
        per_day_percent=float(
            r.get(
                "per_day_percent",
                (int, float),
                10.0,
                lambda v: None if 0 <= v <= 100 else f"must be in [0, 100], got {v!r}",
            )
        ),
        max_percent=float(
            r.get(
                "max_percent",
                (int, float),
                100.0,
                lambda v: None if 0 <= v <= 100 else f"must be in [0, 100], got {v!r}",
            )
        ),
    )
    r.done()
    return policy


def _read_similarity(r: _Reader | None) -> SimilarityConfig:
    if r is None:
        return SimilarityConfig()
    cfg = SimilarityConfig(
        threshold=float(
            r.get(
                "threshold",
                (int, float),
                SimilarityConfig.threshold,
                lambda v: None if 0 < v <= 1 else f"must be in (0, 1], got {v!r}",
            )
        ),
        noise_tokens=r.get("noise_tokens", int, SimilarityConfig.noise_tokens, _positive),
        guarantee_tokens=r.get(
            "guarantee_tokens", int, SimilarityConfig.guarantee_tokens, _positive
        ),
        min_tokens=r.get("min_tokens", int, SimilarityConfig.min_tokens, _positive),
    )
    if cfg.guarantee_tokens < cfg.noise_tokens:
        raise ConfigError(
            r.path, r.key("guarantee_tokens"), "must be at least noise_tokens (copydetect's rule)"
        )
    r.done()
    return cfg


def load_config(path: Path) -> AssignmentConfig:
    """Read and validate one assignment.toml."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, None, "does not exist", f"Create {CONFIG_NAME}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(path, None, f"cannot be read ({reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"is not valid TOML ({exc})") from None
    top = _Reader(path, data)
    version = top.get("schema_version", int)
    if version != SCHEMA_VERSION:
        raise ConfigError(
            path,
            "schema_version",
            f"is {version}, this autograder reads version {SCHEMA_VERSION}",
            "Upgrade the autograder or migrate the file",
        )
    a = top.sub("assignment")
    root = path.parent
    name = a.get("name", str)
    notebook = root / a.get("notebook", str)
    checks = root / a.get("checks", str, "checks")
    mutants = root / a.get("mutants", str, "mutants")
    skip_tags = a.get("skip_tags", list, ["training"])
    if not all(isinstance(t, str) for t in skip_tags):
        raise ConfigError(path, "assignment.skip_tags", "must be a list of strings")
    quick_env = _read_env(a, "quick_env")
    env = _read_env(a, "env")
    preload = a.get("preload", list, [])
    if not all(isinstance(m, str) and _MODULE.fullmatch(m) for m in preload):
        raise ConfigError(
            path, "assignment.preload", 'must be a list of module names such as "numpy"'
        )
    a.done()
    if not notebook.is_file():
        raise ConfigError(path, "assignment.notebook", f"points to {notebook}, which is missing")

    qtable = top.sub("questions")
    questions: dict[str, Question] = {}
    for qid in list(qtable.table):
        q = qtable.sub(qid)
        points = float(q.get("points", (int, float), check=_positive))
        manual = q.get("manual", bool, False)
        outputs = q.get("outputs", list, [])
        if not all(isinstance(o, str) for o in outputs) or (outputs and not manual):
            raise ConfigError(
                path, f"questions.{qid}.outputs", "must be a list of cell grade_ids (manual only)"
            )
        questions[qid] = Question(
            id=qid,
            points=points,
            manual=manual,
            rubric=_read_rubric(q, qid, points, manual),
            outputs=tuple(outputs),
        )
        q.done()
    qtable.done()
    seen_items: dict[str, str] = {}
    for question in questions.values():
        for item in question.rubric:
            if item.id in seen_items:
                raise ConfigError(
                    path,
                    f"questions.{question.id}.rubric",
                    f"item id '{item.id}' is also used by question '{seen_items[item.id]}'",
                    "Rubric ids name columns of scores.csv: make them unique in the assignment",
                )
            seen_items[item.id] = question.id
    if not questions:
        raise ConfigError(path, "questions", "defines no question", "Add [questions.<id>] tables")

    cfg = AssignmentConfig(
        name=name,
        root=root,
        config_path=path,
        notebook=notebook,
        checks_dir=checks,
        mutants_dir=mutants,
        questions=questions,
        limits=_read_limits(top.optional_sub("limits")),
        skip_tags=tuple(skip_tags),
        accuracy=_read_accuracy(top.optional_sub("accuracy"), questions, root),
        quick_env=quick_env,
        env=env,
        preload=tuple(preload),
        late=_read_late(top.optional_sub("late")),
        similarity=_read_similarity(top.optional_sub("similarity")),
    )
    top.done()
    return cfg


def assignment_search_path() -> list[Path]:
    """Where `autograder grade NAME` looks for `NAME/assignment.toml`."""
    places = []
    if env := os.environ.get("AUTOGRADER_ASSIGNMENTS"):
        places += [Path(p) for p in env.split(os.pathsep) if p]
    places.append(Path.cwd() / "assignments")
    places.append(Path(__file__).resolve().parent.parent / "assignments")
    return places


def load_assignment(name_or_path: str | os.PathLike) -> AssignmentConfig:
    """Find an assignment by folder path or by name under the search path."""
    candidate = Path(name_or_path)
    if (candidate / CONFIG_NAME).is_file():
        return load_config(candidate / CONFIG_NAME)
    if candidate.name == CONFIG_NAME and candidate.is_file():
        return load_config(candidate)
    looked = []
    for base in assignment_search_path():
        path = base / str(name_or_path) / CONFIG_NAME
        looked.append(str(path))
        if path.is_file():
            return load_config(path)
    raise AssignmentNotFound(
        f"unknown assignment '{name_or_path}': no {CONFIG_NAME} at "
        + ", ".join(dict.fromkeys(looked))
        + ". Pass the assignment's folder or set AUTOGRADER_ASSIGNMENTS"
    )
