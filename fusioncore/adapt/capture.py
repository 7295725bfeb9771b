"""Adapting a trained run to the captures it scores: what ``detect`` and batch scoring use.

A run saves its adapter and the score scalers it fitted (``model/adapter.json``,
:class:`SavedAdaptation`). Scoring new traffic then needs, per capture, what
the run measured on every training and test capture: its profile (if the
adapter compares IDs with one) and the centre and spread of each score column
over the capture's reference windows. :class:`CaptureStates` holds those for
one or more captures, built by :func:`fit_capture_states` from each capture's
reference segment -- or with a given profile (``detect --profile``), in which
case every window of the warm-up serves the score statistics.

The scoring steps themselves (graphs, detectors, calibration, fusion) are
the run's own, passed in as callables, so a window scores the same here as in
``fusioncore run``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from fusioncore.adapt.base import Adapter, build_adapter
from fusioncore.adapt.profile import VehicleProfile
from fusioncore.adapt.reference import ReferenceTable
from fusioncore.adapt.scores import CaptureScaler, output_columns, with_standardised_columns
from fusioncore.adapt.segment import window_classes
from fusioncore.adapt.splits import fit_profiles
from fusioncore.contracts import DetectorOutput
from fusioncore.data.frames import Frames
from fusioncore.data.windows import WindowSpec, window_starts
from fusioncore.errors import ConfigError

__all__ = ["CaptureStates", "SavedAdaptation", "fit_capture_states", "load_adaptation", "normalise_output"]


def _scaler(raw: Mapping[str, Any]) -> CaptureScaler:
    return CaptureScaler.from_arrays({k: np.asarray(v) for k, v in raw.items()})


@attrs.frozen(eq=False)
class SavedAdaptation:
    """A run's adapter and the scalers it fitted (``model/adapter.json``)."""

    adapter: Adapter
    features: bool
    detector_scalers: Mapping[str, CaptureScaler]
    fused_scalers: Mapping[str, CaptureScaler]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], registry) -> SavedAdaptation:
        adapter = build_adapter(registry, raw["name"], raw["warmup_s"], raw.get("params", {}))
        return cls(
            adapter=adapter,
            features=bool(raw.get("features", False)),
            detector_scalers={n: _scaler(v) for n, v in raw.get("detector_scalers", {}).items()},
            fused_scalers={n: _scaler(v) for n, v in raw.get("fused_scalers", {}).items()},
        )

    @property
    def uses_reference(self) -> bool:
        return self.adapter.uses_reference

    def with_warmup(self, warmup_s: float) -> SavedAdaptation:
        """The same adaptation with another reference length (``detect --warmup``)."""
        adapter = build_adapter_like(self.adapter, warmup_s)
        return attrs.evolve(self, adapter=adapter)

    def columns(self, output: DetectorOutput) -> np.ndarray:
        return output_columns(output, features=self.features)


def build_adapter_like(adapter: Adapter, warmup_s: float) -> Adapter:
    try:
        return type(adapter)(warmup_s=warmup_s, **adapter.params())
    except TypeError as exc:
        raise ConfigError(f"adapter {adapter.name!r} cannot change its warm-up: {exc}") from None


@attrs.frozen(eq=False)
class CaptureStates:
    """Per capture: the reference table and each score column's centre / spread.

    ``names[c]`` is capture c (a ``Frames.sources`` name); ``default`` serves
    names not listed (a stream's single capture). ``detector[name]`` and
    ``fused[method]`` are ``(center, scale)`` arrays of shape ``[captures, k]``.
    """

    names: tuple[str, ...]
    table: ReferenceTable | None
    detector: Mapping[str, tuple[np.ndarray, np.ndarray]]
    fused: Mapping[str, tuple[np.ndarray, np.ndarray]] = attrs.field(factory=dict)
    default: int = -1
    reference_windows: int = 0
    profile_source: str = "reference segment"

    def capture_of(self, frames: Frames, starts: np.ndarray) -> np.ndarray:
        """Capture index of each window; an error for a capture this state was not fitted on."""
        index = {n: i for i, n in enumerate(self.names)}
        per_source = np.asarray([index.get(s, self.default) for s in frames.sources], np.int64)
        capture = per_source[frames.source[starts]] if len(starts) else np.zeros(0, np.int64)
        if (capture < 0).any():
            missing = frames.sources[int(frames.source[starts[capture < 0][0]])]
            raise ConfigError(f"capture {missing!r} has no reference: adapt to it first")
        return capture


