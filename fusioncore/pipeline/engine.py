"""The Lightning ``Trainer`` the core builds for every detector.

One place decides progress bars, early stopping, checkpoints, loggers and
the accelerator, so every detector plugin trains the same way and a user's
``--accelerator`` / ``--strategy`` / ``--devices`` reach all of them.

Each Trainer logs into a folder of its own, ``logs/<name>/<version>/``
(``version``: start time, process id and a random suffix), so two runs that
share an output folder, or a run and its ``--resume``, never write one
``metrics.csv`` at once (Lightning's CSV writer rewrites the whole file when
its columns change, and a second writer's columns make the first one fail)
and an interrupted attempt's logs are kept beside the resumed one's.

:func:`interruptible` runs a Trainer method so that Ctrl-C stays a
``KeyboardInterrupt``: Lightning catches it, shuts down and calls
``sys.exit(1)``, which would end the command with status 1 and no message.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from fusioncore.errors import ConfigError

__all__ = [
    "TrainerSettings", "interruptible", "lightning_trainer", "log_version", "make_trainer", "quiet_lightning",
]

T = TypeVar("T")


@attrs.frozen
class TrainerSettings:
    """Trainer options shared by all detectors (``--accelerator`` etc. on the CLI)."""

    max_epochs: int = 20
    patience: int = 3
    #: smallest fall in the monitored loss that counts as an improvement for early stopping
    min_delta: float = 1e-4
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    progress: bool = True
    deterministic: bool = True
    limit_train_batches: int | float = 1.0
    precision: str = "32-true"
    num_nodes: int = 1
    windows_per_epoch: int = 0  #: training windows drawn per epoch (0: every window)
    val_windows: int = 0  #: validation windows for early stopping (0: every window)


def quiet_lightning() -> None:
    """Silence Lightning's tips and the "few dataloader workers" advice we chose to ignore."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*treespec.*")
    warnings.filterwarnings("ignore", message=r".*number of training batches.*")
    warnings.filterwarnings("ignore", message=r".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=r".*predict_dataloader.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    # Under DDP every rank validates the whole validation split (it is not sharded), so val_loss
    # needs no sync; the epoch train_loss in the logs is rank 0's share of the batches.
    warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")


def lightning_trainer(describe: str, **kwargs: Any) -> pl.Trainer:
    """``pl.Trainer(**kwargs)``, quietly; a configuration Lightning refuses is a one-line ``ConfigError``.

    ``describe`` names the settings in the message (``accelerator='gpu' devices=1 ...``).
    """
    quiet_lightning()
    try:
        return pl.Trainer(**kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # Lightning's MisconfigurationException, ValueError, RuntimeError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{describe} cannot run here: {first}") from None


def log_version() -> str:
    """A log folder no other Trainer uses: ``<YYYYmmdd-HHMMSS-micros>-<pid>-<random>``, sorts by start."""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}-{os.getpid()}-{secrets.token_hex(3)}"


def interruptible(call: Callable[..., T], trainer: pl.Trainer, /, *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` (e.g. ``trainer.fit``), with Ctrl-C kept a ``KeyboardInterrupt``.

    Lightning turns a ``KeyboardInterrupt`` inside ``fit`` / ``predict`` into
    ``sys.exit(1)`` after a graceful shutdown, and leaves SIGINT ignored. Here
    that exit becomes ``KeyboardInterrupt`` again (the CLI prints
    "interrupted" and exits 130) and the previous SIGINT handler is restored.
    """
    in_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        return call(*args, **kwargs)
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if in_main and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)


def make_trainer(
    settings: TrainerSettings,
    out_dir: Path | None,
    *,
    name: str,
    monitor: str = "val_loss",
    has_validation: bool = True,
    version: str | None = None,
    use_distributed_sampler: bool = True,
) -> pl.Trainer:
    """A Trainer with early stopping on ``monitor``, checkpoints and CSV + TensorBoard logs.

    Logs go to ``<out_dir>/logs/<name>/<version>/``; ``version`` defaults to a
    fresh :func:`log_version`. ``use_distributed_sampler=False`` keeps the
    loaders as given under DDP (the caller shards the batches itself).
    """
    quiet_lightning()
    callbacks: list[pl.Callback] = []
    loggers: list | bool = False
    if has_validation and settings.patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, patience=settings.patience, mode="min",
                                       min_delta=settings.min_delta))
    if out_dir is not None:
        ckpt_dir = Path(out_dir) / "checkpoints" / name
        callbacks.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename="best",
                monitor=monitor if has_validation else None,
                save_top_k=1,
            )
        )
        # last.ckpt after every epoch: save_last=True only writes it when "best" improves,
        # so a resume would repeat the epochs after the best one.
        callbacks.append(
            ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                            enable_version_counter=False)
        )
        version = version or log_version()
        loggers = [
            CSVLogger(Path(out_dir) / "logs", name=name, version=version),
            TensorBoardLogger(Path(out_dir) / "logs", name=name, version=version, default_hp_metric=False),
        ]
    return pl.Trainer(
        max_epochs=settings.max_epochs,
        accelerator=settings.accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=settings.strategy,
        callbacks=callbacks,
        logger=loggers,
        enable_checkpointing=out_dir is not None,
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        deterministic="warn" if settings.deterministic else False,
        limit_train_batches=settings.limit_train_batches,
        precision=settings.precision,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        use_distributed_sampler=use_distributed_sampler,
    )
