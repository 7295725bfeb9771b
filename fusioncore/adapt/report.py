"""The parts of report.md that adaptation adds: the protocol header and per-capture metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["capture_lines", "protocol_lines"]


def _f(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def _names(paths) -> str:
    return ", ".join(str(p).replace("\\", "/").rsplit("/", 1)[-1] for p in paths)


def protocol_lines(report: Mapping[str, Any]) -> list[str]:
    """Header lines naming the protocol: adapter, warm-up, references that held attacks."""
    p = report.get("protocol")
    if not p:
        return []
    # a multi-seed report holds the mean of every number, so 0.1 may read 0.10000000000000002
    params = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in p.get("params", {}).items())
    graphs = f", {p['representation']} graphs" if "representation" in p else ""
    scores = ("" if "score_normalisation" not in p
              else f", score normalisation {'on' if p['score_normalisation'] else 'off'}")
    reference = p.get("reference") or f"first {p.get('warmup_s', 0):g} s of every capture"
    lines = [
        f"Protocol: adapter `{p.get('adapter')}`{f' ({params})' if params else ''}{graphs}{scores}. "
        f"Reference segment: the {reference}.",
    ]
    for split, names in p.get("references_with_attacks", {}).items():
        lines.append(f"**Reference segment holds attack frames** ({split}): {_names(names)}; "
                     "the captures are still used, their profiles and score statistics include them.")
    for split, names in p.get("references_without_windows", {}).items():
        lines.append(f"**Reference segment shorter than a window** ({split}): {_names(names)}; "
                     "their scores are standardised with the training captures' pooled statistics.")
    return lines


def capture_lines(report: Mapping[str, Any]) -> list[str]:
    """Per capture of every scenario with more than one: MCC / AUROC / recall / FP per method."""
    captures = report.get("captures") or {}
    mixed = {s: c for s, c in captures.items() if len(c) > 1}
    if not mixed:
        return []
    lines = ["", "## Per capture", "",
             "Scenarios holding several captures (vehicles, attacks) are also scored capture by capture, "
             "with the scenario's thresholds. `ref attack frames` counts attack frames inside the "
             "capture's reference segment (never scored).", ""]
    for scenario, caps in mixed.items():
        methods = list(next(iter(caps.values()))["methods"])
        header = " | ".join(f"{m} MCC / AUROC / FP" for m in methods)
        lines += [f"### {scenario}", "", f"| capture | ref attack frames | {header} |",
                  "|---|---:|" + "---:|" * len(methods)]
        for name, c in caps.items():
            ref = c.get("reference") or {}
            cells = [f"{_f(m['mcc'])} / {_f(m['auroc'])} / {m['fp']}" for m in c["methods"].values()]
            lines.append(f"| {name.split('/')[-1]} | {ref.get('attack_frames', '–')} | {' | '.join(cells)} |")
        lines.append("")
    return lines
