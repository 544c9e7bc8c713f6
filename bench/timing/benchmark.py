"""``diffbench time``: measure variants (and their peers) side by side in one run.

Every task (train steps of ours and the peer, components of ours) runs in one interleaved
loop, so load drifts hit them alike. Rows carry the environment and the config. FLOPs are
model FLOPs from the closed form (``diffmavil.flops.model_flops``); utilisation is achieved
FLOP/s over the 2048^3 matmul rate measured in the same run, same dtype, device, threads;
MFU (GPU only) is against the datasheet peak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.requests import TimeRequest
from bench.timing.compile_compare import (
    COMPARED_IMPLEMENTATIONS,
    comparison_rows,
    comparison_tasks,
    compile_row,
)
from bench.timing.device import (
    PeakMemory,
    capture_environment,
    datasheet_peak_flops,
    matmul_rate,
)
from bench.timing.dispatch import count_step_ops
from bench.timing.harness import Stats, bootstrap_ratio_of_medians, run_interleaved
from bench.timing.step import (
    TIMED_COMPONENTS,
    ComponentPass,
    TimedTrainStep,
    capture_component_calls,
)
from diffmavil.config import ModelConfig, make_config
from diffmavil.flops import FlopBreakdown, model_flops
from diffmavil.inputs import random_inputs
from diffmavil.model import DiffMAViL
from diffmavil.training.compile import CompileStats
from diffmavil.training.step import autocast_context

MATMUL_SIZE = 2048
MATMUL_FLOPS = 2 * MATMUL_SIZE**3
# environment keys kept in the result's environment block only, not repeated on every row
ROW_SKIPS_ENVIRONMENT = ("schema_version", "date", "packages", "command", "git_commit")


def _matmul_task(device: torch.device, dtype: str) -> Callable:
    from bench.timing.device import DTYPES

    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(device=device, dtype=DTYPES[dtype])
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(device=device, dtype=DTYPES[dtype])

    def task(timer) -> None:
        with timer.region("matmul"):
            torch.mm(a, b)

    return task


@dataclass
class TimeMeasurement:
    """What ``run_time_benchmark`` measured: rows, environment, configs, raw samples."""

    rows: list[dict[str, Any]]
    environment: dict[str, Any]
    configs: dict[str, dict[str, Any]]
    samples: dict[str, dict[str, list[float]]]

    def stored(self):
        """The typed ``bench.schema.TimeResults`` (schema 2) written as JSON, with the
        paper's headline figures (``bench.flops.headline``) beside the rows."""
        from bench.flops.headline import paper_headline
        from bench.schema import Environment, TimeResults

        env = {k: v for k, v in self.environment.items() if k in Environment.model_fields}
        return TimeResults(
            environment=env,
            dtype=self.environment.get("dtype"),
            configs=self.configs,
            paper_headline=paper_headline(),
            rows=self.rows,
        )


def _achieved(flops: int | None, seconds: float, rate: float, peak: float | None) -> dict:
    if not flops:
        return {"flops": flops, "achieved_gflops_per_s": None, "utilisation": None, "mfu": None}
    achieved = flops / seconds
    return {
        "flops": flops,
        "achieved_gflops_per_s": round(achieved / 1e9, 3),
        "utilisation": round(achieved / rate, 4),
        "mfu": round(achieved / peak, 4) if peak else None,
    }


