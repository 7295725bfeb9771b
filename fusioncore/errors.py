"""The fusioncore exception hierarchy.

::

    FusionCoreError                 base of everything fusioncore raises on purpose
    ├── PluginError                 a plugin failed to import, register or validate
    │   └── DuplicateComponentError two plugins registered the same name
    ├── UnknownComponentError       a name that no plugin registered (lists the choices)
    ├── FormatError                 a capture file that cannot be parsed (file, line, reason)
    ├── DatasetNotFoundError        a dataset missing from the data root (where, layout, source)
    ├── ConfigError                 conflicting or invalid options
    └── NotFittedError              a component used before it was fitted or loaded

The CLI turns any of these into a one-line message and exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DatasetNotFoundError",
    "DuplicateComponentError",
    "FormatError",
    "FusionCoreError",
    "NotFittedError",
    "PluginError",
    "UnknownComponentError",
]


class FusionCoreError(Exception):
    """Base class of every error fusioncore raises deliberately."""


class PluginError(FusionCoreError):
    """A plugin could not be imported, registered, or broke a contract."""


class DuplicateComponentError(PluginError):
    """Two plugins registered a component of the same kind under the same name."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        self.kind, self.name, self.first, self.second = kind, name, first, second
        if kind == "plugin entry point":  # one name, two packages: disabling by name would drop both
            fix = "uninstall one of them or rename its entry point"
        else:
            fix = f"disable one with FUSIONCORE_DISABLE_PLUGINS={second}"
        super().__init__(
            f"{kind} {name!r} is registered by both plugin {first!r} and plugin {second!r}; {fix}"
        )


class UnknownComponentError(FusionCoreError, LookupError):
    """A component name that no loaded plugin registered."""

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        self.kind, self.name = kind, name
        self.available = sorted(available)
        close = difflib.get_close_matches(name, self.available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        choices = ", ".join(self.available) or "(none registered)"
        super().__init__(f"unknown {kind} {name!r}; available: {choices}.{hint}")


class FormatError(FusionCoreError, ValueError):
    """A capture file (or one of its lines) that cannot be parsed."""

    def __init__(self, path: object, reason: str, line: int | None = None) -> None:
        self.path, self.reason, self.line = str(path), reason, line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class DatasetNotFoundError(FusionCoreError, FileNotFoundError):
    """A dataset that is not where fusioncore looked for it."""


class ConfigError(FusionCoreError, ValueError):
    """Invalid or conflicting configuration / command-line options."""


class NotFittedError(FusionCoreError, RuntimeError):
    """A fitted component (fusion, encoder, ...) used before ``fit`` or ``load_state_dict``."""
