"""``RunInfo``: what lifecycle hooks learn about a run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["RunInfo"]


@attrs.frozen
class RunInfo:
    """A run's identity: command, dataset, output folder and resolved config."""

    command: str
    dataset: str
    out_dir: Path = attrs.field(converter=Path)
    config: Mapping[str, Any] = attrs.field(factory=dict)
