"""The tasks the harness times: the whole train step, and each component on its own.

``TimedTrainStep``: the training step ``diffbench pretrain`` runs (forward, backward,
clipping, AdamW), each phase a timed region, plus the whole step. ``ComponentPass``: one
component (``audio_encoder``, ..., ``video_decoder``) run on inputs captured from a real
forward, forward and backward timed apart.
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

from bench.timing.harness import RegionTimer
from diffmavil.config import MODULE_COMPONENTS
from diffmavil.training.compile import (
    COMPILED_COMPONENTS,
    CompileStats,
    compile_components,
    compile_module,
    is_compiled,
)
from diffmavil.training.config import OptimizerConfig
from diffmavil.training.step import Region, TrainStep, autocast_context, make_optimizer

TIMED_COMPONENTS = MODULE_COMPONENTS  # each timed on its own


def maybe_compile(module: nn.Module, enabled: bool, stats: CompileStats | None = None) -> nn.Module:
    """Compile ``module`` in place through ``diffmavil.training.compile`` (a whole model:
    its components; a component: itself), once: an already compiled module is left as is."""
    if enabled and not is_compiled(module):
        if all(isinstance(getattr(module, c, None), nn.Module) for c in COMPILED_COMPONENTS):
            compile_components(module, stats=stats)
        else:
            compile_module(module, type(module).__name__, stats)
    return module


class TimedTrainStep:
    """The training step of ``diffbench pretrain`` (``diffmavil.training.step.TrainStep``:
    same AdamW implementation, parameter groups and gradient clipping) on a fixed batch, its
    phases forward, backward and optimizer timed as regions inside the region "step".

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
        optimizer: OptimizerConfig | None = None,
        compile_stats: CompileStats | None = None,
    ) -> None:
        optimizer = optimizer or OptimizerConfig()
        batch_size = audio.shape[0]
        self.step = TrainStep(
            model,
            make_optimizer(model, optimizer, optimizer.base_lr * batch_size / 256),
            grad_clip=optimizer.grad_clip,
            forward=maybe_compile(model, compile, compile_stats),
            autocast=autocast_context(audio.device, dtype),
        )
        self.audio, self.video = audio, video
        self.mask_ratio = mask_ratio
        self._ids = torch.arange(batch_size, device=audio.device)
        self._calls = 0

    def run(self, region: Region) -> None:
        """One step on the next batch of the stream; ``region(name)`` wraps each phase."""
        sample_ids = self._ids + self._calls * self._ids.shape[0]
        self._calls += 1
        self.step(self.audio, self.video, self.mask_ratio, sample_ids, region=region)

    def __call__(self, timer: RegionTimer) -> None:
        with timer.region("step"):
            self.run(timer.region)


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
