"""Reading what a report renders, and recognising what it is.

A report input is one of:

- an **ablation results directory** (``results.json`` written by ``bench.ablate.results``,
  ``schema_version`` checked; each record's run directory supplies its ``metrics.jsonl``);
- a **pre-training run directory** (``summary.json`` + ``metrics.jsonl`` from
  ``diffmavil.training.pretrain``);
- a ``diffbench flops --format json`` file: a per-component breakdown (``{"rows": [...]}``
  with ``forward_flops``), a whole-run table (a list with ``run_flops``) or a sensitivity
  sweep (a list with ``assumption``);
- a ``diffbench time --format json`` file (``{"environment", "configs", "rows"}``), or a
  whole-run projection (rows of kind ``whole_run``; an ablation directory's
  ``whole-run.json`` is loaded with it);
- a directory holding any of these (files and run directories one level down).

Anything else, an empty directory, a corrupt file or a results file of another schema
version is a ``ReportError``: a one-line message and exit code 2 from the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.ablate.results import SCHEMA_VERSION as RESULTS_SCHEMA_VERSION
from bench.errors import BadInput
from bench.report.whole_run import PROJECTION_FILE, ProjectionResult
from bench.report.whole_run import classify as classify_projection

SUMMARY_SCHEMA_VERSION = 1  # diffmavil.training.pretrain.SUMMARY_SCHEMA_VERSION (no torch here)


class ReportError(BadInput):
    """The input cannot be reported on; the message names the path and the reason."""


@dataclass
class PretrainRun:
    """One pre-training run: its summary and its logged steps."""

    path: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Ablation:
    """An ablation grid's results: the payload of results.json and, per record, its run."""

    path: Path
    payload: dict[str, Any]
    records: list[dict[str, Any]]
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run_id -> rows

    @property
    def name(self) -> str:
        return str(self.payload.get("grid") or self.path.name)


@dataclass
class FlopsResult:
    """Rows of ``diffbench flops --format json``; kind: breakdown | whole-run | sensitivity."""

    path: Path
    kind: str
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TimeResult:
    """``diffbench time --format json``: environment, configs and rows."""

    path: Path
    environment: dict[str, Any]
    rows: list[dict[str, Any]]


@dataclass
class Inputs:
    """Everything found under the path given to ``diffbench report``."""

    path: Path
    ablations: list[Ablation] = field(default_factory=list)
    runs: list[PretrainRun] = field(default_factory=list)
    flops: list[FlopsResult] = field(default_factory=list)
    times: list[TimeResult] = field(default_factory=list)
    projections: list[ProjectionResult] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.ablations or self.runs or self.flops or self.times or self.projections)

    @property
    def name(self) -> str:
        if len(self.ablations) == 1 and not (self.runs or self.flops or self.times):
            return self.ablations[0].name
        return self.path.stem if self.path.is_file() else self.path.resolve().name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a JSON file (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: corrupt JSON ({error})") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read ({error.strerror or error})") from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl rows; a torn last line (a run killed mid-write) is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def _check_version(path: Path, payload: dict[str, Any], expected: int, what: str) -> None:
    version = payload.get("schema_version")
    if version != expected:
        raise ReportError(
            f"{path}: {what} schema_version {version!r}; this diffbench reads {expected} "
            "(re-run the grid, or report with the diffbench version that wrote it)"
        )


def load_ablation(directory: Path) -> Ablation:
    """An ablation results directory (results.json), refusing other schema versions."""
    path = directory / "results.json"
    payload = _read_json(path)
    if not isinstance(payload, dict):
        raise ReportError(f"{path}: not an ablation results file (expected a JSON object)")
    _check_version(path, payload, RESULTS_SCHEMA_VERSION, "results")
    records = payload.get("records")
    if not isinstance(records, list) or not records:
        raise ReportError(f"{path}: no records (the grid has not run any row yet)")
    ablation = Ablation(directory, payload, [r for r in records if isinstance(r, dict)])
    for record in ablation.records:
        run_dir = _run_dir(directory, record)
        if run_dir is not None:
            ablation.metrics[str(record.get("run_id"))] = read_metrics(run_dir / "metrics.jsonl")
    return ablation


