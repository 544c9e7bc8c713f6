"""The rows of a ``diffbench time`` measurement (``bench.schema.TimingRow``), from its
samples: train-step phases, components and their sum, the peer's speed ratios, and time
saving against FLOP saving between variants. Every row repeats the measurement's shared
fields (environment and settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.schema import TimingRow
from bench.stats import bootstrap_ratio_of_medians
from bench.timing.harness import Stats
from bench.timing.tasks import TIMED_COMPONENTS
from diffmavil.flops import FlopBreakdown

STEP_PHASES = ("forward", "backward", "optimizer", "step")

Samples = dict[str, dict[str, list[float]]]  # {task: {region: [seconds per round]}}


@dataclass(frozen=True)
class RowMaker:
    """Makes the rows of one measurement: every row repeats ``shared``; a timed row gets
    its statistics (ms) and its achieved rate against the matmul rate and the peak; every
    row its own peak memory (``peak``: of its task, or of the tasks it compares)."""

    shared: Mapping[str, Any]
    matmul_flops_per_s: float
    peak_flops_per_s: float | None
    memory: Mapping[str, tuple[float, str]] = field(default_factory=dict)  # task: (MB, kind)

    def peak(self, *tasks: str) -> dict[str, Any]:
        """The peak-memory fields of a row: its task's peak, or the largest of the tasks a
        derived row compares (nothing where no peak was read)."""
        readings = [self.memory[task] for task in tasks if task in self.memory]
        if not readings:
            return {}
        megabytes, kind = max(readings)
        return {"peak_memory_mb": round(megabytes, 1), "peak_memory_kind": kind}

    def row(self, kind: str, variant: str, implementation: str, component: str, phase: str,
            **fields: Any) -> TimingRow:  # fmt: skip
        head = {"kind": kind, "variant": variant, "implementation": implementation,
                "component": component, "phase": phase}  # fmt: skip
        return TimingRow(**{**head, **fields, **self.shared})

    def timed(self, kind: str, variant: str, implementation: str, component: str, phase: str,
              seconds: list[float], flops: int | None, **fields: Any) -> TimingRow:  # fmt: skip
        stats = Stats.of(seconds)
        achieved = achieved_rates(
            flops, stats.median, self.matmul_flops_per_s, self.peak_flops_per_s
        )
        return self.row(kind, variant, implementation, component, phase,
                        **stats.as_ms(), repeats=stats.n, **achieved, **fields)  # fmt: skip


def achieved_rates(flops: int | None, seconds: float, rate: float, peak: float | None) -> dict:
    """FLOPs, achieved GFLOP/s, utilisation (of ``rate``) and MFU (of ``peak``); None where
    nothing was counted."""
    if not flops:
        return {"flops": flops, "achieved_gflops_per_s": None, "utilisation": None, "mfu": None}
    achieved = flops / seconds
    return {
        "flops": flops,
        "achieved_gflops_per_s": round(achieved / 1e9, 3),
        "utilisation": round(achieved / rate, 4),
        "mfu": round(achieved / peak, 4) if peak else None,
    }


def summed_passes(part: dict[str, list[float]]) -> list[float]:
    """Forward + backward seconds of each round."""
    return [f + b for f, b in zip(part["forward"], part["backward"], strict=True)]


def step_rows(
    variant: str,
    implementation: str,
    flops: FlopBreakdown,
    samples: Samples,
    ops: dict[str, dict[str, int]],
    batch_size: int,
    maker: RowMaker,
) -> list[TimingRow]:
    """The phases of one train step (forward, backward, optimizer, the whole step), with
    the ATen calls per phase where they were counted (``ops``, by task)."""
    step_flops = {
        "forward": flops.total_forward,
        "backward": flops.total_backward,
        "optimizer": None,
        "step": flops.total,
    }
    name = f"{variant}/{implementation}/train_step"
    step, step_ops = samples[name], ops.get(name, {})
    rows = []
    for phase in STEP_PHASES:
        extra: dict[str, Any] = {"aten_ops": step_ops.get(phase)}
        if phase == "step":
            extra["samples_per_s"] = round(batch_size / Stats.of(step["step"]).median, 3)
        row = maker.timed(
            "step", variant, implementation, "train_step", phase, step[phase], step_flops[phase],
            **extra, **maker.peak(name),
        )  # fmt: skip
        rows.append(row)
    return rows


def component_rows(
    variant: str, flops: FlopBreakdown, samples: Samples, maker: RowMaker
) -> list[TimingRow]:
    """Each component's forward, backward and fwd+bwd, then their sum against the step."""
    rows = []
    total_components = 0.0
    for name in TIMED_COMPONENTS:
        part = samples[f"{variant}/ours/{name}"]
        both = summed_passes(part)
        passes = (
            ("forward", part["forward"], flops.forward[name]),
            ("backward", part["backward"], flops.backward[name]),
            ("fwd+bwd", both, flops.forward[name] + flops.backward[name]),
        )
        memory = maker.peak(f"{variant}/ours/{name}")
        for phase, seconds, count in passes:
            rows.append(
                maker.timed("component", variant, "ours", name, phase, seconds, count, **memory)
            )
        total_components += Stats.of(both).median
    fwd_bwd = Stats.of(summed_passes(samples[f"{variant}/ours/train_step"])).median
    total = maker.row(
        "components_sum", variant, "ours", "sum_of_components", "fwd+bwd",
        components_ms=round(1e3 * total_components, 3),
        step_fwd_bwd_ms=round(1e3 * fwd_bwd, 3),
        components_share=round(total_components / fwd_bwd, 4),
        **maker.peak(*(f"{variant}/ours/{n}" for n in (*TIMED_COMPONENTS, "train_step"))),
    )  # fmt: skip
    rows.append(total)
    return rows


