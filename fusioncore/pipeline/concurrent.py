"""Train several detectors at once, one process per core, where the machine has the cores.

Detector training is most of a run's time, and with one torch thread per
process (the default, ``threads``) one training uses one core: on a 2-core
machine the VGAE and the GAT train side by side in about the time of the
slower one. The extra trainings run in processes forked from the run (the
split data and graph store are shared copy-on-write, nothing is pickled or
re-read); each child trains exactly what the run would have trained in its
place (same seed, same settings, same cache key), sends back the trained
weights, and exits. The run then rebuilds the model from them, as it does for
a cached detector.

``trainer.jobs`` chooses: 0 (default) one process per detector still to train,
up to the usable cores divided by the torch threads per process and as many
as the free memory holds; 1 one after another. Concurrent training is only used where it is safe and helps: a
single-process CPU training on a platform with ``fork`` (Linux), outside a DDP
worker; anything else trains one after another.

A child that fails hands its exception back (a ``ConfigError`` stays one); a
child that dies (killed, out of memory) ends the run with a message that
names the detector and the exit signal; Ctrl-C stops every child.
"""

from __future__ import annotations

import io
import logging
import multiprocessing as mp
import os
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import torch

from fusioncore.errors import ConfigError, FusionCoreError
from fusioncore.pipeline.engine import TrainerSettings

__all__ = [
    "ChildTrainingError", "LaneResult", "concurrent_jobs", "pack_training", "run_lanes", "unpack_training",
    "usable_cores",
]

log = logging.getLogger(__name__)


class ChildTrainingError(FusionCoreError):
    """A detector trained in a second process failed, or the process died."""


@attrs.frozen(eq=False)
class LaneResult:
    """What one lane's training sent back: per label, the trained weights and facts."""

    name: str
    state: Mapping[str, torch.Tensor]  #: the trained, calibrated model's ``state_dict``
    seconds: float  #: the training's own wall time (its process)
    stage_seconds: float  #: wall time of the whole train.<name> stage in its process
    processes: int
    resumed: bool
    checkpoint: str | None  #: its copy in the reuse cache


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity set where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS: no affinity API
        return os.cpu_count() or 1


def _single_process_cpu(settings: TrainerSettings) -> bool:
    if settings.strategy not in ("auto", "single_device") or str(settings.devices) not in ("1", "auto"):
        return False
    if settings.num_nodes != 1:
        return False
    if settings.accelerator == "cpu":
        return True
    # "auto" resolves to an accelerator when the machine has one: one device, keep trainings in turn
    return settings.accelerator == "auto" and not torch.cuda.is_available() and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available())


