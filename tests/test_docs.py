"""Documentation stays in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from fusioncore import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _hookspec_names() -> list[str]:
    return [n for n in dir(hookspecs) if n.startswith("fusioncore_") and callable(getattr(hookspecs, n))]


def test_every_hook_has_a_section_in_hooks_md():
    text = (DOCS / "hooks.md").read_text()
    headings = set(re.findall(r"^##+ `?(fusioncore_\w+)", text, flags=re.M))
    missing = sorted(set(_hookspec_names()) - headings)
    assert not missing, f"hooks without a section in docs/hooks.md: {missing}"
    stale = sorted(headings - set(_hookspec_names()))
    assert not stale, f"docs/hooks.md documents hooks that do not exist: {stale}"


def test_every_hook_is_documented_in_code():
    for name in _hookspec_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
