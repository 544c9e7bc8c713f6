"""The figures of an ablation grid's section: FLOPs per component, schedules, throughput,
loss curves, accuracy vs FLOPs, wall-clock saving vs FLOP saving."""

from __future__ import annotations

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.groups import RowGroup
from bench.report.load import Ablation
from bench.report.run_log import LoggedStep
from diffmavil.config import COMPONENTS


def _series(groups: list[RowGroup], metrics: dict[str, list[LoggedStep]]) -> list[plots.Series]:
    out = []
    for g in groups:
        for record in sorted(g.done, key=lambda r: r.seed):
            rows = metrics.get(record.run_id) or []
            if rows:
                out.append(plots.Series(g.name, record.batch or "", rows))
                break
    return out


def ablation_plots(
    section: Section,
    ablation: Ablation,
    rows: list[RowGroup],
    controls: list[RowGroup],
    base: RowGroup | None,
    metric: str | None,
) -> None:
    key = section.key
    bars = [(g.name, {c: g.mean(f"flops.{c}") or 0 for c in COMPONENTS}) for g in rows]
    add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(f"{key}-flops-by-component", "Pre-training FLOPs per component", bars),
    )
    series = _series(rows, ablation.metrics)
    add_plot(
        section,
        "Schedules",
        plots.schedules(f"{key}-schedules", series),
        "Mask ratios and batch size actually used per logged step (first seed).",
    )
    add_plot(
        section,
        "Throughput",
        plots.throughput(f"{key}-throughput", series),
        "Adaptive batch changes utilisation (wall-clock), not total FLOPs.",
    )
    add_plot(section, "Loss curves", plots.loss_curves(f"{key}-loss", series))
    if metric is None:
        section.skipped.append("Accuracy vs FLOPs: skipped (no downstream metric in these results)")
    else:
        points = []
        for g in rows:
            stats = g.stats(f"probe.{metric}")
            points.append(
                plots.AccuracyPoint(
                    g.name,
                    g.mean("total_flops"),
                    stats.mean,
                    stats.std,
                    stats.n,
                    matched=bool(g.matched),
                    baseline=g.baseline,
                )
            )
        lines = []
        for g in controls:
            stats = g.stats(f"probe.{metric}")
            if stats.mean is not None:
                lines.append(plots.ControlLine(g.name, stats.mean, stats.std, stats.n))
        add_plot(
            section,
            "Accuracy vs FLOPs",
            plots.accuracy_vs_flops(f"{key}-accuracy-vs-flops", points, lines, metric),
            "The starred point is the compute-matched control: MAViL trained on the FLOP "
            "budget another row used.",
        )
    savings = []
    if base is not None:
        bf, bw = base.mean("total_flops"), base.mean("wall_clock_seconds")
        for g in rows:
            if g is base or g.matched:
                continue
            f, w = g.mean("total_flops"), g.mean("wall_clock_seconds")
            if None not in (bf, bw, f, w) and bf and bw:
                savings.append(plots.SavingPoint(g.name, 1 - f / bf, 1 - w / bw))
    add_plot(
        section,
        "Time saving vs FLOP saving",
        plots.saving_scatter(
            f"{key}-time-vs-flop-saving", "Wall-clock saving vs FLOP saving per row", savings
        ),
        "Above the diagonal: wall-clock falls faster than FLOPs; below: slower.",
    )
