"""The report section of a `diffbench time --format json` file: the train step per
variant, time per component, and time saving against FLOP saving."""

from __future__ import annotations

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.format import DASH, delta_pct, num, pct, si, signed
from bench.report.load import TimeFile
from bench.report.tables import Column, Table, TableRow


def _or_unknown(value: object) -> object:
    return "?" if value is None else value


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
    steps = [r for r in rows if r.kind == "step" and r.phase == "step"]
    table = Table(
        "runs",
        "Train step (forward, backward, optimizer) per variant",
        [
            Column("variant", "left"),
            Column("implementation", "left"),
            Column("median"),
            Column("IQR"),
            Column("samples/s"),
            Column("achieved GFLOP/s"),
            Column("utilisation"),
            Column("ATen ops"),
            Column("Δ time"),
        ],
        [],
        css="runs",
    )
    base = steps[0].median_ms if steps else None
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
        table.data.append(
            r.model_dump(
                include={
                    "variant",
                    "implementation",
                    "median_ms",
                    "iqr_ms",
                    "samples_per_s",
                    "achieved_gflops_per_s",
                    "utilisation",
                    "flops",
                    "aten_ops",
                },
                exclude_none=True,
            )
        )
    section.tables.append(table.drop_empty_columns())
    parts = [r for r in rows if r.kind == "component" and r.phase == "fwd+bwd"]
    if parts:
        variants = list(dict.fromkeys(r.variant for r in parts))
        names = list(dict.fromkeys(r.component for r in parts))
        comp = Table(
            "time_by_component",
            "Time per component, forward + backward (median ms; each component timed on its own)",
            [Column("variant", "left"), *(Column(n) for n in names)],
            [],
        )
        for variant in variants:
            by = {r.component: r for r in parts if r.variant == variant}
            comp.rows.append(
                TableRow(
                    [
                        variant,
                        *(
                            f"{num(by[n].median_ms, 1)} ms ({si(by[n].flops)}FLOP)"
                            if n in by
                            else DASH
                            for n in names
                        ),
                    ]
                )
            )
            comp.data.extend(
                {
                    k: getattr(by[n], k)
                    for k in ("variant", "component", "median_ms", "iqr_ms", "flops")
                }
                for n in names
                if n in by
            )
        section.tables.append(comp)
    else:
        section.skipped.append("Time per component: not measured (run with --components)")
    savings = [r for r in rows if r.kind == "saving"]
    if savings:
        sav = Table(
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
        for r in savings:
            sav.rows.append(
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
            sav.data.append(
                {
                    k: getattr(r, k)
                    for k in (
                        "variant",
                        "baseline",
                        "component",
                        "flop_saving",
                        "time_saving",
                        "time_per_flop_saving",
                    )
                }
            )
        section.tables.append(sav)
    points = [
        {
            "label": f"{r.variant}: {r.component}",
            "flop_saving": r.flop_saving,
            "time_saving": r.time_saving,
        }
        for r in savings
    ]
    add_plot(
        section,
        "Time saving vs FLOP saving",
        plots.saving_scatter(
            f"{key}-time-vs-flop-saving", "Time saving vs FLOP saving per component", points
        ),
    )
    bars = []
    for variant in dict.fromkeys(r.variant for r in parts):
        bars.append(
            (
                variant,
                {r.component: r.median_ms or 0 for r in parts if r.variant == variant},
            )
        )
    add_plot(
        section,
        "Time per component",
        plots.flops_stacked(
            f"{key}-time-by-component", "Time per component, fwd+bwd", bars, unit="ms"
        )
        if bars
        else "no per-component timings",
    )
    return section
