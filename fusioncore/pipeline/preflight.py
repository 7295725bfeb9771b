"""Preflight: what the splits hold, and whether the chosen run can work on them -- before training.

After the data is loaded and split, and before any detector trains, the run
prints a table of windows and attack windows per split and attack type and
checks what the chosen components need from those splits:

* a supervised detector needs attack windows in the detector block;
* a fusion needs a fusion block, and a trainable fusion needs both classes in it;
* thresholds (best MCC on validation) need both classes in the validation block.

A check that fails stops the run within seconds of loading, with the reason and
the option that would fix it; nothing that is knowable before training is
found out after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from fusioncore.data.datamodule import CANDataModule
from fusioncore.data.frames import attack_type_name
from fusioncore.errors import ConfigError
from fusioncore.pipeline.components import Components

__all__ = ["SplitRow", "SplitTable", "check_splits", "split_table"]


@attrs.frozen
class SplitRow:
    split: str
    windows: int
    attack_windows: int
    by_type: Mapping[str, int] = attrs.field(factory=dict)  #: attack type -> attack windows


@attrs.frozen
class SplitTable:
    rows: tuple[SplitRow, ...]

    def row(self, split: str) -> SplitRow:
        return next(r for r in self.rows if r.split == split)

    def to_json(self) -> dict[str, Any]:
        return {r.split: {"windows": r.windows, "attack_windows": r.attack_windows,
                          "attack_types": dict(r.by_type)} for r in self.rows}

    def summary(self) -> dict[str, Any]:
        return {"splits": self.to_json()}


def split_table(dm: CANDataModule) -> SplitTable:
    rows = []
    for name, split in dm.splits.items():
        attack = split.labels > 0
        codes, counts = np.unique(split.attack_types[attack], return_counts=True)
        rows.append(SplitRow(name, len(split), int(attack.sum()),
                             {attack_type_name(int(c)): int(n) for c, n in zip(codes, counts)}))
    return SplitTable(tuple(rows))


def _fail(reason: str, fix: str) -> None:
    raise ConfigError(f"preflight: {reason}; {fix}")


def check_splits(table: SplitTable, components: Components) -> None:
    """Raise a one-line :class:`ConfigError` naming the reason and the fix, or return."""
    train, fusion, val = table.row("train"), table.row("fusion"), table.row("val")
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
            what = "no attack windows" if fusion.attack_windows == 0 else "only attack windows"
            _fail(f"the fusion block holds {what}, so fusion(s) {', '.join(trainable)} cannot learn",
                  "move attacks into it (split.fusion_attacks=[TYPE] sends whole files of a type) or use "
                  "fixed fusions (--fusion mean)")
    if not 0 < val.attack_windows < val.windows:
        what = "no attack windows" if val.attack_windows == 0 else "only attack windows"
        _fail(f"the validation block holds {what}, so no decision threshold can be chosen on it",
              "use training data with attacks in every file's later part, a larger split.val, or "
              "split.fusion_attacks=[TYPE]")


def print_split_table(table: SplitTable) -> None:
    from rich.table import Table

    from fusioncore.cli import _stdout

    types = sorted({t for r in table.rows for t in r.by_type})
    out = Table(title="splits (windows / attack windows per type)")
    for col in ("split", "windows", "attack", *types):
        out.add_column(col, justify="left" if col == "split" else "right", no_wrap=True)
    for r in table.rows:
        out.add_row(r.split, f"{r.windows:,}", f"{r.attack_windows:,}",
                    *(f"{r.by_type.get(t, 0):,}" for t in types))
    _stdout().print(out)
