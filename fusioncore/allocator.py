"""Keep freed memory in the process: glibc's allocator tuned for torch's CPU tensors.

torch allocates every intermediate tensor on the CPU with ``malloc``. glibc
serves blocks above its mmap threshold (128 KiB, raised on the fly up to the
size of the largest block freed so far) with fresh ``mmap`` pages and gives
freed heap memory back to the system once more than its trim threshold sits
unused at the top. A GNN step allocates and frees many 1-10 MB tensors
(``[edges, heads * channels]`` states), so either way the memory goes back
to the kernel and the next step pays a page fault for every 4 KiB it
touches again. Measured on this project's 2-core machine (one torch thread,
a trained hcrl_sa run's detectors in inference mode on a 256-window batch,
median of 10 calls, three processes each): glibc's defaults gave the VGAE
32-36 ms and the GAT 23-50 ms per batch, freed memory kept 25-29 and 24-29
ms; the spread between processes is what shrinks most.

:func:`keep_freed_memory` sets both thresholds once (``mallopt``) so blocks
up to :data:`MMAP_THRESHOLD` come from the heap and up to
:data:`TRIM_THRESHOLD` of free heap is kept for reuse. The cost is memory
that stays with the process after a peak: at most the trim threshold above
what is in use, per glibc arena (the main thread's and one per thread that
allocates). ``fusioncore``'s commands call it on start; library users call
it themselves (``fusioncore.allocator.keep_freed_memory()``) where they
score or train in a long-lived process. Processes started with ``fork``
(the side-by-side detector training) inherit the setting.

``FUSIONCORE_ALLOCATOR=system`` leaves glibc's defaults alone, as do glibc's
own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` variables when
set (the user's choice wins), and any other C library (macOS, musl,
Windows): nothing happens there.
"""

from __future__ import annotations

import ctypes
import os
import sys

import attrs

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "AllocatorSetting", "allocator_setting", "keep_freed_memory"]

#: blocks up to this size come from the heap, not from fresh mmap pages
MMAP_THRESHOLD = 64 << 20
#: free memory at the top of the heap kept for reuse before any goes back to the system
TRIM_THRESHOLD = 512 << 20

# mallopt parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_ENV = "FUSIONCORE_ALLOCATOR"
_GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@attrs.frozen
class AllocatorSetting:
    """What :func:`keep_freed_memory` did: ``tuned`` and why (``reason``), for reports."""

    tuned: bool
    reason: str


_applied: AllocatorSetting | None = None


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        # the process's own symbols hold its C library's: no ctypes.util.find_library, which runs
        # ldconfig (or gcc) in a subprocess on every command's start
        libc = ctypes.CDLL(None)
        gnu = libc.gnu_get_libc_version  # glibc only: musl has mallopt as a stub
        gnu.restype = ctypes.c_char_p
        gnu()
        fn = libc.mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


def keep_freed_memory() -> AllocatorSetting:
    """Tune glibc's allocator once for this process (see the module docstring); idempotent."""
    global _applied
    if _applied is not None:
        return _applied
    mib = f"mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 20} MiB"
    if os.environ.get(_ENV, "").strip().lower() == "system":
        _applied = AllocatorSetting(False, f"system defaults ({_ENV}=system)")
    elif any(v in os.environ for v in _GLIBC_ENV):
        _applied = AllocatorSetting(False, "glibc settings from MALLOC_*_ environment variables")
    elif (mallopt := _mallopt()) is None:
        _applied = AllocatorSetting(False, "system defaults (not glibc)")
    else:
        mmap_set = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        trim_set = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        if mmap_set and trim_set:
            _applied = AllocatorSetting(True, f"glibc, freed memory kept ({mib})")
        elif mmap_set or trim_set:  # half a setting is still a change from the defaults: say which
            kept = "mmap" if mmap_set else "trim"
            _applied = AllocatorSetting(False, f"glibc accepted only the {kept} threshold ({mib} asked)")
        else:
            _applied = AllocatorSetting(False, "system defaults (glibc refused the setting)")
    return _applied


def allocator_setting() -> AllocatorSetting:
    """What this process runs with: :func:`keep_freed_memory`'s result, or glibc's defaults."""
    return _applied if _applied is not None else AllocatorSetting(False, "system defaults")
