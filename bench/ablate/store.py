"""The results store of an ablation grid and its aggregation (pandas).

``<out>/results.json`` (a ``bench.schema.GridResults``: schema_version, grid, environment,
paper_headline, records) and
``results.csv`` hold one record per run (row x seed, controls included);
``aggregate.json`` / ``aggregate.csv`` hold one line per row: mean, std and n over seeds,
and deltas against the baseline row, paired by seed over the seeds both rows completed
(``bench.schema.paired_delta``: FLOPs, wall-clock, throughput in %; accuracy / mAP in
points). Run directories are named relative to the output directory. Every file is written
atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.requests import StatisticsSpec
from bench.schema import (
    GRID_SCHEMA_VERSION,
    GridRecord,
    GridResults,
    in_points,
    judge,
    paired_delta,
    run_dir_in_results,
)
from diffmavil.atomic import atomic_write_json, atomic_write_text
from diffmavil.config import COMPONENTS

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
AGGREGATE_JSON = "aggregate.json"
AGGREGATE_CSV = "aggregate.csv"

# numeric per-run columns aggregated as mean / std over seeds
METRICS = (
    "total_flops",
    "wall_clock_seconds",
    "compute_seconds",
    "data_seconds",
    "samples_per_second",
    "achieved_flops_per_second",
    "steps",
    "samples",
    "budget_samples",
    "probe.accuracy",
    "probe.mAP",
    "finetune.accuracy",
    "loss",
    *(f"flops.{c}" for c in COMPONENTS),
)
# (delta column, metric): probe and fine-tune metrics in points, the others in % of the
# baseline's run
DELTAS = (
    ("delta_flops_pct", "total_flops"),
    ("delta_wall_clock_pct", "wall_clock_seconds"),
    ("delta_compute_pct", "compute_seconds"),
    ("delta_samples_per_second_pct", "samples_per_second"),
    ("delta_accuracy_points", "probe.accuracy"),
    ("delta_mAP_points", "probe.mAP"),
    ("delta_finetune_accuracy_points", "finetune.accuracy"),
)
FLAT_COLUMNS = (
    "row",
    "kind",
    "seed",
    "run_id",
    "status",
    "failure",
    "baseline",
    "preset",
    "variant",
    "masking",
    "batch",
    "budget_samples",
    "match_flops_of",
    "planned_steps",
    "planned_flops",
    "steps",
    "samples",
    "total_flops",
    *(f"flops.{c}" for c in COMPONENTS),
    "wall_clock_seconds",
    "compute_seconds",
    "data_seconds",
    "probe_seconds",
    "samples_per_second",
    "achieved_flops_per_second",
    "probe.accuracy",
    "probe.train_accuracy",
    "probe.mAP",
    "loss",
    "loss.audio_recon",
    "loss.video_recon",
    "loss.contrastive",
    "wall_clock_comparable",
    "differences",
    "run_dir",
)


class ResultsError(ValueError):
    """A results file cannot be read (missing, corrupt, or another schema version)."""


def flat_record(record: GridRecord) -> dict[str, Any]:
    """A record as one CSV line: components, probe metrics and losses as dotted columns."""
    values = record.model_dump(mode="json", exclude_none=True, exclude={"schema_version"})
    flat = {k: v for k, v in values.items() if not isinstance(v, (dict, list))}
    for row in record.timing or []:
        if row.median_ms is None:
            continue
        where = "" if row.component == "train_step" else f"{row.component}."
        flat[f"time.{where}{row.phase}_ms"] = row.median_ms
    for name, value in (record.flops_by_component or {}).items():
        flat[f"flops.{name}"] = value
    for prefix, metrics in (("probe", record.probe), ("finetune", record.finetune)):
        values = {} if metrics is None else metrics.model_dump(mode="json")
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                flat[f"{prefix}.{name}"] = value
    if record.curve:
        flat["curve_points"] = len(record.curve)
    for name, value in (record.final_losses or {}).items():
        flat[name] = value
    return flat


def records_frame(records: list[GridRecord]):
    import pandas as pd

    rows = [flat_record(r) for r in records]
    columns = list(FLAT_COLUMNS) + sorted({k for r in rows for k in r} - set(FLAT_COLUMNS))
    return pd.DataFrame(rows, columns=columns)


DONE = ("completed", "planned")


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def _row_line(row: str, group: list[GridRecord]) -> dict[str, Any]:
    """One row's aggregate line: what it is, its counts, mean and std per metric."""
    import numpy as np
    import pandas as pd

    done = [r for r in group if r.status in DONE]
    first = group[0]
    line: dict[str, Any] = {
        "row": row,
        "kind": first.kind,
        "baseline": any(r.baseline for r in group),
        "preset": first.preset,
        "variant": first.variant,
        "masking": first.masking,
        "batch": first.batch,
        "n": len(done),
        "n_failed": sum(r.status == "failed" for r in group),
        "seeds": ",".join(str(r.seed) for r in group),
        "single_seed": len(done) == 1,
        "status": _status([r.status for r in group]),
        "wall_clock_comparable": all(r.wall_clock_comparable is not False for r in done)
        if done
        else None,
    }
    for metric in METRICS:
        values = pd.Series([_numeric(r.value(metric)) for r in done], dtype="float64")
        if values.isna().all():
            line[f"{metric}_mean"] = np.nan
            line[f"{metric}_std"] = np.nan
            continue
        line[f"{metric}_mean"] = float(values.mean())
        line[f"{metric}_std"] = float(values.std(ddof=1)) if values.count() > 1 else np.nan
    return line


