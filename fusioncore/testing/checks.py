"""What every conformance check shares: the failure type and a few small helpers."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusioncore.paths import redirected_dirs

__all__ = [
    "ContractViolation",
    "configured",
    "isolated_environment",
    "max_abs_diff",
    "one_torch_thread",
    "require",
]


class ContractViolation(AssertionError):
    """A component does not honour its contract; the message says what is wrong and what was expected.

    An ``AssertionError``, so pytest reports it as a test failure with its
    message, not as an error in the test's setup.
    """


def require(condition: Any, message: str) -> None:
    """Raise :class:`ContractViolation` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ContractViolation(message)


def configured(contract: Any, attribute: str, what: str) -> Any:
    """The component a contract class was given in ``attribute``, or a violation saying to set it."""
    value = getattr(type(contract), attribute, None)
    if value is None:
        raise ContractViolation(f"{type(contract).__name__} must set {attribute} = <{what}>")
    return value


def describe(value: Any) -> str:
    """``ndarray(float32, shape=(32,))`` style summary of a value, for messages."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return (
            f"{type(value).__name__}({str(value.dtype).removeprefix('torch.')}, shape={tuple(value.shape)})"
        )
    return f"{type(value).__name__} {value!r}"[:120]


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute element difference of two equally shaped arrays (inf if shapes differ)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    both_nan = np.isnan(a) & np.isnan(b)
    return float(np.max(np.where(both_nan, 0.0, np.abs(a - b))))


@contextlib.contextmanager
def isolated_environment() -> Iterator[Path]:
    """Point the fusioncore cache and data folders at a temporary directory for the duration.

    A component under test that caches something (a store's default
    directory, a generated dataset) must not write into the user's home.
    """
    with tempfile.TemporaryDirectory(prefix="fusioncore-contract-") as tmp, redirected_dirs(tmp) as root:
        yield root


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Train on one intra-op thread: on a small shared machine, more threads stall instead of helping."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
