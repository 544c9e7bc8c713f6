"""``diffbench check``: every path of the harness once, in a reduced configuration, on the
device, each row judged against an expected value or bound (pass, fail or skip with its
reason). Rows here: the three FLOP counters, a timed train step per dtype, compilation;
``bench.timing.check_training``: pre-training with resume, a probe, a fine-tune, DDP;
``bench.projection.check``: a whole-run projection. The command is ``bench/cli/check.py``.

A row is a function of the ``CheckContext`` returning an ``Outcome`` (or raising ``Skip``);
a row that raises anything else fails with the error's first line (an out-of-memory
error, a crash), so that a broken path is a failed row, never a passed one.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

RATIOS = (0.8, 0.9)
PRESET, VARIANT = "tiny", "cross-attn"


class Skip(Exception):
    """The row does not apply here (the message says why)."""


@dataclass
class CheckContext:
    """Where the check runs and what its rows hand on (the pre-trained run for the probe
    and the fine-tune)."""

    device: torch.device
    workdir: Path
    seed: int = 0
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def batch(self) -> int:
        """The batch of a timed step: small on a CPU, a GPU's smallest useful one."""
        return 8 if self.cuda else 2


@dataclass(frozen=True)
class Outcome:
    """A row's result: whether it holds, what was expected and what was measured, and its
    headline figures (step ms, utilisation, MFU, peak memory MB, ...)."""

    passed: bool
    expected: str
    measured: str
    figures: dict[str, Any] = field(default_factory=dict)
    device: str | None = None  # where the row ran when not the check's device


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Literal["pass", "fail", "skip"]
    device: str
    expected: str
    measured: str
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "check": self.name, "status": self.status, "device": self.device,
            "expected": self.expected, "measured": self.measured,
            "seconds": round(self.seconds, 2), **self.figures,
        }  # fmt: skip


Row = Callable[[CheckContext], Outcome]