def concurrent_jobs(requested: int, pending: int, settings: TrainerSettings, *, threads: int | None = None,
                    cores: int | None = None, available: int | None = None,
                    resident: int | None = None) -> int:
    """How many processes train the ``pending`` detectors at once (1: one after another).

    ``requested`` is ``trainer.jobs`` (0: automatic: the usable cores over
    ``threads``, the torch threads per process (None: ``torch.get_num_threads()``),
    within the free memory); ``available`` / ``resident`` (bytes) stand in
    for the machine's free memory and the run's resident set (tests).
    """
    from fusioncore.pipeline import distributed

    if requested < 0:
        raise ConfigError(f"trainer.jobs must be 0 (automatic) or a positive number, got {requested}")
    if pending < 2 or requested == 1:
        return 1
    if "fork" not in mp.get_all_start_methods() or sys.platform == "darwin":
        return 1  # macOS: forking a process that has run torch / Objective-C code is not safe
    if distributed.is_ddp_worker() or not _single_process_cpu(settings):
        return 1
    if requested:
        return min(requested, pending)
    per_process = max(1, threads if threads is not None else torch.get_num_threads())
    jobs = max(1, min(pending, (cores or usable_cores()) // per_process))
    return _within_memory(jobs, available=available, resident=resident)


def _meminfo_bytes(field: str) -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _within_memory(jobs: int, *, available: int | None = None, resident: int | None = None) -> int:
    """At most as many processes as the free memory holds (automatic mode only).

    A forked process shares the run's pages until it writes them; what it adds
    is its own training (graphs, model, optimiser, batches), counted here as
    half of the run's current resident set each, against ``MemAvailable``.
    Unknown figures (not Linux): no limit.
    """
    available = _meminfo_bytes("MemAvailable") if available is None else available
    resident = _resident_bytes() if resident is None else resident
    if jobs <= 1 or not available or not resident:
        return jobs
    fits = 1 + int(available // max(resident // 2, 1))
    if fits < jobs:
        log.info("%d detector processes would not fit in %.0f MiB of free memory; using %d",
                 jobs, available / 2**20, max(fits, 1))
    return max(1, min(jobs, fits))


def _lanes(labels: Sequence[str], jobs: int) -> list[list[str]]:
    """Round-robin: lane 0 (this process) gets the first label, lane 1 the second, ..."""
    lanes: list[list[str]] = [[] for _ in range(min(jobs, len(labels)))]
    for i, label in enumerate(labels):
        lanes[i % len(lanes)].append(label)
    return lanes


def _state_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    return buf.getvalue()


def pack_training(t: Any, stage_seconds: float) -> dict[str, Any]:
    """What a child sends back for one trained detector (a TrainedDetector): plain values and bytes."""
    return {"state": _state_bytes(t.model.state_dict()), "seconds": t.seconds, "stage_seconds": stage_seconds,
            "processes": t.processes, "resumed": t.resumed,
            "checkpoint": str(t.checkpoint) if t.checkpoint else None}


def unpack_training(label: str, data: Mapping[str, Any]) -> LaneResult:
    state = torch.load(io.BytesIO(data["state"]), map_location="cpu", weights_only=True)
    return LaneResult(label, state, float(data["seconds"]), float(data["stage_seconds"]),
                      int(data["processes"]), bool(data["resumed"]), data["checkpoint"])


def _child(labels: Sequence[str], work: Callable[[str], Any], pack: Callable[[Any, float], Any],
           conn: Any) -> None:
    """In the forked process: do each label of the lane, send each packed result (or the failure)."""
    try:
        for label in labels:
            start = time.perf_counter()
            result = work(label)
            conn.send(("ok", label, pack(result, time.perf_counter() - start)))
    except KeyboardInterrupt:
        conn.send(("interrupted", None, None))
    except BaseException as exc:  # everything goes back to the run, which raises it
        text = "".join(traceback.format_exception(exc))
        try:
            blob = pickle.dumps(exc)
        except Exception:
            blob = None
        conn.send(("error", None, {"exception": blob, "type": type(exc).__name__, "message": str(exc),
                                   "traceback": text}))
    finally:
        conn.close()


def _raise_child_error(labels: Sequence[str], data: Mapping[str, Any], what: str) -> None:
    log.debug("%s %s in a second process failed:\n%s", what, ", ".join(labels), data["traceback"])
    exc = None
    if data.get("exception") is not None:
        try:
            exc = pickle.loads(data["exception"])
        except Exception:
            exc = None
    if isinstance(exc, BaseException):
        raise exc
    raise ChildTrainingError(f"{what} {', '.join(labels)} in a second process failed: "
                             f"{data['type']}: {data['message']}")


def run_lanes(labels: Sequence[str], jobs: int, here: Callable[[str], Any], there: Callable[[str], Any], *,
              pack: Callable[[Any, float], Any] = pack_training,
              unpack: Callable[[str, Any], Any] = unpack_training,
              on_start: Callable[[list[list[str]]], None] | None = None,
              what: str = "training") -> tuple[dict[str, Any], dict[str, Any]]:
    """Do ``labels`` in ``jobs`` lanes: lane 0 in this process with ``here``, the others each in a
    forked process with ``there``, whose results travel back as ``pack(result, seconds)`` and come
    out as ``unpack(label, packed)``. Returns (this process's results, the children's).

    ``what`` names the work in error messages (``training``, ``scoring``).
    """
    lanes = _lanes(list(labels), jobs)
    if on_start is not None:
        on_start(lanes)
    ctx = mp.get_context("fork")
    children: list[tuple[list[str], Any, Any]] = []
    mine: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    try:
        for lane in lanes[1:]:
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(lane, there, pack, send), daemon=True,
                               name=f"fusioncore-{what}-{'-'.join(lane)}")
            proc.start()
            send.close()  # the child holds the only sending end: EOF when it dies
            children.append((lane, proc, receive))
        for label in lanes[0]:
            mine[label] = here(label)
        for lane, proc, receive in children:
            theirs.update(_collect(lane, proc, receive, unpack, what))
    except BaseException:
        for _, proc, _ in children:
            if proc.is_alive():
                proc.terminate()
        raise
    finally:
        for _, proc, receive in children:
            proc.join(timeout=30)
            receive.close()
    return mine, theirs


def _collect(lane: Sequence[str], proc: Any, receive: Any, unpack: Callable[[str, Any], Any],
             what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    while len(out) < len(lane):
        try:
            status, label, data = receive.recv()
        except EOFError:
            proc.join(timeout=30)
            code = proc.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            hint = " (killed, e.g. out of memory?)" if code is not None and code < 0 else ""
            missing = [x for x in lane if x not in out]
            raise ChildTrainingError(
                f"the process {what} {', '.join(missing)} ended with {how}{hint} before it was done; "
                "trainer.jobs=1 does the detectors one after another in the run's own process") from None
        if status == "ok":
            out[label] = unpack(label, data)
        elif status == "interrupted":
            raise KeyboardInterrupt
        else:
            _raise_child_error([x for x in lane if x not in out], data, what)
    return out
