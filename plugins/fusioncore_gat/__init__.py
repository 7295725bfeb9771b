"""fusioncore_gat: the supervised graph-attention detector, registered as ``gat``.

A bundled plugin, discovered through the ``fusioncore`` entry point exactly as
a third-party package would be. The detector is registered lazily: its module
(and PyTorch) is imported only when a run asks for it.
"""

from fusioncore import Lazy, hookimpl
from fusioncore.registry import lazy_exports

__all__ = ["PRESETS", "GATConfig", "GATDetector", "GATNetwork"]

__getattr__ = lazy_exports({
    "PRESETS": "fusioncore_gat.config",
    "GATConfig": "fusioncore_gat.config",
    "GATDetector": "fusioncore_gat.detector",
    "GATNetwork": "fusioncore_gat.network",
})


@hookimpl
def fusioncore_register_detectors(register) -> None:
    register(
        "gat",
        Lazy("fusioncore_gat.detector:GATDetector"),
        "supervised GATv2 window classifier (edge features, jumping knowledge); score = P(attack)",
    )
