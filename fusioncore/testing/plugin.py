"""The pytest plugin fusioncore registers (entry point ``pytest11``): fixtures for plugin authors.

Loaded by every pytest run in an environment where fusioncore is installed,
so importing it stays cheap: torch and the rest load only when a fixture is
used.

Fixtures:

``fusioncore_tiny_data``
    The session's :class:`~fusioncore.testing.data.TinyDataset`: real window
    graphs of a few seconds of simulated traffic (train / val / test loaders
    and the :class:`~fusioncore.GraphSchema`).
``fusioncore_isolated``
    Points ``FUSIONCORE_CACHE_DIR`` and ``FUSIONCORE_DATA`` at a fresh
    temporary folder for one test and returns it.
``fusioncore_plugins``
    Every installed plugin loaded in strict mode (a plugin that fails to load
    fails the test), to assert that a component is registered under its
    entry point: ``fusioncore_plugins.registry.get("detector", "iat")``.
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path
from typing import Any

import pytest

__all__ = ["fusioncore_isolated", "fusioncore_plugins", "fusioncore_tiny_data", "pytest_report_header"]


def pytest_report_header(config: pytest.Config) -> str:
    try:
        version = md.version("fusioncore")
    except md.PackageNotFoundError:  # running from a source tree that is not installed
        version = "not installed"
    return f"fusioncore: {version} (conformance suites: fusioncore.testing)"


@pytest.fixture(scope="session")
def fusioncore_tiny_data() -> Any:
    from fusioncore.testing.data import tiny_dataset

    return tiny_dataset()


@pytest.fixture
def fusioncore_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FUSIONCORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FUSIONCORE_DATA", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def fusioncore_plugins() -> Any:
    from fusioncore.plugins import load_plugins

    return load_plugins(strict=True)
