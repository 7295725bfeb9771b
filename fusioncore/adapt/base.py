"""The adapter contract and the bundled adapters ``none``, ``scores`` and ``profile``.

An adapter is a component kind (hook ``fusioncore_register_adapters``; built
as ``cls(warmup_s=..., **params)``) that fixes how a run relates each capture
to its own vehicle:

* :attr:`Adapter.representation` -- the window graphs detectors see
  (absolute, or relative to the capture's profile);
* :meth:`Adapter.fit_profile` / :meth:`Adapter.reference_table` -- what a
  capture's reference segment is turned into, and how profiles become the
  per-capture lookup table of graph building;
* :meth:`Adapter.fit_scaler` -- the per-capture score standardisation (or
  ``None`` for none).

Whatever the adapter, the first ``warmup_s`` seconds of every test capture
are its reference segment and never scored, so two adapters compare on the
same windows. Subclass :class:`Adapter` and override what differs; the
bundled ones below are three such subclasses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusioncore.adapt.features import STANDARDISED_NODE_FEATURES
from fusioncore.adapt.profile import VehicleProfile
from fusioncore.adapt.reference import ReferenceTable
from fusioncore.adapt.representation import (
    ABSOLUTE,
    PROFILE_RELATIVE,
    PROFILE_RELATIVE_TRANSITIONS,
    GraphRepresentation,
)
from fusioncore.adapt.scores import CaptureScaler
from fusioncore.data.frames import Frames
from fusioncore.errors import ConfigError

__all__ = ["DEFAULT_ADAPTER", "DEFAULT_WARMUP_S", "Adapter", "NoAdapter", "ProfileAdapter",
           "ScoresAdapter", "build_adapter"]

#: The protocol ``fusioncore run`` follows unless told otherwise (why: docs/adaptation.md).
DEFAULT_ADAPTER = "profile"
DEFAULT_WARMUP_S = 4.0
#: Where standardising adapters put a method's threshold: this share of the way from the
#: ``BENIGN_QUANTILE`` of validation's benign scores to its attacks (fusioncore.adapt.thresholds).
THRESHOLD_SHARE = 0.1
BENIGN_QUANTILE = 0.99


class Adapter:
    """Base class of capture adapters; the defaults are the zero-shot protocol."""

    name: ClassVar[str] = "adapter"
    #: standardise each detector's (and each fusion's) score per capture
    normalizes_scores: ClassVar[bool] = False

    def __init__(self, warmup_s: float = DEFAULT_WARMUP_S) -> None:
        warmup_s = float(warmup_s)
        if not warmup_s >= 0:
            raise ConfigError(f"adapt.warmup_s must be >= 0 seconds, got {warmup_s}")
        if self.uses_reference and warmup_s == 0:
            raise ConfigError(f"adapter {self.name!r} learns from each capture's reference segment: "
                              "adapt.warmup_s must be > 0")
        self.warmup_s = warmup_s

    # ---------------------------------------------------------- protocol
    @property
    def representation(self) -> GraphRepresentation:
        return ABSOLUTE

    @property
    def profile_s(self) -> float:
        """Seconds at the start of the reference segment the profile is learned from (0: all of it).

        Score statistics come from reference windows after them, so they are
        out-of-sample for the profile just like every scored window.
        """
        if not self.representation.relative:
            return 0.0
        return self.warmup_s * float(getattr(self, "profile_share", 1.0))

    @property
    def uses_reference(self) -> bool:
        """Whether training splits need reference windows (a profile or score statistics)."""
        return self.representation.relative or self.normalizes_scores

    def params(self) -> dict[str, Any]:
        """Constructor parameters besides ``warmup_s`` (saved with the run, part of its identity)."""
        return {}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "warmup_s": self.warmup_s, "params": self.params(),
                "representation": self.representation.name}

    #: parameters that only decide thresholds after scoring: left out of :meth:`fingerprint`, so
    #: changing them reuses every trained detector and stored prediction
    decision_params: ClassVar[tuple[str, ...]] = ()

    def fingerprint(self) -> str:
        """Identity of what the adapter does to the data (graphs, reference windows), for caches."""
        config = self.config()
        config["params"] = {k: v for k, v in config["params"].items() if k not in self.decision_params}
        payload = {**config, "class": f"{type(self).__module__}.{type(self).__qualname__}"}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    # ----------------------------------------------------------- profiles
    def fit_profile(self, frames: Frames, *, source: str) -> VehicleProfile:
        """The profile of a capture's reference segment (``frames`` holds just those rows)."""
        return VehicleProfile.fit(frames, source=source, warmup_s=self.warmup_s)

    def reference_table(
        self, profiles: Mapping[str, VehicleProfile], *, default: str | None = None
    ) -> ReferenceTable | None:
        """The lookup table graph building uses for these captures (None: the training vocabulary)."""
        if not self.representation.relative:
            return None
        return ReferenceTable.from_profiles(profiles, buckets=self.representation.buckets, default=default)

    # ------------------------------------------------------------- scores
    def fit_scaler(
        self, values: np.ndarray, capture: np.ndarray, reference: np.ndarray
    ) -> CaptureScaler | None:
        """The per-capture standardisation of score columns, fitted on training captures (or None)."""
        return None

    def threshold(self, labels: np.ndarray, scores: np.ndarray) -> float:
        """A method's decision threshold from its validation scores (default: the core's rule)."""
        from fusioncore.evaluation import best_mcc_threshold

        return best_mcc_threshold(labels, scores)


