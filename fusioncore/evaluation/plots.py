"""Plots: per-capture timelines, ROC / precision-recall curves, where a fusion trusts which detector.

Curves are drawn from :func:`~fusioncore.evaluation.metrics.curve_points`,
one point per distinct score, so tied scores move together: a method that
gives every window the same score is the ROC diagonal and the PR line at the
attack share, whatever the row order. Legends carry each method's AUROC / AP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fusioncore.evaluation.metrics import auroc, average_precision, curve_points

if TYPE_CHECKING:
    from fusioncore.evaluation.scenario import ScenarioEvaluation

__all__ = ["capture_slug", "plot_curves", "plot_policy", "plot_timelines", "timeline_path"]

_ATTACK = "#d62728"
_FALSE = "#ff7f0e"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int) -> None:
    # zlib level 1 instead of PIL's default 6: on hcrl_sa's plots the PNGs came out 0-9 % larger
    # and the plots stage 5-10 % faster (encoding was a tenth of it)
    fig.savefig(path, dpi=dpi, pil_kwargs={"compress_level": 1})


def plot_curves(path: Path, scenario: str, labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> None:
    """ROC and precision-recall curves of every method on one scenario (tie-correct)."""
    plt = _pyplot()
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10.5, 4.4))
    if n_pos and n_neg:
        for method, s in scores.items():
            _, tp, fp = curve_points(y, s)
            fpr = np.concatenate([[0.0], fp / n_neg])
            tpr = np.concatenate([[0.0], tp / n_pos])
            ax_roc.plot(fpr, tpr, label=f"{method} (AUROC {auroc(y, s):.4f})")
            recall, precision = tp / n_pos, tp / (tp + fp)
            # AP is the sum of precision_k * (recall_k - recall_k-1): a step to each cut's precision
            ax_pr.plot(np.concatenate([[0.0], recall]), np.concatenate([precision[:1], precision]),
                       drawstyle="steps-pre", label=f"{method} (AP {average_precision(y, s):.4f})")
        ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax_pr.axhline(n_pos / len(y), color="k", ls=":", lw=0.8)
        ax_roc.legend(fontsize=8, loc="lower right")
        ax_pr.legend(fontsize=8, loc="lower left")
    else:
        for ax in (ax_roc, ax_pr):
            ax.text(0.5, 0.5, "undefined: one class only", ha="center", va="center", transform=ax.transAxes)
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {scenario}",
               xlim=(0, 1), ylim=(0, 1.02))
    ax_pr.set(xlabel="recall", ylabel="precision", title=f"precision-recall: {scenario}",
              xlim=(0, 1), ylim=(0, 1.02))
    fig.tight_layout()
    _save(fig, path, 110)
    plt.close(fig)


def capture_slug(name: str) -> str:
    """A file-name-safe short name for a capture (its file stem)."""
    stem = Path(str(name)).name
    for suffix in (".gz", ".csv", ".log", ".txt", ".asc", ".blf", ".trc"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "capture"


def timeline_path(out_dir: Path, scenario: str, capture: str) -> Path:
    return Path(out_dir) / f"timeline_{capture_slug(scenario)}_{capture_slug(capture)}.png"


def _peaks(x: np.ndarray, values: Sequence[np.ndarray], max_points: int):
    """Bin long series to ``max_points`` bins keeping each bin's maximum (alarms and peaks survive)."""
    if len(x) <= max_points:
        return x, list(values)
    edges = np.unique(np.linspace(0, len(x), max_points + 1).astype(np.int64)[:-1])
    ends = np.append(edges[1:], len(x)) - 1  # a bin is drawn up to its last window
    return x[ends], [np.maximum.reduceat(np.asarray(v, dtype=np.float64), edges) for v in values]


