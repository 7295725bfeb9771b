"""Scoring throughput and single-window latency of one trained run folder, for any fusioncore version.

Run as a script by the interpreter of the fusioncore under test (this tree's
or a baseline commit's; see :mod:`benchmarks.sidebyside`)::

    python probe.py RUN_DIR CAPTURE.csv --batch-sizes 64,256,1024 --latency-calls 1000 --out probe.json

It imports only what every fusioncore since the scoring API appeared has
(``fusioncore.scoring.ScoringSystem.load``, ``fusioncore.data.formats.read_capture``,
``fusioncore.data.windows.window_starts``), never this tree's benchmark
code, so one file measures both sides the same way.

* **Scoring**: for each batch size B, read the capture from disk, adapt to
  it where the run adapts to each capture (``ScoringSystem.adapted_to``: its
  reference segment; versions without capture adaptation skip this), cut
  its windows and score them B at a time (``ScoringSystem.score``); the
  seconds of that whole path. One untimed call on a few windows first, so
  lazy initialisation is not charged to the first B.
* **Allocator**: where the fusioncore under test has
  ``fusioncore.allocator.keep_freed_memory`` (which its commands, ``detect``
  included, call on start), the probe calls it first, as ``fusioncore detect``
  would; older versions run with the C library's defaults, as theirs did.
* **Latency**: ``--latency-calls`` single-window ``score`` calls on frames
  already in memory (adapted to once before, as a stream after its
  warm-up), each timed alone, with ``--latency-threads`` torch threads
  (default 1, what ``fusioncore detect`` uses); p50 / p99 / max.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("capture", type=Path)
    parser.add_argument("--batch-sizes", default="64,256,1024")
    parser.add_argument("--latency-calls", type=int, default=1000)
    parser.add_argument("--latency-threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    try:
        from fusioncore.data.formats import read_capture
        from fusioncore.data.windows import window_starts
        from fusioncore.scoring import ScoringSystem
    except ImportError as exc:
        print(f"probe: this fusioncore lacks the scoring API the probe needs: {exc}", file=sys.stderr)
        return 2

    try:  # what every fusioncore command does on start, in versions that have it
        from fusioncore.allocator import keep_freed_memory
    except ImportError:
        allocator = "system defaults (this fusioncore does not tune it)"
    else:
        allocator = keep_freed_memory().reason

    result: dict = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "allocator": allocator, "scoring": {}}
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        loaded = ScoringSystem.load(args.run_dir, batch_size=batch_size)
        warm = read_capture(args.capture).frames
        _adapted(loaded, warm).score(warm, window_starts(warm, loaded.builder.spec)[:2])
        start = time.perf_counter()
        frames = read_capture(args.capture).frames
        system = _adapted(loaded, frames)  # a user scoring a capture waits for this too
        starts = window_starts(frames, system.builder.spec)
        fused = [system.score(frames, starts[i : i + batch_size]).fused
                 for i in range(0, len(starts), batch_size)]
        seconds = time.perf_counter() - start
        n = int(sum(len(f) for f in fused))
        if n != len(starts):
            print(f"probe: scored {n} of {len(starts)} windows", file=sys.stderr)
            return 2
        result["scoring"][str(batch_size)] = {
            "seconds": seconds, "windows": n, "frames": n * system.window_size,
        }

    frames = read_capture(args.capture).frames
    system = _adapted(ScoringSystem.load(args.run_dir, batch_size=1), frames)  # a stream after its warm-up
    starts = window_starts(frames, system.builder.spec)
    before = torch.get_num_threads()
    torch.set_num_threads(args.latency_threads)
    try:
        for s in starts[:5]:  # warm-up calls
            system.score(frames, np.array([s]))
        times = []
        for i in range(args.latency_calls):
            window = np.array([starts[i % len(starts)]])
            t0 = time.perf_counter()
            system.score(frames, window)
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    ms = np.asarray(times) * 1e3
    result["latency"] = {
        "calls": len(times), "threads": args.latency_threads, "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
    }
    args.out.write_text(json.dumps(result, indent=2))
    return 0


def _adapted(system, frames):
    """The system adapted to the capture's reference segment, where the run adapts to each
    capture (``needs_reference``, absent before capture adaptation existed); else itself."""
    return system.adapted_to(frames) if getattr(system, "needs_reference", False) else system


if __name__ == "__main__":
    raise SystemExit(main())
