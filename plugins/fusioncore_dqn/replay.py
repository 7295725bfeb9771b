"""Experience replay: a ring buffer of tensors filled a whole batch at a time."""

from __future__ import annotations

import attrs
import torch

__all__ = ["ReplayBuffer", "Transitions"]


@attrs.frozen(eq=False)
class Transitions:
    """A batch of transitions. ``next_inputs`` / ``done`` are ``None`` for a bandit (gamma = 0)."""

    inputs: torch.Tensor  #: float[B, d] Q-network inputs
    actions: torch.Tensor  #: long[B]
    rewards: torch.Tensor  #: float[B]
    next_inputs: torch.Tensor | None = None  #: float[B, d]
    done: torch.Tensor | None = None  #: bool[B]: no successor state

    def __len__(self) -> int:
        return len(self.actions)


class ReplayBuffer:
    """Fixed-capacity ring buffer; ``push`` writes a batch with one indexed assignment.

    Successor states are stored only when ``with_next`` (gamma > 0): a
    contextual bandit never reads them, and they would double the memory.
    """

    def __init__(
        self,
        capacity: int,
        dim: int,
        *,
        with_next: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity, self.dim, self.with_next = capacity, dim, with_next
        self.inputs = torch.zeros(capacity, dim, device=device)
        self.actions = torch.zeros(capacity, dtype=torch.long, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.next_inputs = torch.zeros(capacity, dim, device=device) if with_next else None
        self.done = torch.ones(capacity, dtype=torch.bool, device=device) if with_next else None
        self._ptr = 0  # next slot to write
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, batch: Transitions) -> None:
        """Append a batch; the oldest entries are overwritten once the buffer is full."""
        n = len(batch)
        if self.with_next and (batch.next_inputs is None or batch.done is None):
            raise ValueError("this buffer stores successor states: next_inputs and done required")
        # A batch larger than the buffer: only its newest `capacity` rows could survive anyway.
        start = max(0, n - self.capacity)
        kept = n - start
        slots = (self._ptr + torch.arange(kept, device=self.actions.device)) % self.capacity
        self.inputs[slots] = batch.inputs[start:].to(self.inputs)
        self.actions[slots] = batch.actions[start:].to(self.actions)
        self.rewards[slots] = batch.rewards[start:].to(self.rewards)
        if self.next_inputs is not None and self.done is not None:
            self.next_inputs[slots] = batch.next_inputs[start:].to(self.next_inputs)
            self.done[slots] = batch.done[start:].to(self.done)
        self._ptr = (self._ptr + kept) % self.capacity
        self._size = min(self._size + kept, self.capacity)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Transitions:
        """``n`` transitions drawn uniformly with replacement."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(
            self._size, (n,), generator=generator, device=self.actions.device
        )
        return Transitions(
            inputs=self.inputs[idx],
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            next_inputs=self.next_inputs[idx] if self.next_inputs is not None else None,
            done=self.done[idx] if self.done is not None else None,
        )
