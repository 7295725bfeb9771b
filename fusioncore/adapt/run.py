"""Adaptation inside a run: the steps ``run_pipeline`` calls, in one object.

:class:`RunAdaptation` holds a run's adapter and data module and does what
the protocol asks between the stages of a run, so the pipeline itself only
calls it:

1. :meth:`~RunAdaptation.detector_outputs` -- standardise every detector's
   score (and feature columns) per capture against that capture's reference
   windows; the scalers are fitted on the fusion-fit split's captures;
2. :meth:`~RunAdaptation.fused` -- the same for each fusion's fused score;
3. :meth:`~RunAdaptation.scored` -- the mask of windows that count (never
   reference windows) for fitting fusions, thresholds and every metric;
4. :meth:`~RunAdaptation.report` -- the protocol header and the per-capture
   metrics of the report;
5. :meth:`~RunAdaptation.to_json` -- what ``detect`` needs to adapt a new
   capture (saved as ``model/adapter.json``).

With the ``none`` adapter steps 1 and 2 return their input unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from fusioncore.adapt.base import Adapter
from fusioncore.adapt.scores import CaptureScaler, output_columns, with_standardised_columns
from fusioncore.contracts import DetectorOutput, FusionData
from fusioncore.data.datamodule import CANDataModule, SplitWindows
from fusioncore.evaluation import binary_metrics

__all__ = ["RunAdaptation", "subset_fusion_data", "subset_output"]

#: Per-capture metrics the report keeps (the full set is per scenario).
_CAPTURE_METRICS = ("mcc", "auroc", "recall", "precision", "tp", "fp", "tn", "fn",
                    "n_windows", "n_attack_windows")


def subset_output(output: DetectorOutput, mask: np.ndarray) -> DetectorOutput:
    return DetectorOutput(window_ids=output.window_ids[mask], score=output.score[mask],
                          features=output.features[mask], feature_names=output.feature_names)


def subset_fusion_data(data: FusionData, mask: np.ndarray) -> FusionData:
    return attrs.evolve(data, states=data.states[mask], scores=data.scores[mask], labels=data.labels[mask])


class RunAdaptation:
    """A run's adapter applied to its splits (see the module docs)."""

    def __init__(self, adapter: Adapter, dm: CANDataModule) -> None:
        self.adapter = adapter
        self.dm = dm
        self.detector_scalers: dict[str, CaptureScaler] = {}
        self.fused_scalers: dict[str, CaptureScaler] = {}
        #: (scaler kind, name) -> capture name -> (center, scale) on the fit split, for splits
        #: without reference windows of their own (injected copies of fit-split windows)
        self._fit_stats: dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}

    def _split(self, split: str) -> SplitWindows:
        return self.dm.splits[split]

    def _standardise(self, kind: str, name: str, scaler: CaptureScaler, values: np.ndarray,
                     s: SplitWindows, fit: bool) -> np.ndarray:
        """``values`` standardised per capture; a split without reference windows borrows the fit
        split's statistics of the same captures (their profiles are the fit split's too)."""
        if fit or s.reference.any():
            center, scale, _ = scaler.statistics(values, s.capture, s.reference, len(s.frames.sources))
            if fit:
                self._fit_stats[(kind, name)] = {
                    n: (center[i], scale[i]) for i, n in enumerate(s.frames.sources)}
            return scaler.apply(values, center[s.capture], scale[s.capture])
        stats = self._fit_stats.get((kind, name), {})
        fallback = (scaler.fallback_center, scaler.fallback_scale)
        rows = [stats.get(n, fallback) for n in s.frames.sources]
        center = np.stack([r[0] for r in rows])[s.capture]
        scale = np.stack([r[1] for r in rows])[s.capture]
        return scaler.apply(values, center, scale)

    def scored(self, split: str) -> np.ndarray:
        """Windows of ``split`` that count (fit, threshold, metrics): never a reference window."""
        return self._split(split).scored

    # ---------------------------------------------------------- detectors
    def standardise(
        self, outputs: Mapping[str, Mapping[str, DetectorOutput]], fit_split: str
    ) -> dict[str, dict[str, DetectorOutput]]:
        """Every split's outputs standardised per capture; scalers fitted on ``fit_split`` first."""
        order = sorted(outputs, key=lambda s: s != fit_split)
        done = {s: self.detector_outputs(outputs[s], s, fit=s == fit_split) for s in order}
        return {s: done[s] for s in outputs}


    def detector_outputs(
        self, outputs: Mapping[str, DetectorOutput], split: str, *, fit: bool = False
    ) -> dict[str, DetectorOutput]:
        """``outputs`` with scores (and features) standardised per capture of ``split``.

        ``fit`` first learns each detector's scaler on this split (the fusion-fit split).
        """
        if not self.adapter.normalizes_scores:
            return dict(outputs)
        s = self._split(split)
        out = {}
        for name, o in outputs.items():
            cols = output_columns(o, features=getattr(self.adapter, "features", False))
            if fit:
                self.detector_scalers[name] = self.adapter.fit_scaler(cols, s.capture, s.reference)
            z = self._standardise("detector", name, self.detector_scalers[name], cols, s, fit)
            out[name] = with_standardised_columns(o, z)
        return out

    # ------------------------------------------------------------- fusions
    def fused(self, method: str, scores: np.ndarray, split: str, *, fit: bool = False) -> np.ndarray:
        """A fusion's scores on ``split`` standardised per capture (``fit`` on the fit split)."""
        if not (self.adapter.normalizes_scores and getattr(self.adapter, "fused", True)):
            return scores
        s = self._split(split)
        if fit:
            self.fused_scalers[method] = self.adapter.fit_scaler(scores, s.capture, s.reference)
        return self._standardise("fused", method, self.fused_scalers[method], scores, s, fit).reshape(-1)

    # -------------------------------------------------------------- report
    def protocol(self) -> dict[str, Any]:
        a = self.adapter
        contaminated = {
            scenario: [name for name, r in refs.items() if r.attack_frames]
            for scenario, refs in self.dm.references.items()
        }
        # score statistics of these fall back to the training captures' pooled ones
        windowless = {
            scenario: [name for name, r in refs.items() if r.windows == 0]
            for scenario, refs in self.dm.references.items()
        } if a.normalizes_scores else {}
        return {
            "adapter": a.name, "warmup_s": a.warmup_s, "params": a.params(),
            "representation": a.representation.name, "score_normalisation": a.normalizes_scores,
            "reference": f"first {a.warmup_s:g} s of every capture; never scored or counted in a metric",
            "references_with_attacks": {k: v for k, v in contaminated.items() if v},
            "references_without_windows": {k: v for k, v in windowless.items() if v},
        }

    def captures(
        self, scenario: str, methods: Mapping[str, np.ndarray], thresholds: Mapping[str, float]
    ) -> dict[str, Any]:
        """Per capture file of a scenario: its reference segment and each method's metrics.

        ``methods`` hold scores of the scenario's scored windows only (as evaluated).
        """
        s = self._split(scenario)
        keep = s.scored
        capture, labels = s.capture[keep], s.labels[keep]
        refs = self.dm.references.get(scenario, {})
        out: dict[str, Any] = {}
        for c in np.unique(capture).tolist():
            name = s.frames.sources[c]
            rows = capture == c
            out[name] = {
                "reference": refs[name].to_json() if name in refs else None,
                "methods": {
                    m: {k: v for k, v in binary_metrics(labels[rows], sc[rows], thresholds[m]).items()
                        if k in _CAPTURE_METRICS}
                    for m, sc in methods.items()
                },
            }
        return out

    # --------------------------------------------------------- persistence
    def to_json(self) -> dict[str, Any]:
        """What ``fusioncore detect`` needs to adapt a new capture (``model/adapter.json``)."""

        def scaler(c: CaptureScaler) -> dict[str, list[float]]:
            return {k: v.tolist() for k, v in c.to_arrays().items()}

        return {
            **self.adapter.config(),
            "features": bool(getattr(self.adapter, "features", False)),
            "detector_scalers": {n: scaler(c) for n, c in self.detector_scalers.items()},
            "fused_scalers": {n: scaler(c) for n, c in self.fused_scalers.items()},
        }
