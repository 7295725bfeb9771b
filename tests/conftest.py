"""Shared fixtures. Real captures are read in place from ../shared/data."""

from __future__ import annotations

import os
import signal
import threading
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


@pytest.fixture(autouse=True)
def _default_sigint():
    """Every test starts with Python's own SIGINT handler.

    Lightning sets SIGINT to SIG_IGN when a KeyboardInterrupt reaches
    ``Trainer.fit`` (a guard for its teardown) and leaves it so; the pipeline
    restores it (fusioncore.pipeline.engine), but an in-process test that
    interrupts some other trainer would leave every later Ctrl-C test of the
    session ignoring its interrupt and waiting for frames forever (seen in CI:
    test_detect's Ctrl-C test hung after the slow tests before it ran).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
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
