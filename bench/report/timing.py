"""The report section of a `diffbench time --format json` file: the train step per
variant, time per component, and time saving against FLOP saving."""

from __future__ import annotations

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.format import DASH, delta_pct, num, pct, si, signed
from bench.report.load import TimeResult
from bench.report.tables import Column, Table, TableRow


def time_section(result: TimeResult, index: int) -> Section:
    key = f"time-{index}"
    rows = result.rows
    env = result.environment
    first = rows[0]
    section = Section(
        key, f"Wall-clock per step and per component @ {first.get('preset')} (`{result.path.name}`)"
    )
    section.intro.append(
        f"`diffbench time` output: batch {first.get('batch_size')}, mask ratio "
        f"{first.get('mask_ratio')}, {env.get('dtype', first.get('dtype', '?'))} on "
        f"{env.get('device_name', first.get('device_name', '?'))} "
        f"({env.get('threads', first.get('threads', '?'))} threads); large-matmul rate "
        f"{first.get('matmul_gflops_per_s', '?')} GFLOP/s. Medians of "
        f"{first.get('repeats', '?')} repeats after {first.get('warmup', '?')} warm-up."
    )
    steps = [r for r in rows if r.get("kind") == "step" and r.get("phase") == "step"]
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
            Column("Δ time"),
        ],
        [],
        css="runs",
    )
    base = steps[0].get("median_ms") if steps else None
    for r in steps:
        table.rows.append(
            TableRow(
                [
                    str(r["variant"]),
                    str(r.get("implementation", "ours")),
                    f"{num(r.get('median_ms'), 1)} ms",
                    f"{num(r.get('iqr_ms'), 1)} ms",
                    num(r.get("samples_per_s")),
                    num(r.get("achieved_gflops_per_s")),
                    pct(r.get("utilisation"), 0),
                    signed(delta_pct(r.get("median_ms"), base)),
                ]
            )
        )
        table.data.append(
            {
                k: v
                for k, v in r.items()
                if k
                in (
                    "variant",
                    "implementation",
                    "median_ms",
                    "iqr_ms",
                    "samples_per_s",
                    "achieved_gflops_per_s",
                    "utilisation",
                    "flops",
                )
            }
        )
    section.tables.append(table.drop_empty_columns())
    parts = [r for r in rows if r.get("kind") == "component" and r.get("phase") == "fwd+bwd"]
    if parts:
        variants = list(dict.fromkeys(r["variant"] for r in parts))
        names = list(dict.fromkeys(r["component"] for r in parts))
        comp = Table(
            "time_by_component",
            "Time per component, forward + backward (median ms; each component timed on its own)",
            [Column("variant", "left"), *(Column(n) for n in names)],
            [],
        )
        for variant in variants:
            by = {r["component"]: r for r in parts if r["variant"] == variant}
            comp.rows.append(
                TableRow(
                    [
                        variant,
                        *(
                            f"{num(by[n].get('median_ms'), 1)} ms ({si(by[n].get('flops'))}FLOP)"
                            if n in by
                            else DASH
                            for n in names
                        ),
                    ]
                )
            )
            comp.data.extend(
                {k: by[n].get(k) for k in ("variant", "component", "median_ms", "iqr_ms", "flops")}
                for n in names
                if n in by
            )
        section.tables.append(comp)
    else:
        section.skipped.append("Time per component: not measured (run with --components)")
    savings = [r for r in rows if r.get("kind") == "saving"]
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
                        f"{r['variant']} vs {r.get('baseline')}",
                        str(r["component"]),
                        pct(r.get("flop_saving")),
                        pct(r.get("time_saving")),
                        num(r.get("time_per_flop_saving")),
                    ]
                )
            )
            sav.data.append(
                {
                    k: r.get(k)
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
            "label": f"{r['variant']}: {r['component']}",
            "flop_saving": r.get("flop_saving"),
            "time_saving": r.get("time_saving"),
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
    for variant in dict.fromkeys(r["variant"] for r in parts):
        bars.append(
            (
                variant,
                {r["component"]: r.get("median_ms") or 0 for r in parts if r["variant"] == variant},
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