def run_time_benchmark(
    request: TimeRequest, progress: Callable[[str], None] | None = None
) -> TimeMeasurement:
    """Build the models, measure everything interleaved, and return rows."""
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    device = torch.device(request.device)
    configs: dict[str, ModelConfig] = {
        v: make_config(request.preset, v, dict(request.overrides)) for v in request.variants
    }
    environment = capture_environment(device, request.dtype)
    autocast = autocast_context(device, request.dtype)
    flops: dict[str, FlopBreakdown] = {
        v: model_flops(c, request.mask_ratio, request.batch_size) for v, c in configs.items()
    }
    audio, video = random_inputs(
        next(iter(configs.values())), request.batch_size, device, request.seed
    )

    tasks: dict[str, Callable] = {}
    compile_stats: dict[str, CompileStats] = {}
    for variant, config in configs.items():
        torch.manual_seed(request.seed)
        with torch.device(device):
            ours = DiffMAViL(config)
        if request.compile_vs_eager:
            extra, compile_stats[variant] = comparison_tasks(
                variant, ours, audio, video, request.mask_ratio, request.dtype
            )
            tasks.update(extra)
        if request.compile:
            compile_stats[variant] = CompileStats()
        tasks[f"{variant}/ours/train_step"] = TimedTrainStep(
            ours, audio, video, request.mask_ratio, dtype=request.dtype, compile=request.compile,
            compile_stats=compile_stats.get(variant),
        )  # fmt: skip
        if request.peer:
            from bench.timing.peer import peer_from

            tasks[f"{variant}/peer/train_step"] = TimedTrainStep(
                peer_from(ours),
                audio,
                video,
                request.mask_ratio,
                dtype=request.dtype,
                compile=request.compile,
            )
        if request.components:
            calls = capture_component_calls(ours, audio, video, request.mask_ratio, autocast)
            for name in TIMED_COMPONENTS:
                tasks[f"{variant}/ours/{name}"] = ComponentPass(
                    getattr(ours, name), calls[name], autocast=autocast, compile=request.compile
                )

    # ATen calls per phase of the eager steps, counted on a second call (the first one
    # creates the optimizer's state), before anything is timed.
    ops: dict[str, dict[str, int]] = {}
    if not request.compile:
        for name, task in tasks.items():
            if name.endswith("/train_step") and name.split("/")[1] in ("ours", "peer"):
                count_step_ops(task.run)
                ops[name] = count_step_ops(task.run)

    rate = matmul_rate(device, request.dtype, size=MATMUL_SIZE, repeats=request.matmul_repeats)
    # The reference matmul also runs once per round, so that a burst of load at the start
    # does not set it: the rate is the best over the up-front and the interleaved samples.
    tasks["matmul/reference"] = _matmul_task(device, request.dtype)
    peak = datasheet_peak_flops(environment["gpu_name"], request.dtype)
    memory = PeakMemory(device)
    memory.reset()
    samples = run_interleaved(
        tasks, warmup=request.warmup, repeats=request.repeats, device=device, progress=progress
    )
    peak_mb, memory_kind = memory.read_mb()
    rate = max(rate, MATMUL_FLOPS / min(samples.pop("matmul/reference")["matmul"]))
    environment = {
        **environment,
        "load_average_1m_end": capture_environment(device, "x")["load_average_1m"],
    }

    common = {
        **{k: v for k, v in environment.items() if k not in ROW_SKIPS_ENVIRONMENT},
        "preset": request.preset,
        "batch_size": request.batch_size,
        "mask_ratio": f"{request.mask_ratio[0]},{request.mask_ratio[1]}",
        "compile": request.compile,
        "warmup": request.warmup,
        "matmul_gflops_per_s": round(rate / 1e9, 3),
        "peak_memory_mb": round(peak_mb, 1),
        "peak_memory_kind": memory_kind,
    }
    rows: list[dict[str, Any]] = []

    def add(
        kind: str,
        variant: str,
        implementation: str,
        component: str,
        phase: str,
        values: list[float] | None,
        flop_count: int | None,
        **extra: Any,
    ) -> None:
        row: dict[str, Any] = {
            "kind": kind,
            "variant": variant,
            "implementation": implementation,
            "component": component,
            "phase": phase,
        }
        if values:
            stats = Stats.of(values)
            row.update(stats.as_ms(), repeats=stats.n)
            row.update(_achieved(flop_count, stats.median, rate, peak))
        row.update(extra)
        row.update(common)
        rows.append(row)

    for variant in configs:
        fb = flops[variant]
        step_flops = {
            "forward": fb.total_forward,
            "backward": fb.total_backward,
            "optimizer": None,
            "step": fb.total,
        }
        implementations = ["ours", *(["peer"] if request.peer else [])]
        if request.compile_vs_eager:
            implementations += COMPARED_IMPLEMENTATIONS
        for implementation in implementations:
            step = samples[f"{variant}/{implementation}/train_step"]
            step_ops = ops.get(f"{variant}/{implementation}/train_step", {})
            for phase in ("forward", "backward", "optimizer", "step"):
                extra: dict[str, Any] = {"aten_ops": step_ops.get(phase)}
                if phase == "step":
                    extra["samples_per_s"] = round(
                        request.batch_size / Stats.of(step["step"]).median, 3
                    )
                add(
                    "step",
                    variant,
                    implementation,
                    "train_step",
                    phase,
                    step[phase],
                    step_flops[phase],
                    **extra,
                )
        if request.components:
            total_components = 0.0
            for name in TIMED_COMPONENTS:
                part = samples[f"{variant}/ours/{name}"]
                both = [f + b for f, b in zip(part["forward"], part["backward"], strict=True)]
                add(
                    "component", variant, "ours", name, "forward", part["forward"], fb.forward[name]
                )
                add(
                    "component",
                    variant,
                    "ours",
                    name,
                    "backward",
                    part["backward"],
                    fb.backward[name],
                )
                add(
                    "component",
                    variant,
                    "ours",
                    name,
                    "fwd+bwd",
                    both,
                    fb.forward[name] + fb.backward[name],
                )
                total_components += Stats.of(both).median
            step = samples[f"{variant}/ours/train_step"]
            fwd_bwd = Stats.of(
                [f + b for f, b in zip(step["forward"], step["backward"], strict=True)]
            ).median
            add(
                "components_sum",
                variant,
                "ours",
                "sum_of_components",
                "fwd+bwd",
                None,
                None,
                components_ms=round(1e3 * total_components, 3),
                step_fwd_bwd_ms=round(1e3 * fwd_bwd, 3),
                components_share=round(total_components / fwd_bwd, 4),
            )
        if request.peer:
            for phase in ("forward", "backward", "step"):
                interval = bootstrap_ratio_of_medians(
                    samples[f"{variant}/peer/train_step"][phase],
                    samples[f"{variant}/ours/train_step"][phase],
                    paired=True,
                    seed=request.seed,
                )
                add(
                    "peer_ratio",
                    variant,
                    "ours/peer",
                    "train_step",
                    phase,
                    None,
                    None,
                    speed_ratio=round(interval.ratio, 4),
                    ci_low=round(interval.low, 4),
                    ci_high=round(interval.high, 4),
                    confidence=interval.confidence,
                    repeats=request.repeats,
                )

        if request.compile:
            rows.append({**compile_row(variant, compile_stats[variant]), **common})
        if request.compile_vs_eager:
            for row in comparison_rows(
                variant, samples, compile_stats[variant], request.seed, request.repeats
            ):
                rows.append({**row, **common})

    variants = list(configs)
    if len(variants) > 1:
        baseline = variants[0]
        for variant in variants[1:]:
            rows.extend(_saving_rows(baseline, variant, samples, flops, request.components, common))
    return TimeMeasurement(
        rows=rows,
        environment=environment,
        configs={v: c.model_dump(mode="json") for v, c in configs.items()},
        samples=samples,
    )


