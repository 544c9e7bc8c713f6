"""Results of schema_version 1 -> 2, a grid's results.json 2 -> 3 -> 4 and a whole-run
projection 2 -> 3 -> 4: on read (every reader calls ``load_*``) and in place (``diffbench
migrate``).

What changed in 2:

- the environment block has one spelling (``diffmavil.environment.Environment``): 1's
  ``timestamp`` is ``date``, ``threads`` is ``torch_threads``, ``python_version`` is
  ``python``, ``cuda`` is ``cuda_version``; keys 2 does not know are dropped;
- every result, row and record carries ``schema_version: 2`` and is validated by its model
  (``bench.schema``);
- a grid's results, ``diffbench flops`` and ``diffbench time`` JSON store the paper's
  headline figures (``paper_headline``), computed when they were produced; migration
  computes them once (closed form, no measurement);
- a whole-run projection (``diffbench time --masking/--batch --format json``, a grid's
  ``whole-run.json``) is a ``ProjectionResults`` ``{schema_version, kind:
  "whole-run-projection", environment, dtype, paper_headline, rows}``;
- ``diffbench flops --format json`` is an envelope ``{schema_version, kind: "flops",
  flops_kind, rows}`` (1 wrote a bare list for whole-run and sensitivity tables).

No number of 1 is changed: every measured and computed value is carried over as is.

What changed in a grid's results.json at 3 (its records, rows and environment stay at 2):

- what it judges from its records (``comparisons``, ``control_gains``, ``paired_deltas``)
  is computed by ``bench.stats`` (``bench.schema.judge``): Student's t at every n (2 used
  a paired percentile bootstrap from 10 pairs), the detectable loss from the exact
  noncentral t (2: the (t_0.95 + t_0.8) sd / sqrt(n) approximation); reading 1 or 2
  judges the records again (their numbers unchanged);
- every record's ``run_dir`` is relative to the grid's output directory (``runs/<run
  id>``), where 2 named the absolute directory the grid ran in.

What changed in a whole-run projection at 3 (``bench.schema.WholeRunRow``):

- the step, loading and fixed costs are measured in several windows, the projected
  seconds and savings are the mean over them, and their interval is Student's t over the
  windows in quadrature with the interpolation's half-width; a row says its ``windows``,
  ``interval_method``, ``interval_level``, the statistical and systematic half-widths and
  the per-window values. A projection of 2 reads as what it was: one window
  (``windows: 1``), its interval the 95% block bootstrap over that window's rounds
  (``interval_method: "block-bootstrap"``), no half-widths or window values; no number of
  2 is changed.

What changed in a whole-run projection at 4: a row may take its seconds' interval from
the machine's history of projections of its setting (``diffbench time --history``:
``interval_method: "history-t+systematic"``, ``history_projections``,
``drift_half_seconds``). A projection of 3 reads as one made without a history
(``history_projections: 0``); no number of 3 is changed.

What changed in a grid's results.json at 4 (records stay at 2, with two optional evaluations):

- a record may hold a ``curve`` (its snapshots probed: ``CurvePoint``s) and a
  ``finetune`` (``ProbeMetrics`` of mode finetune), with their seconds; results of 3 or
  older have neither, and read as runs without them;
- the results store the comparisons' time-to-accuracy ``endpoints`` (``EndpointResult``s,
  none without curves, fine-tunes, targets or a primary endpoint) and ``statistics`` may
  name ``targets``, a ``primary`` endpoint and ``min_reached_fraction``; reading 1 to 3
  judges the records again (their numbers, verdicts and deltas unchanged, no endpoint).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.errors import BadInput
from bench.requests import StatisticsSpec
from bench.schema import (
    GRID_SCHEMA_VERSION,
    PROJECTION_SCHEMA_VERSION,
    Environment,
    FlopsResults,
    GridRecord,
    GridResults,
    ProjectionResults,
    RunSummary,
    TimeResults,
    judge,
    run_dir_in_results,
)

CURRENT = 2
_ENVIRONMENT_RENAMES = {
    "timestamp": "date",
    "threads": "torch_threads",
    "python_version": "python",
    "cuda": "cuda_version",
}
# keys of 1's timing rows and environment block that 2 does not keep
_ROW_DROPS = ("timestamp",)


class MigrationError(BadInput):
    """A results file cannot be read: corrupt, of an unknown schema version, or invalid."""


def migrate_environment(env: dict[str, Any] | None) -> dict[str, Any]:
    """A schema 1 environment block in 2's spelling (2's keys only)."""
    env = dict(env or {})
    for old, new in _ENVIRONMENT_RENAMES.items():
        if old in env:
            value = env.pop(old)
            env.setdefault(new, value)
    if not env.get("torch_version") and isinstance(env.get("packages"), dict):
        env["torch_version"] = env["packages"].get("torch")
    env.setdefault("date", "")
    env.setdefault("device", "cpu")
    env.setdefault("cpu_model", env.get("device_name") or "")
    env.setdefault("device_name", env["cpu_model"])
    env["schema_version"] = CURRENT
    return {k: v for k, v in env.items() if k in Environment.model_fields}


def _timing_row(row: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in row.items() if k not in _ROW_DROPS}
    for old, new in _ENVIRONMENT_RENAMES.items():
        if old in row:
            row.setdefault(new, row.pop(old))
    row["schema_version"] = CURRENT
    return row


def _versioned(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None else {**item, "schema_version": CURRENT}


def migrate_record(record: dict[str, Any]) -> dict[str, Any]:
    """A grid record (results.json's ``records``, a run's ``record.json``)."""
    if record.get("schema_version") == CURRENT:
        return record
    record = {k: v for k, v in record.items() if k != "skipped"}
    record["schema_version"] = CURRENT
    if record.get("environment") is not None:
        record["environment"] = migrate_environment(record["environment"])
    record["probe"] = _versioned(record.get("probe"))
    if record.get("timing") is not None:
        record["timing"] = [_timing_row(row) for row in record["timing"]]
    return record


def migrate_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A pre-training run's summary.json."""
    if summary.get("schema_version") == CURRENT:
        return summary
    return {
        **summary,
        "schema_version": CURRENT,
        "environment": migrate_environment(summary.get("environment")),
    }


