"""The stream of samples a run sees: deterministic, resumable, shardable.

Position ``s`` in the stream (0, 1, 2, ...) maps to a dataset index through a per-epoch
permutation seeded by (seed, epoch). A step of the run plan covers positions
``[samples_seen, samples_seen + batch_size)``; under DDP each rank takes a contiguous,
disjoint slice of them. The stream position is also the sample id that keys masks,
timesteps and noise, so a sample seen twice is masked twice differently, and a resumed or
sharded run draws exactly what an uninterrupted single process would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from diffmavil.schedules import StepPlan


class SampleStream:
    """Maps stream positions to dataset indices (one seeded permutation per epoch)."""

    def __init__(self, dataset_size: int, seed: int) -> None:
        if dataset_size < 1:
            raise ValueError("the dataset is empty")
        self.dataset_size = dataset_size
        self.seed = seed
        self._permutations: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._permutations:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._permutations = {epoch: torch.randperm(self.dataset_size, generator=generator)}
        return self._permutations[epoch]

    def indices(self, start: int, count: int) -> list[int]:
        """Dataset indices of stream positions [start, start + count)."""
        out = []
        for position in range(start, start + count):
            epoch, offset = divmod(position, self.dataset_size)
            out.append(int(self._permutation(epoch)[offset]))
        return out


def rank_slice(batch_size: int, rank: int, world_size: int) -> tuple[int, int]:
    """(offset, count) of this rank's contiguous share of a global batch.

    The global batch must divide evenly, so that every rank's all-gather has one shape.
    """
    if batch_size % world_size:
        raise ValueError(f"global batch {batch_size} does not divide among {world_size} processes")
    share = batch_size // world_size
    return rank * share, share


class PlanBatchSampler(Sampler[list[int]]):
    """Yields each planned step's dataset indices (this rank's slice), from ``start_step``."""

    def __init__(
        self,
        plan: Sequence[StepPlan],
        stream: SampleStream,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.plan = plan
        self.stream = stream
        self.start_step = start_step
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return len(self.plan) - self.start_step

    def __iter__(self) -> Iterator[list[int]]:
        for step in self.plan[self.start_step :]:
            offset, count = rank_slice(step.batch_size, self.rank, self.world_size)
            yield self.stream.indices(step.samples_seen + offset, count)


def sample_ids(step: StepPlan, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """[B_local] int64 stream positions of this rank's samples in ``step``."""
    offset, count = rank_slice(step.batch_size, rank, world_size)
    start = step.samples_seen + offset
    return torch.arange(start, start + count, dtype=torch.int64)
