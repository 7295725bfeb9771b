"""fusioncore_shortcuts: trivial detectors that show what a shortcut gets on the same windows.

``idset`` scores a window by the share of its CAN IDs never seen in training;
``timing`` by how far its IDs' inter-arrival times are from their benign
periods. Neither learns anything beyond the run's own vocabulary and feature
normaliser, so a graph detector or fusion that does not beat them on a
scenario has learned the shortcut, not the traffic. Both are ordinary
detectors: they train (nothing to fit), cache, calibrate and fuse like any
other, and are registered lazily (PyTorch is imported only when a run asks).
"""

from fusioncore import Lazy, hookimpl
from fusioncore.registry import lazy_exports

__all__ = ["IdSetDetector", "TimingDetector"]

_DETECTORS = "fusioncore_shortcuts.detectors"
__getattr__ = lazy_exports(dict.fromkeys(__all__, _DETECTORS))


@hookimpl
def fusioncore_register_detectors(register) -> None:
    register("idset", Lazy(f"{_DETECTORS}:IdSetDetector"),
             "shortcut control: share of the window's IDs never seen in training")
    register("timing", Lazy(f"{_DETECTORS}:TimingDetector"),
             "shortcut control: largest per-ID inter-arrival deviation from the benign period")
