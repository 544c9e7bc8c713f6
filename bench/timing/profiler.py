"""``torch.profiler`` traces of train steps, labelled per component (``diffbench profile``).

Each component's forward runs inside ``record_function("<component>")`` (forward hooks);
the step phases are labelled ``train_step/forward``, ``train_step/backward`` and
``train_step/optimizer``. ``record_function`` does not label backward work, so backward
operators are attributed through autograd's sequence numbers: a backward node carries the
sequence number of the forward op that created it, and that op sits under a component label.

The trace directory is written by ``tensorboard_trace_handler``: one Chrome-trace JSON per
profiled step (``*.pt.trace.json``) that Perfetto (ui.perfetto.dev) opens directly and
TensorBoard's profiler plugin (torch-tb-profiler) reads with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.autograd import DeviceType
from torch.autograd.profiler import record_function

from bench.requests import ProfileRequest
from bench.timing.device import on_device
from bench.timing.tasks import TIMED_COMPONENTS, TimedTrainStep

BACKWARD_NODE = "autograd::engine::evaluate_function: "


# Operators that run matrix-multiply kernels (the same kernels compiled or not); the rest
# (elementwise, norms, softmax outside fused attention, copies, gathers, the optimizer) is
# what compilation can fuse.
MATMUL_OPS = frozenset(
    {
        "aten::mm",
        "aten::addmm",
        "aten::bmm",
        "aten::baddbmm",
        "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
        "aten::_scaled_dot_product_efficient_attention",
        "aten::_scaled_dot_product_efficient_attention_backward",
        "aten::_scaled_dot_product_flash_attention",
        "aten::_scaled_dot_product_flash_attention_backward",
    }
)


@dataclass
class ProfileResult:
    trace_dir: Path
    trace_files: list[Path]
    top_ops: list[dict[str, Any]]
    time_split: dict[str, float | str] | None = None


# Kernel names (lower case) by what they compute: fused attention first (flash, the
# memory-efficient CUTLASS fmha, cuDNN's SDPA, Triton's flex attention; some of them are
# CUTLASS templates too), then matrix multiplies (cuBLAS/cuBLASLt: *gemm*, Hopper's
# nvjet, gemv and split-K reductions; CUTLASS; cuDNN convolutions; inductor's Triton
# matmul templates); the rest is elementwise, norms, softmax, copies and the optimizer.
ATTENTION_KERNELS = ("flash_fwd", "flash_bwd", "pytorch_flash", "fmha", "sdpa", "attention")
MATMUL_KERNELS = (
    "gemm", "gemv", "nvjet", "splitkreduce", "cutlass", "cublas", "xmma", "_fprop",
    "_dgrad", "_wgrad", "convolve", "conv1d", "conv2d", "conv3d",
)  # fmt: skip
TRITON_MATMUL_TEMPLATES = ("triton_tem_fused_mm", "triton_tem_fused_addmm", "triton_tem_fused_bmm")


def kernel_kind(name: str) -> str:
    """ "attention", "matmul" or "other", from a CUDA kernel's name."""
    lowered = name.lower()
    if lowered.startswith("triton_"):  # inductor's: named after the aten ops they fuse
        if lowered.startswith("triton_tem_") and "attention" in lowered:
            return "attention"  # flex attention's template
        return "matmul" if lowered.startswith(TRITON_MATMUL_TEMPLATES) else "other"
    if any(key in lowered for key in ATTENTION_KERNELS):
        return "attention"
    if lowered.startswith("cudnn") and "::engines_precompiled::" in lowered:
        return "other"  # cuDNN's layout transforms
    return "matmul" if any(key in lowered for key in MATMUL_KERNELS) else "other"


def _is_kernel(event: Any) -> bool:
    return event.device_type == DeviceType.CUDA and not getattr(event, "is_user_annotation", False)


def matmul_split(events: list[Any], steps: int) -> dict[str, float | str]:
    """Per profiled step, where the time goes. On CUDA (kernels in the trace: ``clock``
    "cuda"): the kernels' device time (``step_ms``, the GPU's busy time), split by kernel
    name (``kernel_kind``) into matrix multiplies with fused attention (``matmul_ms``, of
    which ``attention_ms``) and the rest; ``host_ms`` is the phases' CPU (launch) time. On
    a CPU (``clock`` "cpu"): the phases' wall time and the self time of matmul operators
    within it."""
    phases = {"train_step/forward", "train_step/backward", "train_step/optimizer"}
    host_us = sum(e.cpu_time_total for e in events if e.name in phases)
    steps = max(steps, 1)
    kernels = [e for e in events if _is_kernel(e)]
    if kernels:
        by_kind: dict[str, float] = defaultdict(float)
        for kernel in kernels:
            by_kind[kernel_kind(kernel.name)] += kernel.device_time_total
        step_us = sum(by_kind.values())
        matmul_us = by_kind["matmul"] + by_kind["attention"]
        extra: dict[str, float | str] = {
            "attention_ms": round(by_kind["attention"] / 1e3 / steps, 3),
            "host_ms": round(host_us / 1e3 / steps, 3),
        }
        clock = "cuda"
    else:
        step_us = host_us
        matmul_us = sum(e.self_cpu_time_total for e in events if e.name in MATMUL_OPS)
        extra, clock = {}, "cpu"
    return {
        "clock": clock,
        "step_ms": round(step_us / 1e3 / steps, 3),
        "matmul_ms": round(matmul_us / 1e3 / steps, 3),
        "other_ms": round((step_us - matmul_us) / 1e3 / steps, 3),
        "matmul_share": round(matmul_us / step_us, 4) if step_us else 0.0,
        **extra,
    }


