"""The grid's whole-run projection (``whole-run.json``) against the grid's own runs, by the
pre-registered rule (``bench.report.projection_rule``): per confirmatory row, the runs'
errors against the projected seconds and the verdict; per comparison, the measured saving
against the projected saving's interval.

The projection keeps identical recipes once, under the first row's name: a row without a
projection row of its own is mapped to the one recipe its stored config (preset, variant,
masking, batch, samples) matches (``project_rows``); otherwise it is not projected."""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.format import DASH, signed
from bench.report.noise_floor import REPLICA, RowNoiseFloor, differences_tokens, wall_clock_notes
from bench.report.projection_rule import (
    RowValidation,
    Saving,
    SavingCheck,
    check_saving,
    measured_saving,
    validate_row,
)
from bench.report.tables import Column, Table, TableRow
from bench.schema import GridRecord, GridResults, WholeRunRow, paired_delta, values_by_seed
from bench.schema.paired import WALL_CLOCK, row_records


@dataclass(frozen=True)
class RowProjection:
    """A grid row's projection row (None: not projected) and why, when it is not its own."""

    row: WholeRunRow | None
    note: str = ""


def _same_recipe(record: GridRecord, row: WholeRunRow) -> bool:
    """Whether a record's stored config is the projection row's recipe ("fixed 16",
    "adaptive/tokens 16" and "curriculum linear ..." name their kinds first)."""
    return (
        record.preset == row.preset
        and record.variant == row.variant
        and record.masking == row.masking.split(" ")[0]
        and record.batch == row.batch.split(" ")[0].split("/")[0]
        and record.budget_samples == row.samples
    )


def _recipe_tokens(record: GridRecord) -> frozenset[str]:
    return frozenset(t for t in differences_tokens(record.differences) if not REPLICA.fullmatch(t))


def _shared_recipe(
    first: GridRecord, projection: list[WholeRunRow], records: list[GridRecord]
) -> RowProjection:
    """A row without a projection row of its own: the one recipe its config matches."""
    found = [p for p in projection if _same_recipe(first, p)]
    if len(found) > 1:  # narrowed by the differences (a copy's replica token aside)
        mine = _recipe_tokens(first)
        found = [
            p
            for p in found
            if any(_recipe_tokens(r) == mine for r in row_records(records, p.recipe))
        ]
    if len(found) != 1:
        return RowProjection(None, "no projected recipe matches its config alone")
    return RowProjection(found[0], f"as `{found[0].recipe}`")


def project_rows(
    records: list[GridRecord], projection: list[WholeRunRow] | None
) -> dict[str, RowProjection]:
    """Each grid row's projection (see the module); {} without a projection."""
    if not projection:
        return {}
    own = {p.recipe: p for p in projection}
    mapped: dict[str, RowProjection] = {}
    for record in records:
        if record.kind != "row" or record.row in mapped:
            continue
        row = own.get(record.row)
        if row is None:
            mapped[record.row] = _shared_recipe(record, projection, records)
        elif record.budget_samples not in (None, row.samples):
            note = f"projected {row.samples:,} samples, its runs {record.budget_samples:,}"
            mapped[record.row] = RowProjection(None, note)
        else:
            mapped[record.row] = RowProjection(row)
    return mapped


def baseline_row(results: GridResults) -> str | None:
    """The baseline row's name (the results' own, else its records')."""
    found = next((r.row for r in results.records if r.baseline and r.kind == "row"), None)
    return results.baseline or found


def confirmatory_rows(results: GridResults, copies: set[str]) -> list[str]:
    """The baseline and every row a comparison names (a noise-floor copy is never a
    candidate), in the grid's order."""
    named = {baseline_row(results)}
    for c in results.statistics.comparisons if results.statistics else []:
        if c.candidate not in copies:
            named |= {c.candidate, c.reference}
    order = dict.fromkeys(r.row for r in results.records if r.kind == "row")
    return [row for row in order if row in named]


def _pct(value: float | None) -> str:
    return DASH if value is None else signed(100 * value)