def _delta(row: list[GridRecord], base: list[GridRecord] | None, metric: str) -> float:
    """The row's mean paired delta against the baseline row (NaN without a common seed)."""
    delta = None if base is None else paired_delta(row, base, metric).mean
    if delta is None:
        return math.nan
    return delta if in_points(metric) else 100.0 * delta


def aggregate(records: list[GridRecord]):
    """One line per row (in first-seen order): n, failures, mean/std per metric, deltas.
    The one place where the aggregate's rows are built (aggregate.json / .csv).

    Only completed (or planned, for FLOPs-only grids) runs enter the statistics; std is the
    sample standard deviation (ddof=1), NaN for a single seed, and ``single_seed`` flags it.
    Deltas are paired by seed against the baseline row, over the seeds both completed
    (timed metrics: comparable runs only): the mean of ``row / baseline - 1`` in %, accuracy
    and mAP as the mean difference in points (x100 of fractions).
    """
    import pandas as pd

    groups: dict[str, list[GridRecord]] = {}
    for record in records:
        groups.setdefault(record.row, []).append(record)
    if not groups:
        return pd.DataFrame()
    lines = {row: _row_line(row, group) for row, group in groups.items()}
    base = next((group for group in groups.values() if any(r.baseline for r in group)), None)
    for column, metric in DELTAS:
        for row, line in lines.items():
            line[column] = _delta(groups[row], base, metric)
    return pd.DataFrame(list(lines.values()))


def _status(statuses: list[str]) -> str:
    values = set(statuses)
    if values <= {"completed"}:
        return "completed"
    if values <= {"planned"}:
        return "planned"
    if values <= {"failed"}:
        return "failed"
    return "partial"


def _clean(value: Any) -> Any:
    """NaN -> None for JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def result_paths(out: Path) -> dict[str, Path]:
    """Where ``write_results`` writes each file."""
    return {
        "results_json": out / RESULTS_JSON,
        "results_csv": out / RESULTS_CSV,
        "aggregate_json": out / AGGREGATE_JSON,
        "aggregate_csv": out / AGGREGATE_CSV,
    }


def write_results(
    out: Path, records: list[dict[str, Any]], meta: dict[str, Any], complete: bool
) -> dict[str, Path]:
    """Write results.json/csv and aggregate.json/csv atomically; returns their paths.

    results.json is a validated ``GridResults`` (schema_version 4) carrying what is judged
    from the records (comparisons, control gains, paired deltas, the time-to-accuracy
    endpoints: ``bench.schema.judge``)
    and the paper's headline figures (``bench.flops.headline``), computed here, where results
    are produced.
    """
    from bench.flops.headline import paper_headline

    out.mkdir(parents=True, exist_ok=True)
    if "environment" not in meta:  # run_grid gives its own; else: where this is written
        from diffmavil.environment import environment

        meta = {**meta, "environment": environment("cpu")}
    typed = [
        record.model_copy(update={"run_dir": run_dir_in_results(record.run_dir)})
        for record in (GridRecord.model_validate(r) for r in _clean(records))
    ]
    results = GridResults(
        **{"seeds": sorted({r.seed for r in typed}), **meta},
        complete=complete,
        paper_headline=paper_headline(),
        records=typed,
    )
    statistics = results.statistics or StatisticsSpec()
    results = results.model_copy(update=judge(typed, statistics))
    paths = {
        "results_json": atomic_write_json(out / RESULTS_JSON, results.model_dump(mode="json")),
        "results_csv": atomic_write_text(
            out / RESULTS_CSV, records_frame(results.records).convert_dtypes().to_csv(index=False)
        ),
    }
    table = aggregate(results.records)
    rows = _clean(table.to_dict(orient="records")) if not table.empty else []
    paths["aggregate_json"] = atomic_write_json(
        out / AGGREGATE_JSON,
        {
            "schema_version": GRID_SCHEMA_VERSION,
            "kind": "ablation-aggregate",
            "grid": results.grid,
            "complete": complete,
            "rows": rows,
            "statistics": statistics.model_dump(mode="json"),
            **results.model_dump(
                mode="json",
                include={"comparisons", "control_gains", "paired_deltas", "endpoints"},
            ),
        },
    )
    paths["aggregate_csv"] = atomic_write_text(
        out / AGGREGATE_CSV, table.convert_dtypes().to_csv(index=False)
    )
    return paths


def read_results(out: str | Path) -> GridResults:
    """Load results.json (schema 1 is migrated on read, ``bench.migrate``)."""
    from bench.migrate import MigrationError, load_grid_results

    path = Path(out)
    if path.is_dir():
        path = path / RESULTS_JSON
    if not path.exists():
        raise ResultsError(f"{path}: no results file")
    try:
        return load_grid_results(path)
    except MigrationError as error:
        raise ResultsError(str(error)) from None
