"""FLOPs counted by fvcore (``JitModelAnalysis`` with an explicit handle table), forward.

fvcore 0.1.5 traces the model with TorchScript and counts **multiply-accumulates**: we
multiply by 2 to get FLOPs. Traps handled here:

- ``FlopCountAnalysis`` installs default handles for norms, upsampling and pooling, and
  ``set_op_handle(name, None)`` does **not** remove them (it adds the name to the ignored
  set, but a name with a handle is counted first). We build the analysis from the base
  class with our own table: the matmul family only, as in the closed form.
- There is no handle for ``aten::scaled_dot_product_attention`` (counted 0 with a
  warning). We register one, which also records each call so that the number of attention
  calls and their FLOPs are checked against the config.
- Any matmul-family op that fvcore saw but could not count is an error, not a warning.

Tracing works on ``meta`` and on CPU; the model is traced at one mask ratio and batch size
(both are constants of the trace).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from fvcore.nn.jit_analysis import JitModelAnalysis
from fvcore.nn.jit_handles import (
    addmm_flop_jit,
    bmm_flop_jit,
    einsum_flop_jit,
    get_shape,
    linear_flop_jit,
    matmul_flop_jit,
)

from bench.flops.common import (
    CounterResult,
    FlopCountError,
    counting_threads,
    expected_attention_calls,
    forward_by_component,
    model_and_inputs,
)
from diffmavil.config import ModelConfig

SDPA_OP = "aten::scaled_dot_product_attention"

# ops that do matmul-family work: if fvcore meets one without a handle, we must not print
_MATMUL_FAMILY = (
    "aten::addmm",
    "aten::addbmm",
    "aten::baddbmm",
    "aten::bmm",
    "aten::mm",
    "aten::mv",
    "aten::matmul",
    "aten::linear",
    "aten::einsum",
    "aten::_convolution",
    "aten::conv1d",
    "aten::conv2d",
    "aten::conv3d",
    SDPA_OP,
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::multi_head_attention_forward",
)


class SdpaHandle:
    """fvcore handle for ``aten::scaled_dot_product_attention``: MACs of q k^T and p v,
    summed over batch and heads. Records every call it counts."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, inputs: list[Any], outputs: list[Any]) -> int:
        query, key, value = (get_shape(v) for v in inputs[:3])
        if query is None or key is None or value is None:
            raise FlopCountError("fvcore: attention call with unknown shapes")
        rows = math.prod(query[:-1])  # batch x heads x queries
        macs = rows * key[-2] * query[-1] + rows * key[-2] * value[-1]
        self.calls.append(macs)
        return macs


def matmul_handles(sdpa: SdpaHandle | None = None) -> dict[str, Any]:
    """Our handle table: matmul family only (no norms, no elementwise), plus attention."""
    handles: dict[str, Any] = {
        "aten::addmm": addmm_flop_jit,
        "aten::bmm": bmm_flop_jit,
        "aten::mm": matmul_flop_jit,
        "aten::matmul": matmul_flop_jit,
        "aten::linear": linear_flop_jit,
        "aten::einsum": einsum_flop_jit,
    }
    if sdpa is not None:
        handles[SDPA_OP] = sdpa
    return handles


class _Loss(torch.nn.Module):
    """Traceable wrapper: fixed mask ratio, returns the loss tensor."""

    def __init__(self, model: torch.nn.Module, mask_ratio: tuple[float, float]) -> None:
        super().__init__()
        self.model = model
        self.mask_ratio = mask_ratio

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.model(audio, video, self.mask_ratio).loss


def analysis(
    model: torch.nn.Module, inputs: tuple[Any, ...], handles: dict[str, Any]
) -> JitModelAnalysis:
    """A fvcore analysis that counts with exactly ``handles`` (no default norm handles)."""
    result = JitModelAnalysis(model, inputs).set_op_handle(**handles)
    result.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return result


def count_fvcore(
    config: ModelConfig,
    mask_ratio: tuple[float, float],
    batch_size: int = 1,
    *,
    device: str = "meta",
    model: torch.nn.Module | None = None,
) -> CounterResult:
    """fvcore's forward FLOPs per component (2 x its MACs)."""
    model, audio, video = model_and_inputs(config, batch_size, device, model)
    sdpa = SdpaHandle()
    wrapper = _Loss(model, mask_ratio)
    with warnings.catch_warnings(), counting_threads(device):
        warnings.simplefilter("ignore")  # TracerWarnings from constant-folded Python ints
        fca = analysis(wrapper, (audio, video), matmul_handles(sdpa))
        by_module = fca.by_module()
        unsupported = fca.unsupported_ops()
    missed = sorted(op for op in unsupported if op in _MATMUL_FAMILY)
    if missed:
        raise FlopCountError(f"fvcore saw matmul-family ops it could not count: {missed}")
    expected_calls = expected_attention_calls(config)
    if len(sdpa.calls) != expected_calls or min(sdpa.calls, default=1) <= 0:
        raise FlopCountError(
            f"fvcore counted {len(sdpa.calls)} attention calls (expected {expected_calls}), "
            f"smallest {min(sdpa.calls, default=0)} MACs"
        )
    global_forward = 2 * int(by_module[""])
    forward = forward_by_component(
        lambda name: 2 * int(by_module.get(f"model.{name}", 0)), global_forward
    )
    return CounterResult(
        counter="fvcore",
        device=device,
        forward=forward,
        backward=None,
        global_forward=global_forward,
        attention_calls=len(sdpa.calls),
        extra={"attention_forward": 2 * sum(sdpa.calls)},
    )
