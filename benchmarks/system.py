"""The data and the trained system every benchmark measures against.

:func:`resolve_data` picks the real ``hcrl_sa`` (``../shared/data/can-train-and-test``)
when it is there and the generated ``synthetic`` dataset otherwise.
:func:`train_system` runs the pipeline's own steps once -- data module,
detector training (or reuse from the cache), predictions into a disk store,
calibrators, state encoder, DQN -- and keeps every piece, so each comparison
can time one stage with everything upstream of it ready.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import numpy as np
from fusioncore_diskcache import DiskCacheStore

from fusioncore.calibration import PlattScaler
from fusioncore.contracts import DatasetFiles, DetectorOutput, FusionData, FusionStrategy, StateEncoder
from fusioncore.data.datamodule import CANDataModule
from fusioncore.data.windows import WindowSpec
from fusioncore.evaluation import best_mcc_threshold
from fusioncore.pipeline.detectors import TrainedDetector, predict_split, train_or_reuse
from fusioncore.pipeline.engine import TrainerSettings
from fusioncore.plugins import get_plugins
from fusioncore.scoring import ScoringSystem

__all__ = ["DataSource", "TrainedSystem", "resolve_data", "train_system"]

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("FUSIONCORE_SHARED_DATA", REPO.parent / "shared" / "data"))
DETECTORS = ("vgae", "gat")
#: Detector training as in the ``quick`` preset: the benchmarks time inference and fusion,
#: and a detector's forward cost does not depend on how long it trained.
TRAINING = TrainerSettings(
    max_epochs=2, patience=0, accelerator="cpu", progress=False, limit_train_batches=8
)
SEED = 0


@attrs.frozen(eq=False)
class DataSource:
    """The dataset the run measures, and one attack capture of it for the per-file benchmarks."""

    name: str  #: ``hcrl_sa`` or ``synthetic``
    label: str  #: how the summary names it
    files: DatasetFiles
    capture: Path  #: a can-train-and-test CSV with attacks (ingest and scoring read it)


def resolve_data(prefer_real: bool = True) -> DataSource:
    """hcrl_sa from the shared folder when present (read in place), else synthetic (generated)."""
    registry = get_plugins().registry
    real_root = REAL_DATA / "can-train-and-test"
    if prefer_real and (real_root / "hcrl_sa").is_dir():
        files = registry.get("dataset", "hcrl_sa").resolve(real_root)
        label = "hcrl_sa (real captures from ../shared/data/can-train-and-test)"
        name = "hcrl_sa"
    else:
        from fusioncore.paths import data_root

        files = registry.get("dataset", "synthetic").resolve(data_root())
        label, name = "synthetic (generated, seed 0)", "synthetic"
    # the largest test capture: the most frames per read, attacks included
    capture = max((p for paths in files.tests.values() for p in paths), key=lambda p: p.stat().st_size)
    return DataSource(name=name, label=label, files=files, capture=capture)


@attrs.frozen(eq=False)
class TrainedSystem:
    """Everything a run has after fitting its fusion, kept in memory."""

    dm: CANDataModule
    detectors: dict[str, TrainedDetector]
    store: DiskCacheStore
    fusion_data: FusionData
    calibrators: dict[str, PlattScaler]
    encoder: StateEncoder
    fusion: FusionStrategy
    scorer: ScoringSystem  #: what ``fusioncore detect`` scores with, built from the objects above


def fusion_data(
    outputs: dict[str, DetectorOutput], labels: np.ndarray, calibrators: dict[str, PlattScaler],
    encoder: StateEncoder,
) -> FusionData:
    """The DQN's input for one split, exactly as ``run_pipeline`` builds it."""
    return FusionData(
        states=encoder.encode(outputs),
        scores=np.stack([calibrators[n](outputs[n].score) for n in DETECTORS], axis=1),
        labels=labels,
        detectors=DETECTORS,
        state_names=encoder.state_names,
    )


def train_system(source: DataSource, store_dir: Path, training: TrainerSettings = TRAINING) -> TrainedSystem:
    """Train (or reuse) vgae + gat, store their fusion / val outputs, fit calibrators, encoder, DQN."""
    registry = get_plugins().registry
    dm = CANDataModule(
        source.files, window=WindowSpec(100, 100), batch_size=128, progress=False,
        readers=tuple(registry.get("format", n) for n in registry.names("format")),
    )
    dm.setup()
    store = DiskCacheStore(store_dir)
    trained: dict[str, TrainedDetector] = {}
    outputs: dict[str, dict[str, DetectorOutput]] = {"fusion": {}, "val": {}}
    for name in DETECTORS:
        trained[name] = train_or_reuse(
            name, registry.get("detector", name), {}, dm, training, out_dir=None, seed=SEED
        )
        for split in outputs:
            outputs[split][name] = predict_split(trained[name], dm, split, store, TRAINING).output
    labels = {s: dm.splits[s].labels for s in outputs}
    calibrators = {n: PlattScaler.fit(outputs["fusion"][n].score, labels["fusion"]) for n in DETECTORS}
    encoder = registry.get("state_encoder", "detector-features")()
    encoder.fit(outputs["fusion"])
    data = {s: fusion_data(outputs[s], labels[s], calibrators, encoder) for s in outputs}
    fusion = registry.get("fusion", "dqn")(epochs=3, patience=None, seed=SEED)
    fusion.fit(data["fusion"], data["val"])
    scorer = ScoringSystem(
        builder=dm.builder,
        detectors={n: trained[n].model for n in DETECTORS},
        calibrators=calibrators,
        encoder=encoder,
        fusion=fusion,
        method="dqn",
        # the decision threshold a run picks: best validation MCC of the fused score
        threshold=best_mcc_threshold(labels["val"], fusion.fuse(data["val"])),
    )
    return TrainedSystem(dm, trained, store, data["fusion"], calibrators, encoder, fusion, scorer)
