"""fusioncore: CAN-bus intrusion detection with graph neural networks and learned fusion.

The public API: the ``hookimpl`` marker plugins decorate their hooks with, the
contracts components implement, and the error hierarchy. ``Detector`` (a
PyTorch Lightning module) is imported on first access, so ``import fusioncore``
stays cheap for commands that need no model.
"""

from typing import TYPE_CHECKING, Any

from fusioncore.contracts import (
    DatasetFiles,
    DatasetSource,
    DetectorOutput,
    FormatReader,
    FusionData,
    FusionStrategy,
    GraphSchema,
    PredictionStore,
    ReadResult,
    RewardFunction,
    StateEncoder,
)
from fusioncore.errors import (
    ConfigError,
    DatasetNotFoundError,
    DuplicateComponentError,
    FormatError,
    FusionCoreError,
    NotFittedError,
    PluginError,
    UnknownComponentError,
)
from fusioncore.hookspecs import HOOK_API_VERSION, hookimpl
from fusioncore.registry import Lazy

if TYPE_CHECKING:
    from fusioncore.contracts.detector import Detector

__version__ = "0.1.0"

__all__ = [
    "HOOK_API_VERSION",
    "ConfigError",
    "DatasetFiles",
    "DatasetNotFoundError",
    "DatasetSource",
    "Detector",
    "DetectorOutput",
    "DuplicateComponentError",
    "FormatError",
    "FormatReader",
    "FusionCoreError",
    "FusionData",
    "FusionStrategy",
    "GraphSchema",
    "Lazy",
    "NotFittedError",
    "PluginError",
    "PredictionStore",
    "ReadResult",
    "RewardFunction",
    "StateEncoder",
    "UnknownComponentError",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    if name == "Detector":
        from fusioncore.contracts.detector import Detector

        return Detector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
