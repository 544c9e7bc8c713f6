"""The report's figures (matplotlib, Agg canvas, no pyplot state). Each function returns a
``Plot`` (PNG bytes + the rows behind it, written as CSV beside the PNG) or, when its data
is absent, a string: the reason it was skipped (shown in the report)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.report.document import Plot
from bench.report.format import si_scale
from bench.report.run_log import LoggedStep

COMPONENT_COLOURS = {
    "audio_encoder": "#1f77b4",
    "video_encoder": "#ff7f0e",
    "fusion": "#2ca02c",
    "audio_decoder": "#9467bd",
    "video_decoder": "#d62728",
    "other": "#7f7f7f",
}
BATCH_STYLE = {"fixed": "-", "adaptive": "--"}


@dataclass
class Series:
    """One run's logged steps (metrics.jsonl) and how to label it."""

    label: str
    batch: str  # fixed | adaptive | ""
    rows: list[LoggedStep]


@dataclass(frozen=True)
class AccuracyPoint:
    """A row's downstream metric over seeds (fractions: mean, sd, and the interval of the
    mean, low to high) at its pre-training FLOPs."""

    label: str
    flops: float | None
    mean: float | None
    std: float | None
    n: int
    low: float | None = None
    high: float | None = None
    matched: bool = False
    baseline: bool = False


@dataclass(frozen=True)
class ControlLine:
    """A control without pre-training: its downstream metric over seeds (fractions)."""

    label: str
    mean: float
    std: float | None
    n: int


@dataclass(frozen=True)
class SavingPoint:
    """A row's (or a component's) savings against the baseline (fractions; > 0 is cheaper;
    None where not measured: left out of the plot), with the time saving's interval."""

    label: str
    flop_saving: float | None
    time_saving: float | None
    time_low: float | None = None
    time_high: float | None = None