def _run_dir(results_dir: Path, record: dict[str, Any]) -> Path | None:
    """A record's run directory: as recorded, else ``<results>/runs/<run_id>`` (moved)."""
    candidates = []
    if record.get("run_dir"):
        candidates.append(Path(record["run_dir"]))
    if record.get("run_id"):
        candidates.append(results_dir / "runs" / str(record["run_id"]))
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def load_run(directory: Path) -> PretrainRun:
    """A pre-training run directory (summary.json + metrics.jsonl)."""
    path = directory / "summary.json"
    summary = _read_json(path)
    if not isinstance(summary, dict) or summary.get("kind", "pretrain") != "pretrain":
        raise ReportError(f"{path}: not a pre-training summary")
    _check_version(path, summary, SUMMARY_SCHEMA_VERSION, "summary")
    return PretrainRun(directory, summary, read_metrics(directory / "metrics.jsonl"))


def classify_json(
    path: Path, payload: Any
) -> FlopsResult | TimeResult | ProjectionResult | str | None:
    """What a JSON file is: a FlopsResult, a TimeResult, a ProjectionResult, "ablation" /
    "summary" (their directories are loaded instead), or None (not a diffbench output)."""
    projection = classify_projection(path, payload)
    if projection is not None:
        return projection
    if isinstance(payload, dict):
        if "records" in payload or payload.get("kind") in ("ablation", "ablation-aggregate"):
            return "ablation"
        if payload.get("kind") == "pretrain":
            return "summary"
        rows = payload.get("rows")
        if isinstance(rows, list) and "environment" in payload and "configs" in payload:
            return TimeResult(path, dict(payload.get("environment") or {}), _dicts(rows))
        meta = {k: v for k, v in payload.items() if k != "rows"}
    elif isinstance(payload, list):
        rows, meta = payload, {}
    else:
        return None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return None
    keys = set(rows[0])
    if {"assumption", "setting", "saving"} <= keys:
        return FlopsResult(path, "sensitivity", rows, meta)
    if {"component", "run_flops", "baseline_flops"} <= keys:
        return FlopsResult(path, "whole-run", rows, meta)
    if {"component", "forward_flops", "total_flops", "variant"} <= keys:
        return FlopsResult(path, "breakdown", rows, meta)
    if {"kind", "variant", "phase"} <= keys:  # time rows without their envelope
        return TimeResult(path, {}, rows)
    return None


def _dicts(rows: list[Any]) -> list[dict[str, Any]]:
    return [r for r in rows if isinstance(r, dict)]


def _load_file(path: Path, inputs: Inputs, strict: bool) -> None:
    payload = _read_json(path)
    kind = classify_json(path, payload)
    if isinstance(kind, FlopsResult):
        inputs.flops.append(kind)
    elif isinstance(kind, TimeResult):
        inputs.times.append(kind)
    elif isinstance(kind, ProjectionResult):
        inputs.projections.append(kind)
    elif kind == "ablation":
        if path.name == "results.json":
            inputs.ablations.append(load_ablation(path.parent))
        elif strict:
            raise ReportError(f"{path}: report on its directory (results.json), not this file")
    elif kind == "summary":
        inputs.runs.append(load_run(path.parent))
    elif strict:
        raise ReportError(
            f"{path}: not a diffbench result (expected ablation results, a pre-training "
            "summary, or `diffbench flops/time --format json` output)"
        )


def _load_dir(directory: Path, inputs: Inputs) -> bool:
    """Load ``directory`` if it is itself a results or run directory; True if it was."""
    if (directory / "results.json").is_file():
        inputs.ablations.append(load_ablation(directory))
        if (directory / PROJECTION_FILE).is_file():
            _load_file(directory / PROJECTION_FILE, inputs, strict=False)
        return True
    if (directory / "summary.json").is_file():
        inputs.runs.append(load_run(directory))
        return True
    return False


def load_inputs(path: str | Path) -> Inputs:
    """Find and load everything to report on under ``path`` (see the module docstring)."""
    path = Path(path)
    inputs = Inputs(path)
    if not path.exists():
        raise ReportError(f"{path}: no such file or directory")
    if path.is_file():
        _load_file(path, inputs, strict=True)
    elif not _load_dir(path, inputs):
        try:
            children = sorted(path.iterdir())
        except OSError as error:
            raise ReportError(f"{path}: cannot list ({error.strerror or error})") from None
        for child in children:
            if child.name.startswith("."):
                continue
            if child.is_dir():
                _load_dir(child, inputs)
            elif child.suffix == ".json":
                _load_file(child, inputs, strict=False)
    if inputs.empty:
        raise ReportError(
            f"{path}: nothing to report (no ablation results.json, pre-training summary.json, "
            "or `diffbench flops/time --format json` file found)"
        )
    return inputs
