"""fusioncore_shortcuts: trivial detectors that show what a shortcut gets on the same windows.

``idset`` scores a window by the share of its CAN IDs never seen in training;
``timing`` by how far its IDs' inter-arrival times are from their benign
periods. Neither learns anything beyond the run's own vocabulary and feature
normaliser, so a graph detector or fusion that does not beat them on a
scenario has learned the shortcut, not the traffic. Both are ordinary
detectors: they train (nothing to fit), cache, calibrate and fuse like any other.
"""

from fusioncore import hookimpl
from fusioncore_shortcuts.detectors import IdSetDetector, TimingDetector

__all__ = ["IdSetDetector", "TimingDetector"]


@hookimpl
def fusioncore_register_detectors(register) -> None:
    register("idset", IdSetDetector, "shortcut control: share of the window's IDs never seen in training")
    register("timing", TimingDetector,
             "shortcut control: largest per-ID inter-arrival deviation from the benign period")
