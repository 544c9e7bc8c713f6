"""``diffbench time``: measure variants (and their peers) side by side in one run.

Every task (train steps of ours and the peer, components of ours) runs in one interleaved
loop, so load drifts hit them alike. Rows (``bench.schema.TimingRow``) carry the
environment and the config. FLOPs are model FLOPs from the closed form
(``diffmavil.flops.model_flops``); utilisation is achieved FLOP/s over the 2048^3 matmul
rate measured in the same run, same dtype, device, threads; MFU (GPU only) is against the
datasheet peak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.requests import TimeRequest
from bench.schema import TimingRow
from bench.timing.compile_compare import (
    COMPARED_IMPLEMENTATIONS,
    comparison_rows,
    comparison_tasks,
    compile_row,
)
from bench.timing.device import (
    MemoryReading,
    TaskPeaks,
    capture_environment,
    matmul_rate,
    mfu_peak,
    on_device,
)
from bench.timing.dispatch import count_step_ops
from bench.timing.harness import run_interleaved
from bench.timing.rows import (
    RowMaker,
    Samples,
    component_rows,
    peer_rows,
    saving_rows,
    step_rows,
)
from bench.timing.tasks import (
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


@dataclass
class TimeMeasurement:
    """What ``run_time_benchmark`` measured: typed rows, environment, configs, raw samples.
    ``shared_keys``: the fields every row repeats (environment and the run's settings)."""

    rows: list[TimingRow]
    environment: dict[str, Any]
    configs: dict[str, dict[str, Any]]
    samples: Samples
    shared_keys: tuple[str, ...] = ()
    mfu_peak: str = "not a GPU"  # the datasheet entry MFU is taken against, or why none
    memory: dict[str, MemoryReading] = field(default_factory=dict)  # peak per timed task

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

    def records(self) -> list[dict[str, Any]]:
        """Each row's fields that were set, as a dict: its own first, then the shared ones
        (the order of CSV columns)."""
        shared = self.shared_keys
        records = []
        for row in self.rows:
            given = row.model_fields_set
            own = [k for k in type(row).model_fields if k in given and k not in shared]
            records.append({k: getattr(row, k) for k in [*own, *shared] if k in given})
        return records


@dataclass
class _Tasks:
    """The timed tasks of every variant, the compile statistics of compiled copies, and the
    ATen calls per phase of the eager train steps."""

    tasks: dict[str, Callable]
    compile_stats: dict[str, CompileStats]
    ops: dict[str, dict[str, int]]


def _matmul_task(device: torch.device, dtype: str) -> Callable:
    from bench.timing.device import DTYPES

    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(device=device, dtype=DTYPES[dtype])
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(device=device, dtype=DTYPES[dtype])

    def task(timer) -> None:
        with timer.region("matmul"):
            torch.mm(a, b)

    return task


def run_time_benchmark(
    request: TimeRequest, progress: Callable[[str], None] | None = None
) -> TimeMeasurement:
    """Build the models, measure everything interleaved, and return typed rows; on CUDA
    with the request's device current (``cuda:1`` runs and is timed on GPU 1)."""
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    device = torch.device(request.device)
    with on_device(device):
        return _measure(request, device, progress)


def _measure(
    request: TimeRequest, device: torch.device, progress: Callable[[str], None] | None
) -> TimeMeasurement:
    configs: dict[str, ModelConfig] = {
        v: make_config(request.preset, v, dict(request.overrides)) for v in request.variants
    }
    environment = capture_environment(device, request.dtype)
    flops: dict[str, FlopBreakdown] = {
        v: model_flops(c, request.mask_ratio, request.batch_size) for v, c in configs.items()
    }
    built = _build_tasks(request, configs, device)
    rate = matmul_rate(device, request.dtype, size=MATMUL_SIZE, repeats=request.matmul_repeats)
    # The reference matmul also runs once per round, so that a burst of load at the start
    # does not set it: the rate is the best over the up-front and the interleaved samples.
    built.tasks["matmul/reference"] = _matmul_task(device, request.dtype)
    peak, peak_label = mfu_peak(environment["gpu_name"], request.dtype)
    memory = TaskPeaks(device)  # each task's peak, reset before each of its calls
    samples = run_interleaved(
        built.tasks, warmup=request.warmup, repeats=request.repeats, device=device,
        progress=progress, memory=memory,
    )  # fmt: skip
    memory.peaks.pop("matmul/reference", None)
    rate = max(rate, MATMUL_FLOPS / min(samples.pop("matmul/reference")["matmul"]))
    environment = {
        **environment,
        "load_average_1m_end": capture_environment(device, "x")["load_average_1m"],
    }
    shared = {
        **{k: v for k, v in environment.items() if k not in ROW_SKIPS_ENVIRONMENT},
        "preset": request.preset,
        "batch_size": request.batch_size,
        "mask_ratio": f"{request.mask_ratio[0]},{request.mask_ratio[1]}",
        "compile": request.compile,
        "warmup": request.warmup,
        "matmul_gflops_per_s": round(rate / 1e9, 3),
    }
    peaks = {task: (r.allocated_mb, r.kind) for task, r in memory.peaks.items()}
    maker = RowMaker(shared, rate, peak, peaks)
    rows = [
        row
        for variant in configs
        for row in _variant_rows(request, variant, flops[variant], samples, built, maker)
    ]
    baseline, *others = list(configs)
    for variant in others:
        rows += saving_rows(baseline, variant, samples, flops, request.components, maker)
    return TimeMeasurement(
        rows=rows,
        environment=environment,
        configs={v: c.model_dump(mode="json") for v, c in configs.items()},
        samples=samples,
        shared_keys=(*shared, "peak_memory_mb", "peak_memory_kind"),  # CSV column order
        mfu_peak=peak_label,
        memory=memory.peaks,
    )


def _build_tasks(
    request: TimeRequest, configs: dict[str, ModelConfig], device: torch.device
) -> _Tasks:
    """Every variant's train step (ours; the peer, the compiled and default-AdamW copies
    when asked) and its components, on one batch of inputs; then the ATen calls per phase
    of the eager steps, counted on a second call (the first one creates the optimizer's
    state), before anything is timed."""
    autocast = autocast_context(device, request.dtype)
    audio, video = random_inputs(
        next(iter(configs.values())), request.batch_size, device, request.seed
    )
    ratios, dtype, compile = request.mask_ratio, request.dtype, request.compile
    tasks: dict[str, Callable] = {}
    compile_stats: dict[str, CompileStats] = {}
    for variant, config in configs.items():
        torch.manual_seed(request.seed)
        with torch.device(device):
            ours = DiffMAViL(config)
        if request.compile_vs_eager:
            extra, compile_stats[variant] = comparison_tasks(
                variant, ours, audio, video, ratios, dtype
            )
            tasks.update(extra)
        if compile:
            compile_stats[variant] = CompileStats()
        tasks[f"{variant}/ours/train_step"] = TimedTrainStep(
            ours, audio, video, ratios, dtype=dtype, compile=compile,
            compile_stats=compile_stats.get(variant),
        )  # fmt: skip
        if request.peer:
            from bench.timing.peer import peer_from

            tasks[f"{variant}/peer/train_step"] = TimedTrainStep(
                peer_from(ours), audio, video, ratios, dtype=dtype, compile=compile
            )
        if request.components:
            calls = capture_component_calls(ours, audio, video, ratios, autocast)
            for name in TIMED_COMPONENTS:
                tasks[f"{variant}/ours/{name}"] = ComponentPass(
                    getattr(ours, name), calls[name], autocast=autocast, compile=compile
                )
    ops: dict[str, dict[str, int]] = {}
    if not compile:
        for name, task in tasks.items():
            if name.endswith("/train_step") and name.split("/")[1] in ("ours", "peer"):
                count_step_ops(task.run)
                ops[name] = count_step_ops(task.run)
    return _Tasks(tasks, compile_stats, ops)


def _variant_rows(
    request: TimeRequest,
    variant: str,
    flops: FlopBreakdown,
    samples: Samples,
    built: _Tasks,
    maker: RowMaker,
) -> list[TimingRow]:
    """One variant's rows: its train steps' phases (ours, then the peer and the compared
    copies), its components and their sum, the peer's speed ratios, compilation."""
    implementations = ["ours", *(["peer"] if request.peer else [])]
    if request.compile_vs_eager:
        implementations += COMPARED_IMPLEMENTATIONS
    rows = [
        row
        for implementation in implementations
        for row in step_rows(
            variant, implementation, flops, samples, built.ops, request.batch_size, maker
        )
    ]
    if request.components:
        rows += component_rows(variant, flops, samples, maker)
    if request.peer:
        rows += peer_rows(variant, samples, request.seed, request.repeats, maker)
    if request.compile:
        task = f"{variant}/ours/train_step"
        rows.append(compile_row(variant, built.compile_stats[variant], maker, task))
    if request.compile_vs_eager:
        rows += comparison_rows(
            variant, samples, built.compile_stats[variant], request.seed, request.repeats, maker
        )
    return rows
