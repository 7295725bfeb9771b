"""One run of fusioncore: configuration, detector training, fusion, evaluation, the run bundle.

``run_pipeline`` is imported on first use: building a configuration
(:mod:`fusioncore.pipeline.config`) does not import PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusioncore.pipeline.run import RunResult, call_lifecycle, run_pipeline

__all__ = ["RunResult", "call_lifecycle", "run_pipeline"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fusioncore.pipeline import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
