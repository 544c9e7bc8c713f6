"""Sections of a report, one builder per input kind: tables in the paper's style (one row per
variant / recipe, deltas against the baseline row), the figures behind them, and notes for
whatever is absent."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bench.report import plots
from bench.report.format import DASH, num, pct, seconds, si, signed
from bench.report.load import Ablation, FlopsResult, PretrainRun, TimeResult
from bench.report.model import Column, Plot, Row, Section, SeedStats, Table

COMPONENTS = ("audio_encoder", "video_encoder", "fusion", "audio_decoder", "video_decoder", "other")
RUN_KINDS = ("row", "flops")
DONE = ("completed", "planned")


def _add_plot(section: Section, title: str, result: Plot | str, caption: str = "") -> None:
    if isinstance(result, str):
        section.skipped.append(f"{title}: skipped ({result})")
    else:
        result.caption = caption
        section.plots.append(result)


def _delta_pct(value: float | None, reference: float | None) -> float | None:
    if value is None or reference in (None, 0):
        return None
    return 100.0 * (value - reference) / reference


def _get(record: dict[str, Any], metric: str) -> Any:
    if metric.startswith("flops."):
        return (record.get("flops_by_component") or {}).get(metric[6:])
    if metric.startswith("probe."):
        return (record.get("probe") or {}).get(metric[6:])
    return record.get(metric)


def _mean_std(stats: SeedStats, fmt: Callable[[float], str], scale: float = 1.0) -> str:
    if stats.mean is None:
        return DASH
    if stats.std is None:
        return fmt(scale * stats.mean)
    return f"{fmt(scale * stats.mean)} ± {fmt(scale * stats.std)}"


def _ci(stats: SeedStats, fmt: Callable[[float], str], scale: float = 1.0) -> str:
    if stats.mean is None:
        return DASH
    if stats.ci_low is None:
        return "single seed"
    return f"[{fmt(scale * stats.ci_low)}, {fmt(scale * stats.ci_high)}]"


def _points(value: float) -> str:
    return f"{value:.1f}"


# ------------------------------------------------------------------------------ ablation
class RowGroup:
    """One row of a grid over its seeds: statistics over the completed (or planned) runs."""

    def __init__(self, name: str, records: list[dict[str, Any]]) -> None:
        self.name = name
        self.records = records
        self.done = [r for r in records if r.get("status") in DONE]
        self.failed = [r for r in records if r.get("status") == "failed"]
        first = records[0]
        self.kind = first.get("kind", "row")
        self.baseline = any(bool(r.get("baseline")) for r in records)
        self.matched = first.get("match_flops_of")
        self.first = first

    def stats(self, metric: str) -> SeedStats:
        return SeedStats.of([_get(r, metric) for r in self.done])

    def mean(self, metric: str) -> float | None:
        return self.stats(metric).mean

    @property
    def status(self) -> str:
        if not self.failed:
            return self.done[0].get("status", "completed") if self.done else "unknown"
        reasons = "; ".join(
            dict.fromkeys(str(r.get("failure") or "no reason recorded") for r in self.failed)
        )
        if not self.done:
            return f"failed: {reasons}"
        return f"partial ({len(self.failed)} of {len(self.records)} seeds failed: {reasons})"

    @property
    def comparable(self) -> bool:
        return all(r.get("wall_clock_comparable", True) is not False for r in self.done)

    @property
    def seeds(self) -> str:
        return ",".join(str(r.get("seed")) for r in self.records)

    @property
    def css(self) -> str:
        if self.failed and not self.done:
            return "failed"
        if self.baseline:
            return "baseline"
        if self.matched:
            return "matched"
        return "control" if self.kind == "control" else ""


def group_rows(records: list[dict[str, Any]]) -> list[RowGroup]:
    order: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        order.setdefault(str(record.get("row")), []).append(record)
    return [RowGroup(name, rs) for name, rs in order.items()]


def _metric_name(groups: list[RowGroup]) -> str | None:
    for metric in ("accuracy", "mAP"):
        if any(g.mean(f"probe.{metric}") is not None for g in groups):
            return metric
    return None


def ablation_section(ablation: Ablation) -> Section:
    payload = ablation.payload
    groups = group_rows(ablation.records)
    rows = [g for g in groups if g.kind in RUN_KINDS]
    controls = [g for g in groups if g.kind not in RUN_KINDS]
    base = next((g for g in rows if g.baseline), None)
    presets = sorted({str(g.first.get("preset")) for g in rows if g.first.get("preset")})
    flops_only = bool(payload.get("flops_only")) or all(g.kind == "flops" for g in rows)
    section = Section(
        key="ablation-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", ablation.name).strip("-."),
        title=f"Ablation grid `{ablation.name}`",
    )
    seeds = payload.get("seeds")
    description = str(payload.get("description") or "").rstrip(". ")
    section.intro.append(
        f"{description + '. ' if description else ''}Results: `{ablation.path}` "
        f"(schema_version {payload.get('schema_version')}"
        f"{'' if payload.get('complete', True) else ', **incomplete**: the grid is still running'}"
        f"); seeds {seeds}; executor {payload.get('executor', 'local')}; baseline row "
        f"`{base.name if base else 'none'}`.".strip()
    )
    if "base" not in presets:
        section.intro.append(
            f"Preset {', '.join(presets) or '?'}: these are small-scale measurements. Their "
            "FLOP and wall-clock deltas are **not** comparable with the paper's headline "
            "figures (see the base-size section for that comparison)."
        )
    metric = _metric_name(groups)
    section.tables.append(_runs_table(rows, base, metric, flops_only))
    section.tables.append(_component_table(rows, base))
    section.intro.append(
        "Time per component: not measured by this grid (pre-training wall-clock is per run); "
        "`diffbench time --variant ... --format json` measures it, and `diffbench report` "
        "renders that file."
    )
    if metric is not None:
        section.tables.append(_downstream_table(rows + controls, base, metric))
    _ablation_plots(section, ablation, rows, controls, base, metric)
    return section


def _runs_table(
    rows: list[RowGroup], base: RowGroup | None, metric: str | None, flops_only: bool
) -> Table:
    columns = [
        Column("row", "left"),
        Column("change", "left"),
        Column("n", "left"),
        Column("pre-train FLOPs"),
        Column("Δ FLOPs"),
        Column("wall-clock"),
        Column("Δ wall-clock"),
        Column("samples/s"),
    ]
    if metric:
        columns += [
            Column(f"{metric} % (mean ± std)"),
            Column("95% CI"),
            Column(f"Δ {metric} (points)"),
        ]
    columns += [Column("status", "left")]
    table = Table(
        "runs", "Pre-training cost and downstream result per row", columns, [], css="runs"
    )
    ref = {
        m: base.mean(m) if base else None
        for m in ("total_flops", "wall_clock_seconds", "samples_per_second", f"probe.{metric}")
    }
    daggers = False
    for g in rows:
        flops = g.mean("total_flops")
        wall = g.mean("wall_clock_seconds")
        rate = g.mean("samples_per_second")
        name = g.name + (" (baseline)" if g.baseline else "")
        if g.matched:
            name += f" (compute-matched to {g.matched})"
        n = len(g.done)
        if n == 1:
            seeds = f"1 (seed {g.seeds})" if flops_only else f"1 (seed {g.seeds}, single seed)"
        else:
            seeds = f"{n} (seeds {g.seeds})"
        wall_text = seconds(wall)
        if wall is not None and not g.comparable:
            wall_text += " †"
            daggers = True
        cells = [
            name,
            str(g.first.get("differences") or ""),
            seeds,
            si(flops),
            signed(_delta_pct(flops, ref["total_flops"])),
            wall_text,
            signed(_delta_pct(wall, ref["wall_clock_seconds"])),
            num(rate),
        ]
        data = {
            "row": g.name,
            "baseline": g.baseline,
            "match_flops_of": g.matched,
            "seeds": g.seeds,
            "n": n,
            "total_flops": flops,
            "delta_flops_pct": _delta_pct(flops, ref["total_flops"]),
            "wall_clock_seconds": wall,
            "delta_wall_clock_pct": _delta_pct(wall, ref["wall_clock_seconds"]),
            "wall_clock_comparable": g.comparable,
            "samples_per_second": rate,
            "status": g.status,
        }
        if metric:
            stats = g.stats(f"probe.{metric}")
            delta = (
                None
                if stats.mean is None or ref[f"probe.{metric}"] is None
                else 100.0 * (stats.mean - ref[f"probe.{metric}"])
            )
            cells += [
                _mean_std(stats, _points, 100),
                _ci(stats, _points, 100),
                signed(delta, 1, ""),
            ]
            data.update(
                {
                    f"{metric}_mean": stats.mean,
                    f"{metric}_std": stats.std,
                    f"{metric}_ci_low": stats.ci_low,
                    f"{metric}_ci_high": stats.ci_high,
                    f"delta_{metric}_points": delta,
                }
            )
        cells.append(g.status)
        table.rows.append(Row(cells, g.css))
        table.data.append(data)
    table.notes.append(
        "FLOPs: model FLOPs (forward + backward, 2 per multiply-add) of the steps actually "
        "taken, from the closed-form FLOP model; deltas in % of the baseline row's mean; "
        f"{metric or 'downstream'} deltas in percentage points. Mean ± sample std over seeds; "
        "95% CI from Student's t; single-seed rows have no spread and are flagged."
    )
    if daggers:
        table.notes.append(
            "† wall-clock not comparable: measured with parallel workers sharing the CPU."
        )
    if flops_only:
        table.notes.append("FLOPs-only grid: planned FLOPs of the whole run, nothing trained.")
    return table.drop_empty_columns(keep=3)


def _component_table(rows: list[RowGroup], base: RowGroup | None) -> Table:
    columns = [
        Column("row", "left"),
        *(Column(c) for c in COMPONENTS),
        Column("total"),
        Column("Δ total"),
    ]
    table = Table(
        "flops_by_component", "Pre-training FLOPs per component (share of the run)", columns, []
    )
    ref = base.mean("total_flops") if base else None
    for g in rows:
        parts = {c: g.mean(f"flops.{c}") for c in COMPONENTS}
        total = sum(v for v in parts.values() if v is not None) or g.mean("total_flops")
        cells = [g.name]
        for c in COMPONENTS:
            value = parts[c]
            cells.append(
                DASH
                if value is None
                else f"{si(value)} ({pct(value / total)})"
                if total
                else si(value)
            )
        cells += [si(total), signed(_delta_pct(total, ref))]
        table.rows.append(Row(cells, g.css))
        table.data.append(
            {"row": g.name, **{f"flops.{c}": parts[c] for c in COMPONENTS}, "total_flops": total}
        )
    table.notes.append("Components as in `diffbench info`; they sum to the total.")
    return table


def _downstream_table(groups: list[RowGroup], base: RowGroup | None, metric: str) -> Table:
    columns = [
        Column("row", "left"),
        Column("init", "left"),
        Column("n"),
        Column(f"{metric} % (mean ± std)"),
        Column("95% CI"),
        Column("train acc. %"),
        Column("Δ vs baseline (points)"),
        Column("status", "left"),
    ]
    table = Table("downstream", f"Downstream {metric} (probe) per row, with controls", columns, [])
    ref = base.mean(f"probe.{metric}") if base else None
    for g in groups:
        stats = g.stats(f"probe.{metric}")
        train = g.stats("probe.train_accuracy")
        probe = next((r.get("probe") for r in g.done if r.get("probe")), None) or {}
        delta = None if stats.mean is None or ref is None else 100 * (stats.mean - ref)
        n = f"{stats.n}" + (" (single seed)" if stats.n == 1 else "")
        table.rows.append(
            Row(
                [
                    g.name,
                    str(probe.get("init", DASH)),
                    n,
                    _mean_std(stats, _points, 100),
                    _ci(stats, _points, 100),
                    _mean_std(train, _points, 100),
                    signed(delta, 1, ""),
                    g.status,
                ],
                g.css,
            )
        )
        table.data.append(
            {
                "row": g.name,
                "kind": g.kind,
                "init": probe.get("init"),
                "n": stats.n,
                "mean": stats.mean,
                "std": stats.std,
                "ci_low": stats.ci_low,
                "ci_high": stats.ci_high,
                "delta_points": delta,
            }
        )
    probe = next((r.get("probe") for g in groups for r in g.done if r.get("probe")), None) or {}
    table.notes.append(
        f"Probe: {probe.get('mode', '?')} on {probe.get('modality', '?')} features, data "
        f"`{probe.get('data', '?')}`. Controls: the same probe on a randomly initialised model "
        "(`random-init`) and on raw fbank features (`fbank`): a pre-trained row must beat them "
        "for its accuracy to mean anything."
    )
    return table


def _series(groups: list[RowGroup], metrics: dict[str, list[dict[str, Any]]]) -> list:
    out = []
    for g in groups:
        for record in sorted(g.done, key=lambda r: r.get("seed", 0)):
            rows = metrics.get(str(record.get("run_id"))) or []
            if rows:
                out.append(plots.Series(g.name, str(record.get("batch") or ""), rows))
                break
    return out


def _ablation_plots(
    section: Section,
    ablation: Ablation,
    rows: list[RowGroup],
    controls: list[RowGroup],
    base: RowGroup | None,
    metric: str | None,
) -> None:
    key = section.key
    bars = [(g.name, {c: g.mean(f"flops.{c}") or 0 for c in COMPONENTS}) for g in rows]
    _add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(f"{key}-flops-by-component", "Pre-training FLOPs per component", bars),
    )
    series = _series(rows, ablation.metrics)
    _add_plot(
        section,
        "Schedules",
        plots.schedules(f"{key}-schedules", series),
        "Mask ratios and batch size actually used per logged step (first seed).",
    )
    _add_plot(
        section,
        "Throughput",
        plots.throughput(f"{key}-throughput", series),
        "Adaptive batch changes utilisation (wall-clock), not total FLOPs.",
    )
    _add_plot(section, "Loss curves", plots.loss_curves(f"{key}-loss", series))
    if metric is None:
        section.skipped.append("Accuracy vs FLOPs: skipped (no downstream metric in these results)")
    else:
        points = []
        for g in rows:
            stats = g.stats(f"probe.{metric}")
            points.append(
                {
                    "label": g.name,
                    "flops": g.mean("total_flops"),
                    "mean": stats.mean,
                    "std": stats.std,
                    "n": stats.n,
                    "matched": bool(g.matched),
                    "baseline": g.baseline,
                }
            )
        lines = []
        for g in controls:
            stats = g.stats(f"probe.{metric}")
            if stats.mean is not None:
                lines.append({"label": g.name, "mean": stats.mean, "std": stats.std, "n": stats.n})
        _add_plot(
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
                savings.append(
                    {"label": g.name, "flop_saving": 1 - f / bf, "time_saving": 1 - w / bw}
                )
    _add_plot(
        section,
        "Time saving vs FLOP saving",
        plots.saving_scatter(
            f"{key}-time-vs-flop-saving", "Wall-clock saving vs FLOP saving per row", savings
        ),
        "Above the diagonal: wall-clock falls faster than FLOPs; below: slower.",
    )


# ------------------------------------------------------------------------- pretrain runs
def runs_section(runs: list[PretrainRun]) -> Section:
    section = Section(key="pretrain", title="Pre-training runs")
    columns = [
        Column("run", "left"),
        Column("preset", "left"),
        Column("variant", "left"),
        Column("masking", "left"),
        Column("batch", "left"),
        Column("steps"),
        Column("samples"),
        Column("pre-train FLOPs"),
        Column("wall-clock"),
        Column("samples/s"),
        Column("achieved FLOP/s"),
        Column("final loss"),
        Column("status", "left"),
    ]
    table = Table("runs", "One row per pre-training run", columns, [], css="runs")
    parts = Table(
        "flops_by_component",
        "Pre-training FLOPs per component",
        [Column("run", "left"), *(Column(c) for c in COMPONENTS), Column("total")],
        [],
    )
    bars = []
    series = []
    for run in runs:
        s = run.summary
        config = s.get("config") or {}
        masking = (config.get("masking") or {}).get("kind", DASH)
        batch = (config.get("batch") or {}).get("kind", "")
        status = s.get("status", "?")
        if status != "completed":
            status = f"{status}: {s.get('failure') or 'no reason recorded'}"
        table.rows.append(
            Row(
                [
                    run.name,
                    str(config.get("preset", DASH)),
                    str(config.get("variant", DASH)),
                    masking,
                    batch or DASH,
                    num(s.get("steps")),
                    num(s.get("samples")),
                    si(s.get("total_flops")),
                    seconds(s.get("wall_clock_seconds")),
                    num(s.get("samples_per_second")),
                    si(s.get("achieved_flops_per_second"), "FLOP/s"),
                    num((s.get("final_losses") or {}).get("loss"), 4),
                    status,
                ],
                "failed" if s.get("status") == "failed" else "",
            )
        )
        table.data.append(
            {"run": run.name, **{k: v for k, v in s.items() if not isinstance(v, (dict, list))}}
        )
        by = s.get("flops_by_component") or {}
        total = sum(by.values()) or s.get("total_flops")
        parts.rows.append(
            Row(
                [
                    run.name,
                    *(
                        f"{si(by.get(c))} ({pct(by[c] / total)})"
                        if by.get(c) is not None and total
                        else DASH
                        for c in COMPONENTS
                    ),
                    si(total),
                ]
            )
        )
        parts.data.append({"run": run.name, **{f"flops.{c}": by.get(c) for c in COMPONENTS}})
        bars.append((run.name, {c: by.get(c) or 0 for c in COMPONENTS}))
        series.append(plots.Series(run.name, batch, run.metrics))
    section.tables += [table.drop_empty_columns(keep=1), parts]
    presets = {str((r.summary.get("config") or {}).get("preset")) for r in runs}
    if "base" not in presets:
        section.intro.append(
            f"Preset {', '.join(sorted(presets))}: small-scale runs, not "
            "comparable with the paper's figures."
        )
    _add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(
            "pretrain-flops-by-component", "Pre-training FLOPs per component", bars
        ),
    )
    _add_plot(section, "Schedules", plots.schedules("pretrain-schedules", series))
    _add_plot(
        section,
        "Throughput",
        plots.throughput("pretrain-throughput", series),
        "Adaptive batch changes utilisation (wall-clock), not total FLOPs.",
    )
    _add_plot(section, "Loss curves", plots.loss_curves("pretrain-loss", series))
    return section


# --------------------------------------------------------------------------------- FLOPs
def flops_section(result: FlopsResult, index: int) -> Section:
    key = f"flops-{index}"
    rows = result.rows
    preset = ", ".join(dict.fromkeys(str(r.get("preset")) for r in rows))
    if result.kind == "breakdown":
        return _flops_breakdown(result, key, preset)
    if result.kind == "whole-run":
        return _flops_whole_run(result, key, preset)
    return _flops_sensitivity(result, key, preset)


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
    comp = Table(
        "flops_by_component",
        "FLOPs per component (forward + backward)",
        [Column("variant", "left"), *(Column(c) for c in COMPONENTS)],
        [],
    )
    bars = []
    for variant in variants:
        t = totals.get(variant, {})
        runs.rows.append(
            Row(
                [
                    variant,
                    si(t.get("forward_flops")),
                    si(t.get("backward_flops")),
                    si(t.get("total_flops")),
                    signed(_delta_pct(t.get("total_flops"), base_total)),
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
            Row(
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
    _add_plot(
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
    comp = Table(
        "flops_by_component",
        "Whole-run FLOPs per component",
        [Column("variant", "left"), *(Column(c) for c in COMPONENTS)],
        [],
    )
    bars = []
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        total = next((r for r in mine if r["component"] == "total"), mine[-1])
        table.rows.append(
            Row(
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
            Row(
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
    _add_plot(
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
            Row(
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


# -------------------------------------------------------------------------------- timing
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
            Row(
                [
                    str(r["variant"]),
                    str(r.get("implementation", "ours")),
                    f"{num(r.get('median_ms'), 1)} ms",
                    f"{num(r.get('iqr_ms'), 1)} ms",
                    num(r.get("samples_per_s")),
                    num(r.get("achieved_gflops_per_s")),
                    pct(r.get("utilisation"), 0),
                    signed(_delta_pct(r.get("median_ms"), base)),
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
                Row(
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
                Row(
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
    _add_plot(
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
    _add_plot(
        section,
        "Time per component",
        plots.flops_stacked(
            f"{key}-time-by-component", "Time per component, fwd+bwd", bars, unit="ms"
        )
        if bars
        else "no per-component timings",
    )
    return section
