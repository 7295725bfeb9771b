"""The fusion contract: fit / fuse shapes, fused score in [0, 1], policy rows, determinism, state.

Use it as a base class::

    from fusioncore.testing import FusionContract

    class TestMyFusion(FusionContract):
        fusion_cls = MyFusion
        params = {"epochs": 3}

or call :func:`check_fusion`. The fusion is built the way the core builds it
(:func:`fusioncore.pipeline.config.build_component`, which passes ``reward`` and
``seed`` when the constructor takes them), fitted on generated
:class:`~fusioncore.FusionData` with 2 and 3 detectors, and its saved state
goes through the same ``torch.save`` / ``torch.load(weights_only=True)``
round trip as a run's ``model/fusions.pt``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from fusioncore.contracts import FusionData, FusionStrategy
from fusioncore.errors import FusionCoreError
from fusioncore.pipeline.config import build_component
from fusioncore.pipeline.engine import quiet_lightning
from fusioncore.testing.checks import (
    ContractViolation,
    configured,
    describe,
    max_abs_diff,
    one_torch_thread,
    require,
)
from fusioncore.testing.data import make_fusion_data

__all__ = [
    "FusionContract",
    "check_fuse_output",
    "check_fusion",
    "check_fusion_determinism",
    "check_fusion_ignores_labels",
    "check_fusion_state_round_trip",
    "check_policy",
    "fit_for_contract",
    "outcome_reward",
]


def outcome_reward(decision: torch.Tensor, label: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """+1 for a right decision, -1 for a wrong one: the reward fusions get in these checks."""
    right = decision.to(torch.bool) == label.to(torch.bool)
    return torch.where(right, 1.0, -1.0).to(fused.dtype if fused.is_floating_point() else torch.float32)


def _splits(n_detectors: int, seed: int) -> tuple[FusionData, FusionData, FusionData]:
    return tuple(make_fusion_data(n, n_detectors, seed=seed + k) for k, n in enumerate((400, 200, 300)))


def _build(cls: type, params: Mapping[str, Any], seed: int) -> FusionStrategy:
    try:
        fusion = build_component(cls, dict(params), reward=outcome_reward, seed=seed)
    except FusionCoreError as exc:
        raise ContractViolation(f"building {cls.__name__}(**{dict(params)}) failed: {exc}") from exc
    require(
        isinstance(fusion, FusionStrategy),
        f"{cls.__name__} must subclass fusioncore.FusionStrategy, built a {type(fusion).__name__}",
    )
    return fusion


def fit_for_contract(
    cls: type, params: Mapping[str, Any] | None = None, *, n_detectors: int = 2, seed: int = 0
) -> tuple[FusionStrategy, tuple[FusionData, FusionData, FusionData]]:
    """Build with the core's ``build_component`` and fit on generated train / val data."""
    name = getattr(cls, "name", None)
    require(isinstance(name, str) and name, f"{cls.__name__}.name must be a non-empty string, got {name!r}")
    require(
        isinstance(getattr(cls, "trainable", None), bool),
        f"{cls.__name__}.trainable must be True or False, got {getattr(cls, 'trainable', None)!r}",
    )
    quiet_lightning()  # learned fusions may train with Lightning
    train, val, test = _splits(n_detectors, seed)
    fusion = _build(cls, params or {}, seed)
    torch.manual_seed(seed)
    try:
        fusion.fit(train, val)
    except Exception as exc:
        raise ContractViolation(f"fit(train, val) raised {type(exc).__name__}: {exc}") from exc
    return fusion, (train, val, test)


