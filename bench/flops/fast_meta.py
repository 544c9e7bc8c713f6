"""Shape-only shortcuts for the slowest ``meta`` kernels.

On ``meta`` nothing is computed, but several kernels still run Python reference
implementations to work out their output (layer norm and its backward, GELU, softmax,
addmm: 1-9 ms per call on this CPU), which makes a base-size forward + backward take
seconds. Inside ``fast_meta()``, a dispatch mode answers those few ops with an empty meta
tensor of the right shape, dtype and layout directly. It sits *below* the FLOP counter, so
the counter still sees (and counts) every op; only how the meta output is produced
changes. A shape rule that went wrong would surface as a shape error or as a mismatch with
the closed form, both of which the checks report; tests compare the counts with and
without the shortcut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten


def _like(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x, device="meta")


def _new(shape: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=like.dtype, device="meta")


def _layer_norm(x, normalized_shape, *args, **kwargs):
    stats = (*x.shape[: x.dim() - len(normalized_shape)], *([1] * len(normalized_shape)))
    return (
        torch.empty(x.shape, dtype=x.dtype, device="meta"),
        _new(stats, x),
        _new(stats, x),
    )


def _layer_norm_backward(grad, x, normalized_shape, mean, rstd, weight, bias, mask, **kwargs):
    return (
        torch.empty(x.shape, dtype=x.dtype, device="meta") if mask[0] else None,
        _like(weight) if mask[1] and weight is not None else None,
        _like(bias) if mask[2] and bias is not None else None,
    )


def _addmm(bias, a, b, **kwargs):
    return _new((a.shape[0], b.shape[1]), a)


def _mm(a, b, **kwargs):
    return _new((a.shape[0], b.shape[1]), a)


def _bmm(a, b, **kwargs):
    return _new((a.shape[0], a.shape[1], b.shape[2]), a)


_RULES: dict[Any, Callable[..., Any]] = {
    _aten.native_layer_norm.default: _layer_norm,
    _aten.native_layer_norm_backward.default: _layer_norm_backward,
    _aten.gelu.default: lambda x, *a, **k: _like(x),
    _aten.gelu_backward.default: lambda g, x, *a, **k: _like(x),
    _aten._safe_softmax.default: lambda x, *a, **k: _like(x),
    _aten._softmax.default: lambda x, *a, **k: _like(x),
    _aten._softmax_backward_data.default: lambda g, out, *a, **k: _like(out),
    _aten.addmm.default: _addmm,
    _aten.mm.default: _mm,
    _aten.bmm.default: _bmm,
}


def _plain_meta(value: Any) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and type(value) in (torch.Tensor, torch.nn.Parameter)
        and value.device.type == "meta"
        and value.layout == torch.strided
    )


class _FastMeta(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rule = _RULES.get(func)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if rule is not None and tensors and all(map(_plain_meta, tensors)) and not kwargs:
            return rule(*args, **kwargs)
        return func(*args, **kwargs)


@contextmanager
def fast_meta(enabled: bool = True) -> Iterator[None]:
    """Shape-only answers for slow meta kernels while active (enter it *before* a
    FlopCounterMode so the counter sits above it)."""
    if not enabled:
        yield
        return
    with _FastMeta():
        yield