class NoAdapter(Adapter):
    """Zero-shot: absolute features against the training vocabulary, raw scores (today's protocol)."""

    name = "none"


class ScoresAdapter(Adapter):
    """Absolute features, but every score standardised by its capture's reference windows."""

    name = "scores"
    normalizes_scores = True
    decision_params = ("threshold_share", "benign_quantile")

    def __init__(self, warmup_s: float = DEFAULT_WARMUP_S, floor_share: float = 0.5,
                 features: bool = True, fused: bool = False, threshold_share: float = THRESHOLD_SHARE,
                 benign_quantile: float = BENIGN_QUANTILE) -> None:
        super().__init__(warmup_s)
        if not floor_share > 0:
            raise ConfigError(f"adapter {self.name!r}: floor_share must be > 0, got {floor_share}")
        if not 0 <= threshold_share <= 1:
            raise ConfigError(
                f"adapter {self.name!r}: threshold_share must be in [0, 1], got {threshold_share}")
        if not 0 < benign_quantile <= 1:
            raise ConfigError(
                f"adapter {self.name!r}: benign_quantile must be in (0, 1], got {benign_quantile}")
        self.floor_share = float(floor_share)
        self.features = bool(features)
        self.fused = bool(fused)
        self.threshold_share = float(threshold_share)
        self.benign_quantile = float(benign_quantile)

    def params(self) -> dict[str, Any]:
        return {"floor_share": self.floor_share, "features": self.features, "fused": self.fused,
                "threshold_share": self.threshold_share, "benign_quantile": self.benign_quantile}

    def fit_scaler(self, values, capture, reference) -> CaptureScaler:
        return CaptureScaler.fit(values, capture, reference, floor_share=self.floor_share)

    def threshold(self, labels: np.ndarray, scores: np.ndarray) -> float:
        from fusioncore.adapt.thresholds import benign_side_threshold

        return benign_side_threshold(labels, scores, self.threshold_share, self.benign_quantile)


class ProfileAdapter(ScoresAdapter):
    """Profile-relative features and node identity, and per-capture score standardisation."""

    name = "profile"

    def __init__(self, warmup_s: float = DEFAULT_WARMUP_S, floor_share: float = 0.5,
                 features: bool = True, fused: bool = False, threshold_share: float = THRESHOLD_SHARE,
                 benign_quantile: float = BENIGN_QUANTILE, buckets: int = PROFILE_RELATIVE.buckets,
                 profile_share: float = 0.5, transitions: bool = False, surprise: bool = True) -> None:
        if int(buckets) < 1:
            raise ConfigError(f"adapter 'profile': buckets must be >= 1, got {buckets}")
        if not 0 < profile_share <= 1:
            raise ConfigError(f"adapter 'profile': profile_share must be in (0, 1], got {profile_share}")
        self.buckets = int(buckets)
        self.profile_share = float(profile_share)
        # off by default: the unseen-transition columns drift with the time since the reference
        # (fusioncore.adapt.features.TRANSITION_NODE_FEATURES, docs/adaptation.md)
        self.transitions = bool(transitions)
        # the per-byte binomial surprise columns (fusioncore.adapt.features.byte_surprise)
        self.surprise = bool(surprise)
        super().__init__(warmup_s, floor_share, features, fused, threshold_share, benign_quantile)

    @property
    def representation(self) -> GraphRepresentation:
        import attrs

        base = PROFILE_RELATIVE_TRANSITIONS if self.transitions else PROFILE_RELATIVE
        if not self.surprise:
            base = attrs.evolve(base, node_features=[
                f for f in base.node_features if f not in STANDARDISED_NODE_FEATURES])
        return attrs.evolve(base, buckets=self.buckets)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "buckets": self.buckets, "profile_share": self.profile_share,
                "transitions": self.transitions, "surprise": self.surprise}


def build_adapter(registry, name: str, warmup_s: float, params: Mapping[str, Any] | None = None) -> Adapter:
    """The registered adapter ``name``, built as ``cls(warmup_s=..., **params)``."""
    from fusioncore.errors import PluginError

    cls = registry.get("adapter", name)
    try:
        adapter = cls(warmup_s=warmup_s, **dict(params or {}))
    except TypeError as exc:
        raise ConfigError(f"adapter {name!r}: bad parameters {dict(params or {})}: {exc}") from None
    if not isinstance(adapter, Adapter):
        raise PluginError(
            f"adapter {name!r} built a {type(adapter).__name__}, not a fusioncore.adapt.base.Adapter")
    return adapter
