"""Scoring windows with a trained run: graphs -> detectors -> calibration -> state -> fusion -> verdict.

:class:`ScoringSystem` is what ``fusioncore detect`` runs on every batch of
windows, built from a trained run's :class:`~fusioncore.pipeline.bundle.RunBundle`
(the one reader of what ``fusioncore run`` saves). It holds the run's own objects -- the
:class:`~fusioncore.data.graphs.WindowGraphBuilder` (vocabulary and feature
normaliser), each detector's checkpoint, the Platt calibrators, the state
encoder, the fusion and the validation thresholds -- and :func:`fusion_data`
/ :func:`checked_fuse` are the calibrate -> encode -> fuse steps the pipeline
itself uses, so a window scores the same in training, in batch and in a
stream. Every step works on a whole batch of windows at once.

Besides the scores, each window gets the CAN IDs that most explain it:
IDs missing from the reference (the mark of fuzzing and flooding), then IDs
whose inter-arrival time is furthest from their reference period (spoofing,
suppression), read from the graph's own node features (``unknown_id`` and
``iat_vs_period``, or ``period_ratio`` for profile-relative graphs).

A run that adapts to each capture (:mod:`fusioncore.adapt`) needs that
capture's reference first: :meth:`ScoringSystem.adapted_to` learns every
capture's profile and score statistics from its reference segment (a stream
does it after its warm-up), and :meth:`ScoringSystem.score` then standardises
every score as the run did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from fusioncore.adapt.capture import CaptureStates, SavedAdaptation, fit_capture_states, normalise_output
from fusioncore.calibration import PlattScaler
from fusioncore.contracts import Detector, DetectorOutput, FusionData, FusionStrategy, StateEncoder
from fusioncore.data.frames import Frames
from fusioncore.data.graph_features import WindowGraphs
from fusioncore.data.graphs import WindowGraphBuilder
from fusioncore.data.windows import validate_starts
from fusioncore.errors import ConfigError, PluginError
from fusioncore.pipeline.concurrent import usable_cores

if TYPE_CHECKING:
    from fusioncore.plugins import Plugins

__all__ = ["ScoringSystem", "WindowVerdicts", "checked_fuse", "fusion_data"]

#: node features the explanation reads: (unknown, off-period, count), per representation
_EXPLAIN = (("unknown_id", "iat_vs_period", "count_share"), ("unknown_id", "period_ratio", "count_share"))
#: |log1p(interval ms) - log1p(period ms)| below this is ordinary jitter, not worth naming
_MIN_PERIOD_DEVIATION = 0.4
#: Batches smaller than this run the detectors one after the other: handing one window to a
#: worker thread costs more than it saves (measured: p50 latency at batch 1 rose from 7.8 to
#: 10.7 ms with two workers, while a 64-window batch scored 1.45x faster).
_PARALLEL_MIN_WINDOWS = 16


def _predict(model: Detector, batch) -> DetectorOutput:
    # inference mode is thread-local: a worker thread has to enter it itself
    with torch.inference_mode():
        return model.predict_step(batch, 0)


def fusion_data(
    outputs: Mapping[str, DetectorOutput],
    detectors: Sequence[str],
    calibrators: Mapping[str, PlattScaler],
    encoder: StateEncoder,
    labels: np.ndarray | None = None,
) -> FusionData:
    """What a fusion sees for these windows: calibrated scores, encoded states, labels (-1: unknown)."""
    scores = np.stack([calibrators[n](outputs[n].score) for n in detectors], 1)
    n = len(scores)
    return FusionData(
        states=encoder.encode(outputs), scores=scores,
        labels=np.full(n, -1) if labels is None else labels,
        detectors=detectors, state_names=encoder.state_names,
    )


def checked_fuse(fusion: FusionStrategy, name: str, data: FusionData) -> np.ndarray:
    """``fusion.fuse(data)`` as float32, or :class:`PluginError` for a wrong shape or non-finite values."""
    fused = np.asarray(fusion.fuse(data), dtype=np.float32)
    if fused.shape != (len(data),) or not np.isfinite(fused).all():
        raise PluginError(f"fusion {name!r} returned {fused.shape} / non-finite scores")
    return fused


def _f64(v) -> np.ndarray:
    return np.ascontiguousarray(v, dtype=np.float64)


def _f32(v) -> np.ndarray:
    return np.ascontiguousarray(v, dtype=np.float32)


def _i64(v) -> np.ndarray:
    return np.ascontiguousarray(v, dtype=np.int64)


@attrs.frozen(eq=False)
class WindowVerdicts:
    """The verdicts on N windows; per-detector arrays have one column per name in ``detectors``.

    ``scores`` are the detectors' own scores, ``calibrated`` the [0, 1] values the
    fusion combines with ``weights`` (NaN where the fusion chooses none) into
    ``fused``; ``alert`` is ``fused > threshold``. ``top_ids[i]`` lists up to k CAN
    IDs (-1 pads) behind window i, ``top_unknown`` marks those outside the
    vocabulary and ``top_deviation`` holds the others' log-ratio of interval to
    benign period (negative: faster than usual).
    """

    window_id: np.ndarray = attrs.field(converter=_i64)
    start_time: np.ndarray = attrs.field(converter=_f64)
    end_time: np.ndarray = attrs.field(converter=_f64)
    n_frames: np.ndarray = attrs.field(converter=_i64)
    detectors: tuple[str, ...] = attrs.field(converter=tuple)
    scores: np.ndarray = attrs.field(converter=_f32)
    calibrated: np.ndarray = attrs.field(converter=_f32)
    weights: np.ndarray = attrs.field(converter=_f32)
    fused: np.ndarray = attrs.field(converter=_f32)
    alert: np.ndarray = attrs.field(converter=lambda v: np.ascontiguousarray(v, dtype=bool))
    top_ids: np.ndarray = attrs.field(converter=_i64)
    top_unknown: np.ndarray = attrs.field(converter=lambda v: np.ascontiguousarray(v, dtype=bool))
    top_deviation: np.ndarray = attrs.field(converter=_f32)
    method: str = ""
    threshold: float = 0.5

    def __len__(self) -> int:
        return len(self.window_id)

    @classmethod
    def concat(cls, parts: Sequence[WindowVerdicts]) -> WindowVerdicts:
        if not parts:
            raise ValueError("nothing to concatenate")
        arrays = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
                  for f in attrs.fields(cls) if f.name not in ("detectors", "method", "threshold")}
        first = parts[0]
        return cls(**arrays, detectors=first.detectors, method=first.method, threshold=first.threshold)

    def json_rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per window (the ``--jsonl`` lines); formatting only, no scoring."""
        rows = []
        for i in range(len(self)):
            ids = [
                {"id": f"{int(c):03X}", "unknown": True} if unk
                else {"id": f"{int(c):03X}", "iat_vs_period": round(float(d), 3)}
                for c, unk, d in zip(self.top_ids[i], self.top_unknown[i], self.top_deviation[i])
                if c >= 0
            ]
            weights = self.weights[i]
            rows.append({
                "window": int(self.window_id[i]),
                "start": float(self.start_time[i]),
                "end": float(self.end_time[i]),
                "frames": int(self.n_frames[i]),
                "scores": {d: float(s) for d, s in zip(self.detectors, self.scores[i])},
                "calibrated": {d: float(s) for d, s in zip(self.detectors, self.calibrated[i])},
                "weights": None if np.isnan(weights).any()
                else {d: float(w) for d, w in zip(self.detectors, weights)},
                "fused": float(self.fused[i]),
                "method": self.method,
                "threshold": self.threshold,
                "alert": bool(self.alert[i]),
                "top_ids": ids,
            })
        return rows


