"""``FleetScorer``: a trained run as a LightningModule whose ``predict_step`` scores one capture.

``Trainer.predict`` drives it, so Lightning's strategies decide where each
capture is scored: with ``--strategy ddp --devices N --num-nodes M`` every
process gets its share of the capture indices from Lightning's distributed
sampler, scores them on its own device and writes their verdict files
itself (each capture's summary row, with the process's peak memory so far,
in the file's footer). When prediction ends, every process waits at a
barrier; global rank 0 then has the whole folder and writes the summary
(:mod:`fusioncore.fleet.summary`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytorch_lightning as pl
import torch

from fusioncore.contracts import FormatReader
from fusioncore.evaluation.alarms import AlarmStage
from fusioncore.fleet.verdicts import score_capture, write_verdicts
from fusioncore.pipeline.bundle import RunBundle
from fusioncore.pipeline.resources import peak_rss_bytes

__all__ = ["FleetProgress", "FleetScorer", "describe_alarm"]


def describe_alarm(stage: AlarmStage) -> str:
    """``k-of-n (k=3, n=5)``: the stage's name and the parameters that define it."""
    params = ", ".join(f"{k}={v}" for k, v in stage.config().items())
    return f"{stage.name} ({params})" if params else stage.name


class FleetScorer(pl.LightningModule):
    """Scores capture ``i`` of ``captures`` per predict step and writes ``out / names[i]``."""

    def __init__(
        self,
        bundle: RunBundle,
        captures: Sequence[Path],
        names: Sequence[str],
        out: Path,
        *,
        method: str,
        stride: int | None = None,
        alarm: AlarmStage,
        readers: Sequence[FormatReader] = (),
        format: str | None = None,
        errors: str = "skip",
        batch_size: int = 256,
        run_dir: Path | None = None,
        adaptation: Any = None,
    ) -> None:
        super().__init__()
        self.bundle = bundle
        # registered as submodules, so Lightning moves them to this process's device
        self.detectors = torch.nn.ModuleDict(dict(bundle.detectors))
        self.captures, self.names, self.out = tuple(captures), tuple(names), Path(out)
        self.method, self.stride, self.alarm = method, stride, alarm
        self.readers, self.format, self.errors, self.batch_size = tuple(readers), format, errors, batch_size
        self.adaptation = adaptation  # the run's capture adapter (fusioncore.adapt.capture.SavedAdaptation)
        warmup = adaptation.adapter.warmup_s if adaptation is not None and adaptation.uses_reference else 0.0
        self.footer = {"run": str(run_dir) if run_dir else None, "alarm": describe_alarm(alarm),
                       "adapter": adaptation.adapter.name if adaptation is not None else "none",
                       "warmup_s": warmup,
                       "thresholds": {m: float(t) for m, t in bundle.thresholds.items()}}

    def predict_step(self, batch: Any, batch_idx: int = 0) -> dict[str, Any]:
        index = int(batch)
        start = time.perf_counter()
        verdicts = score_capture(
            self.bundle, self.captures[index], method=self.method, name=self.names[index],
            stride=self.stride, alarm=self.alarm, readers=self.readers, format=self.format,
            errors=self.errors, batch_size=self.batch_size, device=self.device, adaptation=self.adaptation,
        )
        seconds = time.perf_counter() - start
        # the process's peak so far: its last capture's row holds the process's peak for the report
        row = {**verdicts.row, "seconds": round(seconds, 3), "rank": int(self.global_rank),
               "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1)}
        write_verdicts(self.out / self.names[index], attrs.evolve(verdicts, row=row), self.footer)
        return row

    def on_predict_end(self) -> None:
        # every process has written its captures' files once all are past this point
        self.trainer.strategy.barrier("fleet-verdicts-written")


class FleetProgress(pl.Callback):
    """A bar of captures and frames scored by this process (global rank 0 draws it)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.enabled = total, enabled
        self._progress = None
        self._task = None
        self._frames = 0

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        from rich.console import Console
        from rich.progress import Progress

        mine = len(range(0, self.total, trainer.world_size))
        share = f" (this process's {mine} of {self.total})" if trainer.world_size > 1 else ""
        self._progress = Progress(*Progress.get_default_columns(), "{task.fields[frames]}",
                                  console=Console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task(f"scoring captures{share}", total=mine, frames="")

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._progress is None:
            return
        self._frames += int(outputs.get("frames", 0))
        self._progress.update(self._task, advance=1, frames=f"{self._frames:,} frames")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
