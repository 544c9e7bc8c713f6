"""What is timed: the whole train step, and each component on its own.

``TrainStep``: forward (loss), backward, optimizer (AdamW), each a timed region, plus the
whole step. ``ComponentPass``: one component (``audio_encoder``, ..., ``video_decoder``)
run on inputs captured from a real forward, forward and backward timed apart.
``record_function`` cannot label backward work, and backward hooks fire at the wrong
moments for modules whose inputs need no gradient (the encoders), so the backward of a
component is timed by running that component alone, with the same inputs, the same
``requires_grad`` flags and random output gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.timing.environment import DTYPES
from bench.timing.harness import RegionTimer
from diffmavil.config import ModelConfig

TIMED_COMPONENTS: tuple[str, ...] = (
    "audio_encoder",
    "video_encoder",
    "fusion",
    "audio_decoder",
    "video_decoder",
)


def make_batch(
    config: ModelConfig, batch_size: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random audio [B, T, F] and video [B, C, T, H, W] at the config's input sizes."""
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(
        batch_size, config.audio.target_frames, config.audio.mel_bins, generator=generator
    )
    v = config.video
    video = torch.randn(batch_size, v.channels, v.frames, v.height, v.width, generator=generator)
    return audio.to(device), video.to(device)


def autocast_context(device: torch.device, dtype: str) -> Callable[[], Any]:
    """A factory of the forward's autocast context: bf16 autocast, or nothing for fp32."""
    if dtype == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """AdamW, fused kernel where torch has one for the device (CPU and CUDA in 2.4+)."""
    try:
        return torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(model.parameters(), lr=1e-4)


def maybe_compile(module: nn.Module, enabled: bool) -> Callable[..., Any]:
    """``torch.compile`` with dynamic shapes: a masking curriculum changes the token counts
    from step to step, and a static compile would recompile for each new shape."""
    return torch.compile(module, dynamic=True) if enabled else module


class TrainStep:
    """One training step of ``model``; regions forward, backward, optimizer and step.

    Sample ids advance every call (as in training), so each step draws new masks, timesteps
    and noise; the shapes stay fixed by the mask ratios.
    """

    def __init__(
        self,
        model: nn.Module,
        audio: torch.Tensor,
        video: torch.Tensor,
        mask_ratio: tuple[float, float],
        *,
        dtype: str = "fp32",
        compile: bool = False,
    ) -> None:
        self.model = model
        self.audio, self.video = audio, video
        self.mask_ratio = mask_ratio
        self.optimizer = make_optimizer(model)
        self.forward = maybe_compile(model, compile)
        self.autocast = autocast_context(audio.device, dtype)
        self._ids = torch.arange(audio.shape[0], device=audio.device)
        self._calls = 0

    def __call__(self, timer: RegionTimer) -> None:
        sample_ids = self._ids + self._calls * self._ids.shape[0]
        self._calls += 1
        with timer.region("step"):
            with timer.region("forward"), self.autocast():
                loss = self.forward(self.audio, self.video, self.mask_ratio, sample_ids).loss
            with timer.region("backward"):
                loss.backward()
            with timer.region("optimizer"):
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)


@dataclass
class CapturedCall:
    """A component's positional arguments from one real forward (tensors detached)."""

    args: tuple[Any, ...]


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().requires_grad_(value.requires_grad)
    return value


def capture_component_calls(
    model: nn.Module,
    audio: torch.Tensor,
    video: torch.Tensor,
    mask_ratio: tuple[float, float],
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> dict[str, CapturedCall]:
    """Run one forward and record each component's inputs (with their requires_grad)."""
    captured: dict[str, CapturedCall] = {}
    handles = []
    for name in TIMED_COMPONENTS:

        def hook(_module: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            captured.setdefault(name, CapturedCall(tuple(_detach(a) for a in args)))

        handles.append(getattr(model, name).register_forward_pre_hook(hook))
    try:
        with autocast():
            model(audio, video, mask_ratio)
    finally:
        for handle in handles:
            handle.remove()
    model.zero_grad(set_to_none=True)
    return captured


def _tensors(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for t in output if isinstance(t, torch.Tensor)]


class ComponentPass:
    """One component alone: regions forward and backward (random output gradients)."""

    def __init__(
        self,
        module: nn.Module,
        call: CapturedCall,
        *,
        autocast: Callable[[], Any] = contextlib.nullcontext,
        compile: bool = False,
    ) -> None:
        self.module = module
        self.args = call.args
        self.autocast = autocast
        self.forward = maybe_compile(module, compile)
        self.leaves = [a for a in call.args if isinstance(a, torch.Tensor) and a.requires_grad]
        self.parameters = [p for p in module.parameters() if p.requires_grad]
        self._grads: list[torch.Tensor] | None = None

    def __call__(self, timer: RegionTimer) -> None:
        for tensor in (*self.parameters, *self.leaves):
            tensor.grad = None
        with timer.region("forward"), self.autocast():
            outputs = _tensors(self.forward(*self.args))
        if self._grads is None:
            generator = torch.Generator().manual_seed(0)
            self._grads = [
                torch.randn(o.shape, generator=generator).to(o.device, o.dtype) for o in outputs
            ]
        with timer.region("backward"):
            torch.autograd.backward(outputs, self._grads)
