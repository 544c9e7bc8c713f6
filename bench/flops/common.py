"""Shared pieces of the FLOP counters: results, errors, models and inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from diffmavil.config import COMPONENTS, MODULE_COMPONENTS, ModelConfig

COUNTERS: tuple[str, ...] = ("torch", "fvcore", "analytic")
COUNTER_CHOICES: tuple[str, ...] = (*COUNTERS, "all")


class FlopCountError(RuntimeError):
    """A counter produced a result that must not be printed: an attention call counted
    as zero or off its formula, components that do not sum to the whole, or counters that
    disagree. The message says which component, which counter and by how much."""


@dataclass(frozen=True)
class CounterResult:
    """What one counter measured for one config, mask ratio pair and batch size.

    forward / backward: model FLOPs per component (``COMPONENTS``); backward is None for
    forward-only counters (fvcore). hardware_extra: FLOPs that fused attention kernels
    recomputed in the backward, as observed (0 where attention ran unfused, e.g. on meta).
    global_forward / global_backward: the counter's whole-model totals, counted without
    any per-component attribution (components must sum to them).
    """

    counter: str
    device: str
    forward: dict[str, int]
    backward: dict[str, int] | None
    global_forward: int
    global_backward: int | None = None
    hardware_extra: int = 0
    attention_calls: int = 0
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_forward(self) -> int:
        return sum(self.forward.values())

    @property
    def total_backward(self) -> int | None:
        return None if self.backward is None else sum(self.backward.values())


def empty_components() -> dict[str, int]:
    return dict.fromkeys(COMPONENTS, 0)


def forward_by_component(module_flops: Callable[[str], int], global_forward: int) -> dict[str, int]:
    """Per-component forward FLOPs from a counter's per-module totals; ``other`` is what the
    global total holds beyond the named modules (noising, contrastive head, losses)."""
    forward = empty_components()
    for name in MODULE_COMPONENTS:
        forward[name] = module_flops(name)
    forward["other"] = global_forward - sum(forward.values())
    return forward


def model_and_inputs(
    config: ModelConfig, batch_size: int, device: str, model: Any = None
) -> tuple[Any, Any, Any]:
    """The model to count (``model``, or the cached one) and inputs of the config's sizes."""
    model = model if model is not None else cached_model(config, device)
    from diffmavil.inputs import random_inputs

    return (model, *random_inputs(config, batch_size, device))


def expected_attention_calls(config: ModelConfig) -> int:
    """Calls of ``scaled_dot_product_attention`` in one training forward."""
    passes = 2 if config.loss.intra_contrastive_weight > 0 else 1
    calls = 2 * config.encoder.depth * passes + config.fusion_depth
    for modality in ("audio", "video"):
        spec = config.decoder(modality)
        calls += spec.depth * (2 if spec.kind == "cross-self" else 1)
    return calls


@lru_cache(maxsize=32)
def cached_model(config: ModelConfig, device: str) -> Any:
    """One model per (config, device), built once per process (seeded on CPU). Counting
    needs shapes only: ``meta`` costs no memory and no compute."""
    import torch

    from diffmavil import DiffMAViL

    if device == "meta":
        with torch.device("meta"):
            return DiffMAViL(config)
    torch.manual_seed(0)
    return DiffMAViL(config).to(device)


@contextmanager
def counting_threads(device: str) -> Iterator[None]:
    """One intra-op thread while counting on CPU: counting needs shapes, not speed, and on a
    busy 2-core machine two spinning OpenMP threads made a tiny count 5x slower."""
    import torch

    if device != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
