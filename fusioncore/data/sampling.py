"""Which windows an epoch sees: a fixed budget per epoch, so an epoch's cost does not grow with the data.

A 60 M-frame dataset has ~130 k training windows; visiting all of them every
epoch makes an epoch 100 times dearer than on a 0.5 M-frame one, and the
number of epochs early stopping needs does not shrink in step.
:class:`EpochBudgetSampler` draws ``budget`` windows per epoch from the
*whole* block, fresh ones every epoch (seeded by ``(seed, epoch)``), so
over several epochs training still covers every file and every time block.
Validation during training uses a fixed subset instead
(:func:`spread_subset`): the same windows every epoch, so the early-stopping
loss is comparable from epoch to epoch, spread evenly over the block's time
order so every file keeps its share.

Under DDP every process draws the same windows (the draw depends on the
seed and epoch only) and takes its slice of every batch
(:class:`fusioncore.pipeline.distributed.RankShards`), so the processes
together see exactly one process's draw.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from fusioncore.errors import ConfigError

__all__ = ["EpochBudgetSampler", "spread_subset"]


class EpochBudgetSampler(Sampler[int]):
    """``budget`` distinct indices of ``range(n)`` per epoch, in random order, new ones each epoch.

    The epoch comes from :meth:`set_epoch` (Lightning calls it before every
    epoch) or, where nobody calls it, from how often the sampler has been
    iterated; either way the draw is a function of ``(seed, epoch)``.
    """

    def __init__(self, n: int, budget: int, seed: int = 0) -> None:
        if n < 0 or budget < 1:
            raise ConfigError(f"an epoch needs a budget of at least 1 window, got {budget}")
        self.n, self.budget, self.seed = int(n), int(budget), int(seed)
        self._epoch: int | None = None
        self._iterations = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return min(self.n, self.budget)

    def indices(self, epoch: int) -> np.ndarray:
        """The windows of ``epoch``, in the order they are visited."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.budget >= self.n:
            return rng.permutation(self.n)
        return rng.choice(self.n, size=self.budget, replace=False)

    def __iter__(self) -> Iterator[int]:
        epoch = self._iterations if self._epoch is None else self._epoch
        self._iterations += 1
        return iter(self.indices(epoch).tolist())


def spread_subset(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` of ``range(n)``, evenly spaced (all of them when ``n <= limit``)."""
    if limit < 1:
        raise ConfigError(f"a window limit must be at least 1, got {limit}")
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))
