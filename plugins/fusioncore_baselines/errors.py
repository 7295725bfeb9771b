"""Errors of the baseline fusions."""

from __future__ import annotations

from fusioncore import FusionCoreError

__all__ = ["NotFittedError"]


class NotFittedError(FusionCoreError, RuntimeError):
    """``fuse`` / ``policy`` / ``state_dict`` called before ``fit`` or ``load_state_dict``."""
