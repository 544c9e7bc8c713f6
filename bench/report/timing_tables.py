"""The tables of ``diffbench time`` rows (``bench.schema.TimingRow``), made once for both
readers: the report section of a `diffbench time --format json` file (the train step per
variant, time per component, time saving against FLOP saving) and the tables
``diffbench time`` prints (every timed phase, components against the step, speed ratios,
and the same savings table)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.format import DASH, delta_pct, num, pct, si, signed
from bench.report.load import TimeFile
from bench.report.tables import Column, Table, TableRow
from bench.schema import TimingRow


def _or_unknown(value: object) -> object:
    return "?" if value is None else value


# ------------------------------------------------------------------------ report section
def time_section(result: TimeFile, index: int) -> Section:
    key = f"time-{index}"
    rows = result.rows
    env = result.results.environment
    first = rows[0]
    section = Section(
        key, f"Wall-clock per step and per component @ {first.preset} (`{result.path.name}`)"
    )
    section.intro.append(
        f"`diffbench time` output: batch {first.batch_size}, mask ratio "
        f"{first.mask_ratio}, {result.results.dtype or first.dtype or '?'} on "
        f"{env.device_name or first.device_name or '?'} "
        f"({env.torch_threads or first.torch_threads or '?'} threads); large-matmul rate "
        f"{_or_unknown(first.matmul_gflops_per_s)} GFLOP/s. Medians of "
        f"{_or_unknown(first.repeats)} repeats after {_or_unknown(first.warmup)} warm-up."
    )
    section.tables.append(step_table(rows))
    components = component_table(rows)
    if components is not None:
        section.tables.append(components)
    else:
        section.skipped.append("Time per component: not measured (run with --components)")
    savings = savings_table(rows)
    if savings is not None:
        section.tables.append(savings)
    _add_plots(section, key, rows)
    return section


def step_table(rows: Sequence[TimingRow]) -> Table:
    """The whole train step per variant and implementation, Δ time against the first."""
    steps = [r for r in rows if r.kind == "step" and r.phase == "step"]
    labels = ("median", "IQR", "samples/s", "achieved GFLOP/s", "utilisation", "ATen ops")
    columns = [Column("variant", "left"), Column("implementation", "left")]
    columns += [Column(label) for label in (*labels, "Δ time")]
    table = Table(
        "runs", "Train step (forward, backward, optimizer) per variant", columns, [], css="runs"
    )
    base = steps[0].median_ms if steps else None
    kept = {"variant", "implementation", "median_ms", "iqr_ms", "samples_per_s"}
    kept |= {"achieved_gflops_per_s", "utilisation", "flops", "aten_ops"}
    for r in steps:
        table.rows.append(
            TableRow(
                [
                    r.variant,
                    r.implementation,
                    f"{num(r.median_ms, 1)} ms",
                    f"{num(r.iqr_ms, 1)} ms",
                    num(r.samples_per_s),
                    num(r.achieved_gflops_per_s),
                    pct(r.utilisation, 0),
                    DASH if r.aten_ops is None else f"{r.aten_ops:,}",
                    signed(delta_pct(r.median_ms, base)),
                ]
            )
        )
        table.data.append(r.model_dump(include=kept, exclude_none=True))
    return table.drop_empty_columns()


def component_table(rows: Sequence[TimingRow]) -> Table | None:
    """Median fwd+bwd ms (and FLOPs) of each component, one row per variant; None when no
    component was timed."""
    parts = [r for r in rows if r.kind == "component" and r.phase == "fwd+bwd"]
    if not parts:
        return None
    names = list(dict.fromkeys(r.component for r in parts))
    table = Table(
        "time_by_component",
        "Time per component, forward + backward (median ms; each component timed on its own)",
        [Column("variant", "left"), *(Column(n) for n in names)],
        [],
    )
    for variant in dict.fromkeys(r.variant for r in parts):
        by = {r.component: r for r in parts if r.variant == variant}
        cells = [
            f"{num(by[n].median_ms, 1)} ms ({si(by[n].flops)}FLOP)" if n in by else DASH
            for n in names
        ]
        table.rows.append(TableRow([variant, *cells]))
        keys = ("variant", "component", "median_ms", "iqr_ms", "flops")
        table.data.extend({k: getattr(by[n], k) for k in keys} for n in names if n in by)
    return table


def savings_table(rows: Sequence[TimingRow]) -> Table | None:
    """Time saving against FLOP saving of each variant against the first, per component
    and for the whole step; None with one variant."""
    savings = [r for r in rows if r.kind == "saving"]
    if not savings:
        return None
    table = Table(
        "savings",
        "Time saving vs FLOP saving against the first variant (fwd+bwd)",
        [
            Column("variant", "left"),
            Column("component", "left"),
            Column("FLOP saving"),
            Column("time saving"),
            Column("time / FLOP"),
        ],
        [],
    )
    keys = ("variant", "baseline", "component", "flop_saving", "time_saving")
    keys += ("time_per_flop_saving",)
    for r in savings:
        table.rows.append(
            TableRow(
                [
                    f"{r.variant} vs {r.baseline}",
                    r.component,
                    pct(r.flop_saving),
                    pct(r.time_saving),
                    num(r.time_per_flop_saving),
                ]
            )
        )
        table.data.append({k: getattr(r, k) for k in keys})
    return table


def _add_plots(section: Section, key: str, rows: Sequence[TimingRow]) -> None:
    """Time saving against FLOP saving per component; time per component per variant."""
    points = [
        plots.SavingPoint(f"{r.variant}: {r.component}", r.flop_saving, r.time_saving)
        for r in rows
        if r.kind == "saving"
    ]
    add_plot(
        section,
        "Time saving vs FLOP saving",
        plots.saving_scatter(
            f"{key}-time-vs-flop-saving", "Time saving vs FLOP saving per component", points
        ),
    )
    parts = [r for r in rows if r.kind == "component" and r.phase == "fwd+bwd"]
    bars = [
        (variant, {r.component: r.median_ms or 0 for r in parts if r.variant == variant})
        for variant in dict.fromkeys(r.variant for r in parts)
    ]
    add_plot(
        section,
        "Time per component",
        plots.flops_stacked(
            f"{key}-time-by-component", "Time per component, fwd+bwd", bars, unit="ms"
        )
        if bars
        else "no per-component timings",
    )


# --------------------------------------------------------------- `diffbench time` tables
def _cell(value: Any, digits: int = 1) -> str:
    """A terminal cell: a missing value blank, a float to ``digits`` decimals."""
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


RATIO_TITLES = {
    "peer_ratio": "speed vs the torch.nn peer: median(peer) / median(ours)",
    "compile_ratio": "compiled vs eager: median(eager) / median(compiled)",
    "fused_ratio": "fused vs default AdamW (eager): median(default) / median(fused)",
}
PHASE_COLUMNS = (
    ("<variant", "variant"),
    ("<impl", "implementation"),
    ("<component", "component"),
    ("<phase", "phase"),
    ("median ms", "median_ms"),
    ("IQR ms", "iqr_ms"),
    ("GFLOP/s", "achieved_gflops_per_s"),
    ("util", "utilisation"),
    ("samples/s", "samples_per_s"),
)


def time_tables(rows: Sequence[TimingRow], environment: Mapping[str, Any]) -> list[Table]:
    """What ``diffbench time`` prints: every timed phase, and when measured: components
    against the step, speed ratios (against the torch.nn peer, compiled, fused AdamW),
    time saving against FLOP saving (the report's table)."""
    tables = [phase_table(rows, environment)]
    components = components_sum_table(rows)
    tables += [components] if components is not None else []
    tables += ratio_tables(rows)
    savings = savings_table(rows)
    tables += [savings] if savings is not None else []
    return tables


def phase_table(rows: Sequence[TimingRow], environment: Mapping[str, Any]) -> Table:
    """Each timed phase of the train steps and of the components on their own."""
    timed = [r for r in rows if r.kind in ("step", "component")]
    first = rows[0]
    title = (
        f"{first.preset} batch {first.batch_size} mask {first.mask_ratio} "
        f"{environment['dtype']} on {environment['device_name']} ({environment['device']}, "
        f"{environment['torch_threads']} threads, torch {environment['torch_version']}); "
        f"matmul {first.matmul_gflops_per_s:.1f} GFLOP/s"
    )
    columns = list(PHASE_COLUMNS)
    if any(r.aten_ops is not None for r in timed):
        columns.append(("ATen ops", "aten_ops"))
    if any(r.mfu is not None for r in timed):
        columns.append(("MFU", "mfu"))
    cells = []
    for row in timed:
        line = []
        for _, key in columns:
            value = getattr(row, key)
            if key in ("utilisation", "mfu") and value is not None:
                line.append(f"{100 * value:.0f}%")
            elif key == "aten_ops":
                line.append(_cell(value if value is None else f"{value:,}"))
            else:
                line.append(_cell(value, 1 if key != "samples_per_s" else 2))
        cells.append(line)
    return Table.of("timings", title, [header for header, _ in columns], cells)


def components_sum_table(rows: Sequence[TimingRow]) -> Table | None:
    """The components timed alone, summed, against the whole step (fwd+bwd)."""
    sums = [r for r in rows if r.kind == "components_sum"]
    if not sums:
        return None
    cells = [
        [
            r.variant,
            _cell(r.components_ms),
            _cell(r.step_fwd_bwd_ms),
            f"{100 * r.components_share:.0f}%",
        ]
        for r in sums
    ]
    title = "components timed alone vs the whole step (fwd+bwd)"
    columns = ["<variant", "sum of components ms", "step fwd+bwd ms", "share"]
    return Table.of("components", title, columns, cells)


def ratio_tables(rows: Sequence[TimingRow]) -> list[Table]:
    """One table per kind of speed ratio measured, with its bootstrap interval."""
    tables = []
    for kind, title in RATIO_TITLES.items():
        cells = [
            [
                r.variant,
                r.phase,
                f"{r.speed_ratio:.3f}",
                f"[{r.ci_low:.3f}, {r.ci_high:.3f}]",
                str(r.repeats),
            ]
            for r in rows
            if r.kind == kind
        ]
        if cells:
            columns = ["<variant", "<phase", "speed ratio", "95% CI", "repeats"]
            tables.append(Table.of(kind, title, columns, cells))
    return tables
