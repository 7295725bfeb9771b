"""The :class:`Detector` base class: a LightningModule over window-graph batches.

Kept apart from the plain records (:mod:`fusioncore.contracts.records`) because
it imports PyTorch Lightning: commands that need no model never pay for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs
import pytorch_lightning as pl

from fusioncore.contracts.records import DetectorOutput

__all__ = ["Detector"]


class Detector(pl.LightningModule):
    """Base class of every detector: a LightningModule over window-graph batches.

    Subclasses set ``name`` and ``supervised`` (``False``: the core trains it on
    benign windows only), take ``(schema: GraphSchema, **params)`` in their
    constructor (call ``self.save_hyperparameters()``), implement
    ``training_step`` / ``validation_step`` / ``configure_optimizers``, and
    ``predict_step(batch) -> DetectorOutput``. The score must be unbounded
    (or at least never saturate): a score that reaches its bound on many
    windows ties them, and their ranking is lost -- return a log-odds, not a
    float32 probability. The core maps it to [0, 1] for fusion.
    """

    name: ClassVar[str] = "detector"
    supervised: ClassVar[bool] = True
    #: Feature names, in order, of :attr:`DetectorOutput.features`.
    feature_names: ClassVar[tuple[str, ...]] = ()
    #: What the score measures, in words a reader of a plot understands
    #: (e.g. "VGAE reconstruction error (z-score vs benign)"); "" = ``<name> score``.
    score_label: ClassVar[str] = ""

    def config(self) -> dict[str, Any]:
        """The parameters that define this detector (defaults to its hparams)."""
        return {k: _jsonable(v) for k, v in dict(self.hparams).items()}

    def fingerprint(self) -> str:
        """sha256 of class, config and every weight and buffer: equal iff same model."""
        h = hashlib.sha256()
        h.update(f"{type(self).__module__}.{type(self).__qualname__}".encode())
        h.update(json.dumps(self.config(), sort_keys=True, default=str).encode())
        for key, tensor in sorted(self.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:  # pragma: no cover
        raise NotImplementedError

    def calibrate(self, benign_batches: Iterable[Any]) -> None:
        """Called by the core after training with batches of benign validation windows.

        Detectors whose raw score has no natural scale (reconstruction errors)
        standardise it here, storing the statistics as buffers so they are part
        of the checkpoint and the fingerprint. The default does nothing.
        """
        return None


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value