def _projection_cell(projected: RowProjection | None) -> str:
    if projected is None or projected.row is None:
        note = "" if projected is None else f" ({projected.note})"
        return "not projected" + note
    p = projected.row
    text = f"{p.projected_seconds:,.0f} s [{p.ci_low:,.0f}, {p.ci_high:,.0f}]"
    return text + (f" ({projected.note})" if projected.note else "")


def row_validations(
    results: GridResults, mapped: dict[str, RowProjection], copies: set[str]
) -> list[RowValidation]:
    """The rule on each confirmatory row (its comparable runs' wall-clock by seed)."""
    checked = []
    for name in confirmatory_rows(results, copies):
        projected = mapped.get(name)
        seconds = None if projected is None or projected.row is None else projected.row
        runs = values_by_seed(row_records(results.records, name), WALL_CLOCK)
        checked.append(
            validate_row(name, runs, None if seconds is None else seconds.projected_seconds)
        )
    return checked


ROW_COLUMNS = [
    Column("row", "left"),
    Column("projected [95%]"),
    Column("runs"),
    Column("median error"),
    Column("min / max error"),
    Column("runs within ±10%"),
    Column("verdict", "left"),
]


def rows_table(checked: list[RowValidation], mapped: dict[str, RowProjection]) -> Table:
    """Per confirmatory row: the runs' errors against the projection and the verdict."""
    table = Table("projection-validation", "Projection vs the grid's runs", ROW_COLUMNS, [])
    for v in checked:
        spread = DASH if v.min_error is None else f"{_pct(v.min_error)} / {_pct(v.max_error)}"
        within = DASH if not v.errors else f"{v.within_run_limit} of {v.runs}"
        verdict = v.verdict if v.passed is not False else f"**{v.verdict}**"
        cells = [v.row, _projection_cell(mapped.get(v.row)), str(v.runs), _pct(v.median_error)]
        table.rows.append(TableRow([*cells, spread, within, verdict]))
        table.data.append(
            {
                "row": v.row,
                "projected_seconds": v.projected_seconds,
                "runs": v.runs,
                "median_error": v.median_error,
                "min_error": v.min_error,
                "max_error": v.max_error,
                "runs_within_10pct": v.within_run_limit if v.errors else None,
                "validated": v.passed,
                "verdict": v.verdict,
            }
        )
    table.notes.append(_rule_note(checked))
    return table


def _rule_note(checked: list[RowValidation]) -> str:
    failed = [f"`{v.row}`" for v in checked if v.passed is False]
    note = (
        "The rule, pre-registered before Table 2's time-to-accuracy grid ran "
        '(reports/table2/README.md, "Wall-clock and its validation rule"): a run\'s '
        "error is its wall-clock / the projected seconds − 1 "
        "(runs whose wall-clock is comparable); a confirmatory row (the baseline and every "
        "row a comparison names) is validated when the median error lies within ±5% and "
        "every run within ±10% (bounds included). A row that fails is reported as failed: "
        "its projection is **not a prediction** of this machine's runs and is not quoted as "
        "one."
    )
    if failed:
        note += f" Failed here: {', '.join(failed)}."
    return note


@dataclass(frozen=True)
class ComparisonCheck:
    """A comparison's saving check, its wall-clock pairs, and why it is untested."""

    check: SavingCheck
    pairs: int
    untested: str = ""


def _measured(results: GridResults, candidate: str, reference: str) -> tuple[Saving | None, int]:
    """The measured saving of candidate vs reference and its pairs: the stored paired
    delta against the baseline row, else the same delta computed (``paired_delta``)."""
    deltas = {d.row: d for d in results.paired_deltas}
    stored = deltas.get(candidate) if reference == baseline_row(results) else None
    if stored is not None:
        saving = measured_saving(
            stored.wall_clock_delta_mean, stored.wall_clock_delta_low, stored.wall_clock_delta_high
        )
        return saving, stored.wall_clock_pairs
    level = results.statistics.confidence if results.statistics else 0.95
    records = results.records
    delta = paired_delta(
        row_records(records, candidate), row_records(records, reference), WALL_CLOCK, level
    )
    interval = delta.interval
    low, high = (None, None) if interval is None else (interval.low, interval.high)
    return measured_saving(delta.mean, low, high), delta.pairing.n


