"""Named components, filled by plugins through register callbacks.

``Registry`` holds one table per component kind. A plugin's registration hook
receives a callback bound to (kind, plugin name), so the registry always knows
who registered what: duplicates are reported with both plugin names, and
``fusioncore plugins`` can list components per plugin.

A component may be registered as a :class:`Lazy` reference
(``Lazy("fusioncore_gat.detector:GATDetector")``): its module is imported the
first time the component is looked up, so listing plugins, reading captures or
printing help never imports PyTorch. What is registered is checked against its
kind (a detector must be a :class:`~fusioncore.Detector` subclass, a fusion a
:class:`~fusioncore.FusionStrategy` subclass, ...): at registration for
concrete objects, at first lookup for lazy ones, so a plugin that registers
``42`` as a detector is reported by name instead of crashing a run later.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from fusioncore.errors import DuplicateComponentError, PluginError, UnknownComponentError

__all__ = ["KINDS", "Component", "Lazy", "Registry", "lazy_exports", "normalise_name"]

#: Component kinds, each filled by the registration hook ``fusioncore_register_<hook>``.
KINDS: dict[str, str] = {
    "detector": "fusioncore_register_detectors",
    "state_encoder": "fusioncore_register_state_encoders",
    "reward": "fusioncore_register_rewards",
    "fusion": "fusioncore_register_fusions",
    "store": "fusioncore_register_stores",
    "dataset": "fusioncore_register_datasets",
    "format": "fusioncore_register_formats",
    "alarm": "fusioncore_register_alarms",
    "adapter": "fusioncore_register_adapters",
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@attrs.frozen
class Lazy:
    """A component named by its import path, ``"package.module:attribute"``, imported on first use."""

    target: str = attrs.field()

    @target.validator
    def _check(self, _attribute: Any, value: str) -> None:
        module, sep, attr = value.partition(":")
        if not (module and sep and attr):
            raise ValueError(f"Lazy target must look like 'package.module:attribute', got {value!r}")

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


def lazy_exports(exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) importing ``exports[name]``, a module path, on first access.

    Lets a plugin package keep ``from fusioncore_gat import GATDetector`` working
    while importing the package itself costs nothing (see :class:`Lazy`).
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__


def _subclass_of(module: str, name: str) -> Callable[[Any], bool]:
    """``issubclass(obj, module.name)`` without importing ``module``.

    A class can only derive from a base whose module is loaded, so when the
    module is not in ``sys.modules`` the answer is no (and importing it -- e.g.
    PyTorch Lightning for ``Detector`` -- just to say so would cost seconds).
    """

    def check(obj: Any) -> bool:
        loaded = sys.modules.get(module)
        base = getattr(loaded, name, None) if loaded is not None else None
        return inspect.isclass(obj) and base is not None and issubclass(obj, base)

    return check


def _has(*attributes: str) -> Callable[[Any], bool]:
    return lambda obj: not inspect.isclass(obj) and all(hasattr(obj, a) for a in attributes)


#: kind -> (check, what it must be); kinds without an entry accept anything.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "detector": (_subclass_of("fusioncore.contracts.detector", "Detector"), "a fusioncore.Detector subclass"),
    "state_encoder": (_subclass_of("fusioncore.contracts.records", "StateEncoder"),
                      "a fusioncore.StateEncoder subclass"),
    "fusion": (_subclass_of("fusioncore.contracts.records", "FusionStrategy"),
               "a fusioncore.FusionStrategy subclass"),
    "reward": (callable, "a callable factory returning a RewardFunction"),
    "store": (callable, "a callable factory (directory, **params) -> PredictionStore"),
    "dataset": (_has("name", "description", "resolve"),
                "a DatasetSource instance (name, description, resolve)"),
    "format": (_has("name", "description", "sniff", "read"),
               "a FormatReader instance (name, description, sniff, read)"),
    "alarm": (_subclass_of("fusioncore.evaluation.alarms", "AlarmStage"),
              "a fusioncore.evaluation.AlarmStage subclass"),
    "adapter": (_subclass_of("fusioncore.adapt.base", "Adapter"), "a fusioncore.adapt.base.Adapter subclass"),
}


def check_component(kind: str, name: str, obj: Any, plugin: str) -> None:
    """Raise :class:`PluginError` unless ``obj`` is what a ``kind`` component must be."""
    check, what = _CHECKS.get(kind, (lambda _obj: True, ""))
    if not check(obj):
        shown = type(obj).__name__ if not inspect.isclass(obj) else f"class {obj.__qualname__}"
        raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} as {shown} ({obj!r:.60}); "
                          f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} must be {what}")


def normalise_name(name: str) -> str:
    """Lookup key: lower-case, ``_`` -> ``-``, so ``hcrl_sa`` / ``HCRL-SA`` find one dataset."""
    return name.strip().lower().replace("_", "-")


@attrs.frozen
class Component:
    """One registered component."""

    kind: str
    name: str
    obj: Any = attrs.field(eq=False, repr=False)
    plugin: str
    description: str = ""


class Registry:
    """Components by kind and name."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def register(
        self, kind: str, name: str, obj: Any, *, plugin: str, description: str | None = None
    ) -> None:
        if kind not in self._tables:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        key = normalise_name(name)
        shown = name.strip().lower()
        if not _NAME.match(shown):
            raise ValueError(
                f"plugin {plugin!r}: invalid {kind} name {name!r} "
                "(use lower-case letters, digits, '-', '.', '_')"
            )
        table = self._tables[kind]
        if key in table:
            raise DuplicateComponentError(kind, shown, table[key].plugin, plugin)
        if not isinstance(obj, Lazy):
            check_component(kind, shown, obj, plugin)
            doc = description if description is not None else _first_line(getattr(obj, "__doc__", ""))
        else:
            doc = description  # documented without importing it
        table[key] = Component(kind, shown, obj, plugin, doc or "")

    def callback(self, kind: str, plugin: str):
        """The ``register(name, component, description=None)`` a plugin's hook receives."""

        def register(name: str, component: Any, description: str | None = None) -> None:
            self.register(kind, name, component, plugin=plugin, description=description)

        register.__qualname__ = f"register[{kind}]"
        return register

    def get(self, kind: str, name: str) -> Any:
        """The registered object, or :class:`UnknownComponentError` listing the choices."""
        return self.component(kind, name).obj

    def component(self, kind: str, name: str) -> Component:
        """The registered component, its object imported and checked if it was registered lazily."""
        table = self._tables[kind]
        key = normalise_name(name)
        try:
            comp = table[key]
        except KeyError:
            raise UnknownComponentError(kind.replace("_", " "), name, self.names(kind)) from None
        if isinstance(comp.obj, Lazy):
            comp = table[key] = self._resolve(comp)
        return comp

    @staticmethod
    def _resolve(comp: Component) -> Component:
        target = comp.obj.target
        try:
            obj = comp.obj.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # third-party import code: report it, never take the CLI down
            raise PluginError(f"plugin {comp.plugin!r}: cannot load {comp.kind} {comp.name!r} from {target}: "
                              f"{type(exc).__name__}: {exc}") from None
        check_component(comp.kind, comp.name, obj, comp.plugin)
        doc = comp.description or _first_line(getattr(obj, "__doc__", ""))
        return attrs.evolve(comp, obj=obj, description=doc)

    def names(self, kind: str) -> list[str]:
        """Names as their plugins registered them (lower-cased)."""
        return sorted(c.name for c in self._tables[kind].values())

    def components(self, kind: str | None = None, *, load: bool = True) -> Iterator[Component]:
        """Components of one kind (or all), by name; ``load=False`` leaves lazy ones unimported."""
        kinds = [kind] if kind else list(self._tables)
        for k in kinds:
            for comp in sorted(self._tables[k].values(), key=lambda c: c.name):
                yield self.component(k, comp.name) if load else comp

    def by_plugin(self, plugin: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for comp in self.components(load=False):
            if comp.plugin == plugin:
                out.setdefault(comp.kind, []).append(comp.name)
        return out

    def drop_plugin(self, plugin: str) -> None:
        """Forget everything a plugin registered (used when its hook fails half-way)."""
        for table in self._tables.values():
            for key in [k for k, c in table.items() if c.plugin == plugin]:
                del table[key]


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
