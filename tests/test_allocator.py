"""fusioncore.allocator: glibc tuned once per process, the user's choice respected, the setting reported."""

from __future__ import annotations

import sys

import pytest

from fusioncore import allocator
from fusioncore.evaluation.provenance import provenance


@pytest.fixture
def fresh(monkeypatch):
    """A process that has not chosen yet (the module keeps its first answer)."""
    monkeypatch.setattr(allocator, "_applied", None)
    for name in ("FUSIONCORE_ALLOCATOR", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.skipif(allocator._mallopt() is None, reason="needs glibc")
def test_glibc_is_tuned_once(fresh):
    calls = []
    real = allocator._mallopt()
    fresh.setattr(allocator, "_mallopt", lambda: lambda p, v: calls.append((p, v)) or real(p, v))
    first = allocator.keep_freed_memory()
    assert first.tuned and "64 MiB" in first.reason and "512 MiB" in first.reason
    assert calls == [(-3, allocator.MMAP_THRESHOLD), (-1, allocator.TRIM_THRESHOLD)]
    assert allocator.keep_freed_memory() is first and len(calls) == 2  # idempotent
    assert allocator.allocator_setting() is first


@pytest.mark.parametrize(("name", "value", "why"), [
    ("FUSIONCORE_ALLOCATOR", "system", "FUSIONCORE_ALLOCATOR=system"),
    ("MALLOC_TRIM_THRESHOLD_", "131072", "MALLOC_"),
])
def test_the_users_choice_is_left_alone(fresh, name, value, why):
    fresh.setenv(name, value)
    fresh.setattr(allocator, "_mallopt", lambda: pytest.fail("mallopt must not be called"))
    setting = allocator.keep_freed_memory()
    assert not setting.tuned and why in setting.reason


def test_another_c_library_is_left_alone(fresh):
    fresh.setattr(allocator, "_mallopt", lambda: None)
    setting = allocator.keep_freed_memory()
    assert not setting.tuned and "not glibc" in setting.reason


def test_a_refused_setting_is_reported(fresh):
    fresh.setattr(allocator, "_mallopt", lambda: lambda p, v: 0)
    setting = allocator.keep_freed_memory()
    assert not setting.tuned and "refused" in setting.reason


def test_half_a_setting_is_reported_as_such(fresh):
    fresh.setattr(allocator, "_mallopt", lambda: lambda p, v: int(p == -3))
    setting = allocator.keep_freed_memory()
    assert not setting.tuned and "only the mmap threshold" in setting.reason


def test_provenance_names_the_allocator(fresh):
    assert provenance()["allocator"] == "system defaults"  # nothing chosen yet
    fresh.setattr(allocator, "_mallopt", lambda: None)
    allocator.keep_freed_memory()
    assert provenance()["allocator"] == "system defaults (not glibc)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc lookup is Linux only")
def test_the_cli_tunes_the_allocator(fresh, capsys):
    from fusioncore.cli import main

    assert allocator._applied is None
    assert main(["plugins"]) == 0
    assert allocator._applied is not None  # the command chose
    assert allocator._applied.tuned == (allocator._mallopt() is not None)
