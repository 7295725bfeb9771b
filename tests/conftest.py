"""Shared fixtures. Real captures are read in place from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fusioncore.paths import redirected_dirs

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FUSIONCORE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real-data folder; tests needing it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep every cache (parsed columns, predictions, detectors, synthetic data) out of the home dir.

    Session-scoped, so module-scoped fixtures that run whole pipelines see it too.
    """
    with redirected_dirs(tmp_path_factory.getbasetemp() / "fusioncore"):
        yield


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow (on in CI)")


def pytest_collection_modifyitems(config, items):
    """Slow tests run in CI (CI=true) or with --run-slow; locally they are skipped."""
    if config.getoption("--run-slow") or os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return
    skip = pytest.mark.skip(reason="slow: runs in CI, or locally with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
