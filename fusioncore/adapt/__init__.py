"""Capture-relative adaptation: judge each capture against its own vehicle's benign traffic.

Detectors trained on some vehicles meet vehicles they never saw; their ID
vocabulary and absolute periods then mean nothing, and every method flags
every window. An *adapter* (a component kind, hook
``fusioncore_register_adapters``) fixes the protocol a run follows:

* a **reference segment** of every capture -- its first ``adapt.warmup_s``
  seconds (:mod:`.segment`) -- is never scored or counted in a metric;
* a **vehicle profile** is learned from it (:mod:`.profile`);
* the window graphs the detectors see may be **relative** to that profile
  (:mod:`.features`, :mod:`.representation`), looked up per capture through a
  :class:`~fusioncore.adapt.reference.ReferenceTable`;
* every score is **normalised** by the distribution of that capture's own
  reference windows (:mod:`.scores`), so a threshold chosen on validation
  transfers to a new car.

Bundled adapters: ``none`` (zero-shot), ``scores`` (score normalisation only)
and ``profile`` (relative features + score normalisation). See
``docs/adaptation.md``.

Submodules are imported on first use so that the data layer can depend on
:mod:`.reference` / :mod:`.features` without import cycles.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ABSOLUTE",
    "PROFILE_RELATIVE",
    "PROFILE_RELATIVE_TRANSITIONS",
    "Adapter",
    "GraphRepresentation",
    "ReferenceTable",
    "VehicleProfile",
]

_WHERE = {
    "ABSOLUTE": "representation",
    "PROFILE_RELATIVE": "representation",
    "PROFILE_RELATIVE_TRANSITIONS": "representation",
    "GraphRepresentation": "representation",
    "ReferenceTable": "reference",
    "VehicleProfile": "profile",
    "Adapter": "base",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"fusioncore.adapt.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
