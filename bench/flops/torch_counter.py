"""FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``, per component.

Traps handled here (measured on torch 2.13, CPU build):

- CPU attention runs ``aten._scaled_dot_product_flash_attention_for_cpu`` (and its
  backward), which FlopCounterMode does not know: it counts them as 0. We pass formulas for
  both through ``custom_mapping`` (torch's own SDPA formulas: the fused backward at 2.5x the
  forward, i.e. hardware FLOPs; the 0.5x recompute extra is taken out of the model FLOPs and
  reported apart). On ``meta`` attention decomposes into ``bmm`` (math path, 2x backward).
- Every attention call is audited: a ``TorchFunctionMode`` brackets each
  ``F.scaled_dot_product_attention`` call and checks that the FLOPs counted inside it equal
  the formula from the call's own q/k/v shapes. A zero (unregistered op) is an error.
- FlopCounterMode attributes backward FLOPs to the wrong module when the graph branches, so
  each component's backward is counted **in isolation**: for every recorded call of a
  component, ``torch.autograd.grad`` from its outputs to exactly its parameters and the
  incoming activations that need a gradient (autograd runs no node outside that region);
  the rest (losses, projections) is re-run on its inputs cut from the graph. The isolated
  components must sum to the global backward total, counted separately.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from bench.flops.common import (
    CounterResult,
    FlopCountError,
    counting_threads,
    empty_components,
    expected_attention_calls,
    forward_by_component,
    model_and_inputs,
)
from bench.flops.fast_meta import fast_meta
from diffmavil.config import MODULE_COMPONENTS, ModelConfig
from diffmavil.model import DiffMAViL

_aten = torch.ops.aten


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Forward of the CPU fused attention op: scores + weighted sum (torch's formula)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    """Backward of the CPU fused attention op: torch's fused-backward formula (2.5x the
    forward: the scores are recomputed), as FlopCounterMode counts CUDA flash attention."""
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def cpu_sdpa_mapping() -> dict[Any, Callable[..., int]]:
    """Formulas for the CPU attention ops that FlopCounterMode leaves unregistered."""
    mapping: dict[Any, Callable[..., int]] = {}
    if hasattr(_aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[_aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flop
    if hasattr(_aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        mapping[_aten._scaled_dot_product_flash_attention_for_cpu_backward] = (
            _cpu_sdpa_backward_flop
        )
    return mapping


def flop_counter(register_cpu_attention: bool = True) -> FlopCounterMode:
    """A silent FlopCounterMode, with the CPU attention formulas unless told otherwise."""
    mapping = cpu_sdpa_mapping() if register_cpu_attention else {}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def _is_fused_attention_backward(op: Any) -> bool:
    name = str(op)
    return "backward" in name and any(
        key in name for key in ("scaled_dot_product", "flash_attention", "efficient_attention")
    )


def fused_attention_extra(counter: FlopCounterMode) -> int:
    """Recompute extra inside fused attention backwards seen by ``counter``: their formula
    counts 5 products where the model counts 4 (2x the forward's 2), so the extra is 1/5."""
    fused = sum(
        flops
        for op, flops in counter.get_flop_counts().get("Global", {}).items()
        if _is_fused_attention_backward(op)
    )
    if fused % 5:
        raise FlopCountError(f"fused attention backward counted {fused}, not 2.5x a forward")
    return fused // 5


def attention_formula(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> int:
    """2 FLOPs per MAC of q k^T and of p v, from the shapes of one call (any heads layout)."""
    rows = math.prod(query.shape[:-1])  # batch x heads x queries
    return 2 * rows * key.shape[-2] * query.shape[-1] + 2 * rows * key.shape[-2] * value.shape[-1]


class AttentionAudit(TorchFunctionMode):
    """Brackets every ``F.scaled_dot_product_attention`` call and records the FLOPs that
    ``counter`` counted inside it next to the formula for its shapes."""

    def __init__(self, counter: FlopCounterMode) -> None:
        super().__init__()
        self.counter = counter
        self.calls: list[dict[str, Any]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        before = self.counter.get_total_flops()
        out = func(*args, **kwargs)
        counted = self.counter.get_total_flops() - before
        names = ("query", "key", "value")
        q, k, v = (args[i] if len(args) > i else kwargs[n] for i, n in enumerate(names))
        self.calls.append(
            {
                "query": tuple(q.shape),
                "key": tuple(k.shape),
                "counted": counted,
                "expected": attention_formula(q, k, v),
            }
        )
        return out

    def check(self, expected_calls: int | None = None) -> int:
        """Raise unless every call counted exactly its formula (never zero); -> FLOPs."""
        for index, call in enumerate(self.calls):
            if call["expected"] <= 0 or call["counted"] != call["expected"]:
                raise FlopCountError(
                    f"attention call #{index} (q {call['query']}, k {call['key']}) counted "
                    f"{call['counted']:,} FLOPs, its formula gives {call['expected']:,}: "
                    "an attention op is unregistered or miscounted"
                )
        if expected_calls is not None and len(self.calls) != expected_calls:
            raise FlopCountError(
                f"saw {len(self.calls)} attention calls, the config implies {expected_calls}"
            )
        return sum(call["expected"] for call in self.calls)


@contextmanager
def audited_counter(register_cpu_attention: bool = True) -> Iterator[AttentionAudit]:
    """FlopCounterMode with the attention audit on top; yields the audit (``.counter``)."""
    counter = flop_counter(register_cpu_attention)
    audit = AttentionAudit(counter)
    with counter, audit:
        yield audit


# ------------------------------------------------------------------------ isolation
def _tensors(value: Any) -> list[torch.Tensor]:
    """Tensors that need a gradient in a (nested tuple/list of) recorded value(s)."""
    if isinstance(value, torch.Tensor):
        return [value] if value.requires_grad else []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _cut(value: torch.Tensor) -> torch.Tensor:
    """A recorded tensor cut from the graph, requiring grad exactly as it did."""
    return value.detach().requires_grad_(value.requires_grad)


def _count_region_backward(
    outputs: list[torch.Tensor], inputs: list[torch.Tensor], retain_graph: bool
) -> tuple[int, int]:
    """Backward of one region alone: gradients from ``outputs`` (ones) to ``inputs`` (the
    region's parameters and its incoming activations) only; autograd executes no node
    outside the paths between them. -> (backward model FLOPs, fused-attention extra)."""
    with flop_counter() as counter:
        torch.autograd.grad(
            outputs,
            inputs,
            grad_outputs=[torch.ones_like(t) for t in outputs],
            retain_graph=retain_graph,
            allow_unused=True,
        )
    extra = fused_attention_extra(counter)
    return counter.get_total_flops() - extra, extra


class _CallRecorder:
    """Forward hooks recording each call (inputs and outputs) of the component modules."""

    def __init__(self, model: DiffMAViL) -> None:
        self.calls: dict[str, list[tuple[Any, Any]]] = {c: [] for c in MODULE_COMPONENTS}
        self.handles = [
            getattr(model, name).register_forward_hook(self._hook(name), with_kwargs=True)
            for name in MODULE_COMPONENTS
        ]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(module, args, kwargs, output) -> None:
            self.calls[name].append(((args, kwargs), output))

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def count_torch(
    config: ModelConfig,
    mask_ratio: tuple[float, float],
    batch_size: int = 1,
    *,
    device: str = "meta",
    backward: bool = True,
    model: DiffMAViL | None = None,
    shortcut_meta: bool = True,
) -> CounterResult:
    """FlopCounterMode's FLOPs per component: forward by module attribution (exact in the
    forward), backward per component in isolation, both checked against the global totals,
    every attention call checked against its formula. On ``meta``, ``shortcut_meta`` answers
    the slowest meta kernels by shape (``bench.flops.fast_meta``; counts are unchanged)."""
    with counting_threads(device), fast_meta(enabled=shortcut_meta and device == "meta"):
        return _count_torch(config, mask_ratio, batch_size, device, backward, model)


def _count_torch(
    config: ModelConfig,
    mask_ratio: tuple[float, float],
    batch_size: int,
    device: str,
    backward: bool,
    model: DiffMAViL | None,
) -> CounterResult:
    model, audio, video = model_and_inputs(config, batch_size, device, model)
    prefix = type(model).__name__
    recorder = _CallRecorder(model) if backward else None
    try:
        with torch.enable_grad(), audited_counter() as audit:
            output = model(audio, video, mask_ratio)
    finally:
        if recorder is not None:
            recorder.remove()
    attention_total = audit.check(expected_attention_calls(config))
    counts = audit.counter.get_flop_counts()
    global_forward = audit.counter.get_total_flops()
    forward = forward_by_component(
        lambda name: sum(counts.get(f"{prefix}.{name}", {}).values()), global_forward
    )
    result = CounterResult(
        counter="torch",
        device=device,
        forward=forward,
        backward=None,
        global_forward=global_forward,
        attention_calls=len(audit.calls),
        extra={"attention_forward": attention_total},
    )
    if not backward:
        return result
    assert recorder is not None
    backward_counts, extra_total = _isolated_backwards(model, recorder)
    backward_counts["other"], other_extra = _rest_backward(
        model, output, audio, video, mask_ratio, batch_size
    )
    extra_total += other_extra
    global_backward, global_extra = _global_backward(model, output, attention_total)
    if sum(backward_counts.values()) != global_backward:
        raise FlopCountError(
            f"isolated component backwards sum to {sum(backward_counts.values()):,}, the "
            f"global backward is {global_backward:,} (FlopCounterMode, {device})"
        )
    return replace(
        result,
        backward=backward_counts,
        global_backward=global_backward,
        hardware_extra=global_extra,
        extra={**result.extra, "isolated_hardware_extra": extra_total},
    )


def _isolated_backwards(model: DiffMAViL, recorder: _CallRecorder) -> tuple[dict[str, int], int]:
    """Each component's backward, one region per recorded call (the encoders run twice with
    intra-modal contrastive) -> ({component: model FLOPs}, fused-attention extra)."""
    backward_counts = empty_components()
    extra_total = 0
    for name in MODULE_COMPONENTS:
        params = [p for p in getattr(model, name).parameters() if p.requires_grad]
        for inputs, outputs in recorder.calls[name]:
            bwd, extra = _count_region_backward(
                _tensors(outputs), params + _tensors(inputs), retain_graph=True
            )
            backward_counts[name] += bwd
            extra_total += extra
    return backward_counts, extra_total


def _rest_backward(
    model: DiffMAViL,
    output: Any,
    audio: torch.Tensor,
    video: torch.Tensor,
    mask_ratio: tuple[float, float],
    batch_size: int,
) -> tuple[int, int]:
    """The backward of the rest (contrastive projections, InfoNCE): ``model.forward_loss``
    re-run on the decoders' and encoders' outputs cut from the graph (a second masked view,
    if any, is encoded again inside it: that pass is the encoders', counted apart, not the
    rest's) -> (model FLOPs, fused-attention extra)."""
    parts = {
        m: replace(
            getattr(output, m),
            prediction=_cut(getattr(output, m).prediction),
            encoded=_cut(getattr(output, m).encoded),
        )
        for m in ("audio", "video")
    }
    rerun = _CallRecorder(model)  # components called again inside (a second masked view)
    try:
        with torch.enable_grad():
            patches = model.patchify(audio, video)
            sample_ids = torch.arange(batch_size, device=audio.device)
            loss = model.forward_loss(parts, patches, mask_ratio, sample_ids, 0, None, 0).loss
    finally:
        rerun.remove()
    # the region ends at those components' outputs: their gradients are computed (as the
    # real graph needs them), what lies behind them is not
    boundary = [t for calls in rerun.calls.values() for _, out in calls for t in _tensors(out)]
    component_params = {
        id(p) for name in MODULE_COMPONENTS for p in getattr(model, name).parameters()
    }
    other_params = [
        p for p in model.parameters() if p.requires_grad and id(p) not in component_params
    ]
    leaves = [t for m in ("audio", "video") for t in (parts[m].prediction, parts[m].encoded)]
    return _count_region_backward([loss], other_params + leaves + boundary, False)


def _global_backward(model: DiffMAViL, output: Any, attention_total: int) -> tuple[int, int]:
    """The whole graph's backward at once (last: the isolated regions kept the graph),
    its attention checked at 2x the audited forward -> (model FLOPs, fused extra)."""
    with flop_counter() as global_counter:
        output.loss.backward()
    model.zero_grad(set_to_none=True)
    global_extra = fused_attention_extra(global_counter)
    attention_backward = sum(
        flops
        for op, flops in global_counter.get_flop_counts().get("Global", {}).items()
        if _is_fused_attention_backward(op) or op is _aten.bmm
    )
    if attention_backward - global_extra != 2 * attention_total:
        raise FlopCountError(
            f"attention backward counted {attention_backward - global_extra:,} model FLOPs, "
            f"expected 2x the audited forward ({2 * attention_total:,})"
        )
    return global_counter.get_total_flops() - global_extra, global_extra


__all__ = [
    "AttentionAudit",
    "attention_formula",
    "audited_counter",
    "count_torch",
    "cpu_sdpa_mapping",
    "flop_counter",
    "fused_attention_extra",
]
