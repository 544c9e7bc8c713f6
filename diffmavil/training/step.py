"""One training step, the same everywhere: forward (loss), backward, gradient clipping, AdamW.

``diffbench pretrain`` runs ``TrainStep`` inside its loop; ``diffbench time``, ``profile`` and
the torch.nn peer's harness time the very same object (they pass a ``region`` factory that
wraps each phase), so a timed step is exactly a training step: same optimizer implementation,
same parameter groups, same clipping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from diffmavil.training.config import OptimizerConfig

AUTOCAST_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}

Region = Callable[[str], AbstractContextManager[Any]]


def _no_region(_name: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


def autocast_context(device: torch.device, dtype: str) -> Callable[[], AbstractContextManager[Any]]:
    """A factory of the forward's autocast context: bf16 autocast, or nothing for fp32."""
    if dtype not in AUTOCAST_DTYPES:
        raise ValueError(f"dtype {dtype!r}: allowed values are {', '.join(AUTOCAST_DTYPES)}")
    if dtype == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[dtype])


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """MAE's groups: no weight decay on biases, norms and tokens (1-D parameters)."""
    decay, no_decay = [], []
    for _, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 or parameter.shape[0] == 1 else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: OptimizerConfig, lr: float) -> torch.optim.AdamW:
    """AdamW over MAE's parameter groups; the fused kernel when ``config.fused`` (CPU and CUDA
    have one from torch 2.4), else torch's default implementation for the device."""
    return torch.optim.AdamW(
        parameter_groups(model, config.weight_decay),
        lr=lr,
        betas=(config.beta1, config.beta2),
        fused=True if config.fused else None,
    )


@dataclass
class StepResult:
    """What one step returns: the model output (losses), the loss that was back-propagated
    and the gradient norm before clipping (None without clipping). Tensors, not floats: a
    caller that logs them decides when to synchronise."""

    output: Any
    loss: torch.Tensor
    grad_norm: torch.Tensor | None


class TrainStep:
    """forward -> backward -> clip -> optimizer step -> zero grads, for one batch.

    ``model`` owns the parameters (clipped and stepped); ``forward`` is what is called, the
    model itself by default, or a wrapper of it (DistributedDataParallel, ``torch.compile``).
    Gradients are set to None after the step, so a step starts and ends without them.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        grad_clip: float | None,
        forward: Callable[..., Any] | None = None,
        autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.grad_clip = grad_clip
        self.forward = forward if forward is not None else model
        self.autocast = autocast

    def __call__(
        self,
        audio: torch.Tensor,
        video: torch.Tensor,
        mask_ratio: tuple[float, float],
        sample_ids: torch.Tensor,
        seed: int = 0,
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
        rank: int = 0,
        *,
        region: Region = _no_region,
        poison_loss: bool = False,
    ) -> StepResult:
        """One step on audio [B, T, F] and video [B, C, T, H, W]; ``region(name)`` wraps the
        phases "forward", "backward" and "optimizer" (timers, profiler labels).
        ``poison_loss`` multiplies the loss by NaN (the testing knob for failed runs)."""
        with region("forward"), self.autocast():
            output = self.forward(audio, video, mask_ratio, sample_ids, seed, gather, rank)
        loss = output.loss
        if poison_loss:
            loss = loss * float("nan")
        with region("backward"):
            loss.backward()
        with region("optimizer"):
            grad_norm = None
            if self.grad_clip is not None:
                grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return StepResult(output, loss, grad_norm)
