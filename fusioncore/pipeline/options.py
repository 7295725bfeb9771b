"""The run's own options as typed dataclasses: the non-component part of a run's config.

:mod:`fusioncore.pipeline.config` merges them with one node per registered
component into the structured config of a run; every field here is a
dotted key (``trainer.max_epochs=5``, ``split.policy=files``) checked for
name and type when the config is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from fusioncore.adapt.base import DEFAULT_ADAPTER, DEFAULT_WARMUP_S

__all__ = [
    "AdaptConf", "CrossFitConf", "DataConf", "EvalConf", "FusionSetConf", "InjectConf", "RunOptions",
    "SplitConf", "TrainerConf", "WindowConf",
]


@dataclass
class WindowConf:
    size: int = 100  #: frames per window
    stride: int = 100  #: frames between window starts


@dataclass
class SplitConf:
    """Shares of every training file, in time order (detectors / fusions / validation)."""

    detector: float = 0.7
    fusion: float = 0.15
    val: float = 0.15
    #: attack types whose training files go wholly to the fusion and validation blocks
    fusion_attacks: list[str] = field(default_factory=list)
    #: "attack-aware": time blocks whose attack windows reach every split; "contiguous": 3 row blocks
    policy: str = "attack-aware"
    purge: int = 1  #: window lengths of frames dropped at every cut between two splits
    blocks: int = 20  #: time blocks per training file (attack-aware policy)


@dataclass
class InjectConf:
    share: float = 0.5  #: injected windows per benign fusion-block window (0: off)
    kinds: list[str] = field(default_factory=lambda: ["payload", "timing", "spoof", "silence", "masquerade"])


@dataclass
class CrossFitConf:
    folds: int = 0  #: K extra trainings per detector for out-of-fold outputs (0: off)
    by: str = "time"  #: "time" (K stretches of every file) or "file" (whole captures per fold)


@dataclass
class FusionSetConf:
    """What fusions are fitted on besides the fusion block (fusioncore.pipeline.fusion_set;
    docs/fusion.md has the measurements behind these defaults)."""

    inject: InjectConf = field(default_factory=InjectConf)
    crossfit: CrossFitConf = field(default_factory=CrossFitConf)
    calibrate_on: str = "block"  #: "block" (natural windows) or "all" (block + injected + cross-fitted)


@dataclass
class TrainerConf:
    max_epochs: int = 20
    patience: int = 3
    #: smallest fall in the validation loss (nats per window for the bundled detectors) that
    #: counts as an improvement: a supervised detector that separates its validation block
    #: perfectly keeps "improving" by 1e-5 an epoch and never stops (docs/run.md)
    min_delta: float = 1e-4
    accelerator: str = "auto"
    devices: Union[int, str] = 1  # noqa: UP007 (OmegaConf reads typing.Union, not X | Y)
    strategy: str = "auto"
    num_nodes: int = 1  #: machines taking part in detector training (Lightning multi-node DDP)
    limit_train_batches: Union[int, float] = 1.0  # noqa: UP007  (int: batches, float: share)
    #: training windows per epoch, drawn afresh every epoch from the whole detector block, so an
    #: epoch costs the same on 0.5 M and 60 M frames (a block with fewer is used whole); 0: all
    windows_per_epoch: int = 10_000
    #: validation windows for early stopping: a fixed subset spread over the block; 0: all
    val_windows: int = 5_000
    #: detectors trained at once, one process each (0: as many as the cores allow at `threads`
    #: torch threads per process and the free memory holds; 1: one after another;
    #: fusioncore.pipeline.concurrent)
    jobs: int = 0
    progress: bool = True
    resume: bool = False  #: continue an interrupted training of this --out


@dataclass
class EvalConf:
    """How attack events and alarms are counted (docs/evaluation.md)."""

    event_gap_s: float = 1.0  #: attack runs closer than this (capture seconds) are one event
    fpr_levels: list[float] = field(default_factory=lambda: [1e-3, 1e-2])  #: recall at these FPRs
    #: thresholds from a false-alarm budget on validation instead of best MCC (None: best MCC)
    max_false_alarms_per_hour: float | None = None


@dataclass
class AdaptConf:
    """Capture-relative adaptation (fusioncore.adapt, docs/adaptation.md)."""

    name: str = DEFAULT_ADAPTER  #: the adapter; "none" is the zero-shot protocol
    #: every capture's first seconds: its reference segment, never scored whatever the adapter
    warmup_s: float = DEFAULT_WARMUP_S


@dataclass
class DataConf:
    #: a malformed capture row: "skip" (count it, report it) or "raise" (stop, naming the line)
    errors: str = "skip"


@dataclass
class RunOptions:
    dataset: str = "synthetic"
    data_root: str | None = None
    detectors: list[str] = field(default_factory=lambda: ["vgae", "gat"])
    fusions: list[str] = field(default_factory=lambda: ["dqn"])
    encoder_name: str = "detector-features"
    reward: str = "asymmetric"
    store: str = "diskcache"
    store_dir: str | None = None
    alarm: str = "raw"  #: alarm stage turning per-window decisions into alarms (e.g. k-of-n)
    seed: int = 0
    #: several seeds: the whole run per seed, data shared, mean +- std reported (empty: just seed)
    seeds: list[int] = field(default_factory=list)
    batch_size: int = 256
    #: torch CPU threads for training and scoring. None (default): 1, or what OMP_NUM_THREADS says
    #: where it is set; 0: torch's own choice (one per core). Window-graph batches are small, and on
    #: a 2-core machine shared with other work two threads made a training step 5-20x slower
    #: than one (docs/run.md)
    threads: int | None = None
    window: WindowConf = field(default_factory=WindowConf)
    split: SplitConf = field(default_factory=SplitConf)
    fusion_set: FusionSetConf = field(default_factory=FusionSetConf)
    trainer: TrainerConf = field(default_factory=TrainerConf)
    data: DataConf = field(default_factory=DataConf)
    eval: EvalConf = field(default_factory=EvalConf)
    adapt: AdaptConf = field(default_factory=AdaptConf)