def _headline() -> dict[str, Any]:
    from bench.flops.headline import paper_headline

    return paper_headline().model_dump(mode="json")


def migrate_grid_results(payload: dict[str, Any]) -> dict[str, Any]:
    """An ablation grid's results.json in the shape of 4 (``load_grid_results`` then judges
    the records of an older one again: 3 adds nothing to migrate beside its version)."""
    version = payload.get("schema_version", 1)
    if version == GRID_SCHEMA_VERSION:
        return payload
    if version == 1:
        payload = _grid_results_2(payload)
    return {
        **payload,
        "schema_version": GRID_SCHEMA_VERSION,
        "records": [
            {**record, "run_dir": run_dir_in_results(record.get("run_dir"))}
            for record in payload.get("records") or []
        ],
    }


def judged_again(results: GridResults) -> GridResults:
    """``results`` with what it judges recomputed from its records (``bench.schema.judge``)."""
    return results.model_copy(update=judge(results.records, results.statistics or StatisticsSpec()))


def _grid_results_2(payload: dict[str, Any]) -> dict[str, Any]:
    """A grid's results.json of 1 as 2."""
    return {
        "grid": "",
        "seeds": sorted({r.get("seed", 0) for r in payload.get("records") or []}),
        **payload,
        "schema_version": CURRENT,
        "environment": migrate_environment(payload.get("environment")),
        "paper_headline": payload.get("paper_headline") or _headline(),
        "records": [migrate_record(r) for r in payload.get("records") or []],
    }


def migrate_time(payload: dict[str, Any] | list[Any]) -> dict[str, Any]:
    """``diffbench time --format json`` (1: {environment, configs, rows}, or bare rows)."""
    if isinstance(payload, dict) and payload.get("schema_version") == CURRENT:
        return payload
    if isinstance(payload, list):
        payload = {"rows": payload}
    env = dict(payload.get("environment") or {})
    rows = [_timing_row(r) for r in payload.get("rows") or []]
    if not env and rows:  # bare rows: their repeated hardware keys are the environment
        env = {k: v for k, v in rows[0].items() if k in Environment.model_fields}
        env.pop("schema_version", None)
    return {
        "schema_version": CURRENT,
        "kind": "time",
        "environment": migrate_environment(env),
        "dtype": env.get("dtype"),
        "configs": payload.get("configs") or {},
        "paper_headline": payload.get("paper_headline") or _headline(),
        "rows": rows,
    }


