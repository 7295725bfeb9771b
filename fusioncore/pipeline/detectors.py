"""Detector lifecycle: build, train (or reuse), calibrate, save, load, predict through a store.

A trained detector is saved as a plain checkpoint (``state_dict`` + JSON-able
config) that loads with ``torch.load(weights_only=True)``: loading a
checkpoint never runs code. Trained detectors are also kept in the cache
under a key of (detector, config, training-data fingerprint, seed), so a run
asking for the same detector on the same data reuses it instead of
retraining.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytorch_lightning as pl
import torch

from fusioncore.contracts import Detector, DetectorOutput, GraphSchema, PredictionStore
from fusioncore.data.datamodule import CANDataModule
from fusioncore.errors import ConfigError, PluginError
from fusioncore.paths import cache_dir
from fusioncore.pipeline.engine import TrainerSettings, make_trainer, quiet_lightning

__all__ = [
    "PredictResult",
    "TrainedDetector",
    "load_detector",
    "predict_split",
    "prediction_key",
    "save_detector",
    "train_or_reuse",
]

log = logging.getLogger(__name__)
_FORMAT = 1


@attrs.frozen(eq=False)
class TrainedDetector:
    name: str
    model: Detector
    params: Mapping[str, Any]
    seconds: float
    reused: bool
    checkpoint: Path | None  #: its copy in the reuse cache (None: kept out of it)
    processes: int = 1  #: training processes (DDP world size)
    resumed: bool = False  #: continued an interrupted training


@attrs.frozen(eq=False)
class PredictResult:
    output: DetectorOutput
    cache_hit: bool
    seconds: float


def build_detector(cls: type, name: str, schema: GraphSchema, params: Mapping[str, Any]) -> Detector:
    try:
        model = cls(schema, **dict(params))
    except TypeError as exc:
        raise ConfigError(f"detector {name!r}: bad parameters {dict(params)}: {exc}") from None
    if not isinstance(model, Detector):
        raise PluginError(f"detector {name!r} built a {type(model).__name__}, not a fusioncore.Detector")
    return model


def save_detector(path: Path, model: Detector, name: str, params: Mapping[str, Any], schema: GraphSchema):
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": _FORMAT,
        "name": name,
        "params_json": json.dumps(dict(params), sort_keys=True),
        "schema_json": json.dumps(attrs.asdict(schema)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load_detector(path: Path, cls: type) -> tuple[Detector, dict, GraphSchema]:
    """Load a checkpoint written by :func:`save_detector` (``weights_only=True``: no code runs)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("format") != _FORMAT:
        raise ConfigError(f"{path}: not a fusioncore detector checkpoint (format {blob.get('format')})")
    params = json.loads(blob["params_json"])
    schema_d = json.loads(blob["schema_json"])
    schema = GraphSchema(**{k: tuple(v) if isinstance(v, list) else v for k, v in schema_d.items()})
    model = build_detector(cls, blob["name"], schema, params)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, params, schema


