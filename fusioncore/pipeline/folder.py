"""A run's output folder, consistent by construction.

A run never writes into ``--out`` itself. It takes an exclusive lock
(``<parent>/.<name>.lock``), works in a staging folder beside it
(``<parent>/.<name>.partial``), and only when everything is written -- report,
plots, the :class:`~fusioncore.pipeline.bundle.RunBundle` and, last, the
completion marker ``run.json`` -- renames the staging folder to ``--out``. So:

* a killed or failed run never leaves a folder that looks like a run: ``--out``
  either holds a complete run or does not exist, and ``detect`` refuses a
  folder without the marker;
* a second run into the same ``--out`` stops at once with one line instead of
  two runs interleaving their files;
* ``--out`` at an existing run is refused unless ``--overwrite`` (the old run
  is replaced only once the new one is complete);
* ``--resume`` continues the interrupted run's staging folder, and only when
  its configuration and seed are the ones asked for now; without ``--resume``
  an interrupted run's staging folder is discarded with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import attrs

from fusioncore.errors import ConfigError, FusionCoreError

__all__ = ["MARKER", "RUN_FOLDER_VERSION", "RunFolder", "config_digest", "is_complete_run"]

log = logging.getLogger(__name__)

#: Written last into a finished run; its absence means "not a (complete) run".
MARKER = "run.json"
RUN_FOLDER_VERSION = 1
#: Options that change how a run is executed or shown, not what it computes.
_NOT_IDENTITY = {"trainer.progress", "trainer.resume", "threads"}


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of a resolved config, ignoring options that do not change results."""
    flat = _flatten(config)
    kept = {k: v for k, v in flat.items() if k not in _NOT_IDENTITY}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def is_complete_run(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def _one_line(exc: OSError) -> str:
    return exc.strerror or str(exc)


@attrs.define
class RunFolder:
    """The locked staging folder of one run; :meth:`commit` publishes it as ``out``."""

    out: Path
    staging: Path
    resumed: bool = False
    _lock_fd: int | None = attrs.field(default=None, repr=False)
    _committed: bool = False

    @property
    def path(self) -> Path:
        """Where the run writes everything while it runs."""
        return self.staging

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, out: Path, config: dict[str, Any], *, resume: bool = False,
             overwrite: bool = False) -> RunFolder:
        """Lock ``out``, check what is there, and return the folder to write the run into."""
        out = Path(out).expanduser().absolute()
        staging = out.parent / f".{out.name}.partial"
        if int(os.environ.get("LOCAL_RANK", "0") or 0) > 0:
            # a DDP worker Lightning started by re-running this command: rank 0 holds the lock
            # and made the staging folder; the worker only trains into it
            return cls(out, staging, resume)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is an existing file, not a folder")
        if out.is_dir() and any(out.iterdir()) and not is_complete_run(out):
            raise ConfigError(f"--out {out} is a folder that does not hold a fusioncore run; "
                              "choose an empty or new folder")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create --out {out}: {_one_line(exc)}") from None
        if not os.access(out.parent, os.W_OK):
            raise ConfigError(f"cannot write --out {out}: {out.parent} is not writable")
        lock_fd = cls._lock(out)
        try:
            if is_complete_run(out):
                if resume:
                    raise ConfigError(f"--out {out} holds a finished run; --resume continues an interrupted "
                                      "one. Use --overwrite to replace the run or choose another --out")
                if not overwrite:
                    raise ConfigError(f"--out {out} already holds a run; pass --overwrite to replace it "
                                      "(the old run stays until the new one is complete) or choose another "
                                      "--out")
            resumed = False
            if staging.exists():
                if resume:
                    cls._check_resumable(staging, config)
                    resumed = True
                else:
                    log.warning("discarding the unfinished run in %s (pass --resume to continue it)", staging)
                    shutil.rmtree(staging)
            elif resume:
                raise ConfigError(f"--resume: no interrupted run to continue for --out {out} "
                                  f"(no {staging.name} beside it)")
            staging.mkdir(parents=True, exist_ok=True)
            (staging / "config.digest").write_text(config_digest(config))
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(out, staging, resumed, lock_fd)

    @staticmethod
    def _lock(out: Path) -> int:
        lock_path = out.parent / f".{out.name}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot write --out {out}: {_one_line(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise ConfigError(f"another fusioncore run (pid {holder}) is writing --out {out}; "
                                  "wait for it or choose another --out") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    @staticmethod
    def _check_resumable(staging: Path, config: dict[str, Any]) -> None:
        digest_file = staging / "config.digest"
        previous = digest_file.read_text().strip() if digest_file.is_file() else None
        if previous != config_digest(config):
            raise ConfigError(
                f"--resume: the interrupted run in {staging} was started with another configuration or "
                "seed; resuming would mix the two. Run without --resume to start afresh"
            )

    # ----------------------------------------------------------- finishing
    def commit(self, summary: dict[str, Any]) -> Path:
        """Write the completion marker and publish the staging folder as ``out`` (atomically)."""
        marker = {"format": RUN_FOLDER_VERSION, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  **summary}
        tmp = self.staging / f".{MARKER}.tmp"
        tmp.write_text(json.dumps(marker, indent=2))
        os.replace(tmp, self.staging / MARKER)
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.replaced-{os.getpid()}"
            os.replace(self.out, old)
        try:
            os.replace(self.staging, self.out)
        except OSError as exc:
            if old is not None:
                os.replace(old, self.out)
            raise FusionCoreError(f"cannot publish the run as {self.out}: {_one_line(exc)}") from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._committed = True
        self.release()
        return self.out

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # a failed run keeps its staging folder (for --resume) but never becomes --out
        self.release()
