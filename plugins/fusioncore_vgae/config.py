"""Hyperparameters of the VGAE detector and its named presets.

=======  ======  ======  =====  ======  ========  =====
preset   hidden  layers  heads  latent  id_embed  width
=======  ======  ======  =====  ======  ========  =====
small    16      2       4      16      8         64
large    32      3       8      32      16        256
=======  ======  ======  =====  ======  ========  =====

``hidden`` is the number of channels per attention head (heads concatenated,
so an encoder layer is ``hidden * heads`` wide); ``latent`` is the per-node
latent size. Loss weights follow the predecessor:
``node MSE + 0.1 ID CE + 0.05 edge BCE + 0.01 KL``.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import validators as v

from fusioncore.nn import config_from_preset

__all__ = ["COMBINE_RULES", "PRESETS", "VGAEConfig"]

#: How standardised error channels become one raw score (see fusioncore_vgae.scoring).
COMBINE_RULES = ("sum", "max")

_positive_int = [v.instance_of(int), v.gt(0)]
_non_negative = [v.ge(0)]


@attrs.frozen
class VGAEConfig:
    """Every parameter of :class:`~fusioncore_vgae.VGAEDetector` besides the schema."""

    hidden: int = attrs.field(validator=_positive_int)
    layers: int = attrs.field(validator=_positive_int)
    heads: int = attrs.field(validator=_positive_int)
    latent: int = attrs.field(validator=_positive_int)
    id_embed_dim: int = attrs.field(validator=_positive_int)
    dropout: float = attrs.field(default=0.1, converter=float, validator=[v.ge(0), v.lt(1)])
    lr: float = attrs.field(default=2e-3, converter=float, validator=v.gt(0))
    weight_decay: float = attrs.field(default=1e-5, converter=float, validator=_non_negative)
    node_weight: float = attrs.field(default=1.0, converter=float, validator=_non_negative)
    id_weight: float = attrs.field(default=0.1, converter=float, validator=_non_negative)
    edge_weight: float = attrs.field(default=0.05, converter=float, validator=_non_negative)
    kl_weight: float = attrs.field(default=0.01, converter=float, validator=_non_negative)
    combine: str = attrs.field(default="sum", validator=v.in_(COMBINE_RULES))

    @property
    def width(self) -> int:
        """Output width of one encoder layer (heads concatenated)."""
        return self.hidden * self.heads

    @classmethod
    def from_preset(cls, preset: str = "small", **overrides: Any) -> VGAEConfig:
        """The named preset with ``overrides`` applied; bad names or values raise ConfigError."""
        return config_from_preset(cls, PRESETS, "vgae", preset, overrides)


PRESETS: dict[str, VGAEConfig] = {
    "small": VGAEConfig(hidden=16, layers=2, heads=4, latent=16, id_embed_dim=8),
    "large": VGAEConfig(hidden=32, layers=3, heads=8, latent=32, id_embed_dim=16, lr=1e-3),
}
