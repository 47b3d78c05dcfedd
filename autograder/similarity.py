"""Pairs of submissions whose answers are unusually similar, per answer cell.

Flags for a person to look at, never points. copydetect (winnowed k-gram fingerprints,
the MOSS method) compares each pair of answers to one cell; code is tokenized first
(renamed variables still match), written answers are compared as normalised text; the
released starter code is passed as boilerplate, so what everyone was given never counts.
Runs locally on OUT/<student>/answers.json; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import statistics
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from autograder.answers import ANSWERS_FILE, load_answers, starter_sources
from autograder.config import AssignmentConfig, SimilarityConfig
from autograder.safeio import atomic_write

log = logging.getLogger(__name__)

CSV_FILE = "similarity.csv"
HTML_FILE = "similarity.html"
MAX_ROWS = 2000
TEXT_SCALE = 3  # written answers: k-grams of characters, 3 per code token


@dataclass(frozen=True)
class Pair:
    question: str  # the answer cell's grade_id
    student_a: str
    student_b: str
    similarity: float  # mean of the two shares below
    share_a: float  # of a's answer (beyond the starter code) also in b's
    share_b: float
    matched_tokens: int
    question_median: float  # of all pairs for this cell: what "usual" looks like here
    flagged: bool
    slices_a: tuple[tuple[int, int], ...] = ()
    slices_b: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class SimilarityReport:
    pairs: tuple[Pair, ...]  # most similar first
    threshold: float
    compared: dict[str, int]  # cell -> answers compared
    sources: dict[tuple[str, str], str]  # (student, cell) -> answer, for flagged pairs


def _normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def _stable_hash(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True
    )


def _fingerprint(source: str, is_code: bool, cfg: SimilarityConfig, boilerplate):
    from copydetect import CodeFingerprint

    if is_code:
        k, win = cfg.noise_tokens, cfg.guarantee_tokens - cfg.noise_tokens + 1
        return CodeFingerprint(
            "answer.py", k, win, boilerplate=boilerplate, fp=io.StringIO(source), language="python"
        )
    k = cfg.noise_tokens * TEXT_SCALE
    win = (cfg.guarantee_tokens - cfg.noise_tokens) * TEXT_SCALE + 1
    return CodeFingerprint(
        "answer.txt",
        k,
        win,
        boilerplate=boilerplate,
        filter=False,
        fp=io.StringIO(_normalise_text(source)),
    )


def _compare(fa, fb, is_code: bool) -> tuple:
    """(share of a in b, share of b in a, matched tokens, a's slices, b's slices)."""
    from copydetect import compare_files

    if not fa.hashes & fb.hashes:
        return 0.0, 0.0, 0, (), ()
    overlap, (sa, sb), (slices_a, slices_b) = compare_files(fa, fb)
    return (
        float(min(sa, 1.0)),
        float(min(sb, 1.0)),
        int(overlap),
        tuple(zip(*(s.tolist() for s in slices_a), strict=True)) if is_code else (),
        tuple(zip(*(s.tolist() for s in slices_b), strict=True)) if is_code else (),
    )


def find_similar(
    answers: dict[str, dict[str, str]],
    starter: dict[str, str],
    code_cells: set[str],
    cfg: SimilarityConfig,
) -> SimilarityReport:
    """answers: student -> {cell: source}. Every pair of students, cell by cell."""
    import copydetect.utils

    # copydetect hashes k-grams with Python's hash(), salted per process (PYTHONHASHSEED):
    # the same answers matched 138, 144 or 161 tokens from one run to the next, and a pair
    # near the threshold could be flagged or not. Its module's `hash` is made a stable one.
    copydetect.utils.hash = _stable_hash
    pairs: list[Pair] = []
    compared: dict[str, int] = {}
    for cell in starter:
        is_code = cell in code_cells
        base = _fingerprint(starter[cell], is_code, cfg, None).hashes if starter[cell] else []
        prints = {}
        minimum = cfg.min_tokens * (1 if is_code else TEXT_SCALE)
        # Identical answers (a short formula, a shared copy) are fingerprinted and compared
        # once: fingerprints and comparisons depend on the texts alone.
        by_text: dict[str, Any] = {}
        for student, cells in answers.items():
            source = cells.get(cell, "")
            if not source.strip() or source.strip() == starter[cell].strip():
                continue
            if source not in by_text:
                by_text[source] = _fingerprint(source, is_code, cfg, list(base))
            fp = by_text[source]
            if fp.token_coverage >= minimum and fp.hashes:
                prints[student] = fp
        compared[cell] = len(prints)
        found: list[tuple] = []
        done: dict[tuple[int, int], tuple] = {}
        for a, b in combinations(sorted(prints), 2):
            fa, fb = prints[a], prints[b]
            if (id(fa), id(fb)) not in done:
                done[id(fa), id(fb)] = _compare(fa, fb, is_code)
            found.append((a, b, *done[id(fa), id(fb)]))
        if not found:
            continue
        median = statistics.median((sa + sb) / 2 for _, _, sa, sb, *_ in found)
        for a, b, sa, sb, overlap, sl_a, sl_b in found:
            score = (sa + sb) / 2
            if score <= 0:
                continue
            pairs.append(
                Pair(
                    cell,
                    a,
                    b,
                    round(score, 4),
                    round(sa, 4),
                    round(sb, 4),
                    overlap,
                    round(median, 4),
                    score >= cfg.threshold,
                    sl_a,
                    sl_b,
                )
            )
    pairs.sort(key=lambda p: (-p.similarity, p.question, p.student_a, p.student_b))
    flagged = [p for p in pairs if p.flagged]
    sources = {}
    for p in flagged:
        for s in (p.student_a, p.student_b):
            sources[s, p.question] = answers[s].get(p.question, "")
    return SimilarityReport(tuple(pairs[:MAX_ROWS]), cfg.threshold, compared, sources)


def write_similarity(config: AssignmentConfig, out: Path, dirs: dict[str, str]) -> Path | None:
    """OUT/similarity.csv and OUT/similarity.html, unless the same answers already made them."""
    from autograder.notebook import grade_id
    from autograder.release import release_notebook
    from autograder.reports.similarity_csv import similarity_csv
    from autograder.reports.similarity_html import similarity_html

    out = Path(out)
    key = hashlib.sha256(json.dumps([config.similarity.__dict__, sorted(dirs.items())]).encode())
    key.update(Path(__file__).read_bytes())
    answers: dict[str, dict[str, str]] = {}
    for student, folder in dirs.items():
        path = out / folder / ANSWERS_FILE
        if path.is_file():
            key.update(path.read_bytes())
        loaded = load_answers(out / folder)
        if loaded is not None:
            answers[student] = loaded.cells
    key_file = out / f".{CSV_FILE}.key"
    digest = key.hexdigest()
    if (out / CSV_FILE).is_file() and key_file.is_file() and key_file.read_text() == digest:
        return out / CSV_FILE
    release = release_notebook(config)
    starter = starter_sources(release)
    code_cells = {gid for c in release.cells if (gid := grade_id(c)) and c.cell_type == "code"}
    report = find_similar(answers, starter, code_cells, config.similarity)
    atomic_write(out / CSV_FILE, similarity_csv(report))
    atomic_write(out / HTML_FILE, similarity_html(report, config.name))
    atomic_write(key_file, digest)
    flagged = sum(p.flagged for p in report.pairs)
    if flagged:
        log.warning("similarity: %d pair(s) flagged for review in %s", flagged, out / HTML_FILE)
    return out / CSV_FILE