def _stats(scaler: CaptureScaler, values: np.ndarray, capture: np.ndarray, n: int):
    center, scale, _ = scaler.statistics(values, capture, np.ones(len(capture), bool), n)
    return center, scale


def fit_capture_states(
    saved: SavedAdaptation,
    frames: Frames,
    spec: WindowSpec,
    *,
    outputs: Callable[[Frames, np.ndarray, ReferenceTable | None], Mapping[str, DetectorOutput]],
    fuse: Callable[[Mapping[str, DetectorOutput]], Mapping[str, np.ndarray]] | None = None,
    profile: VehicleProfile | None = None,
    default: str | None = None,
) -> CaptureStates:
    """Profiles and score statistics of every capture in ``frames``, from its reference segment.

    ``outputs(frames, starts, table)`` runs the detectors; ``fuse(normalised
    outputs)`` returns each fusion's scores (only needed when fused scores are
    standardised too). With ``profile`` every capture uses it and the whole
    warm-up serves the statistics. ``default`` names the capture that serves
    unlisted sources (a stream).
    """
    adapter = saved.adapter
    names = tuple(dict.fromkeys(frames.sources[int(s)] for s in np.unique(frames.source)))
    if not adapter.uses_reference:
        return CaptureStates(names, None, {}, default=names.index(default) if default in names else -1)
    if adapter.representation.relative:
        profiles = {n: profile for n in names} if profile is not None else fit_profiles(adapter, frames)
        missing = [n for n in names if n not in profiles]
        if missing:
            raise ConfigError(f"capture {missing[0]!r} is too short for a reference segment")
        table = adapter.reference_table(profiles, default=default)
    else:
        table = None
    starts = window_starts(frames, spec)
    profile_s = 0.0 if profile is not None else adapter.profile_s
    ref, _ = window_classes(frames, starts, spec.size, adapter.warmup_s, profile_s)
    starts = starts[ref]
    index = {n: i for i, n in enumerate(names)}
    capture = np.asarray([index[frames.sources[int(s)]] for s in frames.source[starts]], np.int64)
    if len(np.unique(capture)) < len(names):
        short = next(n for i, n in enumerate(names) if i not in set(capture.tolist()))
        raise ConfigError(f"capture {short!r}: its first {adapter.warmup_s:g} s hold no full window "
                          "to take score statistics on; use a longer warm-up")
    raw = outputs(frames, starts, table)
    detector = {n: _stats(saved.detector_scalers[n], saved.columns(o), capture, len(names))
                for n, o in raw.items() if n in saved.detector_scalers}
    fused: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if fuse is not None and saved.fused_scalers:
        normalised = {n: normalise_output(saved, n, o, *(a[capture] for a in detector[n]))
                      for n, o in raw.items()}
        for method, scores in fuse(normalised).items():
            if method in saved.fused_scalers:
                fused[method] = _stats(saved.fused_scalers[method], scores, capture, len(names))
    return CaptureStates(
        names=names, table=table, detector=detector, fused=fused,
        default=names.index(default) if default in names else -1, reference_windows=len(starts),
        profile_source="given profile" if profile is not None else "reference segment",
    )


def normalise_output(saved: SavedAdaptation, name: str, output: DetectorOutput,
                     center: np.ndarray, scale: np.ndarray) -> DetectorOutput:
    """A detector's output standardised with per-row ``center`` / ``scale``."""
    scaler = saved.detector_scalers.get(name)
    if scaler is None:
        return output
    # apply keeps the columns' [n, k] shape, zero windows (an empty batch) included
    return with_standardised_columns(output, scaler.apply(saved.columns(output), center, scale))


def load_adaptation(saved: Mapping[str, Any] | None, registry, *, adapt: str | None = None,
                    warmup_s: float | None = None) -> SavedAdaptation:
    """A run's adaptation from its bundle section; ``adapt`` must name it, ``warmup_s`` may change it.

    A run without the section (trained before adapters existed) is the zero-shot ``none`` adapter.
    """
    raw = dict(saved) if saved else {"name": "none", "warmup_s": 0.0, "params": {}}
    saved_adaptation = SavedAdaptation.from_json(raw, registry)
    name = saved_adaptation.adapter.name
    if adapt is not None and adapt.replace("_", "-").lower() != name:
        raise ConfigError(
            f"this run was trained with adapter {name!r}; its detectors and thresholds "
            f"only hold under that protocol (--adapt {name} or leave --adapt out)"
        )
    if warmup_s is not None and warmup_s != saved_adaptation.adapter.warmup_s:
        saved_adaptation = saved_adaptation.with_warmup(warmup_s)
    return saved_adaptation
