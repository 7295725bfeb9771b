"""fusioncore_vgae: the unsupervised variational graph auto-encoder detector, ``vgae``.

A bundled plugin, discovered through the ``fusioncore`` entry point exactly as
a third-party package would be. Trained on benign windows only; its score is a
calibrated z-score of reconstruction errors (:mod:`fusioncore_vgae.scoring`).
"""

from fusioncore import hookimpl
from fusioncore_vgae.config import COMBINE_RULES, PRESETS, VGAEConfig
from fusioncore_vgae.detector import VGAEDetector
from fusioncore_vgae.network import Encoding, VGAENetwork
from fusioncore_vgae.reconstruction import CHANNELS, WindowErrors
from fusioncore_vgae.scoring import ScoreCalibration

__all__ = [
    "CHANNELS",
    "COMBINE_RULES",
    "PRESETS",
    "Encoding",
    "ScoreCalibration",
    "VGAEConfig",
    "VGAEDetector",
    "VGAENetwork",
    "WindowErrors",
]


@hookimpl
def fusioncore_register_detectors(register) -> None:
    register(
        "vgae",
        VGAEDetector,
        "unsupervised VGAE trained on benign windows; score = calibrated reconstruction z-score",
    )
