"""The bundled adapters, registered through the ``fusioncore`` entry point like any plugin."""

from __future__ import annotations

from fusioncore.adapt.base import NoAdapter, ProfileAdapter, ScoresAdapter
from fusioncore.hookspecs import hookimpl


@hookimpl
def fusioncore_register_adapters(register) -> None:
    register("none", NoAdapter, "zero-shot: absolute features, training vocabulary, raw scores")
    register("scores", ScoresAdapter,
             "absolute features; every score standardised by its capture's reference windows")
    register("profile", ProfileAdapter,
             "features relative to each capture's vehicle profile + per-capture score standardisation")