def is_projection(payload: Any) -> bool:
    """Whether ``payload`` is a whole-run projection: an object whose rows include kind
    ``whole_run``."""
    rows = payload.get("rows") if isinstance(payload, dict) else None
    return isinstance(rows, list) and any(
        isinstance(r, dict) and r.get("kind") == "whole_run" for r in rows
    )


def migrate_projection(payload: dict[str, Any]) -> dict[str, Any]:
    """A whole-run projection (1: {request_hash?, environment, rows}; 2: one measurement
    window, its interval the block bootstrap over its rounds; 3: no history) at schema 4."""
    version = payload.get("schema_version")
    if version == PROJECTION_SCHEMA_VERSION:
        return payload
    if version == 3:  # rows read as made without a history (the row's defaults)
        return {**payload, "schema_version": PROJECTION_SCHEMA_VERSION}
    if version != CURRENT:  # 1
        env = dict(payload.get("environment") or {})
        payload = {
            "schema_version": CURRENT,
            "kind": "whole-run-projection",
            **({"request_hash": payload["request_hash"]} if "request_hash" in payload else {}),
            "environment": migrate_environment(env),
            "dtype": env.get("dtype"),
            "paper_headline": payload.get("paper_headline") or _headline(),
            "rows": payload.get("rows") or [],
        }
    rows = [
        {**row, "windows": 1, "interval_method": "block-bootstrap", "interval_level": 0.95}
        if isinstance(row, dict) and row.get("kind") == "whole_run"
        else row
        for row in payload.get("rows") or []
    ]
    return {**payload, "schema_version": PROJECTION_SCHEMA_VERSION, "rows": rows}


def flops_kind(rows: list[dict[str, Any]]) -> str | None:
    """breakdown | whole-run | sensitivity, from the keys of the rows (None: not FLOP rows)."""
    keys = set(rows[0]) if rows and isinstance(rows[0], dict) else set()
    if {"assumption", "setting", "saving"} <= keys:
        return "sensitivity"
    if {"component", "run_flops", "baseline_flops"} <= keys:
        return "whole-run"
    if {"component", "forward_flops", "total_flops", "variant"} <= keys:
        return "breakdown"
    return None


def migrate_flops(payload: dict[str, Any] | list[Any]) -> dict[str, Any]:
    """``diffbench flops --format json`` (1: {counters, convention, seconds, rows} or a list)."""
    if isinstance(payload, dict) and payload.get("schema_version") == CURRENT:
        return payload
    meta: dict[str, Any] = {}
    if isinstance(payload, dict):
        meta = {k: v for k, v in payload.items() if k != "rows"}
        rows = payload.get("rows") or []
    else:
        rows = payload
    return {
        "schema_version": CURRENT,
        "kind": "flops",
        "flops_kind": flops_kind(rows),
        **{k: meta[k] for k in ("counters", "convention", "seconds") if k in meta},
        "paper_headline": meta.get("paper_headline") or _headline(),
        "rows": [{**row, "schema_version": CURRENT} for row in rows],
    }


