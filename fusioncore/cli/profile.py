"""``fusioncore profile CAPTURE -o vehicle.json``: a vehicle's benign reference, as JSON.

Reads the first ``--warmup`` seconds of a capture (or all of it with
``--whole``, for a separate benign capture of the vehicle), prints what the
vehicle profile holds and writes it. ``fusioncore detect --profile`` compares
live traffic with it. No model is loaded: the command needs no PyTorch.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from fusioncore.cli import _stdout, command
from fusioncore.errors import ConfigError, FormatError
from fusioncore.plugins import get_plugins

__all__ = ["build_profile", "cmd_profile"]


def build_profile(path: Path, *, warmup_s: float | None, format: str | None = None, errors: str = "raise"):
    """The :class:`~fusioncore.adapt.profile.VehicleProfile` of a capture's first ``warmup_s`` seconds.

    ``warmup_s=None`` takes the whole capture. A capture of several interfaces or
    files is read as one stream, in file order.
    """
    from fusioncore.adapt.profile import VehicleProfile
    from fusioncore.adapt.segment import reference_rows
    from fusioncore.data.formats import read_capture

    if not path.is_file():
        raise FormatError(path, "no such file")
    registry = get_plugins().registry
    readers = tuple(registry.get("format", n) for n in registry.names("format"))
    frames = read_capture(path, format=format, errors=errors, readers=readers).frames
    if warmup_s is not None:
        if not warmup_s > 0:
            raise ConfigError(f"--warmup must be > 0 seconds, got {warmup_s}")
        frames = frames.take(reference_rows(frames, warmup_s))
    return VehicleProfile.fit(frames, source=path.name, warmup_s=warmup_s)


def _configure(p: argparse.ArgumentParser) -> None:
    from fusioncore.adapt.base import DEFAULT_WARMUP_S

    p.add_argument("capture", type=Path, help="capture file, any supported format (.gz ok)")
    p.add_argument("-o", "--out", type=Path, help="write the profile here (JSON)")
    span = p.add_mutually_exclusive_group()
    span.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S, metavar="SECONDS",
                      help=f"profile the capture's first SECONDS (default {DEFAULT_WARMUP_S:g}, "
                      "the default adapt.warmup_s)")
    span.add_argument("--whole", action="store_true",
                      help="profile the whole capture (a separate benign capture of the vehicle)")
    p.add_argument("--format", help="force the input format instead of sniffing it")
    p.add_argument("--errors", choices=("raise", "skip"), default="raise",
                   help="bad input rows: stop with an error (default) or skip and count them")
    p.add_argument("--ids", action="store_true", help="also print one line per ID")


@command("profile", "learn a vehicle profile from a benign capture (or its first seconds); print, save it")(
    _configure
)
def cmd_profile(args: argparse.Namespace) -> int:
    profile = build_profile(args.capture, warmup_s=None if args.whole else args.warmup,
                            format=args.format, errors=args.errors)
    console = _stdout()
    console.print(profile.summary(), highlight=False)
    if args.ids:
        for row in profile.to_dict()["ids"]:
            period = "-" if row["period_s"] is None else f"{row['period_s'] * 1e3:8.2f} ms"
            console.print(f"  {row['id']:>8}  {row['count']:7d} frames  period {period}", highlight=False)
    if args.out is not None:
        _write_atomic(args.out, profile.to_json())
        console.print(f"wrote {args.out}", highlight=False)
    return 0


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