def _reuse_key(name: str, cls: type, params: Mapping, data_fp: str, seed: int, settings: TrainerSettings):
    payload = {
        "detector": name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "params": dict(params),
        "data": data_fp,
        "seed": seed,
        "epochs": settings.max_epochs,
        "patience": settings.patience,
        "limit_train_batches": settings.limit_train_batches,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def train_or_reuse(
    name: str,
    cls: type,
    params: Mapping[str, Any],
    dm: CANDataModule,
    settings: TrainerSettings,
    *,
    out_dir: Path | None,
    seed: int = 0,
    reuse: bool = True,
    resume: bool = False,
    factory: Callable[[GraphSchema], Detector] | None = None,
) -> TrainedDetector:
    """Train a detector on ``dm`` (benign windows only if unsupervised), calibrate, save.

    A previously trained detector with the same class, params, training data,
    seed and training settings is loaded from the cache instead. With
    ``resume``, an interrupted training continues from
    ``<out_dir>/checkpoints/<name>/last.ckpt`` (loaded with ``weights_only=True``);
    its result stays out of the reuse cache, since a resumed training is not
    bit-identical to an uninterrupted one. ``factory(schema)`` builds the model
    (the run's config does, with hydra-zen); by default ``cls(schema, **params)``.
    The run's :class:`~fusioncore.pipeline.bundle.RunBundle` saves the model
    into the run folder.
    """
    key = _reuse_key(name, cls, params, dm.fingerprint("train"), seed, settings)
    cached = cache_dir("detectors") / f"{name}-{key[:24]}.pt"
    if reuse and cached.exists():
        try:
            model, _, _ = load_detector(cached, cls)
            log.info("reusing trained %s from %s", name, cached)
            return TrainedDetector(name, model, dict(params), 0.0, True, cached, processes=0)
        except Exception as exc:  # a stale / damaged checkpoint: retrain
            log.warning("could not reuse %s (%s); retraining", cached, exc)
    pl.seed_everything(seed, workers=True, verbose=False)
    quiet_lightning()
    model = factory(dm.schema) if factory is not None else build_detector(cls, name, dm.schema, params)
    benign_only = not getattr(cls, "supervised", True)
    train_loader = dm.loader("train", benign_only=benign_only, shuffle=True, seed=seed)
    val_loader = dm.loader("val", benign_only=benign_only)
    has_val = len(val_loader) > 0
    trainer = make_trainer(settings, out_dir, name=name, has_validation=has_val)
    start = time.perf_counter()
    last = Path(out_dir) / "checkpoints" / name / "last.ckpt" if out_dir else None
    ckpt_path = str(last) if resume and last is not None and last.exists() else None
    if ckpt_path:
        log.info("resuming %s from %s", name, ckpt_path)
    trainer.fit(model, train_dataloaders=train_loader, val_dataloaders=val_loader if has_val else None,
                ckpt_path=ckpt_path, weights_only=True)
    if trainer.global_rank != 0:
        # DDP worker processes exist to train; rank 0 alone goes on to predict and report
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        raise SystemExit(0)
    best = getattr(trainer.checkpoint_callback, "best_model_path", "") if out_dir else ""
    if best and Path(best).exists():
        # The best epoch, not the last one; Lightning checkpoints hold only tensors and
        # plain values, so weights_only loading works.
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(state)
    model.eval()
    model.calibrate(dm.loader("val" if has_val else "train", benign_only=True))
    seconds = time.perf_counter() - start
    if ckpt_path is None:
        save_detector(cached, model, name, params, dm.schema)
    return TrainedDetector(name, model, dict(params), seconds, False, None if ckpt_path else cached,
                           trainer.world_size, resumed=ckpt_path is not None)


def prediction_key(detector_fingerprint: str, data_fingerprint: str, split: str) -> str:
    """Store key: sha256 of (detector fingerprint, data fingerprint, split); any change, new key."""
    return hashlib.sha256("\0".join((detector_fingerprint, data_fingerprint, split)).encode()).hexdigest()


def predict_split(
    trained: TrainedDetector,
    dm: CANDataModule,
    split: str,
    store: PredictionStore | None,
    settings: TrainerSettings,
) -> PredictResult:
    """The detector's output on a split, from the store when it is there."""
    key = prediction_key(trained.model.fingerprint(), dm.fingerprint(split), split)
    start = time.perf_counter()
    if store is not None:
        arrays = store.get(key)
        if arrays is not None:
            return PredictResult(DetectorOutput.from_arrays(arrays), True, time.perf_counter() - start)
    output = run_detector(trained.model, dm.loader(split), settings)
    if store is not None:
        store.put(key, output.to_arrays())
    return PredictResult(output, False, time.perf_counter() - start)


def run_detector(model: Detector, loader, settings: TrainerSettings) -> DetectorOutput:
    """Forward passes over a loader with ``Trainer.predict``, concatenated."""
    quiet_lightning()
    trainer = pl.Trainer(
        accelerator=settings.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,  # the pipeline shows one bar over all splits instead
        enable_model_summary=False,
    )
    model.eval()
    parts = trainer.predict(model, dataloaders=loader)
    if not parts:
        return DetectorOutput(
            window_ids=[], score=[], features=torch.zeros(0, len(model.feature_names)).numpy(),
            feature_names=model.feature_names,
        )
    return DetectorOutput.concat(parts)
