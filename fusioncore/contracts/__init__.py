"""Contracts between the core and its plugins.

A plugin provides components of several kinds; each kind has one contract here.
Records that cross a boundary are small frozen attrs classes holding numpy
arrays (:mod:`fusioncore.contracts.records`); behaviour is a base class (when
the core supplies shared machinery, e.g. :class:`Detector` is a
``LightningModule``, :mod:`fusioncore.contracts.detector`) or a ``Protocol``
(when any object with the right methods will do).

============== ============================= ===================================
kind           contract                      registered object
============== ============================= ===================================
detector       :class:`Detector`             subclass; built as ``cls(schema, **params)``
state_encoder  :class:`StateEncoder`         subclass; built as ``cls(**params)``
reward         :class:`RewardFunction`       factory ``(**params) -> RewardFunction``
fusion         :class:`FusionStrategy`       subclass; built as ``cls(**params)``
store          :class:`PredictionStore`      factory ``(directory, **params) -> store``
dataset        :class:`DatasetSource`        instance
format         :class:`FormatReader`         instance
alarm          ``evaluation.AlarmStage``     subclass; built as ``cls(**params)``
adapter        ``adapt.base.Adapter``        subclass; built as ``cls(warmup_s=..., **params)``
============== ============================= ===================================

The last two live with the machinery they plug into
(:mod:`fusioncore.evaluation.alarms`, :mod:`fusioncore.adapt`).

``Detector`` is imported on first use, so importing the records costs no
PyTorch Lightning import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fusioncore.contracts.records import (
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
    arrays_to_npz_bytes,
    npz_bytes_to_arrays,
)

if TYPE_CHECKING:
    from fusioncore.contracts.detector import Detector

__all__ = [
    "DatasetFiles",
    "DatasetSource",
    "Detector",
    "DetectorOutput",
    "FormatReader",
    "FusionData",
    "FusionStrategy",
    "GraphSchema",
    "PredictionStore",
    "ReadResult",
    "RewardFunction",
    "StateEncoder",
    "arrays_to_npz_bytes",
    "npz_bytes_to_arrays",
]


def __getattr__(name: str) -> Any:
    if name == "Detector":
        from fusioncore.contracts.detector import Detector

        return Detector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