def plot_timelines(
    out_dir: Path,
    evaluation: ScenarioEvaluation,
    *,
    methods: Sequence[str] | None = None,
    max_points: int = 4000,
) -> list[Path]:
    """``timeline_<scenario>_<capture>.png`` for every capture: scores, thresholds, events, alarms.

    One panel per method over capture time (seconds from the capture's first
    evaluated window): the score at each window's last frame, the method's
    threshold (dashed), attack events shaded red, and a strip at the top of
    the panel marking alarmed windows (red: attributed to an event, orange:
    false alarm). Long captures are binned keeping each bin's maximum.
    """
    from fusioncore.evaluation.outcomes import attributed

    plt = _pyplot()
    layout = evaluation.layout
    methods = list(methods or evaluation.scores)
    memory = int(evaluation.info.get("alarm", {}).get("memory", 0))
    owned = attributed(layout, memory)
    ev = layout.events
    paths = []
    for c, capture in enumerate(layout.capture_names):
        sel = np.flatnonzero(layout.capture == c)
        if sel.size == 0 or not methods:
            continue
        t0 = layout.start_time[sel[0]]
        x_all = layout.end_time[sel] - t0
        fig, axes = plt.subplots(len(methods), 1, figsize=(11, 0.6 + 1.45 * len(methods)), sharex=True,
                                 squeeze=False)
        span = max(float(x_all[-1]), 1e-9)
        mine = np.flatnonzero((ev.capture == c) & layout.observed)
        for ax, method in zip(axes[:, 0], methods):
            s = evaluation.scores[method][sel]
            alarm = evaluation.alarms[method][sel]
            x, (s_b, hit_b, false_b) = _peaks(x_all, [s, alarm & owned[sel], alarm & ~owned[sel]], max_points)
            for e in mine:
                a = ev.start_time[e] - t0
                b = max(ev.end_time[e] - t0, a + 0.003 * span)  # a one-frame event stays visible
                ax.axvspan(a, b, color=_ATTACK, alpha=0.18, lw=0)
            ax.step(x, s_b, where="pre", lw=0.9, color="#1f77b4")
            ax.axhline(evaluation.thresholds[method], color="k", ls="--", lw=0.8)
            strip = ax.get_xaxis_transform()
            ax.fill_between(x, 0.9, 1.0, where=hit_b > 0, step="pre", color=_ATTACK, transform=strip, lw=0)
            ax.fill_between(x, 0.9, 1.0, where=false_b > 0, step="pre", color=_FALSE, transform=strip, lw=0)
            positive = s_b[s_b > 0]
            if s_b.min() >= 0 and positive.size and s_b.max() > 100 * np.median(positive):
                ax.set_yscale("symlog", linthresh=float(np.median(positive)))
            ax.set_ylabel(method, rotation=0, ha="right", va="center")
            ax.margins(x=0)
        handles = [
            plt.Rectangle((0, 0), 1, 1, color=_ATTACK, alpha=0.18, label="attack event"),
            plt.Rectangle((0, 0), 1, 1, color=_ATTACK, label="alarm (attributed to an event)"),
            plt.Rectangle((0, 0), 1, 1, color=_FALSE, label="false alarm"),
            plt.Line2D([], [], color="k", ls="--", lw=0.8, label="threshold"),
        ]
        axes[0, 0].legend(handles=handles, fontsize=7, ncol=4, loc="lower left", bbox_to_anchor=(0, 1.02),
                          frameon=False)
        axes[-1, 0].set_xlabel("capture time (s)")
        alarm_name = evaluation.info.get("alarm", {}).get("name", "")
        fig.suptitle(f"{evaluation.name}: {capture_slug(capture)} (alarm stage: {alarm_name})", fontsize=10,
                     x=0.01, ha="left")
        fig.tight_layout()
        path = timeline_path(out_dir, evaluation.name, capture)
        _save(fig, path, 100)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_policy(path: Path, x: np.ndarray, y: np.ndarray, weight: np.ndarray, *, x_label: str,
                y_label: str, weight_label: str, title: str) -> None:
    """Where a fusion trusts which detector: each window at (score of one, score of the other).

    ``x`` / ``y`` are two detectors' own scores (symmetric-log axes: anomaly
    scores span orders of magnitude), the colour is ``weight`` (the weight the
    fusion gave the ``y`` detector on that window). The labels should say in
    words what each score measures (``Detector.score_label``).
    """
    plt = _pyplot()
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    order = np.argsort(np.abs(weight - 0.5))  # the decided windows on top of the undecided ones
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    points = ax.scatter(x[order], y[order], c=weight[order], cmap="coolwarm", vmin=0, vmax=1, s=6,
                        alpha=0.8, linewidths=0, rasterized=True)
    fig.colorbar(points, ax=ax, label=weight_label)
    ax.set_xscale("symlog")
    ax.set_yscale("symlog")
    ax.set(xlabel=x_label, ylabel=y_label, title=title)
    ax.grid(True, lw=0.3, alpha=0.5)
    fig.tight_layout()
    _save(fig, path, 110)
    plt.close(fig)