def run_rows(
    rows: dict[str, Row],
    context: CheckContext,
    progress: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Each row in order (``progress`` told of each result); a row that raises fails
    with the error's first line."""
    results = []
    for name, row in rows.items():
        began = time.perf_counter()
        device = str(context.device)
        try:
            outcome = row(context)
            result = CheckResult(
                name, "pass" if outcome.passed else "fail", outcome.device or device,
                outcome.expected, outcome.measured, time.perf_counter() - began,
                outcome.figures,
            )  # fmt: skip
        except Skip as reason:
            result = CheckResult(name, "skip", device, "", str(reason), 0.0)
        except Exception as error:  # a crash is a failed row
            lines = str(error).strip().splitlines() or [""]
            measured = f"{type(error).__name__}: {lines[0]}"
            elapsed = time.perf_counter() - began
            result = CheckResult(name, "fail", device, "runs without error", measured, elapsed)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


# ------------------------------------------------------------------------------- rows
def flops_row(context: CheckContext) -> Outcome:
    """The torch and fvcore counters agree exactly with the closed form (tiny, forward and
    backward, on meta tensors): ``count_flops`` raises on any difference."""
    from bench.flops.breakdown import count_flops
    from bench.flops.common import FlopCountError
    from diffmavil.config import make_config

    expected = "torch = fvcore = analytic, every component, forward and backward"
    try:
        report = count_flops(make_config(PRESET, VARIANT), RATIOS, 1, counter="all")
    except FlopCountError as error:
        return Outcome(False, expected, str(error)[:200])
    total = report.analytic.total
    return Outcome(True, expected, f"{total / 1e9:.3f} GFLOPs per sample, all three agree")


def _model(context: CheckContext):
    from diffmavil.config import make_config
    from diffmavil.model import DiffMAViL

    config = make_config(PRESET, VARIANT)
    torch.manual_seed(context.seed)
    with torch.device(context.device):
        return config, DiffMAViL(config)


def step_row(dtype: str) -> Row:
    """A timed train step in ``dtype``: finite losses, every parameter updated, and an
    achieved rate that a timer on the right device gives (0 < utilisation < 1.5 of the
    measured matmul rate, MFU < 1)."""

    def row(context: CheckContext) -> Outcome:
        if dtype == "bf16" and not context.cuda:
            raise Skip("bf16 autocast runs on CUDA (a CPU trains in fp32)")
        return _timed_step(context, dtype)

    return row


def _timed_step(context: CheckContext, dtype: str) -> Outcome:
    from bench.timing.device import TaskPeaks, matmul_rate, mfu_peak
    from bench.timing.harness import Stats, run_interleaved
    from bench.timing.tasks import TimedTrainStep
    from diffmavil.flops import model_flops
    from diffmavil.inputs import random_inputs

    config, model = _model(context)
    audio, video = random_inputs(config, context.batch, context.device, context.seed)
    step = TimedTrainStep(model, audio, video, RATIOS, dtype=dtype)
    losses: list[torch.Tensor] = []
    train = step.step

    def recorded(*args: Any, **kwargs: Any):
        result = train(*args, **kwargs)
        losses.append(result.loss.detach())
        return result

    step.step = recorded
    before = [p.detach().clone() for p in model.parameters()]
    peaks = TaskPeaks(context.device)
    samples = run_interleaved(
        {"step": step}, warmup=1, repeats=3, device=context.device, memory=peaks
    )["step"]["step"]
    seconds = Stats.of(samples).median
    flops = model_flops(config, RATIOS, context.batch).total
    rate = matmul_rate(context.device, dtype, repeats=2)
    name = torch.cuda.get_device_name(context.device) if context.cuda else None
    peak, _label = mfu_peak(name, dtype)
    utilisation, mfu = flops / seconds / rate, (None if peak is None else flops / seconds / peak)
    finite = bool(torch.isfinite(torch.stack(losses)).all())
    updated = all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    memory = peaks.peaks["step"]
    figures = {
        "step_ms": round(1e3 * seconds, 2),
        "utilisation": round(utilisation, 4),
        "mfu": None if mfu is None else round(mfu, 4),
        "peak_memory_mb": round(memory.allocated_mb, 1),
        "peak_reserved_mb": memory.reserved_mb,
    }
    mfu_text = "" if mfu is None else f", MFU {100 * mfu:.1f}%"
    measured = (
        f"batch {context.batch}: losses {'finite' if finite else 'NOT finite'}, "
        f"{'every' if updated else 'NOT every'} parameter updated, utilisation "
        f"{100 * utilisation:.1f}%{mfu_text}"
    )
    passed = finite and updated and 0 < utilisation < 1.5 and (mfu is None or mfu < 1)
    expected = "finite losses, every parameter updated, 0 < utilisation < 150%, MFU < 100%"
    return Outcome(passed, expected, measured, figures)


def compile_row(context: CheckContext) -> Outcome:
    """A compiled copy's loss and gradients equal eager's within tolerance, through the
    blocks ``pretrain --compile`` compiles (all on CUDA; the fusion's blocks on a CPU,
    where inductor compiles for tens of seconds per kind of block), and compilation was
    real: at least one graph per kind of block, dynamo's silent fallback switched off."""
    from diffmavil.inputs import random_inputs
    from diffmavil.training.compile import COMPILED_COMPONENTS, compile_components

    config, eager = _model(context)
    compiled = copy.deepcopy(eager)
    components = COMPILED_COMPONENTS if context.cuda else ("fusion",)
    stats = compile_components(compiled, components)
    kinds = {
        (type(block).__name__, next(block.parameters()).shape[-1])
        for name in components
        for block in getattr(compiled, name).blocks
    }
    audio, video = random_inputs(config, 2, context.device, context.seed)
    ids = torch.arange(2, device=context.device)
    losses = []
    for model in (eager, compiled):
        output = model(audio, video, RATIOS, ids, context.seed)
        output.loss.backward()
        losses.append(float(output.loss.detach()))
    loss_error = abs(losses[1] - losses[0]) / max(abs(losses[0]), 1e-12)
    grad_error = max(
        float((b.grad - a.grad).abs().max() / a.grad.abs().max().clamp_min(1e-12))
        for a, b in zip(eager.parameters(), compiled.parameters(), strict=True)
        if a.grad is not None
    )
    tolerance = 1e-4 if context.cuda else 1e-5
    never_silent = bool(torch._dynamo.config.fail_on_recompile_limit_hit)
    passed = (
        math.isfinite(losses[1]) and loss_error <= tolerance and grad_error <= 1e-3
        and stats.total_graphs >= len(kinds) and never_silent
    )  # fmt: skip
    expected = (
        f"loss within {tolerance:g} (relative), gradients within 1e-3 of each parameter's "
        f"largest, >= {len(kinds)} graph(s) ({', '.join(components)}), no silent fallback"
    )
    measured = (
        f"loss {loss_error:.1e}, gradients {grad_error:.1e}, {stats.total_graphs} graph(s), "
        f"{stats.recompiles} recompile(s), fallback {'raises' if never_silent else 'SILENT'}"
    )
    figures = {"graphs": stats.total_graphs, "compile_seconds": round(stats.total_seconds, 1)}
    return Outcome(passed, expected, measured, figures)


TIMING_ROWS: dict[str, Row] = {
    "flops": flops_row,
    "step fp32": step_row("fp32"),
    "step bf16": step_row("bf16"),
    "compile": compile_row,
}
