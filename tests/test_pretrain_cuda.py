"""Pre-training's CUDA path, shown on the CPU where a CPU can show it.

- The process group a run created is destroyed at its end, also when it fails.
- Out of memory at a step: a failed ``summary.json`` naming the step, the batch, the mask
  ratios and the memory, and a one-line ``TrainingFailed``.
- Host syncs: at most one device->host read per logged step and none per unlogged step
  (counted at the dispatcher and at ``Tensor.tolist``), and each step's timers closed by a
  device synchronisation (a no-op on a CPU) so that a step's GPU time is its compute.

Tests marked ``gpu`` check what only CUDA shows; they are skipped without a CUDA device.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from diffmavil.schedules import plan_run
from diffmavil.training import distributed
from diffmavil.training import pretrain as pretrain_module
from diffmavil.training.config import PretrainConfig
from diffmavil.training.pretrain import TrainingFailed, pretrain
from diffmavil.training.step import TrainStep

DATA = "synthetic:classes=4,size=48,eval_size=16"

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def tiny_config(**changes) -> PretrainConfig:
    payload = {
        "preset": "tiny",
        "variant": "cross-attn",
        "data": DATA,
        "budget_samples": 32,
        "batch": {"batch_size": 8},
        "threads": 2,
        "checkpoint_every": 1000,
        **changes,
    }
    return PretrainConfig.model_validate(payload)


# ------------------------------------------------------------- the process group
@dataclasses.dataclass(frozen=True)
class _CreatedGroup(distributed.ProcessGroup):
    """A one-process group that ``init_from_environment`` reports it created (one process,
    so the run needs no real collective)."""

    owned: bool = True


@pytest.fixture
def destroyed(monkeypatch) -> list[str]:
    """Pretend ``init_from_environment`` created a group; record each destroy."""
    calls: list[str] = []
    monkeypatch.setattr(distributed, "init_from_environment", lambda device: _CreatedGroup())
    monkeypatch.setattr(distributed, "destroy", lambda: calls.append("destroy"))
    return calls


def test_pretraining_destroys_the_group_it_created(tmp_path, destroyed):
    pretrain(tiny_config(budget_samples=16), tmp_path)
    assert destroyed == ["destroy"]


def test_a_failed_pretraining_destroys_the_group_too(tmp_path, destroyed):
    with pytest.raises(TrainingFailed):
        pretrain(tiny_config(budget_samples=16, inject_nan_at_step=0), tmp_path)
    assert destroyed == ["destroy"]


# ------------------------------------------------------------- out of memory
def _failing_step(at_call: int, error: BaseException):
    class FailingStep(TrainStep):
        calls = 0

        def __call__(self, *args, **kwargs):
            FailingStep.calls += 1
            if FailingStep.calls == at_call:
                raise error
            return super().__call__(*args, **kwargs)

    return FailingStep


def test_out_of_memory_at_a_step_writes_a_failed_summary(tmp_path, monkeypatch):
    """The fault is injected through the step (no config field: run ids stay as they are)."""
    error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 ...")
    monkeypatch.setattr(pretrain_module, "TrainStep", _failing_step(3, error))
    config = tiny_config(masking={"kind": "curriculum", "audio_end": 0.95, "video_end": 0.97})
    with pytest.raises(TrainingFailed) as failed:
        pretrain(config, tmp_path)
    message = str(failed.value)
    assert "\n" not in message and "out of memory at step 2" in message
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["steps"] == 2
    failure = summary["failure"]
    assert failure in message and "\n" not in failure
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1]
    step = plan_run(config.model, config.masking, config.batch, config.budget_samples)[2]
    assert f"batch {step.batch_size}" in failure
    assert f"mask ratios {step.mask_ratio[0]:g}/{step.mask_ratio[1]:g}" in failure
    assert "memory unknown" in failure  # on a CPU
    assert "tried to allocate 2.00 GiB" in failure


def test_out_of_memory_names_allocated_reserved_and_total_on_cuda(monkeypatch):
    gib = 1024**3
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: int(70.5 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 76 * gib)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda device=None: SimpleNamespace(total_memory=int(79.1 * gib)),
    )
    text = pretrain_module.memory_report(torch.device("cuda", 0))
    assert text == "memory allocated 70.50 GiB, reserved 76.00 GiB of 79.10 GiB on cuda:0"
    assert pretrain_module.memory_report(torch.device("cpu")) == "memory unknown on cpu"


# ------------------------------------------------------------- host syncs
# Reads made while loading data are of CPU tensors on every device (the sampler's indices,
# the items): they are no device syncs and are not counted.
DATA_MODULES = ("torch.utils.data", "diffmavil.data", "diffmavil.training.stream")


def _loading_data() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(DATA_MODULES):
            return True
        frame = frame.f_back
    return False


class _Syncs(TorchDispatchMode):
    """Counts device->host reads per training step: scalar reads at the dispatcher
    (``item``, ``float``, ``bool``, ...) and ``Tensor.tolist`` (which reads without
    dispatching on a CPU); a read belongs to the step whose train step ran last."""

    def __init__(self) -> None:
        super().__init__()
        self.step = -1
        self.counts: Counter[int] = Counter()

    def read(self) -> None:
        if not _loading_data():
            self.counts[self.step] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.read()
        return func(*args, **(kwargs or {}))


@pytest.fixture
def syncs(monkeypatch) -> _Syncs:
    counter = _Syncs()
    tolist = torch.Tensor.tolist

    def counted_tolist(self):
        counter.read()
        return tolist(self)

    class MarkedStep(TrainStep):
        def __call__(self, *args, **kwargs):
            counter.step += 1
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "tolist", counted_tolist)
    monkeypatch.setattr(pretrain_module, "TrainStep", MarkedStep)
    return counter


def test_a_logged_step_reads_the_device_once_and_an_unlogged_step_never(tmp_path, syncs):
    """With ``log_every=1`` a logged step read 6 scalars one by one (the loss, three loss
    terms, the gradient norm, the non-finite flag): on CUDA 6 waits for the GPU per step."""
    config = tiny_config(budget_samples=48, log_every=2)  # 6 steps: 0, 2, 4, 5 logged
    with syncs:
        pretrain(config, tmp_path)
    logged = {0, 2, 4, 5}
    per_step = {step: syncs.counts[step] for step in range(5)}  # the last writes a checkpoint
    assert per_step == {step: 1 if step in logged else 0 for step in range(5)}, per_step


def test_the_step_timers_close_with_a_device_synchronisation(tmp_path, monkeypatch):
    """On CUDA every step synchronises at the start and at the end of its compute timer
    (``_sync`` is a no-op on a CPU), so that a step's GPU time is its compute_seconds,
    not the next step's data_seconds. Before: only logged and snapshot steps did."""
    synced: list[int] = []
    real = pretrain_module._sync
    monkeypatch.setattr(pretrain_module, "_sync", lambda device: synced.append(1) or real(device))
    steps: list[int] = []

    class MarkedStep(TrainStep):
        def __call__(self, *args, **kwargs):
            steps.append(len(synced))
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "TrainStep", MarkedStep)
    pretrain(tiny_config(budget_samples=32, log_every=100), tmp_path)
    # one before each step's train step, one after it
    assert steps == [1, 3, 5, 7] and len(synced) == 8


