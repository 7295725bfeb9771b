"""Detector lifecycle: build, train (or reuse), calibrate, save, load, predict through a store.

A trained detector is saved as a plain checkpoint (``state_dict`` + JSON-able
config) that loads with ``torch.load(weights_only=True)``: loading a
checkpoint never runs code. Trained detectors are also kept in the cache
under a key of (detector, config, training-data fingerprint, seed, training
settings), so a run asking for the same detector on the same data reuses it
instead of retraining; a resumed training is kept out of it.

The cache is written through a unique temporary file renamed into place, so
concurrent runs never see (or trip over) half a file; each checkpoint holds
its key, so a file found under another key's name is retrained, not used. A
cache that cannot be written (read-only, full) still serves what it holds;
the new checkpoint is skipped with a warning. Outputs read back from the
prediction store are checked against the split they are for (one row per
window, in order) before they are used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytorch_lightning as pl
import torch

from fusioncore.contracts import Detector, DetectorOutput, GraphSchema, PredictionStore
from fusioncore.data.datamodule import CANDataModule
from fusioncore.errors import ConfigError
from fusioncore.paths import cache_dir
from fusioncore.pipeline import distributed
from fusioncore.pipeline.engine import TrainerSettings, interruptible, quiet_lightning
from fusioncore.pipeline.training import (
    FitJob,
    build_detector,
    fit_detector,
    resume_checkpoint,
    run_worker_job,
)

__all__ = [
    "CheckpointKeyError",
    "PredictResult",
    "TrainedDetector",
    "find_reusable",
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


def save_detector(
    path: Path, model: Detector, name: str, params: Mapping[str, Any], schema: GraphSchema,
    *, key: str | None = None,
) -> None:
    """Write a checkpoint atomically (unique temporary file, then rename); ``key`` binds it to a cache key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": _FORMAT,
        "name": name,
        "params_json": json.dumps(dict(params), sort_keys=True),
        "schema_json": json.dumps(attrs.asdict(schema)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if key is not None:
        blob["key"] = key
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(blob, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_detector(path: Path, cls: type, *, key: str | None = None) -> tuple[Detector, dict, GraphSchema]:
    """Load a checkpoint written by :func:`save_detector` (``weights_only=True``: no code runs).

    With ``key``, the checkpoint must have been saved under that cache key.
    """
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        fmt = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ConfigError(f"{path}: not a fusioncore detector checkpoint (format {fmt})")
    if key is not None and blob.get("key") != key:
        raise CheckpointKeyError(f"{path.name} was saved under another cache key", stale="key" not in blob)
    params = json.loads(blob["params_json"])
    schema_d = json.loads(blob["schema_json"])
    schema = GraphSchema(**{k: tuple(v) if isinstance(v, list) else v for k, v in schema_d.items()})
    model = build_detector(cls, blob["name"], schema, params)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:  # missing / unexpected / resized tensors: another version of the code
        # torch lists every mismatch on its own line; the last one says what differs
        lines = str(exc).strip().splitlines()
        what = lines[-1].strip() if lines else type(exc).__name__
        raise ConfigError(
            f"{path}: the checkpoint does not fit this version of detector {blob['name']!r} "
            f"(saved by an older or newer plugin?): {what}; train it again"
        ) from None
    model.eval()
    return model, params, schema


class CheckpointKeyError(ConfigError):
    """A checkpoint saved under another cache key (``stale``: by an older fusioncore, with no key)."""

    def __init__(self, message: str, *, stale: bool) -> None:
        super().__init__(message)
        self.stale = stale


def _reuse_key(name: str, cls: type, params: Mapping, data_fp: str, seed: int, settings: TrainerSettings):
    payload = {
        "detector": name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "params": dict(params),
        "data": data_fp,
        "seed": seed,
        "epochs": settings.max_epochs,
        "patience": settings.patience,
        "min_delta": settings.min_delta,
        "limit_train_batches": settings.limit_train_batches,
        "windows_per_epoch": settings.windows_per_epoch,
        "val_windows": settings.val_windows,
    }
    if settings.strategy != "auto" or str(settings.devices) != "1":
        # several processes train close to, not exactly like, one: keep their weights apart
        payload["processes"] = f"{settings.strategy}:{settings.devices}"
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _detector_cache() -> Path | None:
    try:
        return cache_dir("detectors")
    except OSError as exc:
        log.warning("the detector cache cannot be created (%s); trained detectors are not kept for reuse",
                    exc.strerror or exc)
        return None


def _load_cached(path: Path, cls: type, key: str) -> Detector | None:
    try:
        model, _, _ = load_detector(path, cls, key=key)
        return model
    except CheckpointKeyError as exc:
        if exc.stale:
            log.info("%s was saved by an older fusioncore; retraining", path)
        else:
            log.warning("could not reuse %s (%s); retraining", path, exc)
    except Exception as exc:  # a damaged / foreign checkpoint: retrain, never trust it
        log.warning("could not reuse %s (%s: %s); retraining", path, type(exc).__name__, exc)
    return None


def _cache_detector(path: Path | None, model: Detector, name: str, params: Mapping[str, Any],
                    schema: GraphSchema, key: str) -> Path | None:
    """Keep ``model`` in the reuse cache; the path, or ``None`` when it could not be kept."""
    if path is None:
        return None
    try:
        save_detector(path, model, name, params, schema, key=key)
    except OSError as exc:  # read-only or full: this run has the model, later runs retrain
        log.warning("could not keep trained %s in the detector cache (%s: %s); later runs will retrain it",
                    name, path.parent, exc.strerror or exc)
        return None
    return path


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
    train_split: str = "train",
    label: str | None = None,
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
    into the run folder. ``train_split`` names the split to train on (a
    cross-fitting fold trains on ``train.foldK``); ``label`` (default ``name``)
    names the training: its cache file, checkpoint and log folders, its DDP job.

    In a DDP worker process this trains the one detector rank 0 launched it
    for and exits (see :mod:`fusioncore.pipeline.distributed`).
    """
    build = factory if factory is not None else (lambda schema: build_detector(cls, name, schema, params))
    label = label or name
    job = distributed.worker_job()
    if job is not None:
        if label != job["name"]:
            # rank 0 is past this one (reused or trained); the worker exits at its own
            # detector, before anything uses this untrained model
            return TrainedDetector(name, build(dm.schema), dict(params), 0.0, False, None, processes=0)
        run_worker_job(FitJob.from_json(job), build, params, getattr(cls, "supervised", True), dm)
    key, cached = _cache_slot(name, cls, params, dm, settings, seed, train_split, label)
    if reuse:
        found = _reused(name, cls, params, cached, key, label)
        if found is not None:
            return found
    ckpt_path = resume_checkpoint(out_dir, label, resume)
    job = FitJob(name=label, params=dict(params), seed=int(seed), data=dm.fingerprint(train_split),
                 settings=attrs.asdict(settings), out_dir=str(out_dir) if out_dir else None,
                 ckpt_path=ckpt_path, split=train_split)
    start = time.perf_counter()
    model, processes = fit_detector(job, build,
                                    getattr(cls, "supervised", True), dm)
    seconds = time.perf_counter() - start
    kept = None
    if ckpt_path is None:
        kept = _cache_detector(cached, model, name, params, dm.schema, key)
    return TrainedDetector(name, model, dict(params), seconds, False, kept, processes,
                           resumed=ckpt_path is not None)


def _cache_slot(name: str, cls: type, params: Mapping[str, Any], dm: CANDataModule, settings: TrainerSettings,
                seed: int, train_split: str, label: str) -> tuple[str, Path | None]:
    """The reuse-cache key of a training, and its file (None: no cache)."""
    key = _reuse_key(name, cls, params, dm.fingerprint(train_split), seed, settings)
    cache = _detector_cache()
    return key, (cache / f"{label}-{key[:24]}.pt" if cache is not None else None)


def _reused(name: str, cls: type, params: Mapping[str, Any], cached: Path | None, key: str,
            label: str) -> TrainedDetector | None:
    if cached is None or not cached.exists():
        return None
    model = _load_cached(cached, cls, key)
    if model is None:
        return None
    log.info("reusing trained %s from %s", label, cached)
    return TrainedDetector(name, model, dict(params), 0.0, True, cached, processes=0)


def find_reusable(name: str, cls: type, params: Mapping[str, Any], dm: CANDataModule,
                  settings: TrainerSettings, *, seed: int = 0, train_split: str = "train",
                  label: str | None = None) -> TrainedDetector | None:
    """The detector :func:`train_or_reuse` would load from the cache instead of training, or None."""
    label = label or name
    key, cached = _cache_slot(name, cls, params, dm, settings, seed, train_split, label)
    return _reused(name, cls, params, cached, key, label)


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
    if distributed.is_ddp_worker():
        raise RuntimeError("a DDP worker only trains; rank 0 predicts (see fusioncore.pipeline.distributed)")
    key = prediction_key(trained.model.fingerprint(), dm.fingerprint(split), split)
    start = time.perf_counter()
    if store is not None:
        arrays = store.get(key)
        if arrays is not None:
            output, problem = _stored_output(arrays, dm.splits[split].window_ids, trained.model.feature_names)
            if output is not None:
                return PredictResult(output, True, time.perf_counter() - start)
            # a store that lets a misfiled or stale entry through: never use it, recompute
            log.warning("prediction store entry for %s on %s does not fit that split (%s); recomputing",
                        trained.name, split, problem)
            _forget(store, key)
    output = run_detector(trained.model, dm.loader(split), settings)
    if store is not None:
        try:
            store.put(key, output.to_arrays())
        except Exception as exc:  # a cache that cannot take the entry must not fail the run
            log.warning("prediction store could not keep %s on %s (%s: %s); later runs recompute it",
                        trained.name, split, type(exc).__name__, exc)
    return PredictResult(output, False, time.perf_counter() - start)


def _stored_output(arrays: Mapping[str, np.ndarray], window_ids: np.ndarray, feature_names: tuple[str, ...]
                   ) -> tuple[DetectorOutput | None, str]:
    """The stored output if it is one for these windows (count, ids in order, features); else why not."""
    try:
        output = DetectorOutput.from_arrays(arrays)
    except Exception as exc:
        return None, f"unreadable: {type(exc).__name__}: {exc}"
    if len(output) != len(window_ids) or not np.array_equal(output.window_ids, window_ids):
        return None, f"{len(output)} windows with other ids, the split has {len(window_ids)}"
    if tuple(output.feature_names) != tuple(feature_names):
        return None, f"features {list(output.feature_names)}, the detector gives {list(feature_names)}"
    return output, ""


def _forget(store: PredictionStore, key: str) -> None:
    try:
        store.delete(key)
    except Exception as exc:  # read-only: the entry stays and is refused again next time
        log.debug("could not delete store entry %s: %s", key, exc)


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
    parts = interruptible(trainer.predict, trainer, model, dataloaders=loader)
    if not parts:
        return DetectorOutput(
            window_ids=[], score=[], features=torch.zeros(0, len(model.feature_names)).numpy(),
            feature_names=model.feature_names,
        )
    return DetectorOutput.concat(parts)