def _figure(width: float = 8.0, height: float = 4.2, nrows: int = 1, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, axes


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _colours(n: int) -> list[str]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def flops_stacked(
    key: str, title: str, bars: Sequence[tuple[str, dict[str, float]]], unit: str = "FLOPs"
) -> Plot | str:
    """Stacked bars: FLOPs per component, one bar per variant / row."""
    bars = [(label, parts) for label, parts in bars if parts and sum(parts.values()) > 0]
    if not bars:
        return "no FLOPs per component in these results"
    components = list(dict.fromkeys(c for _, parts in bars for c in parts))
    peak = max(sum(parts.values()) for _, parts in bars)
    scale, prefix = si_scale(peak) if peak >= 1e6 else (1.0, "")
    figure, axes = _figure(max(6.0, 1.2 * len(bars) + 3), 4.4)
    ax = axes[0][0]
    labels = [label for label, _ in bars]
    bottom = [0.0] * len(bars)
    data = []
    for component in components:
        values = [parts.get(component, 0) / scale for _, parts in bars]
        ax.bar(
            labels, values, bottom=bottom, label=component, color=COMPONENT_COLOURS.get(component)
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        for label, (_, parts) in zip(labels, bars, strict=True):
            data.append({"label": label, "component": component, "flops": parts.get(component, 0)})
    ax.set_ylabel(f"{prefix}{unit}")
    ax.set_title(title, fontsize=11)
    ax.tick_params(axis="x", labelrotation=25)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return Plot(key, title, "", _png(figure), data)


def _curves(series: Sequence[Series], columns: Sequence[str]) -> list[Series]:
    """The series with a logged step holding every one of ``columns``."""
    return [s for s in series if any(all(r.value(c) is not None for c in columns) for r in s.rows)]


def _series_rows(series: Sequence[Series], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "label": s.label,
            "batch": s.batch,
            "step": r.step,
            "samples_seen": r.samples_seen,
            **{c: r.value(c) for c in columns},
        }
        for s in series
        for r in s.rows
    ]


def _x(rows: list[LoggedStep]) -> list[float]:
    return [r.x for r in rows]


def _line(ax, x: list[float], values: list[Any], colour: str, style: str, label: str) -> None:
    """One curve with a dot per logged step."""
    ax.plot(x, values, color=colour, linestyle=style, marker=".", label=label)


def _side_by_side(
    key: str,
    title: str,
    series: Sequence[Series],
    fields: Sequence[str],
    draw: Callable[[Any, Any, Series, str, list[float]], None],
    label_axes: Callable[[Any, Any], None],
) -> Plot | None:
    """Two panels side by side, ``draw`` called once per series that logged ``fields``
    (with its colour and x values); None when no series did."""
    series = _curves(series, fields)
    if not series:
        return None
    figure, axes = _figure(10.0, 4.0, 1, 2)
    left, right = axes[0]
    for colour, s in zip(_colours(len(series)), series, strict=True):
        draw(left, right, s, colour, _x(s.rows))
    label_axes(left, right)
    right.legend(fontsize=7, loc="best")
    return Plot(key, title, "", _png(figure), _series_rows(series, fields))


def schedules(key: str, series: Sequence[Series]) -> Plot | str:
    """Mask ratio (audio, video) and batch size over samples seen, per run."""

    def draw(ratio_ax, batch_ax, s: Series, colour: str, x: list[float]) -> None:
        for modality, style in (("audio", "-"), ("video", ":")):
            ratios = [r.value(f"{modality}_mask_ratio") for r in s.rows]
            _line(ratio_ax, x, ratios, colour, style, f"{s.label} ({modality})")
        batch = [r.batch_size for r in s.rows]
        style = BATCH_STYLE.get(s.batch, "-")
        batch_ax.step(x, batch, where="post", color=colour, linestyle=style, label=s.label)

    def label_axes(ratio_ax, batch_ax) -> None:
        title = "mask ratio (— audio, ⋯ video)"
        ratio_ax.set(xlabel="samples seen", ylabel="mask ratio", title=title)
        batch_ax.set(xlabel="samples seen", ylabel="batch size", title="batch size per step")

    fields = ("audio_mask_ratio", "video_mask_ratio", "batch_size")
    title = "Masking and batch schedules over the run"
    plot = _side_by_side(key, title, series, fields, draw, label_axes)
    return plot or "no per-step logs: metrics.jsonl absent"


def throughput(key: str, series: Sequence[Series]) -> Plot | str:
    """Samples/s and achieved FLOP/s per logged step; fixed (solid) vs adaptive (dashed)."""

    def draw(rate_ax, flops_ax, s: Series, colour: str, x: list[float]) -> None:
        style = BATCH_STYLE.get(s.batch, "-")
        label = f"{s.label} ({s.batch} batch)" if s.batch else s.label
        _line(rate_ax, x, [r.samples_per_second for r in s.rows], colour, style, label)
        gflops = [(r.achieved_flops_per_second or 0) / 1e9 for r in s.rows]
        _line(flops_ax, x, gflops, colour, style, label)

    def label_axes(rate_ax, flops_ax) -> None:
        rate_ax.set(xlabel="samples seen", ylabel="samples / s", title="throughput")
        flops_ax.set(
            xlabel="samples seen",
            ylabel="GFLOP/s (model FLOPs / compute time)",
            title="achieved FLOP/s",
        )

    fields = ("samples_per_second", "achieved_flops_per_second")
    title = "Throughput over the run: fixed (solid) vs adaptive (dashed) batch"
    plot = _side_by_side(key, title, series, fields, draw, label_axes)
    return plot or "no per-step throughput logs: metrics.jsonl absent"


def loss_curves(key: str, series: Sequence[Series]) -> Plot | str:
    """Total loss per logged step over samples seen."""
    series = _curves(series, ("loss",))
    if not series:
        return "no loss logs: metrics.jsonl absent"
    parts = sorted({f"loss.{part}" for s in series for r in s.rows for part in r.loss_parts})
    figure, axes = _figure(8.0, 4.2)
    ax = axes[0][0]
    for colour, s in zip(_colours(len(series)), series, strict=True):
        ax.plot(
            _x(s.rows),
            [r.loss for r in s.rows],
            color=colour,
            marker=".",
            linestyle=BATCH_STYLE.get(s.batch, "-"),
            label=s.label,
        )
    ax.set(xlabel="samples seen", ylabel="training loss (weighted sum)", title="loss curves")
    ax.legend(fontsize=7, loc="best")
    return Plot(key, "Loss curves", "", _png(figure), _series_rows(series, ("loss", *parts)))


def accuracy_vs_flops(
    key: str, points: Sequence[AccuracyPoint], controls: Sequence[ControlLine], metric: str
) -> Plot | str:
    """Downstream metric (mean over seeds, its interval as bars) vs pre-training FLOPs; the
    compute-matched control starred, the baseline a square, controls without pre-training
    as horizontal lines; every point and line named in the legend beside the axes (no two
    labels overlap), points at one FLOP count drawn side by side."""
    points = [p for p in points if p.flops and p.mean is not None]
    if not points:
        return f"no downstream {metric} together with pre-training FLOPs in these results"
    figure, axes = _figure(9.0, 4.6)
    ax = axes[0][0]
    xs = [float(p.flops or 0.0) for p in points]
    drawn_xs = _dodged(xs, (max(xs) - min(xs) or max(xs)) / 60)
    for colour, p, x in zip(_colours(len(points)), points, drawn_xs, strict=True):
        mean = p.mean or 0.0
        marker, size = ("*", 14) if p.matched else ("s", 8) if p.baseline else ("o", 7)
        below = 0.0 if p.low is None else 100 * (mean - p.low)
        above = 0.0 if p.high is None else 100 * (p.high - mean)
        label = p.label + (" (compute-matched)" if p.matched else "")
        ax.errorbar(
            x,
            100 * mean,
            yerr=[[below], [above]],
            capsize=3,
            linestyle="none",
            marker=marker,
            markersize=size,
            color=colour,
            label=label,
        )
    for colour, c in zip(
        ("#7f7f7f", "#bcbd22", "#17becf", "#8c564b", "#e377c2"), controls, strict=False
    ):
        label = f"{c.label} (no pre-training): {100 * c.mean:.1f}"
        ax.axhline(100 * c.mean, color=colour, linestyle="--", linewidth=1, label=label)
    ax.set(
        xlabel="pre-training FLOPs (model FLOPs, fwd+bwd)",
        ylabel=f"{metric} (%)",
        title=f"{metric} vs pre-training FLOPs",
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    data = [
        {
            "label": p.label,
            "flops": p.flops,
            f"{metric}_mean": p.mean,
            f"{metric}_std": p.std,
            f"{metric}_ci_low": p.low,
            f"{metric}_ci_high": p.high,
            "n": p.n,
            "matched": p.matched,
            "baseline": p.baseline,
        }
        for p in points
    ]
    data += [
        {
            "label": c.label,
            "flops": None,
            f"{metric}_mean": c.mean,
            f"{metric}_std": c.std,
            "n": c.n,
            "matched": False,
            "baseline": False,
        }
        for c in controls
    ]
    return Plot(key, f"Downstream {metric} vs pre-training FLOPs", "", _png(figure), data)


def _dodged(xs: list[float], step: float) -> list[float]:
    """``xs`` with the points that share an x (within ``step``) drawn side by side, ``step``
    apart around it, so that their bars do not cover each other (the data keeps ``xs``)."""
    drawn = list(xs)
    groups: dict[int, list[int]] = {}
    for index, x in enumerate(xs):
        groups.setdefault(round(x / step), []).append(index)
    for members in groups.values():
        for rank, index in enumerate(members):
            drawn[index] = xs[index] + step * (rank - (len(members) - 1) / 2)
    return drawn


def saving_scatter(key: str, title: str, points: Sequence[SavingPoint]) -> Plot | str:
    """Time saving vs FLOP saving (%, positive = cheaper than the baseline), the time
    saving's interval as a bar where known, the diagonal marking time that follows FLOPs
    exactly. Each point is named in the legend beside the axes, so no two labels overlap;
    points at one FLOP saving are drawn side by side."""
    points = [p for p in points if p.flop_saving is not None and p.time_saving is not None]
    if not points:
        return "no wall-clock beside FLOPs against a baseline in these results"
    figure, axes = _figure(8.5, 5.0)
    ax = axes[0][0]
    xs = [100 * (p.flop_saving or 0.0) for p in points]
    ys = [100 * (p.time_saving or 0.0) for p in points]
    ends = [100 * e for p in points for e in (p.time_low, p.time_high) if e is not None]
    low, high = min([*xs, *ys, *ends, 0.0]) - 5, max([*xs, *ys, *ends, 0.0]) + 5
    ax.plot([low, high], [low, high], color="#999999", linestyle=":", label="time = FLOPs")
    ax.axhline(0, color="#cccccc", linewidth=0.8)
    ax.axvline(0, color="#cccccc", linewidth=0.8)
    drawn_xs = _dodged(xs, (high - low) / 80)
    for colour, p, x, y in zip(_colours(len(points)), points, drawn_xs, ys, strict=True):
        below = 0.0 if p.time_low is None else y - 100 * p.time_low
        above = 0.0 if p.time_high is None else 100 * p.time_high - y
        ax.errorbar(
            [x], [y], yerr=[[below], [above]], fmt="o", color=colour, capsize=3, label=p.label
        )
    ax.set(
        xlim=(low, high),
        ylim=(low, high),
        xlabel="FLOP saving vs baseline (%)",
        ylabel="wall-clock saving vs baseline (%)",
        title=title,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    data = [
        {
            "label": p.label,
            "flop_saving": p.flop_saving,
            "time_saving": p.time_saving,
            "time_saving_low": p.time_low,
            "time_saving_high": p.time_high,
        }
        for p in points
    ]
    return Plot(key, title, "", _png(figure), data)
