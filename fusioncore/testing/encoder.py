"""The state-encoder contract: fit, named columns, per-window encoding, saved state.

::

    from fusioncore.testing import StateEncoderContract

    class TestMyEncoder(StateEncoderContract):
        encoder_cls = MyEncoder
        params = {}

or call :func:`check_state_encoder`. Inputs are generated detector outputs
(:func:`~fusioncore.testing.data.make_detector_outputs`); the fitted state is
saved with ``np.savez(allow_pickle=False)`` as a run saves ``model/encoder.npz``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pytest

from fusioncore.contracts import DetectorOutput, StateEncoder
from fusioncore.errors import FusionCoreError
from fusioncore.pipeline.config import build_component
from fusioncore.testing.checks import ContractViolation, configured, describe, max_abs_diff, require
from fusioncore.testing.data import make_detector_outputs

__all__ = [
    "StateEncoderContract",
    "check_encode_output",
    "check_encoder_is_per_window",
    "check_encoder_state_round_trip",
    "check_state_encoder",
    "fit_encoder_for_contract",
]

Outputs = Mapping[str, DetectorOutput]


def _build(cls: type, params: Mapping[str, Any]) -> StateEncoder:
    try:
        encoder = build_component(cls, dict(params))
    except FusionCoreError as exc:
        raise ContractViolation(f"building {cls.__name__}(**{dict(params)}) failed: {exc}") from exc
    require(
        isinstance(encoder, StateEncoder),
        f"{cls.__name__} must subclass fusioncore.StateEncoder, built a {type(encoder).__name__}",
    )
    return encoder


def _subset(outputs: Outputs, rows: np.ndarray) -> dict[str, DetectorOutput]:
    return {
        name: DetectorOutput(
            window_ids=o.window_ids[rows],
            score=o.score[rows],
            features=o.features[rows],
            feature_names=o.feature_names,
        )
        for name, o in outputs.items()
    }


def fit_encoder_for_contract(
    cls: type, params: Mapping[str, Any] | None = None, *, seed: int = 0
) -> tuple[StateEncoder, Outputs, Outputs]:
    """Build and fit on generated training outputs; returns the encoder, train and test outputs."""
    train, _ = make_detector_outputs(300, seed=seed)
    test, _ = make_detector_outputs(120, seed=seed + 1)
    encoder = _build(cls, params or {})
    try:
        fitted = encoder.fit(train)
    except Exception as exc:
        raise ContractViolation(f"fit(outputs) raised {type(exc).__name__}: {exc}") from exc
    require(fitted is encoder, f"fit() must return the encoder itself (return self), got {describe(fitted)}")
    return encoder, train, test


def check_encode_output(encoder: StateEncoder, outputs: Outputs) -> np.ndarray:
    """``encode`` gives finite ``float32[N, dim]`` with ``dim == len(state_names)``, names unique."""
    names = encoder.state_names
    require(
        isinstance(names, tuple) and all(isinstance(n, str) and n for n in names),
        f"state_names must be a tuple of non-empty strings, got {names!r}",
    )
    require(len(set(names)) == len(names), f"state_names has duplicates: {names}")
    require(encoder.dim == len(names), f"dim is {encoder.dim} but there are {len(names)} state_names")
    try:
        state = encoder.encode(outputs)
    except Exception as exc:
        raise ContractViolation(f"encode(outputs) raised {type(exc).__name__}: {exc}") from exc
    require(isinstance(state, np.ndarray), f"encode must return a numpy array, got {describe(state)}")
    n = len(next(iter(outputs.values())))
    require(
        state.shape == (n, encoder.dim),
        f"state has shape {state.shape}, expected ({n}, {encoder.dim}): one row of dim values per window",
    )
    require(state.dtype == np.float32, f"state must be float32, got {state.dtype}")
    require(np.isfinite(state).all(), f"{int((~np.isfinite(state)).sum())} state values are not finite")
    return state


def check_encoder_is_per_window(encoder: StateEncoder, outputs: Outputs) -> None:
    """A window's state depends on that window only, and not on the order of the mapping.

    ``fusioncore detect`` encodes traffic batch by batch, so a state that
    depended on the rest of the batch would change with the batch size.
    """
    whole = check_encode_output(encoder, outputs)
    again = check_encode_output(encoder, outputs)
    diff = max_abs_diff(whole, again)
    require(diff <= 1e-6, f"encode() is not a pure function: two calls differ by up to {diff:.3g}")
    n = len(whole)
    rows = np.arange(n // 3, n)[::2]
    diff = max_abs_diff(whole[rows], check_encode_output(encoder, _subset(outputs, rows)))
    require(
        diff <= 1e-5,
        f"a window's state changes with the other windows encoded alongside it "
        f"(max |diff| = {diff:.3g} on a subset); encode must work row by row after fit",
    )
    reordered = dict(reversed(list(outputs.items())))
    diff = max_abs_diff(whole, check_encode_output(encoder, reordered))
    require(diff <= 1e-6, "the state depends on the order of the detector mapping; sort detector names")


def check_encoder_state_round_trip(
    cls: type, params: Mapping[str, Any], encoder: StateEncoder, outputs: Outputs
) -> None:
    """A fresh encoder given ``state_dict()`` (saved as a run saves it) encodes identically."""
    buffer = io.BytesIO()
    try:
        np.savez(buffer, **encoder.state_dict(), allow_pickle=False)
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
    except Exception as exc:
        raise ContractViolation(
            f"state_dict() must be plain arrays saveable without pickle: {type(exc).__name__}: {exc}"
        ) from exc
    fresh = _build(cls, params)
    fresh.load_state_dict(state)
    require(
        fresh.state_names == encoder.state_names,
        f"state_names after load_state_dict are {fresh.state_names}, expected {encoder.state_names}",
    )
    diff = max_abs_diff(check_encode_output(encoder, outputs), check_encode_output(fresh, outputs))
    require(
        diff <= 1e-6, f"an encoder restored from state_dict() encodes differently: max |diff| = {diff:.3g}"
    )


def check_state_encoder(cls: type, params: Mapping[str, Any] | None = None, *, seed: int = 0) -> None:
    """Every state-encoder check in one call; raises :class:`ContractViolation` at the first failure."""
    params = dict(params or {})
    encoder, _, test = fit_encoder_for_contract(cls, params, seed=seed)
    check_encode_output(encoder, test)
    check_encoder_is_per_window(encoder, test)
    check_encoder_state_round_trip(cls, params, encoder, test)


class StateEncoderContract:
    """pytest base class: set ``encoder_cls`` (and ``params``); every test below runs against it."""

    encoder_cls: ClassVar[type]
    params: ClassVar[Mapping[str, Any]] = {}
    seed: ClassVar[int] = 0

    @pytest.fixture
    def fitted(self) -> tuple[StateEncoder, Outputs, Outputs]:
        cls = configured(self, "encoder_cls", "your StateEncoder subclass")
        return fit_encoder_for_contract(cls, self.params, seed=self.seed)

    def test_encode_gives_one_named_row_per_window(self, fitted) -> None:
        encoder, _, test = fitted
        check_encode_output(encoder, test)

    def test_encode_is_per_window_and_pure(self, fitted) -> None:
        encoder, _, test = fitted
        check_encoder_is_per_window(encoder, test)

    def test_state_dict_round_trip(self, fitted) -> None:
        encoder, _, test = fitted
        check_encoder_state_round_trip(type(self).encoder_cls, self.params, encoder, test)