def _saving_rows(
    baseline: str,
    variant: str,
    samples: dict[str, dict[str, list[float]]],
    flops: dict[str, FlopBreakdown],
    components: bool,
    common: dict[str, Any],
) -> list[dict[str, Any]]:
    """Time saving vs FLOP saving of ``variant`` against ``baseline``, per component and for
    the whole step (fwd+bwd). ratio = time saving / FLOP saving (1.0: time follows FLOPs)."""

    def fwd_bwd(key: str) -> float:
        part = samples[key]
        return Stats.of(
            [f + b for f, b in zip(part["forward"], part["backward"], strict=True)]
        ).median

    names = [*TIMED_COMPONENTS, "train_step"] if components else ["train_step"]
    rows = []
    for name in names:
        if name == "train_step":
            base_flops, var_flops = flops[baseline].total, flops[variant].total
        else:
            base_flops = flops[baseline].component_total(name)
            var_flops = flops[variant].component_total(name)
        base_time = fwd_bwd(f"{baseline}/ours/{name}")
        var_time = fwd_bwd(f"{variant}/ours/{name}")
        flop_saving = 1.0 - var_flops / base_flops if base_flops else 0.0
        time_saving = 1.0 - var_time / base_time
        rows.append(
            {
                "kind": "saving",
                "variant": variant,
                "baseline": baseline,
                "implementation": "ours",
                "component": name,
                "phase": "fwd+bwd",
                "baseline_ms": round(1e3 * base_time, 3),
                "variant_ms": round(1e3 * var_time, 3),
                "flop_saving": round(flop_saving, 4),
                "time_saving": round(time_saving, 4),
                "time_per_flop_saving": (
                    round(time_saving / flop_saving, 3) if abs(flop_saving) > 1e-9 else None
                ),
                **common,
            }
        )
    return rows