# ------------------------------------------------------------------------------ readers
def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError:
        raise MigrationError(f"{path}: not a JSON file (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise MigrationError(f"{path}: corrupt JSON ({error})") from None
    except OSError as error:
        raise MigrationError(f"{path}: cannot read ({error.strerror or error})") from None


def _check_version(path: Path, payload: Any, what: str, current: int = CURRENT) -> None:
    version = payload.get("schema_version", 1) if isinstance(payload, dict) else 1
    if version not in range(1, current + 1) or isinstance(version, bool):
        older = ", ".join(str(v) for v in range(1, current))
        raise MigrationError(
            f"{path}: {what} schema_version {version!r}; this diffbench reads {older} "
            f"(migrated on read) and {current}"
        )


def _validate(model, payload: Any, path: Path, what: str):
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        from diffmavil.config import format_validation_error

        message = format_validation_error(error).split("; ")[0]
        raise MigrationError(f"{path}: not a valid {what}: {message}") from None


def load_grid_results(path: Path) -> GridResults:
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise MigrationError(f"{path}: not an ablation results file (expected a JSON object)")
    _check_version(path, payload, "results", GRID_SCHEMA_VERSION)
    results = _validate(GridResults, migrate_grid_results(payload), path, "results file")
    return (
        results if payload.get("schema_version") == GRID_SCHEMA_VERSION else judged_again(results)
    )


def load_record(path: Path) -> GridRecord:
    payload = read_json(path)
    _check_version(path, payload, "record")
    return _validate(GridRecord, migrate_record(payload), path, "run record")


def load_summary(path: Path) -> RunSummary:
    payload = read_json(path)
    if not isinstance(payload, dict) or payload.get("kind", "pretrain") != "pretrain":
        raise MigrationError(f"{path}: not a pre-training summary")
    _check_version(path, payload, "summary")
    return _validate(RunSummary, migrate_summary(payload), path, "pre-training summary")


def load_time(path: Path, payload: Any) -> TimeResults:
    _check_version(path, payload, "time results")
    return _validate(TimeResults, migrate_time(payload), path, "`diffbench time` file")


def load_projection(path: Path, payload: Any) -> ProjectionResults:
    _check_version(path, payload, "projection", PROJECTION_SCHEMA_VERSION)
    return _validate(ProjectionResults, migrate_projection(payload), path, "whole-run projection")


def load_flops(path: Path, payload: Any) -> FlopsResults:
    _check_version(path, payload, "flops results")
    return _validate(FlopsResults, migrate_flops(payload), path, "`diffbench flops` file")


def schema_version_of(path: Path) -> int | None:
    """The schema_version a result file says it has (None: not a JSON object)."""
    payload = read_json(path)
    return payload.get("schema_version", 1) if isinstance(payload, dict) else None


def _is_grid_results(file: Path, payload: dict[str, Any]) -> bool:
    return payload.get("kind") == "ablation" or (
        file.name == "results.json" and "records" in payload
    )


# ------------------------------------------------------------------------ in place
def migrate_path(path: Path) -> list[Path]:
    """Rewrite every older result under ``path`` (a file or a directory tree) at its current
    schema (2; a grid's results.json 4), atomically; returns the files rewritten. Files
    already current are left alone."""
    from diffmavil.atomic import atomic_write_json

    path = Path(path)
    if not path.exists():
        raise MigrationError(f"{path}: no such file or directory")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.json"))
    written = []
    for file in files:
        migrated = _migrated(file)
        if migrated is not None:
            atomic_write_json(file, migrated)
            written.append(file)
    return written


def _migrated(file: Path) -> dict[str, Any] | None:
    """The current form of an older result file, or None (already current, or not a result)."""
    try:
        payload = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(payload, dict) and _is_grid_results(file, payload):
        if payload.get("schema_version") == GRID_SCHEMA_VERSION:
            return None
        return load_grid_results(file).model_dump(mode="json")
    if is_projection(payload):
        if payload.get("schema_version") == PROJECTION_SCHEMA_VERSION:
            return None
        return load_projection(file, payload).model_dump(mode="json")
    if isinstance(payload, dict) and payload.get("schema_version") == CURRENT:
        return None
    if isinstance(payload, dict):
        kind = payload.get("kind")
        if kind == "ablation-aggregate":  # derived from results: its 4 is written with them
            return (
                None
                if payload.get("schema_version", 1) != 1
                else {**payload, "schema_version": CURRENT}
            )
        if kind == "pretrain":
            return load_summary(file).model_dump(mode="json")
        if file.name == "record.json" and "run_id" in payload:
            return load_record(file).model_dump(mode="json")
        if "environment" in payload and "configs" in payload and "rows" in payload:
            return load_time(file, payload).model_dump(mode="json")
        rows = payload.get("rows")
    else:
        rows = payload
    if isinstance(rows, list) and flops_kind(rows) is not None:
        return load_flops(file, payload).model_dump(mode="json")
    return None
