"""Hyperparameters of the GAT detector and its named presets.

=======  ======  ======  =====  ========  =========  ========  ===========
preset   hidden  layers  heads  id_embed  width      JK (cat)  graph embed
=======  ======  ======  =====  ========  =========  ========  ===========
small    24      2       4      8         96         192       384
large    48      3       8      16        384        1152      2304
=======  ======  ======  =====  ========  =========  ========  ===========

``hidden`` is the number of channels *per attention head*; heads are
concatenated, so a layer is ``hidden * heads`` wide (the predecessor's
``GATConv(hidden, heads=heads)`` layout). Jumping knowledge concatenates (or
takes the element-wise max of) all layer outputs, and the graph embedding is
``[mean pool, max pool]`` of that, hence twice the JK width.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import validators as v

from fusioncore.nn import config_from_preset

__all__ = ["PRESETS", "GATConfig"]


def _optional_weights(value: Any) -> tuple[float, float] | None:
    return None if value is None else tuple(float(w) for w in value)


def _check_weights(_inst: Any, _attr: attrs.Attribute, value: tuple[float, ...] | None) -> None:
    if value is not None and (len(value) != 2 or min(value) <= 0):
        raise ValueError(f"class_weights must be two positive numbers, got {value}")


@attrs.frozen
class GATConfig:
    """Every parameter of :class:`~fusioncore_gat.GATDetector` besides the schema.

    Class weighting of the cross-entropy, first match wins:
    ``class_weights`` (benign, attack) as given; else ``positive_share`` (the
    attack share of the training windows, passed by the core) gives balanced
    weights ``0.5 / (1 - p)`` and ``0.5 / p``; else each batch is balanced by
    its own inverse class frequency (``n / (2 n_c)``; a batch with one class
    is unweighted).
    """

    hidden: int = attrs.field(validator=[v.instance_of(int), v.gt(0)])
    layers: int = attrs.field(validator=[v.instance_of(int), v.gt(0)])
    heads: int = attrs.field(validator=[v.instance_of(int), v.gt(0)])
    id_embed_dim: int = attrs.field(validator=[v.instance_of(int), v.gt(0)])
    jk: str = attrs.field(default="cat", validator=v.in_(("cat", "max")))
    dropout: float = attrs.field(default=0.2, converter=float, validator=[v.ge(0), v.lt(1)])
    attention_dropout: float = attrs.field(default=0.0, converter=float, validator=[v.ge(0), v.lt(1)])
    lr: float = attrs.field(default=2e-3, converter=float, validator=v.gt(0))
    weight_decay: float = attrs.field(default=1e-4, converter=float, validator=v.ge(0))
    class_weights: tuple[float, float] | None = attrs.field(
        default=None, converter=_optional_weights, validator=_check_weights
    )
    positive_share: float | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(float),
        validator=v.optional([v.gt(0), v.lt(1)]),
    )

    @property
    def width(self) -> int:
        """Output width of one attention layer (heads concatenated)."""
        return self.hidden * self.heads

    @property
    def jk_dim(self) -> int:
        return self.width * self.layers if self.jk == "cat" else self.width

    @property
    def embed_dim(self) -> int:
        """Width of the pooled graph embedding (mean and max pools side by side)."""
        return 2 * self.jk_dim

    @classmethod
    def from_preset(cls, preset: str = "small", **overrides: Any) -> GATConfig:
        """The named preset with ``overrides`` applied; bad names or values raise ConfigError."""
        return config_from_preset(cls, PRESETS, "gat", preset, overrides)


#: Named presets; ``large`` and ``small`` follow the predecessor's two GAT sizes.
PRESETS: dict[str, GATConfig] = {
    "small": GATConfig(hidden=24, layers=2, heads=4, id_embed_dim=8),
    "large": GATConfig(hidden=48, layers=3, heads=8, id_embed_dim=16, lr=1e-3),
}
