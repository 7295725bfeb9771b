"""Named components, filled by plugins through register callbacks.

``Registry`` holds one table per component kind. A plugin's registration hook
receives a callback bound to (kind, plugin name), so the registry always knows
who registered what: duplicates are reported with both plugin names, and
``fusioncore plugins`` can list components per plugin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs

from fusioncore.errors import DuplicateComponentError, UnknownComponentError

__all__ = ["KINDS", "Component", "Registry", "normalise_name"]

#: Component kinds, each filled by the registration hook ``fusioncore_register_<hook>``.
KINDS: dict[str, str] = {
    "detector": "fusioncore_register_detectors",
    "state_encoder": "fusioncore_register_state_encoders",
    "reward": "fusioncore_register_rewards",
    "fusion": "fusioncore_register_fusions",
    "store": "fusioncore_register_stores",
    "dataset": "fusioncore_register_datasets",
    "format": "fusioncore_register_formats",
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


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
        doc = description if description is not None else _first_line(getattr(obj, "__doc__", ""))
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
        table = self._tables[kind]
        try:
            return table[normalise_name(name)]
        except KeyError:
            raise UnknownComponentError(kind.replace("_", " "), name, self.names(kind)) from None

    def names(self, kind: str) -> list[str]:
        """Names as their plugins registered them (lower-cased)."""
        return sorted(c.name for c in self._tables[kind].values())

    def components(self, kind: str | None = None) -> Iterator[Component]:
        kinds = [kind] if kind else list(self._tables)
        for k in kinds:
            yield from sorted(self._tables[k].values(), key=lambda c: c.name)

    def by_plugin(self, plugin: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for comp in self.components():
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
