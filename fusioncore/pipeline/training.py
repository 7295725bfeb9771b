"""Fitting one detector with the core's Trainer: seed, loaders, resume, distributed launch, best epoch.

:func:`fit_detector` is what :func:`fusioncore.pipeline.detectors.train_or_reuse`
runs when there is nothing to reuse; :func:`run_worker_job` is what a DDP
worker process runs instead of its own pipeline (see
:mod:`fusioncore.pipeline.distributed`). Ctrl-C during ``fit`` ends as a
``KeyboardInterrupt`` (:func:`fusioncore.pipeline.engine.interruptible`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs
import pytorch_lightning as pl
import torch

from fusioncore.contracts import Detector, GraphSchema
from fusioncore.data.datamodule import CANDataModule
from fusioncore.errors import ConfigError, PluginError
from fusioncore.pipeline import distributed
from fusioncore.pipeline.engine import TrainerSettings, interruptible, make_trainer, quiet_lightning

__all__ = ["FitJob", "build_detector", "fit_detector", "run_worker_job"]

log = logging.getLogger(__name__)

_external_fits = 0  # distributed fits in a process that an external launcher started


@attrs.frozen
class FitJob:
    """One detector training, as the launching process hands it to its DDP workers (JSON-able)."""

    name: str
    params: Mapping[str, Any]
    seed: int
    data: str  #: ``dm.fingerprint(split)``: the worker checks it built the same training data
    settings: Mapping[str, Any]  #: :class:`TrainerSettings` fields
    out_dir: str | None
    ckpt_path: str | None
    split: str = "train"  #: the split to train on (``train.foldK`` for a cross-fitting fold)

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "params": dict(self.params), "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FitJob:
        return cls(**{a.name: data[a.name] for a in attrs.fields(cls) if a.name in data})


def build_detector(cls: type, name: str, schema: GraphSchema, params: Mapping[str, Any]) -> Detector:
    try:
        model = cls(schema, **dict(params))
    except TypeError as exc:
        raise ConfigError(f"detector {name!r}: bad parameters {dict(params)}: {exc}") from None
    if not isinstance(model, Detector):
        raise PluginError(f"detector {name!r} built a {type(model).__name__}, not a fusioncore.Detector")
    return model


def resume_checkpoint(out_dir: Path | None, name: str, resume: bool) -> str | None:
    last = Path(out_dir) / "checkpoints" / name / "last.ckpt" if out_dir else None
    return str(last) if resume and last is not None and last.exists() else None


def fit_detector(job: FitJob, build: Callable[[GraphSchema], Detector], supervised: bool,
                 dm: CANDataModule) -> tuple[Detector, int]:
    """Train ``build(schema)``, load the best epoch, calibrate; the model (eval mode) and its processes.

    ``supervised`` detectors see every training window, the others benign ones
    only. In a DDP worker this never returns: the worker exits once ``fit`` is done.
    """
    global _external_fits
    settings = TrainerSettings(**job.settings)
    pl.seed_everything(job.seed, workers=True, verbose=False)
    quiet_lightning()
    model = build(dm.schema)
    benign_only = not supervised
    # reference windows (fusioncore.adapt) supply score statistics only: never trained on
    train_loader = dm.loader(job.split, benign_only=benign_only, shuffle=True, seed=job.seed,
                             windows_per_epoch=settings.windows_per_epoch or None, with_reference=False)
    val_loader = dm.loader("val", benign_only=benign_only, max_windows=settings.val_windows or None,
                           with_reference=False)
    has_val = len(val_loader) > 0
    ddp = distributed.is_subprocess_ddp(settings.strategy)
    if ddp:
        # every rank takes its slice of the single-process batches (see fusioncore.pipeline.distributed)
        train_loader = distributed.sharded_loader(train_loader)
    out_dir = Path(job.out_dir) if job.out_dir else None
    trainer = make_trainer(settings, out_dir, name=job.name, has_validation=has_val,
                           use_distributed_sampler=not ddp)
    if job.ckpt_path:
        log.info("resuming %s from %s", job.name, job.ckpt_path)

    def fit() -> None:
        interruptible(trainer.fit, trainer, model, train_dataloaders=train_loader,
                      val_dataloaders=val_loader if has_val else None, ckpt_path=job.ckpt_path,
                      weights_only=True)

    if distributed.is_ddp_worker():
        fit()
        distributed.leave_worker()
    if ddp and distributed.externally_launched():
        if _external_fits:
            raise ConfigError(
                "this process was started by an external launcher (LOCAL_RANK was set, e.g. by torchrun "
                "or srun), whose other ranks stop after their first detector; train one detector per "
                "launch, or let fusioncore launch: `fusioncore run --strategy ddp --devices N`"
            )
        _external_fits += 1
        fit()
        if trainer.global_rank != 0:
            distributed.leave_worker()
    elif ddp:
        distributed.launch(job.to_json(), trainer, fit)
    else:
        fit()
    best = getattr(trainer.checkpoint_callback, "best_model_path", "") if out_dir else ""
    if best and Path(best).exists():
        # The best epoch, not the last one; Lightning checkpoints hold only tensors and
        # plain values, so weights_only loading works.
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(state)
    model.eval()
    model.calibrate(dm.loader("val" if has_val else job.split, benign_only=True, with_reference=False))
    return model, trainer.world_size


def run_worker_job(job: FitJob, build: Callable[[GraphSchema], Detector], params: Mapping[str, Any],
                   supervised: bool, dm: CANDataModule) -> NoReturn:
    """In a DDP worker: train the detector rank 0 launched this process for, then exit.

    The worker ran the same command line as rank 0 up to this detector, so it
    built the same data and components; the checks make sure.
    """
    problem = None
    if job.split not in dm.splits or dm.fingerprint(job.split) != job.data:
        problem = "different training data (did the files change?)"
    elif json.dumps(dict(params), sort_keys=True, default=str) != json.dumps(
            dict(job.params), sort_keys=True, default=str):
        problem = f"other parameters ({dict(params)} against {dict(job.params)})"
    if problem:
        print(f"error: DDP worker for {job.name!r}: {problem} than rank 0", file=sys.stderr)
        raise SystemExit(2)
    fit_detector(job, build, supervised, dm)
    raise AssertionError("unreachable: a DDP worker exits after fit")  # pragma: no cover
