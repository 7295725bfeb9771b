"""fusioncore_vgae: the unsupervised variational graph auto-encoder detector, ``vgae``.

A bundled plugin, discovered through the ``fusioncore`` entry point exactly as
a third-party package would be. Trained on benign windows only; its score is a
calibrated z-score of reconstruction errors (:mod:`fusioncore_vgae.scoring`).
Registered lazily: PyTorch is imported only when a run asks for the detector.
"""

from fusioncore import Lazy, hookimpl
from fusioncore.registry import lazy_exports

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

__getattr__ = lazy_exports({
    "CHANNELS": "fusioncore_vgae.reconstruction",
    "COMBINE_RULES": "fusioncore_vgae.config",
    "PRESETS": "fusioncore_vgae.config",
    "Encoding": "fusioncore_vgae.network",
    "ScoreCalibration": "fusioncore_vgae.scoring",
    "VGAEConfig": "fusioncore_vgae.config",
    "VGAEDetector": "fusioncore_vgae.detector",
    "VGAENetwork": "fusioncore_vgae.network",
    "WindowErrors": "fusioncore_vgae.reconstruction",
})


@hookimpl
def fusioncore_register_detectors(register) -> None:
    register(
        "vgae",
        Lazy("fusioncore_vgae.detector:VGAEDetector"),
        "unsupervised VGAE trained on benign windows; score = calibrated reconstruction z-score",
    )
