"""``CANDataModule``: splits of a dataset as lazily-built window-graph batches.

The data module holds each split as columns (``Frames``) plus window start
rows; a batch of window graphs is built only when a loader asks for it, so
memory stays at the size of the columns however many windows there are. A
training-pool split read more than once (every epoch, every detector) is
built once and gathered from (:meth:`CANDataModule.graph_store`), within a
bounded number of windows.

Splits are by file and by time, never by random window
(:mod:`fusioncore.data.splits` says how and what is guaranteed):

* ``train`` / ``fusion`` / ``val``: the training files are cut in time by the
  split policy (default ``attack-aware``: when the training files hold
  attacks, fusion and validation get attack windows too; ``contiguous``: three
  consecutive blocks of every file, 70 / 15 / 15 % of its rows), with purge
  gaps at every cut. Detectors train on ``train``; fusions fit on ``fusion``
  (outputs of detectors that never saw those windows: fitting a fusion on
  in-sample outputs teaches it to trust whichever detector overfits most);
  ``val`` serves early stopping and decision thresholds. A dataset's
  ``validation`` files go wholly to ``val``; files of a ``fusion_attacks``
  type wholly to ``fusion`` and ``val``.
* each ``test_*`` folder of the dataset is its own scenario.

Bad rows are skipped and counted by default (``errors="skip"``); what every
file lost is in :attr:`CANDataModule.reads`. The ID vocabulary and the
feature normaliser are fitted on benign frames of the training block only.

Capture-relative adaptation (``adapter``, :mod:`fusioncore.adapt`) adds one
thing to every split: the windows of each capture's reference segment (its
first ``warmup_s`` seconds), flagged in :attr:`SplitWindows.reference`. They
are never trained on, scored in a metric or thresholded; they supply each
capture's profile and score statistics. :mod:`fusioncore.adapt.splits` does
the work; this module only routes its arrays.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence

import attrs
import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from fusioncore.adapt import splits as adapt_splits
from fusioncore.adapt.base import Adapter, NoAdapter
from fusioncore.adapt.reference import ReferenceTable
from fusioncore.contracts import DatasetFiles, FormatReader, GraphSchema
from fusioncore.data.column_cache import release_pages
from fusioncore.data.frames import ATTACK_TYPES, Frames
from fusioncore.data.graph_store import GraphStore
from fusioncore.data.graphs import FeatureNormalizer, WindowGraphBuilder
from fusioncore.data.loading import FileRead, LoadedFiles, load_files
from fusioncore.data.sampling import EpochBudgetSampler, spread_subset
from fusioncore.data.split_windows import BuildBatch, SplitWindows, file_shares, split_time_blocks
from fusioncore.data.splits import SplitPolicy, SplitSummary, TimeSplit, plan_splits, summarize_splits
from fusioncore.data.vocab import IdVocabulary
from fusioncore.data.windows import WindowSpec, window_labels
from fusioncore.errors import ConfigError

__all__ = ["CANDataModule", "SplitWindows", "split_time_blocks"]


class CANDataModule(pl.LightningDataModule):
    """Train / val / test-scenario loaders over one resolved dataset.

    ``policy`` (``"attack-aware"`` or ``"contiguous"``), ``shares``, ``purge``
    (window lengths of frames between two splits at every cut, default 1) and
    ``blocks`` (time blocks per training file for the attack-aware policy,
    default 20) choose the split; see :mod:`fusioncore.data.splits`.
    ``errors="skip"`` (default) drops and counts bad rows, ``"raise"`` stops
    at the first one.
    """

    def __init__(
        self,
        files: DatasetFiles,
        *,
        window: WindowSpec | None = None,
        shares: Sequence[float] = (0.7, 0.15, 0.15),
        fusion_attacks: Sequence[str] = (),
        policy: str = "attack-aware",
        purge: int = 1,
        blocks: int = 20,
        batch_size: int = 256,
        readers: Sequence[FormatReader] | None = None,
        errors: str = "skip",
        num_workers: int = 0,
        progress: bool = True,
        adapter: Adapter | None = None,
        graph_cache_windows: int = 20_000,
    ) -> None:
        super().__init__()
        self.adapter = adapter if adapter is not None else NoAdapter(warmup_s=0.0)
        self.files = files
        self.window = window or WindowSpec()
        self.shares = tuple(float(x) for x in shares)
        if len(self.shares) != 3:
            raise ConfigError("shares must be (detector, fusion, val) fractions")
        self.split_policy = SplitPolicy(policy, self.shares, purge, blocks)
        self.fusion_attacks = tuple(fusion_attacks)
        unknown = [a for a in self.fusion_attacks if a not in ATTACK_TYPES[1:]]
        if unknown:
            known = ", ".join(ATTACK_TYPES[1:])
            raise ConfigError(f"split.fusion_attacks: unknown attack type(s) {unknown}; known: {known}")
        self.batch_size = batch_size
        self.readers = readers
        self.errors = errors
        self.num_workers = num_workers
        self.graph_cache_windows = int(graph_cache_windows)
        self._stores: dict[str, GraphStore] = {}
        self._store_of: dict[str, tuple[SplitWindows, WindowGraphBuilder]] = {}
        self._built: dict[str, tuple[SplitWindows, int]] = {}  #: windows built batch by batch, per split
        self.progress = progress
        self.splits: dict[str, SplitWindows] = {}
        self.split_plan: TimeSplit | None = None
        self._derived: set[str] = set()
        self.vocab: IdVocabulary | None = None
        self.builder: WindowGraphBuilder | None = None
        #: one record per file read: records, frames, skipped rows per reason and their first lines
        self.reads: list[FileRead] = []
        #: per split, per capture: what its reference segment held (fusioncore.adapt.splits)
        self.references: dict[str, dict[str, adapt_splits.CaptureReference]] = {}

    @property
    def skipped_rows(self) -> int:
        return sum(r.skipped for r in self.reads)

    @property
    def skipped_reasons(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for r in self.reads:
            for reason, n in r.skipped_reasons.items():
                total[reason] = total.get(reason, 0) + n
        return total

    def data_report(self) -> dict:
        """What report.json can show about the input: skipped rows per file and reason, notes,
        test files dropped as duplicates, and the split table."""
        return {
            "skipped_rows": self.skipped_rows,
            "skipped_reasons": self.skipped_reasons,
            "files": [r.to_json() for r in self.reads if r.skipped or r.notes],
            "dropped_tests": {k: [str(p) for p in v] for k, v in self.files.dropped_tests.items()},
            "split_policy": attrs.asdict(self.split_policy),
            "purged_windows": self.split_plan.purged if self.split_plan else 0,
            "splits": self.split_summary().to_json() if self.splits else {},
        }

    def split_summary(self) -> SplitSummary:
        """Windows and attack windows per split and attack type (test scenarios included)."""
        return summarize_splits({name: split for name, split in self.splits.items()})

    # -- setup ---------------------------------------------------------------
    def _load(self, paths) -> LoadedFiles:
        loaded = load_files(paths, readers=self.readers, errors=self.errors, progress=self.progress)
        self.reads.extend(loaded.reads)
        return loaded

    def _windows(self, name: str, loaded: LoadedFiles, starts: np.ndarray,
                 reference: np.ndarray | None = None, table: ReferenceTable | None = None) -> SplitWindows:
        labels, types = window_labels(loaded.frames, starts, self.window.size)
        return SplitWindows(name, loaded.frames, starts, labels, types, loaded.hashes,
                            reference=reference, table=table)

    def _table(self, frames: Frames) -> ReferenceTable | None:
        """The per-capture reference of these frames' captures (adapters with profiles only)."""
        if not self.adapter.representation.relative:
            return None
        return self.adapter.reference_table(adapt_splits.fit_profiles(self.adapter, frames))

    def _run_shares(self, frames: Frames) -> np.ndarray | None:
        return file_shares(frames, self.shares, self.fusion_attacks, self.files.validation)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        pool = self._load([*self.files.train, *self.files.validation])
        run_shares = self._run_shares(pool.frames)
        plan = plan_splits(pool.frames, self.window, self.split_policy, run_shares=run_shares)
        self.split_plan = plan
        release_pages(pool.frames._columns().values())
        names = ("train", "fusion", "val")
        if self.adapter.uses_reference:
            # reference windows leave every block and join each one, flagged (fusioncore.adapt.splits)
            pool_table = self._table(pool.frames)
            blocks = adapt_splits.training_windows(pool.frames, [plan.starts[n] for n in names],
                                                   self.window, self.adapter)
            self.splits = {name: self._windows(name, pool, starts, ref, pool_table)
                           for name, (starts, ref) in zip(names, blocks)}
        else:
            self.splits = {
                name: SplitWindows(name, pool.frames, plan.starts[name], plan.labels[name],
                                   plan.attack_types[name], pool.hashes)
                for name in names
            }
        self.references["training"] = adapt_splits.capture_references(
            pool.frames, self.window, self.adapter.warmup_s)
        train = self.splits["train"]
        # Vocabulary and normaliser see only benign frames of the training block.
        in_train = np.zeros(len(train.frames), bool)
        for lo in range(0, len(train.starts), 1 << 16):  # bounded temporaries on large pools
            in_train[(train.starts[lo:lo + (1 << 16), None] + np.arange(self.window.size)).ravel()] = True
        self.vocab = IdVocabulary.fit(train.frames, benign_only=True, rows=in_train)
        self.release_pages()
        builder = WindowGraphBuilder(self.vocab, self.window, representation=self.adapter.representation)
        benign = train.starts[(train.labels == 0) & train.scored]
        fit_on = builder.with_reference(train.table)
        self.builder = builder.with_normalizer(FeatureNormalizer.fit(fit_on, train.frames, benign))
        for scenario, paths in self.files.tests.items():
            loaded = self._load(paths)
            starts, ref = adapt_splits.test_windows(loaded.frames, self.window, self.adapter)
            self.splits[scenario] = self._windows(scenario, loaded, starts, ref, self._table(loaded.frames))
            self.references[scenario] = adapt_splits.capture_references(
                loaded.frames, self.window, self.adapter.warmup_s)
            self.release_pages()

    def release_pages(self) -> None:
        """Drop the resident pages of memory-mapped split columns (see fusioncore.data.column_cache).

        Cheap to call and safe at any time: pages are mapped back in from the
        page cache on the next touch. Stages call it after they are done with
        a split for a while, so peak memory follows one split, not all of them.
        """
        for split in self.splits.values():
            release_pages(split.frames._columns().values())

    # -- views -----------------------------------------------------------------
    @property
    def schema(self) -> GraphSchema:
        self._require_setup()
        return self.builder.schema

    @property
    def test_scenarios(self) -> list[str]:
        base = ("train", "fusion", "val")
        return [name for name in self.splits if name not in base and name not in self._derived]

    def add_split(self, split: SplitWindows) -> None:
        """Register a split derived from the training pool (a fold, injected windows) under its name.

        It gets loaders and a fingerprint like any other split but is never a
        test scenario; the graph builder (vocabulary, normaliser) stays the one
        fitted on the training block.
        """
        self._require_setup()
        if split.name in self.splits and split.name not in self._derived:
            raise ConfigError(f"split {split.name!r} already exists and is not a derived split")
        self.splits[split.name] = split
        self._derived.add(split.name)

    def _require_setup(self) -> None:
        if self.builder is None:
            raise RuntimeError("call setup() first")

    def fingerprint(self, split: str) -> str:
        """Data identity of a split: file hashes + window parameters + vocabulary + split."""
        self._require_setup()
        s = self.splits[split]
        payload = {
            "files": list(s.file_hashes),
            "window": attrs.asdict(self.window),
            "shares": list(self.shares),
            "fusion_attacks": list(self.fusion_attacks),
            "policy": [self.split_policy.name, self.split_policy.purge, self.split_policy.blocks],
            "validation_files": [str(p) for p in self.files.validation],
            "errors": self.errors,
            # vocabulary, normaliser, window spec, representation, the split's capture profiles
            "builder": self.builder.with_reference(s.table).fingerprint(),
            "adapter": self.adapter.fingerprint(),
            "windows": hashlib.sha256(s.starts.tobytes() + s.reference.tobytes()).hexdigest(),
            "split": split,
            "n_windows": len(s),
        }
        if s.tag:  # derived splits: the recipe and the exact windows
            payload["tag"] = s.tag
            payload["starts"] = hashlib.sha256(np.ascontiguousarray(s.starts, np.int64).tobytes()).hexdigest()
            if s.frames is not self.splits["train"].frames:  # frames made in memory (injection)
                payload["frames"] = s.frames.fingerprint()
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def loader(
        self,
        split: str,
        *,
        benign_only: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        windows_per_epoch: int | None = None,
        max_windows: int | None = None,
        with_reference: bool = True,
    ) -> DataLoader:
        """Batches of window graphs of ``split``, built when the loader yields them.

        ``with_reference=False`` leaves out reference windows (training: they
        supply score statistics only, fusioncore.adapt).

        ``windows_per_epoch`` (with ``shuffle``): a split holding more windows
        gives each epoch that many, drawn afresh from all of them
        (:class:`~fusioncore.data.sampling.EpochBudgetSampler`); a smaller one
        is shuffled whole, as without a budget. ``max_windows``: at most that
        many windows, a fixed subset spread evenly over the split.
        """
        self._require_setup()
        data = self.splits[split]
        rows = np.arange(len(data), dtype=np.int64)  # this loader's windows as rows of the whole split
        if not with_reference:
            rows, data = rows[data.scored], data.subset(data.scored)
        if benign_only:
            rows, data = rows[data.labels == 0], data.subset(data.labels == 0)
        if max_windows is not None:
            keep = spread_subset(len(data), max_windows)
            rows, data = rows[keep], data.subset(keep)
        generator = sampler = None
        if shuffle and windows_per_epoch is not None and len(data) > windows_per_epoch:
            sampler, shuffle = EpochBudgetSampler(len(data), windows_per_epoch, seed), False
        elif shuffle:
            import torch

            generator = torch.Generator().manual_seed(seed)
        store = None if self.num_workers else functools.partial(self._stored_graphs, split)
        return DataLoader(
            range(len(data)),
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            generator=generator,
            collate_fn=BuildBatch(self.builder, data, rows, store),
            num_workers=self.num_workers,
        )

    def graph_store(self, split: str, build: bool = True) -> GraphStore | None:
        """The graphs of every window of ``split`` built once (:mod:`fusioncore.data.graph_store`).

        Training reads its splits every epoch and each detector scores them, so
        loaders (in this process: ``num_workers=0``) gather batches from this
        store once they have built a split's worth of windows. Kept for the training pool's splits (a test
        scenario is read once per detector, and memory follows one scenario at
        a time) while all stores together hold at most ``graph_cache_windows``
        windows (0: never); ``None`` when there is none (``build=False``: none
        built yet), and the loader builds batch by batch as before.
        :meth:`release_graphs` drops them.
        """
        data = self.splits[split]
        made_from = self._store_of.get(split)
        if made_from is not None and made_from[0] is data and made_from[1] is self.builder:
            return self._stores[split]
        if not build:
            return None
        self.release_graphs(split)
        held = sum(len(s) for s in self._stores.values())
        if split in self.files.tests or held + len(data) > self.graph_cache_windows:
            return None
        builder = self.builder if data.table is None else self.builder.with_reference(data.table)
        self._stores[split] = GraphStore(builder, data.frames, data.starts)
        self._store_of[split] = (data, self.builder)
        return self._stores[split]

    def _stored_graphs(self, split: str, windows: int) -> GraphStore | None:
        """The split's store for a batch of ``windows``; built once the split's loaders have built
        as many windows as it holds (a second pass is coming: an epoch, a detector), so a split
        read once costs nothing extra."""
        stored = self.graph_store(split, build=False)
        if stored is not None:
            return stored
        data = self.splits[split]
        seen, built = self._built.get(split, (None, 0))
        built = (built if seen is data else 0) + windows
        self._built[split] = (data, built)
        return self.graph_store(split) if built > len(data) else None

    def release_graphs(self, split: str | None = None) -> None:
        """Drop the stored graphs of ``split`` (all splits: ``None``)."""
        for name in [split] if split is not None else list(self._stores):
            self._stores.pop(name, None)
            self._store_of.pop(name, None)
            self._built.pop(name, None)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True, with_reference=False)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", with_reference=False)
