"""Where fusioncore reads datasets from and writes caches to.

Data root, in order: the ``--data-root`` option, ``$FUSIONCORE_DATA``, then
``<user data dir>/fusioncore/datasets`` (``~/.local/share/fusioncore/datasets``
on Linux). Caches (parsed columns, predictions): ``$FUSIONCORE_CACHE_DIR``,
then ``<user cache dir>/fusioncore`` (``~/.cache/fusioncore``). Nothing is
ever written next to input files, which may be read-only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "data_root", "redirected_dirs"]

_ENV_KEYS = ("FUSIONCORE_CACHE_DIR", "FUSIONCORE_DATA")


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The folder that holds one sub-folder per dataset."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("FUSIONCORE_DATA")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("fusioncore")) / "datasets"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """A private (0700) cache folder, e.g. ``cache_dir("frames")``."""
    base = os.environ.get("FUSIONCORE_CACHE_DIR") or platformdirs.user_cache_dir("fusioncore")
    path = Path(base).expanduser().joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.contextmanager
def redirected_dirs(root: str | os.PathLike) -> Iterator[Path]:
    """Point the cache (``root/cache``) and data root (``root/data``) under ``root``, then restore.

    For tests, benchmarks and conformance checks: whatever they cache or
    generate stays out of the user's home.
    """
    root = Path(root)
    before = {key: os.environ.get(key) for key in _ENV_KEYS}
    os.environ["FUSIONCORE_CACHE_DIR"] = str(root / "cache")
    os.environ["FUSIONCORE_DATA"] = str(root / "data")
    try:
        yield root
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