def label_components(model: nn.Module, names: tuple[str, ...] = TIMED_COMPONENTS) -> list:
    """Wrap each component's forward in ``record_function(name)``; returns hook handles."""
    handles = []
    for name in names:
        module = getattr(model, name)
        scopes: list[Any] = []

        def enter(_m: nn.Module, _args: Any, name: str = name, scopes: list = scopes) -> None:
            scope = record_function(name)
            scope.__enter__()
            scopes.append(scope)

        def leave(_m: nn.Module, _args: Any, _out: Any, scopes: list = scopes) -> None:
            scopes.pop().__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    return handles


def _profile_label(name: str) -> Any:
    """The profiler label of a train-step phase: ``train_step/forward`` and so on."""
    return record_function(f"train_step/{name}")


def _component_of(event: Any, labels: set[str]) -> str | None:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in labels:
            return parent.name
        parent = parent.cpu_parent
    return None


def top_ops_per_component(events: list[Any], top: int = 5) -> list[dict[str, Any]]:
    """Rows {component, pass, rank, op, self_ms, calls, share} from profiler events.

    Forward: ops nested under a component label. Backward: ops nested under an autograd
    node whose sequence number belongs to a forward op under that label. Self time is the
    device time on CUDA, else CPU time.
    """
    labels = set(TIMED_COMPONENTS)
    seq_owner: dict[int, str] = {}
    for event in events:
        if event.name.startswith("aten::") and getattr(event, "sequence_nr", -1) >= 0:
            owner = _component_of(event, labels)
            if owner is not None:
                seq_owner.setdefault(event.sequence_nr, owner)
    totals: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(lambda: [0.0, 0])
    )

    def self_us(event: Any) -> float:
        device_us = getattr(event, "self_device_time_total", 0.0) or 0.0
        return device_us if device_us > 0 else event.self_cpu_time_total

    for event in events:
        if not event.name.startswith("aten::"):
            continue
        owner = _component_of(event, labels)
        if owner is not None:
            key = (owner, "forward")
        else:
            node = event.cpu_parent
            while node is not None and not node.name.startswith(BACKWARD_NODE):
                node = node.cpu_parent
            if node is None or node.sequence_nr not in seq_owner:
                continue
            key = (seq_owner[node.sequence_nr], "backward")
        slot = totals[key][event.name]
        slot[0] += self_us(event)
        slot[1] += 1
    rows = []
    for component in TIMED_COMPONENTS:
        for phase in ("forward", "backward"):
            ops = totals.get((component, phase), {})
            whole = sum(v[0] for v in ops.values()) or 1.0
            ranked = sorted(ops.items(), key=lambda item: -item[1][0])[:top]
            for rank, (op, (micros, calls)) in enumerate(ranked, start=1):
                rows.append(
                    {
                        "component": component,
                        "pass": phase,
                        "rank": rank,
                        "op": op,
                        "self_ms": round(micros / 1e3, 3),
                        "calls": int(calls),
                        "share": round(micros / whole, 4),
                    }
                )
    return rows


def profile_train_step(
    model: nn.Module,
    audio: torch.Tensor,
    video: torch.Tensor,
    mask_ratio: tuple[float, float],
    out_dir: Path,
    *,
    dtype: str = "fp32",
    compile: bool = False,
    warmup: int = 1,
    active: int = 1,
    top: int = 5,
) -> ProfileResult:
    """Profile ``active`` train steps after ``warmup`` ones; write the trace to ``out_dir``."""
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.pt.trace.json"))
    activities = [ProfilerActivity.CPU]
    if audio.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    step = TimedTrainStep(model, audio, video, mask_ratio, dtype=dtype, compile=compile)
    handles = label_components(model)
    try:
        with profile(
            activities=activities,
            schedule=schedule(wait=0, warmup=warmup, active=active, repeat=1),
            on_trace_ready=tensorboard_trace_handler(str(out_dir), worker_name="diffbench"),
            record_shapes=True,
            with_stack=False,
        ) as profiler:
            for _ in range(warmup + active):
                step.run(_profile_label)
                profiler.step()
        events = list(profiler.events())
    finally:
        for handle in handles:
            handle.remove()
    files = sorted(set(out_dir.glob("*.pt.trace.json")) - before)
    return ProfileResult(
        out_dir, files, top_ops_per_component(events, top), matmul_split(events, active)
    )


def profile_request(request: ProfileRequest) -> ProfileResult:
    """``request``'s model (seeded) on a batch of random inputs: its train steps profiled."""
    from diffmavil.config import make_config, parse_mask_ratio
    from diffmavil.inputs import random_inputs
    from diffmavil.model import DiffMAViL

    config = make_config(request.preset, request.variant, dict(request.overrides))
    ratios = parse_mask_ratio(request.mask_ratio)
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    torch.manual_seed(request.seed)
    with torch.device(request.device):
        model = DiffMAViL(config)
    audio, video = random_inputs(
        config, request.batch_size, torch.device(request.device), request.seed
    )
    with on_device(torch.device(request.device)):  # cuda:1 profiled on GPU 1
        return profile_train_step(
            model, audio, video, ratios, request.out_dir, dtype=request.dtype,
            compile=request.compile, warmup=request.warmup, active=request.steps,
            top=request.top,
        )  # fmt: skip
