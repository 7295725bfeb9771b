"""Preflight: what the splits hold, and whether the chosen run can work on them -- before training.

After the data is loaded and split, and before any detector trains, the run
prints a table of windows and attack windows per split and attack type
(:func:`fusioncore.data.splits.summarize_splits`) and checks what the chosen
components need from those splits:

* a supervised detector needs attack windows in the detector block;
* a fusion needs a fusion block, and a trainable fusion needs both classes in it;
* thresholds (best MCC on validation) need both classes in the validation block.

A check that fails stops the run within seconds of loading, with the reason and
the option that would fix it; nothing that is knowable before training is
found out after it. An attack type the detectors train on but the fusion or
validation block lacks is only a warning.
"""

from __future__ import annotations

import logging

from fusioncore.data.splits import SplitSummary
from fusioncore.errors import ConfigError
from fusioncore.pipeline.components import Components

__all__ = ["check_splits", "print_split_table"]

log = logging.getLogger(__name__)


def _fail(reason: str, fix: str) -> None:
    raise ConfigError(f"preflight: {reason}; {fix}")


def _only(counts) -> str:
    return "no attack windows" if counts.attack_windows == 0 else "only attack windows"


def check_splits(summary: SplitSummary, components: Components) -> list[str]:
    """Raise a one-line :class:`ConfigError` naming the reason and the fix; return warnings."""
    train, fusion, val = summary["train"], summary["fusion"], summary["val"]
    if train.windows == 0:
        _fail("the detector block holds no windows (training files shorter than one window?)",
              "check the dataset's train_* folders or lower window.size")
    supervised = [n for n, spec in components.detectors.items() if getattr(spec.cls, "supervised", True)]
    if supervised and train.attack_windows == 0:
        _fail(f"detector(s) {', '.join(supervised)} are supervised but the detector block holds no attack "
              "windows (do the training files carry attack labels?)",
              "train unsupervised detectors only (e.g. --detectors vgae) or add labelled attack captures")
    if components.fusion_names:
        if fusion.windows == 0:
            _fail("the fusion block is empty, so fusions would fit on the detectors' own training outputs",
                  "give it a share (e.g. split.fusion=0.15 split.detector=0.7)")
        trainable = [n for n in components.fusion_names
                     if getattr(components.registry.get("fusion", n), "trainable", True)]
        if trainable and not 0 < fusion.attack_windows < fusion.windows:
            _fail(f"the fusion block holds {_only(fusion)}, so fusion(s) {', '.join(trainable)} cannot learn",
                  "move attacks into it (split.fusion_attacks=[TYPE] sends whole files of a type) or use "
                  "fixed fusions (--fusion mean)")
    if not 0 < val.attack_windows < val.windows:
        _fail(f"the validation block holds {_only(val)}, so no decision threshold can be chosen on it",
              "use training data with attacks in more than one time block per file, a larger split.val, or "
              "split.fusion_attacks=[TYPE]")
    warnings = []
    for split in ("fusion", "val"):
        missing = summary.missing(split)
        if missing:
            warnings.append(f"the {split} block holds no {', '.join(missing)} windows although the detectors "
                            "train on them: its metrics say nothing about those attack types")
    for w in warnings:
        log.warning("preflight: %s", w)
    return warnings


def print_split_table(summary: SplitSummary) -> None:
    from rich.table import Table

    from fusioncore.cli import _stdout

    types = summary.attack_types
    out = Table(title="splits (windows / attack windows per type)")
    for col in ("split", "windows", "attack", *types):
        out.add_column(col, justify="left" if col == "split" else "right", no_wrap=True)
    for c in summary.splits:
        out.add_row(c.name, f"{c.windows:,}", f"{c.attack_windows:,}",
                    *(f"{c.by_type.get(t, 0):,}" for t in types))
    _stdout().print(out)