@attrs.frozen(eq=False)
class ScoringSystem:
    """A trained run's objects, ready to score windows of any :class:`Frames`.

    ``method`` names what decides: a fusion of the run (default: its first) or a
    detector (its own score against its own threshold).

    ``workers`` is how many detectors score a batch at the same time, each on its
    own thread (torch releases the GIL inside its kernels); ``0`` (default) is one
    per detector, as many as the usable CPU cores allow at the current torch
    thread count, ``1`` runs them one after the other. Batches under 16 windows
    always run one after the other. The detectors share nothing, so every worker
    count gives the same scores.
    """

    builder: WindowGraphBuilder
    detectors: Mapping[str, Detector]
    calibrators: Mapping[str, PlattScaler]
    encoder: StateEncoder | None
    fusion: FusionStrategy | None
    method: str
    threshold: float
    batch_size: int = 256
    top_k: int = 3
    workers: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    adaptation: SavedAdaptation | None = None  #: the run's adapter and score scalers
    captures: CaptureStates | None = None  #: what adapted_to learned of the captures being scored

    @property
    def needs_reference(self) -> bool:
        """Whether captures must be adapted to (a reference segment) before they are scored."""
        return self.adaptation is not None and self.adaptation.uses_reference

    @property
    def warmup_s(self) -> float:
        return self.adaptation.adapter.warmup_s if self.adaptation is not None else 0.0

    @property
    def window_size(self) -> int:
        return self.builder.spec.size

    @property
    def stride(self) -> int:
        return self.builder.spec.stride

    @classmethod
    def load(cls, run_dir: Path, *, method: str | None = None, plugins: Plugins | None = None,
             batch_size: int = 256, adapt: str | None = None, warmup_s: float | None = None) -> ScoringSystem:
        """The scoring system of the run in ``run_dir``, read through its :class:`RunBundle`.

        ``adapt`` must name the run's adapter if given; ``warmup_s`` changes its warm-up.
        """
        from fusioncore.pipeline.bundle import RunBundle

        return RunBundle.load(run_dir, plugins=plugins).scoring_system(
            method, batch_size=batch_size, adapt=adapt, warmup_s=warmup_s)

    # ------------------------------------------------------- adaptation
    def adapted_to(self, frames: Frames, *, profile=None, default: str | None = None) -> ScoringSystem:
        """This system with every capture of ``frames`` adapted to from its reference segment.

        ``profile`` (a :class:`~fusioncore.adapt.profile.VehicleProfile`) replaces the
        captures' own; ``default`` names the capture that serves unlisted sources (a stream).
        """
        if not self.needs_reference:
            return self
        fused = self.fusion is not None and self.method in self.adaptation.fused_scalers
        states = fit_capture_states(
            self.adaptation, frames, self.builder.spec, outputs=self._raw_outputs,
            fuse=self._fuse if fused else None, profile=profile, default=default,
        )
        return attrs.evolve(self, captures=states)

    def _builder(self) -> WindowGraphBuilder:
        table = self.captures.table if self.captures is not None else None
        return self.builder if table is None else self.builder.with_reference(table)

    def _raw_outputs(self, frames: Frames, starts: np.ndarray, table) -> dict[str, DetectorOutput]:
        builder = self.builder if table is None else self.builder.with_reference(table)
        return self._run_detectors(builder, frames, starts, starts)[0]

    def _fuse(self, outputs: Mapping[str, DetectorOutput]) -> dict[str, np.ndarray]:
        data = fusion_data(outputs, tuple(self.detectors), self.calibrators, self.encoder)
        return {self.method: checked_fuse(self.fusion, self.method, data)}

    # ----------------------------------------------------------- scoring
    def detector_outputs(self, frames: Frames, starts: np.ndarray,
                         window_ids: np.ndarray | None = None) -> dict[str, DetectorOutput]:
        """Every detector's output on the windows at ``starts``, ``batch_size`` windows per pass."""
        starts = validate_starts(frames, starts, self.window_size)
        ids = starts if window_ids is None else _i64(window_ids)
        return self._adapted_outputs(frames, starts, ids)[0]

    def _adapted_outputs(self, frames: Frames, starts: np.ndarray, ids: np.ndarray, *, explain: bool = False
                         ) -> tuple[dict[str, DetectorOutput], tuple[np.ndarray, ...] | None]:
        """:meth:`detector_outputs` (starts validated), and with ``explain`` the windows' top IDs."""
        if self.needs_reference and self.captures is None:
            raise ConfigError(f"this run adapts to each capture ({self.adaptation.adapter.name!r}): "
                              "adapt the system to the capture's reference segment first (adapted_to)")
        outputs, explained = self._run_detectors(self._builder(), frames, starts, ids, explain=explain)
        if self.captures is None or not self.captures.detector:
            return outputs, explained
        capture = self.captures.capture_of(frames, starts)
        return {n: normalise_output(self.adaptation, n, o, *(a[capture] for a in self.captures.detector[n]))
                if n in self.captures.detector else o for n, o in outputs.items()}, explained

    def _run_detectors(self, builder: WindowGraphBuilder, frames: Frames, starts: np.ndarray,
                       ids: np.ndarray, *, explain: bool = False
                       ) -> tuple[dict[str, DetectorOutput], tuple[np.ndarray, ...] | None]:
        # The explanation reads the raw node features of the graphs the detectors saw: built once.
        parts: dict[str, list[DetectorOutput]] = {n: [] for n in self.detectors}
        explained = []
        workers = self._workers(min(len(starts), self.batch_size))
        pool = ThreadPoolExecutor(workers, thread_name_prefix="fusioncore-score") if workers > 1 else None
        size = self.batch_size
        lows = range(0, len(starts), size)

        def build(lo: int):
            return builder.build_with_graphs(frames, starts[lo:lo + size], ids[lo:lo + size])

        try:
            with torch.inference_mode():
                current = build(lows[0]) if lows else None
                for i in range(len(lows)):
                    batch, graphs = current
                    pending = None if pool is None else {
                        n: pool.submit(_predict, m, batch) for n, m in self.detectors.items()}
                    if pending is None:
                        for name, model in self.detectors.items():
                            parts[name].append(model.predict_step(batch, 0))
                    # with workers, the explanation and the next batch's graphs are built on this
                    # thread while the detectors score this batch
                    if explain:
                        explained.append(self._explain(builder, graphs))
                    current = build(lows[i + 1]) if i + 1 < len(lows) else None
                    if pending is not None:
                        for name, future in pending.items():
                            parts[name].append(future.result())
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        outputs = {n: _concat(p, self.detectors[n]) for n, p in parts.items()}
        if not explain:
            return outputs, None
        if not explained:
            return outputs, self._explain(builder, None)
        return outputs, tuple(np.concatenate(part) for part in zip(*explained))

    def _workers(self, batch_windows: int) -> int:
        """Threads that score a batch of ``batch_windows`` windows (1: on the caller's thread)."""
        if batch_windows < _PARALLEL_MIN_WINDOWS or len(self.detectors) < 2:
            return 1
        # auto: as many as the cores allow at the current torch threads per detector
        wanted = self.workers or usable_cores() // max(1, torch.get_num_threads())
        return max(1, min(wanted, len(self.detectors)))

    def score(self, frames: Frames, starts: np.ndarray, window_ids: np.ndarray | None = None
              ) -> WindowVerdicts:
        """Verdicts on the windows of ``frames`` starting at rows ``starts`` (all at once)."""
        starts = validate_starts(frames, starts, self.window_size)
        ids = starts if window_ids is None else _i64(window_ids)
        outputs, (top_ids, top_unknown, top_dev) = self._adapted_outputs(frames, starts, ids, explain=True)
        names = tuple(self.detectors)
        n, m = len(starts), len(names)
        raw = np.stack([outputs[d].score for d in names], 1).reshape(n, m)
        calibrated = np.stack([self.calibrators[d](outputs[d].score) for d in names], 1).reshape(n, m)
        weights = np.full((n, m), np.nan, np.float32)
        if self.fusion is not None and self.encoder is not None:
            fused = np.zeros(0, np.float32)
            if n:  # encoders and fusions need not accept zero rows
                data = fusion_data(outputs, names, self.calibrators, self.encoder)
                fused = checked_fuse(self.fusion, self.method, data)
                if self.captures is not None and self.method in self.captures.fused:
                    center, scale = self.captures.fused[self.method]
                    capture = self.captures.capture_of(frames, starts)
                    scaler = self.adaptation.fused_scalers[self.method]
                    fused = scaler.apply(fused, center[capture], scale[capture]).reshape(n)
                policy = self.fusion.policy(data)
                if policy is not None:
                    weights = np.asarray(policy, np.float32).reshape(n, m)
        else:  # a single detector decides on its own (uncalibrated) score, as evaluated
            col = names.index(self.method)
            fused = raw[:, col]
            weights = np.zeros((n, m), np.float32)
            weights[:, col] = 1.0
        rows = sliding_window_view(frames.timestamp, self.window_size)[starts] if n else np.zeros((0, 1))
        return WindowVerdicts(
            window_id=starts if window_ids is None else window_ids,
            start_time=rows.min(axis=1, initial=np.inf), end_time=rows.max(axis=1, initial=-np.inf),
            n_frames=np.full(n, self.window_size), detectors=names, scores=raw, calibrated=calibrated,
            weights=weights, fused=fused, alert=fused > self.threshold, top_ids=top_ids,
            top_unknown=top_unknown, top_deviation=top_dev, method=self.method, threshold=self.threshold,
        )

    def _explain(self, builder: WindowGraphBuilder, graphs: WindowGraphs | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``top_k`` CAN IDs per window of ``graphs`` (raw, as built for the detectors):
        unknown ones (most frequent first), then off-period ones."""
        n, k = (graphs.num_graphs if graphs is not None else 0), self.top_k
        ids = np.full((n, k), -1, np.int64)
        unknown = np.zeros((n, k), bool)
        deviation = np.zeros((n, k), np.float32)
        if n == 0:
            return ids, unknown, deviation
        x = graphs.x
        names = next((e for e in _EXPLAIN if set(e) <= set(builder.node_features)), None)
        if names is None:  # a representation without these columns: nothing to name
            return ids, unknown, deviation
        c_unk, c_dev, c_count = (builder.node_features.index(f) for f in names)
        unk = x[:, c_unk] > 0.5
        dev = x[:, c_dev]
        suspicion = np.where(unk, 10.0 + x[:, c_count], np.abs(dev))
        window = graphs.node_window
        named = unk | (np.abs(dev) >= _MIN_PERIOD_DEVIATION)
        order = np.lexsort((-suspicion, window))  # per window, most suspicious node first
        rank = np.arange(len(order)) - graphs.node_ptr[window[order]]
        # named nodes outrank unnamed ones, so a named node's rank is its slot
        chosen = (rank < k) & named[order]
        take, slot = order[chosen], rank[chosen]
        ids[window[take], slot] = graphs.can_id[take]
        unknown[window[take], slot] = unk[take]
        deviation[window[take], slot] = np.where(unk[take], 0.0, dev[take])
        return ids, unknown, deviation


def _concat(parts: list[DetectorOutput], model: Detector) -> DetectorOutput:
    if parts:
        return DetectorOutput.concat(parts)
    names = tuple(model.feature_names)
    return DetectorOutput(window_ids=[], score=[], features=np.zeros((0, len(names))), feature_names=names)
