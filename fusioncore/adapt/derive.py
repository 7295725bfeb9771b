"""Derived datasets for measuring adaptation: the same captures with IDs renamed and time rescaled.

A "new vehicle" that differs from a known one only in what profile-relative
features ignore: every CAN ID renamed by one consistent permutation of the
11-bit space and every interval multiplied by a factor (a faster or slower
bus). The zero-shot protocol sees an unknown vehicle; a profile-relative one
should score it exactly as the original. ``python -m fusioncore.adapt.derive
SRC DST`` writes such a copy of a can-train-and-test dataset: test files
transformed, training files copied as they are (docs/adaptation.md uses it).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.errors import ConfigError

__all__ = ["derive_dataset", "derive_frames", "id_permutation"]


def id_permutation(seed: int) -> np.ndarray:
    """A permutation of the 2,048 11-bit IDs (``perm[old] = new``), deterministic in ``seed``."""
    return np.random.default_rng(seed).permutation(0x800).astype(np.uint32)


def derive_frames(frames: Frames, perm: np.ndarray, time_scale: float) -> Frames:
    """``frames`` with 11-bit IDs renamed through ``perm`` and each file's time axis scaled."""
    if not time_scale > 0:
        raise ConfigError(f"time_scale must be > 0, got {time_scale}")
    ids = frames.can_id.copy()
    small = ~frames.extended
    ids[small] = perm[ids[small]]
    t = frames.timestamp.copy()
    for s in np.unique(frames.source):
        rows = frames.source == s
        t0 = t[rows][0]
        t[rows] = t0 + (t[rows] - t0) * time_scale
    return Frames(**{**frames._columns(), "can_id": ids, "timestamp": t}, sources=frames.sources)


def derive_dataset(src: Path, dst: Path, *, seed: int = 0, time_scale: float = 0.7) -> list[Path]:
    """Copy dataset folder ``src`` to ``dst``: ``test_*`` files derived, ``train_*`` files as they are."""
    from fusioncore.data.formats import read_capture
    from fusioncore.data.synthetic.csvfile import format_csv

    src, dst = Path(src), Path(dst)
    if dst.exists() and any(dst.iterdir()):
        raise ConfigError(f"{dst} is not empty")
    perm = id_permutation(seed)
    written = []
    for path in sorted(src.glob("*/*.csv")):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.name.startswith("test_"):
            frames = read_capture(path).frames
            target.write_bytes(format_csv(derive_frames(frames, perm, time_scale)))
        else:
            shutil.copyfile(path, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fusioncore.adapt.derive", description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="dataset folder (can-train-and-test layout)")
    p.add_argument("dst", type=Path, help="where to write the derived copy (same layout)")
    p.add_argument("--seed", type=int, default=0, help="seed of the ID permutation")
    p.add_argument("--time-scale", type=float, default=0.7, help="factor on every interval")
    args = p.parse_args(argv)
    files = derive_dataset(args.src, args.dst, seed=args.seed, time_scale=args.time_scale)
    print(f"wrote {len(files)} files under {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
