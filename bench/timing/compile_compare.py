"""Eager vs compiled (and fused vs default AdamW) side by side in one ``diffbench time`` run.

With ``TimeRequest.compile_vs_eager`` each variant gets two more train-step tasks in the
same interleaved loop as the eager one (``ours``): ``compiled`` (a copy of the model, its
components compiled by ``diffmavil.training.compile``) and ``foreach`` (eager, torch's
default AdamW instead of the fused kernel). The speed ratios (eager / compiled per phase,
default / fused for the optimizer and the step) come with paired bootstrap intervals;
compilation itself (graphs, recompiles, seconds) is reported apart from the timed steps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from bench.schema import TimingRow
from bench.stats import bootstrap_ratio_of_medians
from bench.timing.rows import RowMaker
from bench.timing.tasks import TimedTrainStep
from diffmavil.training.compile import CompileStats
from diffmavil.training.config import OptimizerConfig

COMPARED_IMPLEMENTATIONS = ("compiled", "foreach")


def comparison_tasks(
    variant: str,
    model: nn.Module,
    audio: torch.Tensor,
    video: torch.Tensor,
    mask_ratio: tuple[float, float],
    dtype: str,
) -> tuple[dict[str, Callable], CompileStats]:
    """The compiled and default-AdamW train steps of ``variant`` (copies of ``model``)."""
    stats = CompileStats()
    tasks: dict[str, Callable] = {
        f"{variant}/compiled/train_step": TimedTrainStep(
            copy.deepcopy(model), audio, video, mask_ratio, dtype=dtype, compile=True,
            compile_stats=stats,
        ),
        f"{variant}/foreach/train_step": TimedTrainStep(
            copy.deepcopy(model), audio, video, mask_ratio, dtype=dtype,
            optimizer=OptimizerConfig(fused=False),
        ),
    }  # fmt: skip
    return tasks, stats


def comparison_rows(
    variant: str,
    samples: dict[str, dict[str, list[float]]],
    stats: CompileStats,
    seed: int,
    repeats: int,
    maker: RowMaker,
) -> list[TimingRow]:
    """Ratio rows (kind ``compile_ratio``: eager / compiled; ``fused_ratio``: default /
    fused AdamW) with 95% paired bootstrap intervals, and one ``compile`` row."""
    ours = f"{variant}/ours/train_step"
    pairs = [
        ("compile_ratio", "eager/compiled", f"{variant}/compiled/train_step", phase)
        for phase in ("forward", "backward", "optimizer", "step")
    ] + [
        ("fused_ratio", "foreach/fused", f"{variant}/foreach/train_step", phase)
        for phase in ("optimizer", "step")
    ]
    rows: list[TimingRow] = []
    for kind, implementation, other, phase in pairs:
        eager, copy = samples[ours], samples[other]
        slow, fast = (eager, copy) if kind == "compile_ratio" else (copy, eager)
        interval = bootstrap_ratio_of_medians(slow[phase], fast[phase], paired=True, seed=seed)
        row = maker.row(
            kind, variant, implementation, "train_step", phase,
            speed_ratio=round(interval.estimate, 4), ci_low=round(interval.low, 4),
            ci_high=round(interval.high, 4), confidence=interval.level, repeats=repeats,
            **maker.peak(ours, other),
        )  # fmt: skip
        rows.append(row)
    rows.append(compile_row(variant, stats, maker, f"{variant}/compiled/train_step"))
    return rows


def compile_row(variant: str, stats: CompileStats, maker: RowMaker, task: str) -> TimingRow:
    """Kind ``compile``: graphs, recompiles and backend seconds of the compiled train step
    ``task`` (the first compile happens in the warm-up calls, outside the timed repeats)."""
    return maker.row(
        "compile", variant, "compiled", "train_step", "compile", **stats.summary(),
        **maker.peak(task),
    )  # fmt: skip
