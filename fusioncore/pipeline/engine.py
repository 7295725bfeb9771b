"""The Lightning ``Trainer`` the core builds for every detector.

One place decides progress bars, early stopping, checkpoints, loggers and
the accelerator, so every detector plugin trains the same way and a user's
``--accelerator`` / ``--strategy`` / ``--devices`` reach all of them.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import attrs
import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

__all__ = ["TrainerSettings", "make_trainer", "quiet_lightning"]


@attrs.frozen
class TrainerSettings:
    """Trainer options shared by all detectors (``--accelerator`` etc. on the CLI)."""

    max_epochs: int = 20
    patience: int = 3
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    progress: bool = True
    deterministic: bool = True
    limit_train_batches: int | float = 1.0
    precision: str = "32-true"


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


def make_trainer(
    settings: TrainerSettings,
    out_dir: Path | None,
    *,
    name: str,
    monitor: str = "val_loss",
    has_validation: bool = True,
) -> pl.Trainer:
    """A Trainer with early stopping on ``monitor``, checkpoints and CSV + TensorBoard logs."""
    quiet_lightning()
    callbacks: list[pl.Callback] = []
    loggers: list | bool = False
    if has_validation and settings.patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, patience=settings.patience, mode="min"))
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
        loggers = [
            CSVLogger(Path(out_dir) / "logs", name=name, version=""),
            TensorBoardLogger(Path(out_dir) / "logs", name=name, version="", default_hp_metric=False),
        ]
    return pl.Trainer(
        max_epochs=settings.max_epochs,
        accelerator=settings.accelerator,
        devices=settings.devices,
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
    )
