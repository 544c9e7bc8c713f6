"""Multi-process pre-training through ``torchrun`` (DDP: gloo on CPU, NCCL on GPUs)."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owned: bool = False  # this process initialised the group (and destroys it: ``joined``)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def backend_for(device: str) -> str:
    """NCCL for a CUDA device (``cuda`` or ``cuda:N``), gloo otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_from_environment(device: str) -> ProcessGroup:
    """Join the process group torchrun describes in RANK / WORLD_SIZE (single process if unset).

    Under NCCL the rank's device (``cuda:LOCAL_RANK``) becomes the current device and is
    bound to the group (``device_id``, where this torch takes it)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if dist.is_initialized():
        return ProcessGroup(rank=rank, world_size=world_size, local_rank=local_rank)
    backend = backend_for(device)
    options = {}
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        if "device_id" in inspect.signature(dist.init_process_group).parameters:
            options["device_id"] = torch.device("cuda", local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **options)
    return ProcessGroup(rank=rank, world_size=world_size, local_rank=local_rank, owned=True)


@contextlib.contextmanager
def joined(device: str) -> Iterator[ProcessGroup]:
    """``init_from_environment`` for the duration of a run: a group this call initialised
    is destroyed at the end, also when the run fails; a caller's own group is left as is."""
    group = init_from_environment(device)
    try:
        yield group
    finally:
        if group.owned:
            destroy()


def collective_device() -> torch.device:
    """Where the default group's collectives take their tensors: the current CUDA device
    under NCCL (it takes CUDA tensors only), the CPU under gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """[B, D] on each rank -> [world * B, D] in rank order; gradients flow back to every
    rank's own features (the backward sums the contributions of all ranks)."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features), dim=0)


def all_ranks_agree(flag: bool) -> bool:
    """True only if ``flag`` is true on every rank (a no-op in one process)."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([1 if flag else 0], device=collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def any_rank(flag: torch.Tensor) -> torch.Tensor:
    """A 0-d int tensor, 1 if ``flag`` (a 0-d tensor on the run's device) is true on any
    rank: reduced on the device without reading it on the host (``flag`` as it is in one
    process)."""
    if not dist.is_initialized():
        return flag
    value = flag.to(collective_device(), dtype=torch.int32).reshape(1)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return value.reshape(())


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if dist.is_initialized():
        dist.barrier()


def destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
