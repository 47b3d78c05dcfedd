"""The class at a glance: a histogram of totals beside per-question means (PNG)."""

from __future__ import annotations

from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.reports.summary import hardest_checks, question_means
from autograder.scoring import SubmissionResult


def class_plot(results: list[SubmissionResult], config: AssignmentConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    totals = [r.total for r in results]
    means = question_means(results, config)
    auto = [q for q in config.questions if not config.questions[q].manual]
    fractions = [
        (means[q] or 0.0) / config.questions[q].points if means[q] is not None else 0.0
        for q in auto
    ]
    hardest = hardest_checks(results)
    fig, (ax1, ax2, ax3) = plt.subplots(
        1, 3, figsize=(17, 4.5), gridspec_kw={"width_ratios": [1, 1.2, 1.3]}, layout="constrained"
    )
    ax1.hist(
        totals,
        bins=min(20, max(5, len(totals))),
        range=(0, config.max_total),
        color="#4C72B0",
        edgecolor="white",
    )
    ax1.set_xlabel(f"total (out of {config.max_total:g})")
    ax1.set_ylabel("submissions")
    ax1.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts, never 0.5 of a student
    ax1.set_title(f"{config.name}: totals (n={len(results)})")
    colors = ["#C44E52" if f < 0.5 else "#DD8452" if f < 0.8 else "#55A868" for f in fractions]
    ax2.barh(auto[::-1], [f * 100 for f in fractions][::-1], color=colors[::-1])
    ax2.set_xlim(0, 100)
    ax2.set_xlabel("mean score, % of the question's points")
    ax2.set_title("per question (autograded)")
    for y, f in enumerate(fractions[::-1]):
        ax2.text(min(f * 100 + 1, 92), y, f"{f * 100:.0f}%", va="center", fontsize=8)
    labels = [k if len(k) <= 38 else k[:37] + "…" for k, _ in hardest]
    rates = [v["pass_rate"] * 100 for _, v in hardest]
    if hardest:
        ax3.barh(labels[::-1], rates[::-1], color="#C44E52")
    ax3.set_xlim(0, 100)
    ax3.set_xlabel("% of submissions passing")
    ax3.set_title("checks most students fail")
    ax3.tick_params(axis="y", labelsize=7)
    if not hardest:
        ax3.set_ylim(0, 1)
        ax3.text(50, 0.5, "every check passed by all", ha="center", va="center")
        ax3.set_yticks([])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
