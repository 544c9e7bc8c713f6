"""The report sections of `diffbench flops --format json` files: a per-component
breakdown, a whole-run comparison with the MAViL recipe, or a sensitivity sweep."""

from __future__ import annotations

from typing import Any

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.format import DASH, delta_pct, num, pct, si, signed
from bench.report.load import FlopsResult
from bench.report.tables import Column, Table, TableRow
from diffmavil.config import COMPONENTS


def flops_section(result: FlopsResult, index: int) -> Section:
    key = f"flops-{index}"
    rows = result.rows
    preset = ", ".join(dict.fromkeys(str(r.get("preset")) for r in rows))
    if result.kind == "breakdown":
        return _flops_breakdown(result, key, preset)
    if result.kind == "whole-run":
        return _flops_whole_run(result, key, preset)
    return _flops_sensitivity(result, key, preset)


def _by_component(title: str) -> Table:
    """An empty table with a row per variant and a column per component."""
    return Table.of("flops_by_component", title, ["<variant", *COMPONENTS], [])


def _flops_breakdown(result: FlopsResult, key: str, preset: str) -> Section:
    rows = result.rows
    section = Section(key, f"FLOPs per component @ {preset} (`{result.path.name}`)")
    first = rows[0]
    section.intro.append(
        f"`diffbench flops` output: mask ratio {first.get('audio_mask_ratio')}/"
        f"{first.get('video_mask_ratio')}, batch {first.get('batch_size')}, counters "
        f"{result.meta.get('counters', first.get('counter'))} "
        f"({result.meta.get('convention', 'model FLOPs')}). Δ against the first variant."
    )
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    totals = {r["variant"]: r for r in rows if r.get("component") == "total"}
    base_total = totals.get(variants[0], {}).get("total_flops")
    runs = Table(
        "runs",
        "One row per variant (one training step)",
        [
            Column("variant", "left"),
            Column("forward"),
            Column("backward"),
            Column("forward + backward"),
            Column(f"Δ vs {variants[0]}"),
            Column("params"),
        ],
        [],
        css="runs",
    )
    comp = _by_component("FLOPs per component (forward + backward)")
    bars = []
    for variant in variants:
        t = totals.get(variant, {})
        runs.rows.append(
            TableRow(
                [
                    variant,
                    si(t.get("forward_flops")),
                    si(t.get("backward_flops")),
                    si(t.get("total_flops")),
                    signed(delta_pct(t.get("total_flops"), base_total)),
                    si(t.get("params")),
                ]
            )
        )
        runs.data.append({"variant": variant, **t})
        by = {
            r["component"]: r
            for r in rows
            if r["variant"] == variant and r.get("component") != "total"
        }
        comp.rows.append(
            TableRow(
                [
                    variant,
                    *(
                        f"{si(by[c]['total_flops'])} ({by[c].get('flops_percent', 0):.1f}%, "
                        f"{signed(by[c].get('delta_percent'))})"
                        if c in by
                        else DASH
                        for c in COMPONENTS
                    ),
                ]
            )
        )
        comp.data.extend(by.values())
        bars.append((variant, {c: by[c]["total_flops"] for c in COMPONENTS if c in by}))
    section.tables += [runs.drop_empty_columns(), comp]
    add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(f"{key}-flops-by-component", f"FLOPs per component @ {preset}", bars),
    )
    return section


def _flops_whole_run(result: FlopsResult, key: str, preset: str) -> Section:
    rows = result.rows
    first = rows[0]
    section = Section(key, f"Whole-run FLOPs vs the MAViL recipe @ {preset} (`{result.path.name}`)")
    section.intro.append(
        f"{num(first.get('samples'))} samples; masking {first.get('masking')} "
        f"({first.get('audio_mask_ratio')}/{first.get('video_mask_ratio')} → "
        f"{first.get('audio_mask_ratio_end')}/{first.get('video_mask_ratio_end')}), batch "
        f"{first.get('batch')} {first.get('batch_rule') or ''} (base {first.get('batch_size')}); "
        "MAViL recipe: fixed masking at the start ratios, fixed batch. Closed-form FLOP model."
    )
    table = Table(
        "runs",
        "One row per variant: the whole pre-training run",
        [
            Column("variant", "left"),
            Column("steps"),
            Column("run FLOPs"),
            Column("MAViL recipe FLOPs"),
            Column("saving"),
        ],
        [],
        css="runs",
    )
    comp = _by_component("Whole-run FLOPs per component")
    bars = []
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        total = next((r for r in mine if r["component"] == "total"), mine[-1])
        table.rows.append(
            TableRow(
                [
                    variant,
                    f"{num(total.get('steps'))} (MAViL {num(total.get('baseline_steps'))})",
                    si(total["run_flops"]),
                    si(total["baseline_flops"]),
                    f"{total.get('saving_percent', 0):.1f}%",
                ]
            )
        )
        table.data.append(total)
        by = {r["component"]: r for r in mine}
        comp.rows.append(
            TableRow(
                [
                    variant,
                    *(
                        f"{si(by[c]['run_flops'])} ({by[c].get('saving_percent', 0):.1f}% saved)"
                        if c in by
                        else DASH
                        for c in COMPONENTS
                    ),
                ]
            )
        )
        comp.data.extend(r for r in mine if r["component"] != "total")
        bars.append((variant, {c: by[c]["run_flops"] for c in COMPONENTS if c in by}))
        bars.append(
            (
                f"MAViL recipe ({variant})",
                {c: by[c]["baseline_flops"] for c in COMPONENTS if c in by},
            )
        )
    section.tables += [table, comp]
    add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(
            f"{key}-flops-by-component", f"Whole-run FLOPs per component @ {preset}", bars
        ),
    )
    return section


def _flops_sensitivity(result: FlopsResult, key: str, preset: str) -> Section:
    section = Section(
        key, f"Sensitivity of the saving to our choices @ {preset} (`{result.path.name}`)"
    )
    section.tables.append(sensitivity_table(result.rows, css="runs"))
    return section


def sensitivity_table(rows: list[dict[str, Any]], css: str = "") -> Table:
    table = Table(
        "sensitivity",
        "Whole-run FLOP saving vs MAViL, one assumption changed per row",
        [
            Column("assumption", "left"),
            Column("setting", "left"),
            Column("steps"),
            Column("run FLOPs"),
            Column("MAViL FLOPs"),
            Column("saving"),
            Column("≥ paper's 32%"),
        ],
        [],
        css=css,
    )
    for r in rows:
        table.rows.append(
            TableRow(
                [
                    str(r.get("assumption")),
                    str(r.get("setting")),
                    num(r.get("steps")),
                    si(r.get("run_flops")),
                    si(r.get("baseline_flops")),
                    pct(r.get("saving")),
                    "yes" if r.get("reaches_paper") else "no",
                ],
                "baseline" if r.get("assumption") == "as given" else "",
            )
        )
        table.data.append({k: v for k, v in r.items() if not isinstance(v, (dict, list))})
    return table
