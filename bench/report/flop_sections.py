"""The report sections of `diffbench flops --format json` files: a per-component
breakdown, a whole-run comparison with the MAViL recipe, or a sensitivity sweep."""

from __future__ import annotations

from typing import Any

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.format import DASH, delta_pct, num, pct, si, signed
from bench.report.load import FlopsFile
from bench.report.tables import Column, Table, TableRow
from bench.schema import SensitivityRow
from diffmavil.config import COMPONENTS


def _data(row: Any) -> dict[str, Any]:
    """A row model's values for the CSV behind a table (no version, no unset fields)."""
    return row.model_dump(exclude={"schema_version"}, exclude_none=True)


def flops_section(result: FlopsFile, index: int) -> Section:
    key = f"flops-{index}"
    rows = result.rows
    preset = ", ".join(dict.fromkeys(str(r.preset) for r in rows))
    if result.kind == "breakdown":
        return _flops_breakdown(result, key, preset)
    if result.kind == "whole-run":
        return _flops_whole_run(result, key, preset)
    return _flops_sensitivity(result, key, preset)


def _by_component(title: str) -> Table:
    """An empty table with a row per variant and a column per component."""
    return Table.of("flops_by_component", title, ["<variant", *COMPONENTS], [])


def _flops_breakdown(result: FlopsFile, key: str, preset: str) -> Section:
    rows = result.rows
    section = Section(key, f"FLOPs per component @ {preset} (`{result.path.name}`)")
    first = rows[0]
    section.intro.append(
        f"`diffbench flops` output: mask ratio {first.audio_mask_ratio}/"
        f"{first.video_mask_ratio}, batch {first.batch_size}, counters "
        f"{result.results.counters or first.counter} "
        f"({result.results.convention or 'model FLOPs'}). Δ against the first variant."
    )
    variants = list(dict.fromkeys(r.variant for r in rows))
    totals = {r.variant: r for r in rows if r.component == "total"}
    base_total = totals[variants[0]].total_flops if variants[0] in totals else None
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
        t = totals.get(variant)
        runs.rows.append(
            TableRow(
                [
                    variant,
                    si(t.forward_flops if t else None),
                    si(t.backward_flops if t else None),
                    si(t.total_flops if t else None),
                    signed(delta_pct(t.total_flops if t else None, base_total)),
                    si(t.params if t else None),
                ]
            )
        )
        runs.data.append({"variant": variant, **(_data(t) if t else {})})
        by = {r.component: r for r in rows if r.variant == variant and r.component != "total"}
        comp.rows.append(
            TableRow(
                [
                    variant,
                    *(
                        f"{si(by[c].total_flops)} ({by[c].flops_percent or 0:.1f}%, "
                        f"{signed(by[c].delta_percent)})"
                        if c in by
                        else DASH
                        for c in COMPONENTS
                    ),
                ]
            )
        )
        comp.data.extend(_data(r) for r in by.values())
        bars.append((variant, {c: by[c].total_flops for c in COMPONENTS if c in by}))
    section.tables += [runs.drop_empty_columns(), comp]
    add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(f"{key}-flops-by-component", f"FLOPs per component @ {preset}", bars),
    )
    return section


def _flops_whole_run(result: FlopsFile, key: str, preset: str) -> Section:
    rows = result.rows
    first = rows[0]
    section = Section(key, f"Whole-run FLOPs vs the MAViL recipe @ {preset} (`{result.path.name}`)")
    section.intro.append(
        f"{num(first.samples)} samples; masking {first.masking} "
        f"({first.audio_mask_ratio}/{first.video_mask_ratio} → "
        f"{first.audio_mask_ratio_end}/{first.video_mask_ratio_end}), batch "
        f"{first.batch} {first.batch_rule or ''} (base {first.batch_size}); "
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
    variants = list(dict.fromkeys(r.variant for r in rows))
    for variant in variants:
        mine = [r for r in rows if r.variant == variant]
        total = next((r for r in mine if r.component == "total"), mine[-1])
        table.rows.append(
            TableRow(
                [
                    variant,
                    f"{num(total.steps)} (MAViL {num(total.baseline_steps)})",
                    si(total.run_flops),
                    si(total.baseline_flops),
                    f"{total.saving_percent or 0:.1f}%",
                ]
            )
        )
        table.data.append(_data(total))
        by = {r.component: r for r in mine}
        comp.rows.append(
            TableRow(
                [
                    variant,
                    *(
                        f"{si(by[c].run_flops)} ({by[c].saving_percent or 0:.1f}% saved)"
                        if c in by
                        else DASH
                        for c in COMPONENTS
                    ),
                ]
            )
        )
        comp.data.extend(_data(r) for r in mine if r.component != "total")
        bars.append((variant, {c: by[c].run_flops for c in COMPONENTS if c in by}))
        bars.append(
            (
                f"MAViL recipe ({variant})",
                {c: by[c].baseline_flops for c in COMPONENTS if c in by},
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


def _flops_sensitivity(result: FlopsFile, key: str, preset: str) -> Section:
    section = Section(
        key, f"Sensitivity of the saving to our choices @ {preset} (`{result.path.name}`)"
    )
    section.tables.append(sensitivity_table(result.rows, css="runs"))
    return section


def sensitivity_table(rows: list[SensitivityRow], css: str = "") -> Table:
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
                    r.assumption,
                    r.setting,
                    num(r.steps),
                    si(r.run_flops),
                    si(r.baseline_flops),
                    pct(r.saving),
                    "yes" if r.reaches_paper else "no",
                ],
                "baseline" if r.assumption == "as given" else "",
            )
        )
        table.data.append(_data(r))
    return table
