"""The report section of pre-training run directories: one row per run, FLOPs per
component and the runs' curves."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.format import DASH, num, pct, seconds, si
from bench.report.load import PretrainRun
from bench.report.tables import Column, Table, TableRow
from diffmavil.config import COMPONENTS


class _Kind(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    kind: str | None = None


class RunRecipe(BaseModel):
    """What the report shows of a run's config: the ``PretrainConfig`` JSON of whichever
    version wrote the summary, read for these fields only (the others ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    preset: str | None = None
    variant: str | None = None
    masking: _Kind = _Kind()
    batch: _Kind = _Kind()


RUN_COLUMNS = (
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
)


def _run_row(run: PretrainRun, recipe: RunRecipe) -> TableRow:
    s = run.summary
    status = s.status
    if status != "completed":
        status = f"{status}: {s.failure or 'no reason recorded'}"
    cells = [
        run.name,
        recipe.preset or DASH,
        recipe.variant or DASH,
        recipe.masking.kind or DASH,
        recipe.batch.kind or DASH,
        num(s.steps),
        num(s.samples),
        si(s.total_flops),
        seconds(s.wall_clock_seconds),
        num(s.samples_per_second),
        si(s.achieved_flops_per_second, "FLOP/s"),
        num(s.final_losses.get("loss"), 4),
        status,
    ]
    return TableRow(cells, "failed" if s.status == "failed" else "")


def _component_row(run: PretrainRun) -> TableRow:
    by = run.summary.flops_by_component
    total = sum(by.values()) or run.summary.total_flops
    shares = [
        f"{si(by.get(c))} ({pct(by[c] / total)})" if by.get(c) is not None and total else DASH
        for c in COMPONENTS
    ]
    return TableRow([run.name, *shares, si(total)])


def runs_section(runs: list[PretrainRun]) -> Section:
    section = Section(key="pretrain", title="Pre-training runs")
    table = Table("runs", "One row per pre-training run", list(RUN_COLUMNS), [], css="runs")
    parts = Table(
        "flops_by_component",
        "Pre-training FLOPs per component",
        [Column("run", "left"), *(Column(c) for c in COMPONENTS), Column("total")],
        [],
    )
    bars, series = [], []
    for run in runs:
        recipe = RunRecipe.model_validate(run.summary.config)
        by = run.summary.flops_by_component
        table.rows.append(_run_row(run, recipe))
        values = run.summary.model_dump(mode="json", exclude={"schema_version"})
        table.data.append(
            {
                "run": run.name,
                **{k: v for k, v in values.items() if not isinstance(v, (dict, list))},
            }
        )
        parts.rows.append(_component_row(run))
        parts.data.append({"run": run.name, **{f"flops.{c}": by.get(c) for c in COMPONENTS}})
        bars.append((run.name, {c: by.get(c) or 0 for c in COMPONENTS}))
        series.append(plots.Series(run.name, recipe.batch.kind or "", run.metrics))
    section.tables += [table.drop_empty_columns(keep=1), parts]
    presets = {str(RunRecipe.model_validate(r.summary.config).preset) for r in runs}
    if "base" not in presets:
        section.intro.append(
            f"Preset {', '.join(sorted(presets))}: small-scale runs, not "
            "comparable with the paper's figures."
        )
    _add_plots(section, bars, series)
    return section


def _add_plots(
    section: Section, bars: list[tuple[str, dict[str, float]]], series: list[plots.Series]
) -> None:
    add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(
            "pretrain-flops-by-component", "Pre-training FLOPs per component", bars
        ),
    )
    add_plot(section, "Schedules", plots.schedules("pretrain-schedules", series))
    add_plot(
        section,
        "Throughput",
        plots.throughput("pretrain-throughput", series),
        "Adaptive batch changes utilisation (wall-clock), not total FLOPs.",
    )
    add_plot(section, "Loss curves", plots.loss_curves("pretrain-loss", series))