# ------------------------------------------------------------- CUDA only
@pytest.mark.gpu
@gpu
def test_unlogged_steps_gpu_time_is_compute_not_data(tmp_path, monkeypatch):
    """A step's GPU time (a known sleep per step) lands in compute_seconds: before, an
    unlogged step's GPU time came out of the next step's blocking copy, as data_seconds,
    and the run looked data-bound."""

    from diffmavil.data import build_dataset

    class SlowStep(TrainStep):
        def __call__(self, *args, **kwargs):
            result = super().__call__(*args, **kwargs)
            torch.cuda._sleep(200_000_000)  # ~100-140 ms of GPU time
            return result

    monkeypatch.setattr(pretrain_module, "TrainStep", SlowStep)
    config = tiny_config(device="cuda", budget_samples=48, log_every=100)
    dataset = build_dataset(config.data, config.model, "train", seed=config.seed, cache="memory")
    for index in range(len(dataset)):  # made and cached now: the run's data time is small
        dataset[index]
    summary = pretrain(config, tmp_path, dataset=dataset)
    assert summary["steps"] == 6
    assert summary["compute_seconds"] > 6 * 0.08
    assert summary["data_seconds"] < 0.5 * summary["compute_seconds"]
    assert summary["data_bound"] is False


@pytest.mark.gpu
@gpu
def test_pretrain_on_cuda_with_one_read_per_logged_step(tmp_path, syncs):
    """The same count on CUDA (the scalars batched in one tensor, read once) and a real
    run on the device: finite losses, the collective-free path of one process."""
    with syncs:
        summary = pretrain(tiny_config(device="cuda", budget_samples=48, log_every=2), tmp_path)
    assert summary["status"] == "completed"
    assert {step: syncs.counts[step] for step in range(5)} == {0: 1, 1: 0, 2: 1, 3: 0, 4: 1}


@pytest.mark.gpu
@gpu
def test_out_of_memory_on_cuda_names_the_devices_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(
        pretrain_module, "TrainStep", _failing_step(2, torch.OutOfMemoryError("CUDA out of memory"))
    )
    with pytest.raises(TrainingFailed, match="out of memory at step 1"):
        pretrain(tiny_config(device="cuda"), tmp_path)
    failure = json.loads((tmp_path / "summary.json").read_text())["failure"]
    assert "memory allocated" in failure and "GiB on cuda:0" in failure


@pytest.mark.parametrize(("rank", "world_size"), [(0, 1), (0, 2), (1, 2)])
def test_sample_ids_made_on_the_device_are_the_streams(rank, world_size):
    from diffmavil.schedules import StepPlan
    from diffmavil.training.stream import sample_ids

    step = StepPlan(3, 40, 8, (0.8, 0.9), 1.0)
    group = distributed.ProcessGroup(rank=rank, world_size=world_size)
    made = pretrain_module.device_sample_ids(step, group, torch.device("cpu"))
    assert torch.equal(made, sample_ids(step, rank, world_size))


def test_proportional_decoders_have_a_head_dimension_of_12():
    """docs/presets.md's GPU caveat is about this number."""
    from diffmavil import make_config

    config = make_config("proportional", "cross-attn")
    for decoder in (config.audio_decoder, config.video_decoder):
        assert decoder.dim // decoder.heads == 12
    assert config.encoder.dim // config.encoder.heads == 16


@pytest.mark.gpu
@gpu
def test_proportional_decoder_heads_rule_out_memory_efficient_attention_in_bf16():
    """docs/presets.md: the proportional decoders' head dimension (48 / 4 = 12) is no
    multiple of 8: memory-efficient attention refuses it in bf16, flash pads it to 16."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("bf16 flash and memory-efficient attention need sm80 or newer")
    q = torch.randn(2, 4, 64, 12, device="cuda", dtype=torch.bfloat16)
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]), pytest.raises(RuntimeError):
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert out.shape == q.shape
