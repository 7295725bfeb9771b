"""What the store checks share: the sample entry, keys, the exact-equality check, opening a store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fusioncore.contracts import PredictionStore
from fusioncore.testing.checks import ContractViolation, describe, require
from fusioncore.testing.data import make_detector_outputs

__all__ = ["StoreFactory", "open_store", "same_arrays", "sample_entry", "store_key_for"]

StoreFactory = Callable[..., Any]


def sample_entry(seed: int = 0) -> dict[str, np.ndarray]:
    """What the core stores (a detector output) plus the awkward cases: bool, empty, non-ASCII names."""
    outputs, _ = make_detector_outputs(50 + seed, seed=seed)
    arrays = dict(outputs["beta"].to_arrays())
    arrays["flags"] = np.arange(7) % 2 == 0
    arrays["empty"] = np.zeros((0, 3), np.float64)
    arrays["names"] = np.array(["état", "ß", f"k{seed}"])
    return arrays


def store_key_for(i: int) -> str:
    """The ``i``-th test key, shaped like the core's (a sha256 hex digest)."""
    return f"{i:064x}"


def open_store(
    factory: StoreFactory, directory: Path | None, params: Mapping[str, Any] | None = None
) -> PredictionStore:
    """``factory(directory, **params)`` as the core calls it, checked to be a store."""
    try:
        store = factory(directory, **dict(params or {}))
    except Exception as exc:
        raise ContractViolation(
            f"store factory(directory, **{dict(params or {})}) raised {type(exc).__name__}: {exc}"
        ) from exc
    require(
        isinstance(store, PredictionStore),
        f"the factory must return a PredictionStore (get, put, keys, delete, clear, close), "
        f"got {describe(store)}",
    )
    return store


def same_arrays(got: Mapping[str, np.ndarray] | None, want: Mapping[str, np.ndarray], what: str) -> None:
    require(got is not None, f"{what}: get() returned None for a key that was put")
    require(set(got) == set(want), f"{what}: names {sorted(got)} differ from {sorted(want)}")
    for name, array in want.items():
        value = np.asarray(got[name])
        require(
            value.dtype == array.dtype,
            f"{what}: round trip changed dtype of {name!r}: {array.dtype} -> {value.dtype}",
        )
        require(
            value.shape == array.shape,
            f"{what}: round trip changed shape of {name!r}: {array.shape} -> {value.shape}",
        )
        require(np.array_equal(value, array), f"{what}: round trip changed the values of {name!r}")
