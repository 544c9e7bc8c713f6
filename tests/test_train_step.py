"""One train step: `pretrain`, `time` and `profile` run the same object; fused AdamW gives the
same update as torch's default implementation within float tolerance."""

from __future__ import annotations

import pytest
import torch

import diffmavil.training.step as shared_step
from bench.timing.harness import run_interleaved
from bench.timing.tasks import TimedTrainStep
from diffmavil import DiffMAViL, make_config
from diffmavil.inputs import random_inputs
from diffmavil.training.config import OptimizerConfig, PretrainConfig
from diffmavil.training.pretrain import pretrain
from diffmavil.training.step import TrainStep, make_optimizer


def _spy_on_train_step(monkeypatch) -> list[TrainStep]:
    """Record every TrainStep instance that runs a step (the class itself, not a copy)."""
    calls: list[TrainStep] = []
    original = TrainStep.__call__

    def spy(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TrainStep, "__call__", spy)
    return calls


def test_pretrain_and_time_run_the_same_train_step(monkeypatch, tmp_path):
    calls = _spy_on_train_step(monkeypatch)
    config = PretrainConfig.model_validate(
        {
            "preset": "tiny",
            "data": "synthetic:classes=4,size=16,eval_size=8",
            "budget_samples": 16,
            "batch": {"batch_size": 8},
        }
    )
    pretrain(config, tmp_path / "run")
    assert len(calls) == 2  # two steps of 8 samples

    model_config = make_config("tiny", "cross-attn")
    model = DiffMAViL(model_config)
    audio, video = random_inputs(model_config, 8, torch.device("cpu"))
    timed = TimedTrainStep(model, audio, video, (0.8, 0.9))
    run_interleaved({"step": timed}, warmup=1, repeats=1)
    assert len(calls) == 4 and calls[-1] is timed.step


def test_timed_step_optimizes_like_pretrain():
    """Same AdamW implementation, groups, betas, weight decay and clipping as pre-training."""
    model_config = make_config("tiny", "mavil")
    model = DiffMAViL(model_config)
    audio, video = random_inputs(model_config, 8, torch.device("cpu"))
    timed = TimedTrainStep(model, audio, video, (0.8, 0.9))
    reference = make_optimizer(model, PretrainConfig().optimizer, 1e-3)
    assert type(timed.step.optimizer) is type(reference)
    assert timed.step.grad_clip == PretrainConfig().optimizer.grad_clip
    for ours, theirs in zip(timed.step.optimizer.param_groups, reference.param_groups, strict=True):
        assert [p.data_ptr() for p in ours["params"]] == [p.data_ptr() for p in theirs["params"]]
        for key in ("betas", "weight_decay", "fused", "foreach"):
            assert ours[key] == theirs[key], key


def _three_steps(fused: bool) -> tuple[list[float], list[torch.Tensor]]:
    config = make_config("tiny", "cross-attn")
    torch.manual_seed(0)
    model = DiffMAViL(config)
    optimizer_config = OptimizerConfig(fused=fused)
    step = TrainStep(
        model,
        make_optimizer(model, optimizer_config, 1e-3),
        grad_clip=optimizer_config.grad_clip,
    )
    audio, video = random_inputs(config, 4, torch.device("cpu"))
    losses = []
    for i in range(3):
        ids = torch.arange(4) + 4 * i
        losses.append(step(audio, video, (0.8, 0.9), ids).loss.item())
    return losses, [p.detach().clone() for p in model.parameters()]


def test_fused_adamw_matches_the_default_implementation():
    fused_losses, fused_params = _three_steps(fused=True)
    plain_losses, plain_params = _three_steps(fused=False)
    assert fused_losses == pytest.approx(plain_losses, rel=1e-5)
    # Adam moves each weight by about lr (1e-3) per step; the kernels differ in float
    # rounding only, so the weights after three steps agree to 1% of one step.
    for a, b in zip(fused_params, plain_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # and the two really are different implementations (not the same code path twice)
    model = DiffMAViL(make_config("tiny", "mavil"))
    assert make_optimizer(model, OptimizerConfig(fused=True), 1e-3).defaults["fused"] is True
    assert not make_optimizer(model, OptimizerConfig(fused=False), 1e-3).defaults["fused"]


def test_step_ends_without_gradients_and_reports_the_clipped_norm():
    config = make_config("tiny", "mavil")
    torch.manual_seed(0)
    model = DiffMAViL(config)
    step = TrainStep(model, make_optimizer(model, OptimizerConfig(), 1e-3), grad_clip=1e-6)
    audio, video = random_inputs(config, 2, torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    result = step(audio, video, (0.8, 0.9), torch.arange(2))
    assert result.grad_norm is not None and result.grad_norm.item() > 1e-6  # clipped from
    assert all(p.grad is None for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    poisoned = step(audio, video, (0.8, 0.9), torch.arange(2), poison_loss=True)
    assert not torch.isfinite(poisoned.loss)
    assert shared_step.AUTOCAST_DTYPES.keys() == {"fp32", "bf16"}
