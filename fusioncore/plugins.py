"""Plugin discovery and loading.

Plugins are Python modules (or objects) with functions decorated by
``@fusioncore.hookimpl``, found through the ``fusioncore`` entry-point group:

.. code-block:: toml

    [project.entry-points.fusioncore]
    iat = "fusioncore_iat"

Each entry point is loaded on its own, and each plugin's registration hooks
are called on their own, so a plugin that fails to import or whose hook raises
is recorded and skipped with a warning while the others still load.
``FUSIONCORE_STRICT_PLUGINS=1`` (or ``strict=True``) turns that into a
:class:`~fusioncore.errors.PluginError`; ``FUSIONCORE_DISABLE_PLUGINS=a,b``
blocks plugins by entry-point name. Two plugins registering the same component
name is always an error (:class:`~fusioncore.errors.DuplicateComponentError`).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import pluggy

from fusioncore import hookspecs
from fusioncore.errors import DuplicateComponentError, PluginError
from fusioncore.registry import KINDS, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginLoadWarning",
    "Plugins",
    "get_plugins",
    "load_plugins",
    "reset_plugins",
]

ENTRY_POINT_GROUP = "fusioncore"


class PluginLoadWarning(UserWarning):
    """A plugin was skipped (import error, failing hook, incompatible hook API)."""


@attrs.define
class PluginInfo:
    """What ``fusioncore plugins`` shows for one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    hooks: list[str] = attrs.field(factory=list)
    components: dict[str, list[str]] = attrs.field(factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "components": self.components,
            "hooks": self.hooks,
            "error": self.error,
        }


@attrs.define
class Plugins:
    """The loaded plugin set: pluggy manager, component registry, per-plugin info."""

    pm: pluggy.PluginManager
    registry: Registry
    infos: dict[str, PluginInfo]

    @property
    def hook(self):
        return self.pm.hook


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> set[str]:
    return {p.strip() for p in os.environ.get(name, "").split(",") if p.strip()}


def _api_error(plugin_name: str, module: Any) -> str | None:
    """Check a plugin's declared ``FUSIONCORE_HOOK_API = (min, max)`` against ours."""
    declared = getattr(module, "FUSIONCORE_HOOK_API", None)
    if declared is None:
        return None
    try:
        low, high = (int(declared), int(declared)) if isinstance(declared, int) else declared
        low, high = int(low), int(high)
    except (TypeError, ValueError):
        return f"plugin {plugin_name!r} declares an unreadable FUSIONCORE_HOOK_API={declared!r}"
    if not low <= hookspecs.HOOK_API_VERSION <= high:
        return (
            f"plugin {plugin_name!r} supports hook API {low}..{high}, "
            f"but this fusioncore provides {hookspecs.HOOK_API_VERSION}"
        )
    return None


def load_plugins(
    *,
    strict: bool | None = None,
    disabled: Iterable[str] | None = None,
    entry_points: Sequence[md.EntryPoint] | None = None,
    extra: Iterable[tuple[str, Any]] = (),
) -> Plugins:
    """Discover, load and register every plugin.

    ``entry_points`` replaces discovery (tests pass fake ones); ``extra`` adds
    ``(name, plugin_object)`` pairs directly, e.g. a class in a test.
    """
    strict = _env_flag("FUSIONCORE_STRICT_PLUGINS") if strict is None else strict
    blocked = _env_list("FUSIONCORE_DISABLE_PLUGINS") | set(disabled or ())
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}

    def fail(info: PluginInfo, message: str) -> None:
        info.error = message
        if strict:
            raise PluginError(message)
        warnings.warn(f"skipping plugin {info.name!r}: {message}", PluginLoadWarning, stacklevel=3)

    eps = list(md.entry_points(group=ENTRY_POINT_GROUP)) if entry_points is None else entry_points
    eps = _unique_entry_points(eps)
    candidates: list[tuple[PluginInfo, Any]] = []
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in blocked:
            pm.set_blocked(ep.name)
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
            module=ep.value,
        )
        infos[ep.name] = info
        try:
            obj = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # any import-time failure of third-party code, sys.exit() included
            fail(info, f"import of {ep.value!r} failed: {type(exc).__name__}: {exc}")
            continue
        candidates.append((info, obj))
    for name, obj in extra:
        if name in blocked:
            continue
        info = PluginInfo(name=name, module=getattr(obj, "__name__", type(obj).__name__))
        infos[name] = info
        candidates.append((info, obj))

    for info, obj in candidates:
        api_problem = _api_error(info.name, obj)
        if api_problem:
            fail(info, api_problem)
            continue
        try:
            pm.register(obj, name=info.name)
        except Exception as exc:  # pluggy validation errors: bad hook names / signatures
            fail(info, f"registration failed: {type(exc).__name__}: {exc}")
            continue
        info.hooks = sorted(h.name for h in pm.get_hookcallers(obj) or [])

    registry = Registry()
    for kind, hook_name in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = infos[impl.plugin_name]
            if info.error:
                continue
            register = registry.callback(kind, impl.plugin_name)
            try:
                impl.function(register)
            except (DuplicateComponentError, KeyboardInterrupt):
                raise
            except BaseException as exc:
                registry.drop_plugin(impl.plugin_name)
                pm.unregister(name=impl.plugin_name)
                fail(info, f"hook {hook_name} raised {type(exc).__name__}: {exc}")
    for info in infos.values():
        info.components = registry.by_plugin(info.name) if not info.error else {}
    return Plugins(pm=pm, registry=registry, infos=infos)


def _dist_label(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    who = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "(no distribution)"
    return f"{who} ({ep.value})"


def _unique_entry_points(eps: Sequence[md.EntryPoint]) -> list[md.EntryPoint]:
    """Entry points by name; the same name from two different places is an error, not a shadow.

    pluggy keeps one plugin per name, so a third-party entry point called ``gat``
    would silently replace (or be replaced by) the bundled one. The same entry
    point seen twice (one distribution found on two paths) is kept once.
    """
    by_name: dict[str, md.EntryPoint] = {}
    for ep in eps:
        seen = by_name.get(ep.name)
        if seen is None:
            by_name[ep.name] = ep
        elif seen.value != ep.value:
            raise DuplicateComponentError("plugin entry point", ep.name, _dist_label(seen), _dist_label(ep))
    return list(by_name.values())


_DEFAULT: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin set, loaded on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_plugins()
    return _DEFAULT


def reset_plugins(plugins: Plugins | None = None) -> None:
    """Forget (or replace) the process-wide plugin set; for tests and the CLI's options."""
    global _DEFAULT
    _DEFAULT = plugins
