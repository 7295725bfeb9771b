"""Hook specifications: everything a fusioncore plugin can implement.

Registration hooks receive a ``register`` callback and call it once per
component: ``register(name, component, description=None)``. Components are
picked by name on the command line, so the order in which plugins load never
matters; a name registered twice (for the same kind) is an error naming both
plugins. Lifecycle hooks observe a run and return nothing.

Every hook here has a section in ``docs/hooks.md`` (a test enforces it).
Hook changes only ever add arguments (pluggy passes a hook implementation
only the arguments it names), so old plugins keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from fusioncore.pipeline.run_info import RunInfo

__all__ = ["HOOK_API_VERSION", "Register", "hookimpl", "hookspec"]

PROJECT = "fusioncore"
#: Version of the hook API. Bumped when a hook gains arguments or a new hook
#: appears; plugins may declare the range they support (``FUSIONCORE_HOOK_API``).
HOOK_API_VERSION = 2  # 2: fusioncore_register_alarms / _adapters, fusioncore_stage_finished

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The callback a registration hook receives."""

    def __call__(self, name: str, component: Any, description: str | None = None) -> None: ...


@hookspec
def fusioncore_register_detectors(register: Register) -> None:
    """Register :class:`~fusioncore.contracts.Detector` subclasses.

    ``register("gat", GATDetector)``; the core builds one as
    ``GATDetector(schema, **params)``.
    """


@hookspec
def fusioncore_register_state_encoders(register: Register) -> None:
    """Register :class:`~fusioncore.contracts.StateEncoder` subclasses (built as ``cls(**params)``)."""


@hookspec
def fusioncore_register_rewards(register: Register) -> None:
    """Register reward factories: ``factory(**params) -> RewardFunction``."""


@hookspec
def fusioncore_register_fusions(register: Register) -> None:
    """Register :class:`~fusioncore.contracts.FusionStrategy` subclasses (built as ``cls(**params)``)."""


@hookspec
def fusioncore_register_stores(register: Register) -> None:
    """Register prediction-store factories: ``factory(directory, **params) -> PredictionStore``."""


@hookspec
def fusioncore_register_datasets(register: Register) -> None:
    """Register :class:`~fusioncore.contracts.DatasetSource` instances."""


@hookspec
def fusioncore_register_formats(register: Register) -> None:
    """Register :class:`~fusioncore.contracts.FormatReader` instances (capture-file formats)."""


@hookspec
def fusioncore_register_alarms(register: Register) -> None:
    """Register :class:`~fusioncore.evaluation.alarms.AlarmStage` subclasses (built as ``cls(**params)``).

    An alarm stage turns one stretch of per-window decisions (consecutive
    windows of one capture, in time order) into alarms: ``alarms(bool[n]) -> bool[n]``.
    """


@hookspec
def fusioncore_register_adapters(register: Register) -> None:
    """Register capture adapters: :class:`fusioncore.adapt.base.Adapter` subclasses.

    ``register("profile", ProfileAdapter)``; the core builds one as
    ``cls(warmup_s=..., **params)`` from ``adapt.name`` / ``--adapt`` and
    ``adapt_params.<name>``.
    """


@hookspec
def fusioncore_run_started(run: RunInfo) -> None:
    """Called once when ``fusioncore run`` / ``train`` starts, after the config is resolved."""


@hookspec
def fusioncore_stage_finished(run: RunInfo, stage: str, seconds: float, summary: Mapping[str, Any]) -> None:
    """Called after each stage of a run (``data``, ``preflight``, ``detectors``, ``predict``,
    ``fusions``, ``thresholds``, ``evaluate``), with its wall time and a small JSON-able summary."""


@hookspec
def fusioncore_run_finished(run: RunInfo, report: Mapping[str, Any]) -> None:
    """Called once when a run has written its report; ``report`` is report.json's content."""