def peer_rows(
    variant: str, samples: Samples, seed: int, repeats: int, maker: RowMaker
) -> list[TimingRow]:
    """Speed of ours against the torch.nn peer: median(peer) / median(ours), paired
    bootstrap interval, per phase."""
    rows = []
    for phase in ("forward", "backward", "step"):
        interval = bootstrap_ratio_of_medians(
            samples[f"{variant}/peer/train_step"][phase],
            samples[f"{variant}/ours/train_step"][phase],
            paired=True,
            seed=seed,
        )
        row = maker.row(
            "peer_ratio", variant, "ours/peer", "train_step", phase,
            speed_ratio=round(interval.estimate, 4), ci_low=round(interval.low, 4),
            ci_high=round(interval.high, 4), confidence=interval.level, repeats=repeats,
            **maker.peak(f"{variant}/peer/train_step", f"{variant}/ours/train_step"),
        )  # fmt: skip
        rows.append(row)
    return rows


def saving_rows(
    baseline: str,
    variant: str,
    samples: Samples,
    flops: dict[str, FlopBreakdown],
    components: bool,
    maker: RowMaker,
) -> list[TimingRow]:
    """Time saving vs FLOP saving of ``variant`` against ``baseline``, per component and for
    the whole step (fwd+bwd). ratio = time saving / FLOP saving (1.0: time follows FLOPs)."""
    names = [*TIMED_COMPONENTS, "train_step"] if components else ["train_step"]
    rows = []
    for name in names:
        if name == "train_step":
            base_flops, var_flops = flops[baseline].total, flops[variant].total
        else:
            base_flops = flops[baseline].component_total(name)
            var_flops = flops[variant].component_total(name)
        base_time = Stats.of(summed_passes(samples[f"{baseline}/ours/{name}"])).median
        var_time = Stats.of(summed_passes(samples[f"{variant}/ours/{name}"])).median
        flop_saving = 1.0 - var_flops / base_flops if base_flops else 0.0
        time_saving = 1.0 - var_time / base_time
        row = maker.row(
            "saving", variant, "ours", name, "fwd+bwd",
            baseline=baseline,
            baseline_ms=round(1e3 * base_time, 3),
            variant_ms=round(1e3 * var_time, 3),
            flop_saving=round(flop_saving, 4),
            time_saving=round(time_saving, 4),
            time_per_flop_saving=(
                round(time_saving / flop_saving, 3) if abs(flop_saving) > 1e-9 else None
            ),
            **maker.peak(f"{baseline}/ours/{name}", f"{variant}/ours/{name}"),
        )  # fmt: skip
        rows.append(row)
    return rows
