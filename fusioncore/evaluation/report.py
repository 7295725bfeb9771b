"""Run artifacts: report.json, report.md, metrics.csv and plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_curves", "plot_policy", "summary_rows", "write_report"]

METRIC_COLUMNS = ("mcc", "f1", "precision", "recall", "auroc", "ap", "accuracy", "n_windows",
                  "n_attack_windows")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for scenario, methods in report["scenarios"].items():
        for method, m in methods.items():
            rows.append({"scenario": scenario, "method": method, **{k: m.get(k) for k in METRIC_COLUMNS}})
    return rows


def write_report(out_dir: Path, report: Mapping[str, Any]) -> None:
    out_dir = Path(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=float))
    rows = summary_rows(report)
    with open(out_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["scenario", "method", *METRIC_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# fusioncore report: {report['dataset']}",
        "",
        f"Detectors: {', '.join(report['detectors'])}; fusions: {', '.join(report['fusions'])}; "
        f"seed {report['seed']}. Thresholds chosen on the validation block (best MCC).",
        "",
        "| scenario | method | MCC | F1 | AUROC | AP | recall | precision | windows | attack windows |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['method']} | {_fmt(r['mcc'])} | {_fmt(r['f1'])} | {_fmt(r['auroc'])} "
            f"| {_fmt(r['ap'])} | {_fmt(r['recall'])} | {_fmt(r['precision'])} | {r['n_windows']} "
            f"| {r['n_attack_windows']} |"
        )
    if report.get("mean_over_scenarios"):
        lines += ["", "## Mean over test scenarios", ""]
        lines += ["| method | MCC | AUROC | F1 |", "|---|---:|---:|---:|"]
        for method, m in report["mean_over_scenarios"].items():
            lines.append(f"| {method} | {_fmt(m['mcc'])} | {_fmt(m['auroc'])} | {_fmt(m['f1'])} |")
    lines += ["", "## Timings (s)", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in report["timings"].items()]
    cache = report.get("prediction_cache", {})
    if cache:
        lines += ["", f"Prediction store: {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses."]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")


def _roc(labels: np.ndarray, scores: np.ndarray):
    order = np.argsort(-scores, kind="mergesort")
    y = labels[order].astype(bool)
    tpr = np.concatenate([[0], np.cumsum(y) / max(y.sum(), 1)])
    fpr = np.concatenate([[0], np.cumsum(~y) / max((~y).sum(), 1)])
    precision = np.cumsum(y) / np.arange(1, len(y) + 1)
    return fpr, tpr, tpr[1:], precision


def plot_curves(path: Path, scenario: str, labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> None:
    """ROC and precision-recall curves of every method on one scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.2))
    for method, s in scores.items():
        fpr, tpr, recall, precision = _roc(np.asarray(labels), np.asarray(s))
        ax_roc.plot(fpr, tpr, label=method)
        ax_pr.plot(recall, precision, label=method)
    ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {scenario}")
    ax_pr.set(xlabel="recall", ylabel="precision", title=f"precision-recall: {scenario}", ylim=(0, 1.02))
    ax_roc.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_policy(path: Path, states: np.ndarray, names: tuple[str, ...], alpha: np.ndarray,
                title: str) -> None:
    """Mean chosen weight over the two state features most correlated with it (a heatmap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    states = np.asarray(states, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    spread = states.std(axis=0)
    corr = np.zeros(states.shape[1])
    ok = spread > 0
    if alpha.std() > 0 and ok.any():
        centred = (states[:, ok] - states[:, ok].mean(0)) / spread[ok]
        corr[ok] = np.abs(centred.T @ (alpha - alpha.mean()) / (len(alpha) * alpha.std()))
    order = np.argsort(-(corr + spread * 1e-9))
    i, j = (int(order[0]), int(order[1] if len(order) > 1 else order[0]))
    x, y = states[:, i], states[:, j]
    bins = 30
    total, xe, ye = np.histogram2d(x, y, bins=bins, weights=alpha)
    count, _, _ = np.histogram2d(x, y, bins=[xe, ye])
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    fig, ax = plt.subplots(figsize=(6, 4.8))
    mesh = ax.pcolormesh(xe, ye, mean.T, cmap="viridis", vmin=0, vmax=1, shading="auto")
    fig.colorbar(mesh, ax=ax, label="weight on the second detector (alpha)")
    ax.set(xlabel=names[i] if i < len(names) else f"state[{i}]",
           ylabel=names[j] if j < len(names) else f"state[{j}]", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
