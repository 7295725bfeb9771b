"""fusioncore: CAN-bus intrusion detection with graph neural networks and learned fusion.

The public API: the ``hookimpl`` marker plugins decorate their hooks with, the
contracts components implement, and the error hierarchy.
"""

from fusioncore.contracts import (
    DatasetFiles,
    DatasetSource,
    Detector,
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
    PluginError,
    UnknownComponentError,
)
from fusioncore.hookspecs import HOOK_API_VERSION, hookimpl

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
    "PluginError",
    "PredictionStore",
    "ReadResult",
    "RewardFunction",
    "StateEncoder",
    "UnknownComponentError",
    "__version__",
    "hookimpl",
]
