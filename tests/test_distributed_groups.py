"""The process group of a distributed run, on the CUDA path: the collective's tensor on the
backend's device (NCCL takes CUDA tensors only), NCCL for every ``cuda`` device spelling,
the rank's device bound (``device_id``), and the group destroyed by whoever created it,
also on error. Shown on a CPU with patched ``torch.distributed`` calls (a CPU tensor is
legal under gloo, so a real gloo run would prove nothing)."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.distributed as dist
from torch._subclasses.fake_tensor import FakeTensorMode

from diffmavil.training import distributed


class _Stop(Exception):
    """Raised by a patched collective once it has seen its tensor."""


@pytest.mark.parametrize(("backend", "expected"), [("nccl", "cuda:1"), ("gloo", "cpu")])
def test_all_ranks_agree_reduces_a_tensor_on_the_backends_device(monkeypatch, backend, expected):
    """NCCL reduces CUDA tensors only (a CPU tensor raises at the first logged step); the
    tensor goes on the current rank's device. A fake tensor mode lets a CPU build make it."""
    seen = []

    def all_reduce(tensor, op=None):
        seen.append(tensor.device)
        raise _Stop

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: backend)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    with FakeTensorMode(allow_non_fake_inputs=True), pytest.raises(_Stop):
        distributed.all_ranks_agree(True)
    assert seen == [torch.device(expected)]


@pytest.mark.parametrize(
    ("device", "backend", "cuda_device"),
    [("cuda:1", "nccl", 1), ("cuda", "nccl", 1), ("cpu", "gloo", None)],
)
def test_init_from_environment_picks_the_backend_by_device_type(
    monkeypatch, device, backend, cuda_device
):
    """``cuda:N`` is a CUDA device too (NCCL, not gloo); NCCL binds the rank's device
    (``device_id``, where this torch takes it) and makes it current."""
    calls, set_device = [], []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(torch.cuda, "set_device", set_device.append)
    group = distributed.init_from_environment(device)
    assert (group.rank, group.world_size, group.local_rank) == (1, 2, 1)
    [kwargs] = calls
    assert kwargs["backend"] == backend
    assert (kwargs["rank"], kwargs["world_size"]) == (1, 2)
    takes_device_id = "device_id" in inspect.signature(dist.init_process_group).parameters
    if cuda_device is not None:
        assert set_device == [cuda_device]
        if takes_device_id:
            assert kwargs["device_id"] == torch.device("cuda", cuda_device)
    else:
        assert set_device == [] and kwargs.get("device_id") is None


def test_a_single_process_joins_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: pytest.fail("joined"))
    assert distributed.init_from_environment("cuda").world_size == 1


def test_a_group_created_by_the_caller_is_left_to_the_caller(monkeypatch):
    """Only the call that initialised the group destroys it (a caller's own group stays)."""
    destroyed = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "destroy_process_group", lambda: destroyed.append(1))
    with distributed.joined("cpu") as group:
        assert group.world_size == 2
    assert destroyed == []


def test_the_group_a_run_created_is_destroyed_on_error(monkeypatch):
    state = {"initialised": False, "destroyed": 0}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(dist, "is_initialized", lambda: state["initialised"])
    monkeypatch.setattr(dist, "init_process_group", lambda **_: state.update(initialised=True))

    def destroy():
        state.update(initialised=False, destroyed=state["destroyed"] + 1)

    monkeypatch.setattr(dist, "destroy_process_group", destroy)
    with pytest.raises(ValueError), distributed.joined("cpu"):
        raise ValueError("the run failed")
    assert state["destroyed"] == 1


@pytest.mark.parametrize(("backend", "expected"), [("nccl", "cuda:1"), ("gloo", "cpu")])
def test_any_rank_reduces_the_flag_on_the_backends_device(monkeypatch, backend, expected):
    """Pre-training's non-finite check: reduced on the device, read with the logged row."""
    seen = []

    def all_reduce(tensor, op=None):
        seen.append((tensor.device, op))
        raise _Stop

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: backend)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    with FakeTensorMode(allow_non_fake_inputs=True), pytest.raises(_Stop):
        distributed.any_rank(torch.ones((), dtype=torch.bool))
    assert seen == [(torch.device(expected), dist.ReduceOp.MAX)]


def test_any_rank_in_one_process_is_the_flag_itself():
    flag = torch.zeros((), dtype=torch.bool)
    assert distributed.any_rank(flag) is flag