def check_fuse_output(fusion: FusionStrategy, data: FusionData) -> np.ndarray:
    """``fuse(data)`` is one finite score in [0, 1] per window."""
    try:
        fused = fusion.fuse(data)
    except Exception as exc:
        raise ContractViolation(f"fuse() raised {type(exc).__name__}: {exc}") from exc
    try:
        fused = np.asarray(fused, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ContractViolation(f"fuse() must return a float array, got {describe(fused)}") from exc
    n = len(data)
    require(fused.shape == (n,), f"fused score has shape {fused.shape}, expected ({n},): one per window")
    require(np.isfinite(fused).all(), f"{int((~np.isfinite(fused)).sum())} fused scores are not finite")
    lo, hi = float(fused.min(initial=0.0)), float(fused.max(initial=1.0))
    require(lo >= 0.0 and hi <= 1.0, f"fused scores must lie in [0, 1]; got min {lo:.4g}, max {hi:.4g}")
    return fused


def check_policy(fusion: FusionStrategy, data: FusionData) -> None:
    """``policy(data)`` is ``None`` or non-negative weights ``[N, m]`` whose rows sum to 1."""
    policy = fusion.policy(data)
    if policy is None:
        return
    weights = np.asarray(policy, dtype=np.float64)
    n, m = len(data), len(data.detectors)
    require(weights.shape == (n, m), f"policy has shape {weights.shape}, expected ({n}, {m})")
    require(
        np.isfinite(weights).all() and weights.min(initial=0.0) >= -1e-6,
        "policy weights must be finite and non-negative",
    )
    worst = float(np.abs(weights.sum(axis=1) - 1.0).max(initial=0.0))
    require(worst <= 1e-4, f"policy rows must sum to 1; worst row is off by {worst:.3g}")


def check_fusion_determinism(
    cls: type, params: Mapping[str, Any], *, n_detectors: int = 2, seed: int = 0
) -> None:
    """Two fusions built and fitted with the same seed fuse identically; ``fuse`` is pure."""
    first, (_, _, test) = fit_for_contract(cls, params, n_detectors=n_detectors, seed=seed)
    a = check_fuse_output(first, test)
    diff = max_abs_diff(a, check_fuse_output(first, test))
    require(diff <= 1e-6, f"fuse() gives different scores on a second call: max |diff| = {diff:.3g}")
    second, _ = fit_for_contract(cls, params, n_detectors=n_detectors, seed=seed)
    diff = max_abs_diff(a, check_fuse_output(second, test))
    require(
        diff <= 1e-6,
        f"fuse() is not deterministic under seed={seed}: max |diff| = {diff:.3g} between "
        "two fusions fitted alike (draw randomness from the `seed` constructor argument)",
    )


def check_fusion_ignores_labels(fusion: FusionStrategy, data: FusionData) -> None:
    """Fusing must not look at labels: they are hidden (-1) on real traffic."""
    hidden = FusionData(
        states=data.states,
        scores=data.scores,
        labels=np.full(len(data), -1),
        detectors=data.detectors,
        state_names=data.state_names,
    )
    diff = max_abs_diff(check_fuse_output(fusion, data), check_fuse_output(fusion, hidden))
    require(
        diff <= 1e-6, f"fuse() reads labels: hiding them (-1) changes the fused score by up to {diff:.3g}"
    )


def _through_torch_save(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` as ``fusioncore run`` stores it in model/fusions.pt and ``fusioncore detect`` reads it."""
    from fusioncore.pipeline.bundle import loadable_state as _loadable_state  # the core's own conversion

    buffer = io.BytesIO()
    torch.save(_loadable_state(state), buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=True)


def check_fusion_state_round_trip(
    cls: type, params: Mapping[str, Any], fusion: FusionStrategy, data: FusionData, *, seed: int = 0
) -> None:
    """A fresh fusion given ``state_dict()`` (saved like a run saves it) fuses identically."""
    try:
        state = _through_torch_save(fusion.state_dict())
    except Exception as exc:
        raise ContractViolation(
            "state_dict() must hold tensors, arrays, numbers, strings and lists of them (it is saved with "
            f"torch.save and read with weights_only=True): {type(exc).__name__}: {exc}"
        ) from exc
    fresh = _build(cls, params, seed)
    try:
        fresh.load_state_dict(state)
    except Exception as exc:
        raise ContractViolation(f"load_state_dict(state_dict()) raised {type(exc).__name__}: {exc}") from exc
    diff = max_abs_diff(check_fuse_output(fusion, data), check_fuse_output(fresh, data))
    require(diff <= 1e-6, f"a fusion restored from state_dict() fuses differently: max |diff| = {diff:.3g}")


def check_fusion(
    cls: type, params: Mapping[str, Any] | None = None, *, n_detectors: Sequence[int] = (2, 3), seed: int = 0
) -> None:
    """Every fusion check in one call; raises :class:`ContractViolation` at the first failure."""
    params = dict(params or {})
    with one_torch_thread():
        for m in n_detectors:
            fusion, (_, _, test) = fit_for_contract(cls, params, n_detectors=m, seed=seed)
            check_fuse_output(fusion, test)
            check_policy(fusion, test)
            check_fusion_ignores_labels(fusion, test)
            check_fusion_state_round_trip(cls, params, fusion, test, seed=seed)
        check_fusion_determinism(cls, params, n_detectors=n_detectors[0], seed=seed)


class FusionContract:
    """pytest base class: set ``fusion_cls`` (and ``params``); every test below runs against it.

    ``n_detectors`` (default ``(2, 3)``): the detector counts to fit with.
    """

    fusion_cls: ClassVar[type]
    params: ClassVar[Mapping[str, Any]] = {}
    n_detectors: ClassVar[tuple[int, ...]] = (2, 3)
    seed: ClassVar[int] = 0

    @pytest.fixture(scope="class", params=[0, 1], ids=lambda i: f"m{i}")
    def fitted(self, request) -> tuple[FusionStrategy, tuple[FusionData, FusionData, FusionData]]:
        cls = configured(self, "fusion_cls", "your FusionStrategy subclass")
        if request.param >= len(self.n_detectors):
            pytest.skip("fewer detector counts configured")
        with one_torch_thread():
            return fit_for_contract(
                cls, self.params, n_detectors=self.n_detectors[request.param], seed=self.seed
            )

    def test_fuse_gives_one_score_in_unit_range_per_window(self, fitted) -> None:
        fusion, (_, val, test) = fitted
        check_fuse_output(fusion, test)
        check_fuse_output(fusion, val)

    def test_policy_rows_are_weights(self, fitted) -> None:
        fusion, (_, _, test) = fitted
        check_policy(fusion, test)

    def test_fuse_does_not_read_labels(self, fitted) -> None:
        fusion, (_, _, test) = fitted
        check_fusion_ignores_labels(fusion, test)

    def test_state_dict_round_trip(self, fitted) -> None:
        fusion, (_, _, test) = fitted
        check_fusion_state_round_trip(type(self).fusion_cls, self.params, fusion, test, seed=self.seed)

    def test_deterministic_under_a_seed(self) -> None:
        with one_torch_thread():
            check_fusion_determinism(
                type(self).fusion_cls, self.params, n_detectors=self.n_detectors[0], seed=self.seed
            )
