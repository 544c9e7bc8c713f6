"""Multi-process pre-training through ``torchrun`` (DDP: gloo on CPU, NCCL on GPUs)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_from_environment(device: str) -> ProcessGroup:
    """Join the process group torchrun describes in RANK / WORLD_SIZE (single process if unset)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        if device == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return ProcessGroup(rank=rank, world_size=world_size, local_rank=local_rank)


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """[B, D] on each rank -> [world * B, D] in rank order; gradients flow back to every
    rank's own features (the backward sums the contributions of all ranks)."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features), dim=0)


def all_ranks_agree(flag: bool) -> bool:
    """True only if ``flag`` is true on every rank (a no-op in one process)."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([1 if flag else 0])
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if dist.is_initialized():
        dist.barrier()


def destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