def saving_checks(
    results: GridResults, mapped: dict[str, RowProjection], copies: set[str]
) -> list[ComparisonCheck]:
    """The rule on each comparison (a noise-floor copy's aside)."""
    checks = []
    for c in results.statistics.comparisons if results.statistics else []:
        if c.candidate in copies:
            continue
        measured, pairs = _measured(results, c.candidate, c.reference)
        projected, why = _projected_saving(mapped.get(c.candidate), mapped.get(c.reference))
        check = check_saving(f"{c.candidate} vs {c.reference}", measured, projected)
        checks.append(ComparisonCheck(check, pairs, why))
    return checks


def _projected_saving(
    candidate: RowProjection | None, reference: RowProjection | None
) -> tuple[Saving | None, str]:
    """The projected saving of candidate vs reference with its interval when the
    reference is the projection's baseline (its savings are against it), else the point."""
    if candidate is None or candidate.row is None or reference is None or reference.row is None:
        return None, "not projected"
    c, r = candidate.row, reference.row
    if r.baseline and c.time_saving is not None:
        return Saving(c.time_saving, c.time_saving_ci_low, c.time_saving_ci_high), ""
    point = Saving(1.0 - c.projected_seconds / r.projected_seconds)
    return (
        point,
        f"no interval: the projection's savings are against its baseline, not `{r.recipe}`",
    )


def _inside_cell(checked: ComparisonCheck) -> str:
    inside = checked.check.inside
    if inside is None:
        return f"not tested ({checked.untested or 'no measured saving'})"
    return "yes" if inside else "**no**"


def _saving_data(key: str, saving: Saving | None) -> dict[str, float | None]:
    if saving is None:
        return {key: None, f"{key}_low": None, f"{key}_high": None}
    return {key: saving.estimate, f"{key}_low": saving.low, f"{key}_high": saving.high}


def savings_table(
    checks: list[ComparisonCheck], level: float, floors: list[RowNoiseFloor]
) -> Table:
    """Per comparison: the measured saving, the projected saving, and whether the first
    lies inside the second's interval."""
    columns = [
        Column("comparison", "left"),
        Column("pairs"),
        Column(f"measured saving [{100 * level:g}%]"),
        Column("projected saving [95%]"),
        Column("inside", "left"),
    ]
    title = "Projection vs the grid's runs: savings per comparison"
    table = Table("projection-savings", title, columns, [])
    for checked in checks:
        check, pairs = checked.check, checked.pairs
        measured = DASH if check.measured is None else check.measured.text()
        projected = DASH if check.projected is None else check.projected.text()
        cells = [check.comparison, str(pairs), measured, projected, _inside_cell(checked)]
        table.rows.append(TableRow(cells))
        table.data.append(
            {
                "comparison": check.comparison,
                "pairs": pairs,
                **_saving_data("measured_saving", check.measured),
                **_saving_data("projected_saving", check.projected),
                "inside": check.inside,
            }
        )
    table.notes.append(
        "Saving: 1 − candidate / reference wall-clock (> 0: the candidate is faster). "
        "Measured: −the paired relative wall-clock delta over the seeds both rows completed "
        f"(comparable runs), with its two-sided {100 * level:g}% Student's t interval. "
        "Projected: the projection's saving with its 95% interval. The rule holds "
        "when the measured saving lies inside the projected interval (bounds included)."
    )
    table.notes += wall_clock_notes(floors)
    return table


def validation_tables(
    results: GridResults,
    projection: list[WholeRunRow] | None,
    floors: list[RowNoiseFloor],
) -> list[Table]:
    """The two tables of the rule, when the grid has a projection and a baseline row
    (``floors``: the grid's noise floors, whose copies are never confirmatory)."""
    copies = {f.row for f in floors}
    if not projection or baseline_row(results) is None or results.flops_only:
        return []
    mapped = project_rows(results.records, projection)
    tables = [rows_table(row_validations(results, mapped, copies), mapped)]
    checks = saving_checks(results, mapped, copies)
    if checks:
        level = results.statistics.confidence if results.statistics else 0.95
        tables.append(savings_table(checks, level, floors))
    return tables
