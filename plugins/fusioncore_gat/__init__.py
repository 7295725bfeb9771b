"""fusioncore_gat: the supervised graph-attention detector, registered as ``gat``.

A bundled plugin, discovered through the ``fusioncore`` entry point exactly as
a third-party package would be.
"""

from fusioncore import hookimpl
from fusioncore_gat.config import PRESETS, GATConfig
from fusioncore_gat.detector import GATDetector
from fusioncore_gat.network import GATNetwork

__all__ = ["PRESETS", "GATConfig", "GATDetector", "GATNetwork"]


@hookimpl
def fusioncore_register_detectors(register) -> None:
    register(
        "gat",
        GATDetector,
        "supervised GATv2 window classifier (edge features, jumping knowledge); score = P(attack)",
    )
