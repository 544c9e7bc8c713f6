"""The results store of an ablation grid and its aggregation (pandas).

``<out>/results.json`` (a ``bench.schema.GridResults``: schema_version, grid, environment,
paper_headline, records) and
``results.csv`` hold one record per run (row x seed, controls included);
``aggregate.json`` / ``aggregate.csv`` hold one line per row: mean, std and n over seeds,
and deltas against the baseline row (FLOPs, wall-clock, throughput in %; accuracy / mAP in
points). Every file is written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.ablate.comparisons import comparisons, control_gains, paired_deltas
from bench.requests import StatisticsSpec
from bench.schema import SCHEMA_VERSION, GridRecord, GridResults
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
    "loss",
    *(f"flops.{c}" for c in COMPONENTS),
)
# (delta column, metric, kind): kind "pct" = relative change in %, "points" = x100 difference
DELTAS = (
    ("delta_flops_pct", "total_flops", "pct"),
    ("delta_wall_clock_pct", "wall_clock_seconds", "pct"),
    ("delta_compute_pct", "compute_seconds", "pct"),
    ("delta_samples_per_second_pct", "samples_per_second", "pct"),
    ("delta_accuracy_points", "probe.accuracy", "points"),
    ("delta_mAP_points", "probe.mAP", "points"),
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
    for name, value in (values.get("probe") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"probe.{name}"] = value
    for name, value in (record.final_losses or {}).items():
        flat[name] = value
    return flat


def records_frame(records: list[GridRecord]):
    import pandas as pd

    rows = [flat_record(r) for r in records]
    columns = list(FLAT_COLUMNS) + sorted({k for r in rows for k in r} - set(FLAT_COLUMNS))
    return pd.DataFrame(rows, columns=columns)


def aggregate(records: list[GridRecord]):
    """One line per row (in first-seen order): n, failures, mean/std per metric, deltas.
    The one place where the aggregate's rows are built (aggregate.json / .csv).

    Only completed (or planned, for FLOPs-only grids) runs enter the statistics; std is the
    sample standard deviation (ddof=1), NaN for a single seed, and ``single_seed`` flags it.
    Deltas compare row means with the baseline row's means: ``pct`` metrics in % of the
    baseline, accuracy and mAP in points (x100 difference of fractions).
    """
    import numpy as np
    import pandas as pd

    frame = records_frame(records)
    if frame.empty:
        return pd.DataFrame()
    ok = frame["status"].isin(["completed", "planned"])
    lines = []
    for row, group in frame.groupby("row", sort=False):
        done = group[ok.loc[group.index]]
        first = group.iloc[0]
        line: dict[str, Any] = {
            "row": row,
            "kind": first.get("kind"),
            "baseline": bool(group["baseline"].fillna(False).astype(bool).any()),
            "preset": first.get("preset"),
            "variant": first.get("variant"),
            "masking": first.get("masking"),
            "batch": first.get("batch"),
            "n": len(done),
            "n_failed": int((group["status"] == "failed").sum()),
            "seeds": ",".join(str(int(s)) for s in group["seed"]),
            "single_seed": len(done) == 1,
            "status": _status(group["status"]),
            "wall_clock_comparable": bool(
                done["wall_clock_comparable"].fillna(True).astype(bool).all()
            )
            if len(done)
            else None,
        }
        for metric in METRICS:
            values = pd.to_numeric(done[metric], errors="coerce") if metric in done else None
            if values is None or values.isna().all():
                line[f"{metric}_mean"] = np.nan
                line[f"{metric}_std"] = np.nan
                continue
            line[f"{metric}_mean"] = float(values.mean())
            line[f"{metric}_std"] = float(values.std(ddof=1)) if values.count() > 1 else np.nan
        lines.append(line)
    table = pd.DataFrame(lines)
    base = table[table["baseline"]]
    for column, metric, kind in DELTAS:
        mean = table[f"{metric}_mean"]
        reference = float(base[f"{metric}_mean"].iloc[0]) if len(base) else np.nan
        if kind == "pct":
            table[column] = 100.0 * (mean - reference) / reference if reference else np.nan
        else:
            table[column] = 100.0 * (mean - reference)
    return table


def _status(statuses) -> str:
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

    results.json is a validated ``GridResults`` (schema_version 2) carrying what is judged
    from the records (comparisons, control gains, paired deltas: ``bench.ablate.comparisons``)
    and the paper's headline figures (``bench.flops.headline``), computed here, where results
    are produced.
    """
    from bench.flops.headline import paper_headline

    out.mkdir(parents=True, exist_ok=True)
    statistics = StatisticsSpec.model_validate(meta.get("statistics") or {})
    judged = {
        "comparisons": _clean(comparisons(records, statistics)),
        "control_gains": _clean(control_gains(records, statistics)),
        "paired_deltas": _clean(paired_deltas(records, statistics)),
    }
    if "environment" not in meta:  # run_grid gives its own; else: where this is written
        from diffmavil.environment import environment

        meta = {**meta, "environment": environment("cpu")}
    results = GridResults(
        **{"seeds": sorted({int(r["seed"]) for r in records}), **meta, **judged},
        complete=complete,
        paper_headline=paper_headline(),
        records=[GridRecord.model_validate(record) for record in _clean(records)],
    )
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
            "schema_version": SCHEMA_VERSION,
            "kind": "ablation-aggregate",
            "grid": meta.get("grid"),
            "complete": complete,
            "rows": rows,
            "statistics": statistics.model_dump(mode="json"),
            **judged,
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
