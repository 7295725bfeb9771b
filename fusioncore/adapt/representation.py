"""``GraphRepresentation``: which features and which node identity the detectors see.

Three representations ship:

* :data:`ABSOLUTE` -- today's features (:data:`~fusioncore.data.graph_features.NODE_FEATURES`)
  and the training vocabulary's index as the node identity: the zero-shot
  protocol, where a new vehicle is judged in the training vehicles' terms.
* :data:`PROFILE_RELATIVE` -- the profile-relative features of
  :mod:`fusioncore.adapt.features` except the drifting transition columns
  (:data:`~fusioncore.adapt.features.TRANSITION_NODE_FEATURES` /
  ``TRANSITION_EDGE_FEATURES``) and, as identity, the ID's period-rank
  bucket in its own capture's profile
  (:func:`~fusioncore.adapt.reference.period_rank_identity`; 0 = unknown to
  the profile), so no input depends on which numbers a vehicle's IDs have.
* :data:`PROFILE_RELATIVE_TRANSITIONS` -- the same with the transition columns
  (``adapt_params.profile.transitions=true``; the default before they were
  measured to drift). A saved run keeps the representation it was trained on.

An adapter names its representation; the graph builder computes it.
"""

from __future__ import annotations

import json

import attrs

from fusioncore.adapt.features import (
    RELATIVE_EDGE_FEATURES,
    RELATIVE_NODE_FEATURES,
    TRANSITION_EDGE_FEATURES,
    TRANSITION_NODE_FEATURES,
)
from fusioncore.data.graph_features import EDGE_FEATURES, NODE_FEATURES
from fusioncore.errors import ConfigError

__all__ = ["ABSOLUTE", "IDENTITIES", "PROFILE_RELATIVE", "PROFILE_RELATIVE_TRANSITIONS",
           "GraphRepresentation"]

#: How a node's embedding index is chosen.
IDENTITIES = ("vocabulary", "period-rank")


@attrs.frozen
class GraphRepresentation:
    """Feature names (in column order) and the node-identity scheme of the window graphs."""

    name: str
    node_features: tuple[str, ...] = attrs.field(converter=tuple)
    edge_features: tuple[str, ...] = attrs.field(converter=tuple)
    identity: str = attrs.field(default="vocabulary", validator=attrs.validators.in_(IDENTITIES))
    buckets: int = attrs.field(default=16, converter=int)

    def __attrs_post_init__(self) -> None:
        if self.buckets < 1:
            raise ConfigError(f"representation buckets must be >= 1, got {self.buckets}")
        if self.identity == "vocabulary" and (
            set(self.node_features) - set(NODE_FEATURES) or set(self.edge_features) - set(EDGE_FEATURES)
        ):
            # relative columns need a per-capture profile; the vocabulary identity has none
            raise ConfigError(f"representation {self.name!r}: profile-relative features need "
                              "identity 'period-rank'")

    @property
    def relative(self) -> bool:
        """Whether graphs need a per-capture profile (else the training vocabulary serves)."""
        return self.identity != "vocabulary"

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GraphRepresentation:
        return cls(**json.loads(text))


ABSOLUTE = GraphRepresentation("absolute", NODE_FEATURES, EDGE_FEATURES, "vocabulary")
PROFILE_RELATIVE_TRANSITIONS = GraphRepresentation(
    "profile-relative", RELATIVE_NODE_FEATURES, RELATIVE_EDGE_FEATURES, "period-rank", buckets=16
)
PROFILE_RELATIVE = GraphRepresentation(
    "profile-relative",
    [f for f in RELATIVE_NODE_FEATURES if f not in TRANSITION_NODE_FEATURES],
    [f for f in RELATIVE_EDGE_FEATURES if f not in TRANSITION_EDGE_FEATURES],
    "period-rank", buckets=16,
)
