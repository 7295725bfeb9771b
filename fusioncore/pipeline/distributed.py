"""Training several detectors one after another under Lightning's DDP launcher (``--strategy ddp``).

How Lightning 2.x launches DDP (``_SubprocessScriptLauncher``): the first
``Trainer.fit`` of the process re-executes the command line once per extra
device (``LOCAL_RANK=1 fusioncore run ...``), leaves ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` / ``MASTER_PORT`` in the environment and the
process group initialised, and every later ``fit`` of the process takes the
processes as already launched ("creates processes externally"): it expects
the same workers to arrive at the same ``fit``. A Lightning script is meant to
run identically on every rank; a fusioncore run is not (rank 0 alone predicts,
fits fusions and writes the report), so a worker that went on past its first
detector would redo all of that, and one that stops (as it once did) leaves
rank 0 waiting for a peer that is gone (``gloo: Connection closed by peer``).

So each distributed detector training is its own launch, with its own
workers. In the launching process, :func:`launch` runs one ``fit``: it
puts the job (which detector, its parameters, seed, settings, data
fingerprint) into the environment the workers inherit, clears what the
previous launch left, and afterwards destroys the process group, waits for
the workers and restores the environment and thread count. A worker runs the
command line up to the first detector training, where
:func:`worker_job` hands it the job instead; it trains that detector with
rank 0 and exits (:func:`train_or_reuse` in :mod:`fusioncore.pipeline.detectors`).

Batches are sharded by :class:`RankShards`, not by Lightning's
``DistributedSampler``: every rank draws the same global batches as a
single-process run (same generator, same order) and takes its slice of each,
so with ``W`` processes each sees ``batch_size / W`` windows per step, the
optimiser makes the same number of steps, and DDP's gradient averaging gives
the gradient of the whole batch wherever the loss is a mean over windows.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from fusioncore.errors import FusionCoreError

__all__ = [
    "RankShards",
    "externally_launched",
    "is_ddp_worker",
    "is_subprocess_ddp",
    "launch",
    "leave_worker",
    "sharded_loader",
    "worker_job",
]

log = logging.getLogger(__name__)

_JOB_ENV = "FUSIONCORE_DDP_JOB"
_LAUNCH_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")
# What the environment held when this process started, before any launch changed it.
_AT_START = {key: os.environ.get(key) for key in (*_LAUNCH_ENV, _JOB_ENV)}
_WORKER_WAIT_S = 120.0

T = TypeVar("T")


def is_subprocess_ddp(strategy: str) -> bool:
    """Whether ``strategy`` uses Lightning's re-executing launcher (``ddp``, ``ddp_find_unused_...``)."""
    name = str(strategy).lower()
    return name.startswith("ddp") and "spawn" not in name and "fork" not in name and "notebook" not in name


def externally_launched() -> bool:
    """Whether a launcher outside fusioncore (torchrun, SLURM) started this process as one rank of several."""
    return _AT_START["LOCAL_RANK"] is not None and _AT_START[_JOB_ENV] is None


def worker_job() -> dict[str, Any] | None:
    """The training job this process was launched for, if it is a worker fusioncore's DDP launch started."""
    raw = _AT_START[_JOB_ENV]
    if raw is None or _AT_START["LOCAL_RANK"] in (None, "0"):
        return None
    return json.loads(raw)


def is_ddp_worker() -> bool:
    """True in a DDP worker process: it trains one detector with rank 0 and exits, writing nothing.

    Code that runs before detector training in every process (the run folder,
    its lock, lifecycle hooks) should do nothing here: rank 0 does it.
    """
    return worker_job() is not None


def _restore(values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def launch(job: Mapping[str, Any], trainer: pl.Trainer, fit: Callable[[], T]) -> T:
    """Run ``fit`` (one DDP ``trainer.fit``) in the launching process with fresh workers for ``job``.

    See the module doc. The workers are waited for afterwards; one that fails
    makes this raise. If ``fit`` raises, workers still running are killed.
    """
    _restore({key: _AT_START[key] for key in _LAUNCH_ENV})
    os.environ[_JOB_ENV] = json.dumps(dict(job), sort_keys=True)
    threads = torch.get_num_threads()
    try:
        result = fit()
    except BaseException:
        for proc in _workers(trainer):
            if proc.poll() is None:
                proc.kill()
        raise
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        _restore({key: _AT_START[key] for key in (*_LAUNCH_ENV, _JOB_ENV)})
        torch.set_num_threads(threads)
    _wait(_workers(trainer))
    return result


def _workers(trainer: pl.Trainer) -> list[subprocess.Popen]:
    launcher = getattr(trainer.strategy, "launcher", None)
    return list(getattr(launcher, "procs", None) or [])


def _wait(procs: Iterable[subprocess.Popen]) -> None:
    for rank, proc in enumerate(procs, start=1):
        try:
            code = proc.wait(timeout=_WORKER_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise FusionCoreError(f"DDP worker rank {rank} did not exit within {_WORKER_WAIT_S:.0f} s "
                                  "after training; killed it") from None
        if code != 0:
            raise FusionCoreError(f"DDP worker rank {rank} exited with status {code} (its stderr says why)")


def leave_worker() -> None:
    """End a worker process once its training is done (rank 0 goes on alone)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    raise SystemExit(0)


def _rank_and_size() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class RankShards(Sampler[list[int]]):
    """A batch sampler yielding this rank's contiguous slice of each batch of ``batches``.

    Rank and world size are read when iteration starts (the process group
    exists only inside ``fit``); outside a process group it yields
    ``batches`` unchanged. A batch smaller than the world size cannot give
    every rank a window, so every rank skips it alike (DDP needs all ranks to
    take part in every step).
    """

    def __init__(self, batches: Iterable[list[int]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        rank, size = _rank_and_size()
        for batch in self.batches:
            batch = list(batch)
            if size == 1:
                yield batch
            elif len(batch) >= size:
                yield batch[rank * len(batch) // size:(rank + 1) * len(batch) // size]

    def __len__(self) -> int:
        _, size = _rank_and_size()
        n = len(self.batches)  # type: ignore[arg-type]
        batch_size = getattr(self.batches, "batch_size", None)
        sampler = getattr(self.batches, "sampler", None)
        if size > 1 and batch_size and sampler is not None and not getattr(self.batches, "drop_last", False):
            tail = len(sampler) % batch_size
            n -= 0 < tail < size  # the short last batch every rank skips
        return n


def sharded_loader(loader: DataLoader) -> DataLoader:
    """``loader`` with its batches split across DDP ranks by :class:`RankShards` (same dataset, collate)."""
    # The same generator, too: every new iterator draws its worker base seed from it before the
    # sampler draws its permutation, so sharing it keeps the permutations of a single process.
    return DataLoader(
        loader.dataset,
        batch_sampler=RankShards(loader.batch_sampler),
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        generator=loader.generator,
    )
