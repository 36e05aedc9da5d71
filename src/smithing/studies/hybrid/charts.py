"""The hybrid study's figures: test error per variant, the semi-supervised curves, learning
curves."""

from __future__ import annotations

import math

from smithing.experiment import (
    Figure,
    StudyResults,
)
from smithing.plots import learning_curves, plt, save
from smithing.studies.hybrid.tabulate import (
    _mean,
    _paper,
    chosen_alpha,
)

__all__ = [
    "bars_figure",
    "figures",
    "semi_figure",
]


def _semi_points(results: StudyResults, prefix: str):
    pts = []
    for v in results.variants():
        if v.startswith(prefix + " n="):
            errs = [100 * e for e in results.finals(v, "test_error") if math.isfinite(e)]
            if errs:
                m = sum(errs) / len(errs)
                s = (sum((e - m) ** 2 for e in errs) / max(len(errs) - 1, 1)) ** 0.5
                pts.append((int(v.split("=")[1]), m, s))
    return sorted(pts)


def semi_figure(results: StudyResults, out_dir: str, name: str = "semi.png") -> str:
    p = plt()
    fig, ax = p.subplots(figsize=(5.6, 3.9))
    for prefix, label in (("sup", "supervised hybrid (labels only)"),
                          ("semi", "semi-supervised hybrid (+ unlabeled)")):  # fmt: skip
        pts = _semi_points(results, prefix)
        if pts:
            n, m, s = zip(*pts)
            ax.errorbar(n, m, yerr=s, marker="o", capsize=3, label=label)
    for v, style in (("discriminative", ":"), (chosen_alpha(results), "--")):
        if v is not None and v in results.variants():
            m = 100 * _mean(results, v, "test_error")
            ax.axhline(m, color="grey", ls=style, lw=1, label=f"{v}, all labels")
    ax.set_xscale("log")
    ns = sorted({n for prefix in ("sup", "semi") for n, _, _ in _semi_points(results, prefix)})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("number of labeled training examples")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("semi-supervised classification RBM: mean ± std over seeds", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, name)


def bars_figure(results: StudyResults, out_dir: str, name: str = "errors.png") -> str:
    p = plt()
    vs = [v for v in results.variants() if not v.startswith(("sup n=", "semi n="))]
    best = chosen_alpha(results)
    fig, ax = p.subplots(figsize=(1.15 * max(5, len(vs)) + 1, 3.9))
    for i, v in enumerate(vs):
        errs = [100 * e for e in results.finals(v, "test_error") if math.isfinite(e)]
        if not errs:
            continue
        m = sum(errs) / len(errs)
        color = "C1" if v == best else ("C2" if v in ("deep hybrid", "DBN + fine-tune") else "C0")
        ax.bar(i, m, color=color, alpha=0.75)
        ax.plot([i] * len(errs), errs, "k.", ms=4)
        paper = _paper(v, best)
        if paper is not None:
            ax.plot(i, paper, marker="_", color="red", ms=22, mew=2)
    ax.plot([], [], marker="_", color="red", ms=12, mew=2, ls="", label="paper, MNIST "
            "(unverified recollection)")  # fmt: skip
    ax.set_xticks(range(len(vs)), vs, rotation=20, ha="right")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title("bars: mean over seeds, dots: seeds; orange: alpha chosen on validation",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return save(fig, out_dir, name)


def figures(results: StudyResults, out_dir: str) -> list[Figure]:
    keep = ["generative", "discriminative", chosen_alpha(results), "deep hybrid",
            "DBN + fine-tune"]  # fmt: skip
    sub = StudyResults(results.study, [r for r in results.runs if r.variant in keep])
    curves = learning_curves(
        sub, ("train_loss", "valid_error"), out_dir, "curves.png",
        "hybrid: mean over seeds, band = ±1 std", logy=(True, True),
    )  # fmt: skip
    return [
        Figure(
            bars_figure(results, out_dir),
            "Test error of every objective (dots: seeds), "
            "with Larochelle & Bengio's MNIST numbers (red, unverified recollection; a "
            "different data set at the quick scale).",
        ),  # fmt: skip
        Figure(
            semi_figure(results, out_dir),
            "Semi-supervised curve: test error vs number "
            "of labels, hybrid training on the labels only vs with the unlabeled rest of "
            "the training set (mean ± std over seeds).",
        ),  # fmt: skip
        Figure(
            curves,
            "Learning curves: training -log p(y|x) (log scale; for the DBN the "
            "fine-tuning loss) and validation error per epoch.",
        ),  # fmt: skip
    ]
