"""Where fusioncore reads datasets from and writes caches to.

Data root, in order: the ``--data-root`` option, ``$FUSIONCORE_DATA``, then
``<user data dir>/fusioncore/datasets`` (``~/.local/share/fusioncore/datasets``
on Linux). Caches (parsed columns, predictions): ``$FUSIONCORE_CACHE_DIR``,
then ``<user cache dir>/fusioncore`` (``~/.cache/fusioncore``). Nothing is
ever written next to input files, which may be read-only.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "data_root"]


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
