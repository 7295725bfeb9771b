"""Where the disk store lives, and keeping that place private.

Entries are only as trustworthy as the directory holding them: anyone who can
write there can plant predictions. So the store directory (and any parent it
has to create) is made with mode 0700, an existing one that others can reach
is tightened to 0700 with a logged warning, and one owned by another user is
refused outright.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from fusioncore.paths import cache_dir
from fusioncore_diskcache.errors import StoreDirectoryError

__all__ = ["default_store_directory", "ensure_private_directory"]

logger = logging.getLogger("fusioncore_diskcache")

_PRIVATE = 0o700
# Ownership and mode bits only mean something on POSIX systems.
_POSIX = hasattr(os, "getuid")


def default_store_directory() -> Path:
    """``$FUSIONCORE_CACHE_DIR/predictions``, else ``<user cache dir>/fusioncore/predictions``."""
    return cache_dir("predictions", create=False)


def ensure_private_directory(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (mode 0700) if needed and check that only its owner -- us -- can use it.

    Raises :class:`OSError` when it cannot be created, :class:`StoreDirectoryError`
    when it is unsafe to use.
    """
    path = Path(path).expanduser().absolute()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=_PRIVATE)
        except FileExistsError:
            continue  # another process made it first; checked below like any existing one
        # mkdir's mode is filtered through the umask; state it exactly.
        os.chmod(directory, _PRIVATE)
    if not path.is_dir():
        raise StoreDirectoryError(f"prediction store directory {path} is not a directory")
    if _POSIX:
        info = path.stat()
        if info.st_uid != os.getuid():
            raise StoreDirectoryError(
                f"prediction store directory {path} belongs to uid {info.st_uid}, not to you "
                f"(uid {os.getuid()}); its entries cannot be trusted. Choose another directory."
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            try:
                os.chmod(path, _PRIVATE)
            except OSError as error:
                raise StoreDirectoryError(
                    f"prediction store directory {path} is open to other users (mode {mode:03o}) and "
                    f"cannot be tightened to 0700 ({error.strerror or error}); its entries cannot be "
                    "trusted. Fix its mode or choose another directory."
                ) from None
            logger.warning(
                "prediction store directory %s was open to other users (mode %03o); tightened it to 0700",
                path,
                mode,
            )
    return path
