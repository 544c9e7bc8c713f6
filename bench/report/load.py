"""Reading what a report renders, and recognising what it is.

A report input is one of:

- an **ablation results directory** (``results.json`` written by ``bench.ablate.store``;
  each record's run directory supplies its ``metrics.jsonl``);
- a **pre-training run directory** (``summary.json`` + ``metrics.jsonl`` from
  ``diffmavil.training.pretrain``);
- a ``diffbench flops --format json`` file: a per-component breakdown, a whole-run table or
  a sensitivity sweep;
- a ``diffbench time --format json`` file, or a whole-run projection (rows of kind
  ``whole_run``; an ablation directory's ``whole-run.json`` is loaded with it);
- a directory holding any of these (files and run directories one level down).

Every input is read into its typed model (``bench.schema``); schema 1 results are migrated
on read (``bench.migrate``). Anything else, an empty directory, a corrupt file or a results
file of an unknown schema version is a ``ReportError``: one line, exit code 2 from the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BadInput
from bench.migrate import (
    MigrationError,
    flops_kind,
    is_projection,
    load_flops,
    load_grid_results,
    load_projection,
    load_summary,
    load_time,
    read_json,
)
from bench.report.projection_sections import PROJECTION_FILE, ProjectionFile
from bench.report.run_log import LoggedStep, read_metrics
from bench.schema import (
    FlopRow,
    FlopsResults,
    GridRecord,
    GridResults,
    PaperHeadline,
    RunSummary,
    SensitivityRow,
    TimeResults,
    TimingRow,
    WholeRunFlopRow,
)


class ReportError(BadInput):
    """The input cannot be reported on; the message names the path and the reason."""


@dataclass
class PretrainRun:
    """One pre-training run: its summary and its logged steps."""

    path: Path
    summary: RunSummary
    metrics: list[LoggedStep]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Ablation:
    """An ablation grid's results (results.json) and, per record, its run's logged steps."""

    path: Path
    results: GridResults
    metrics: dict[str, list[LoggedStep]] = field(default_factory=dict)  # by run_id

    @property
    def records(self) -> list[GridRecord]:
        return self.results.records

    @property
    def name(self) -> str:
        return self.results.grid or self.path.name


@dataclass
class FlopsFile:
    """``diffbench flops --format json``; kind: breakdown | whole-run | sensitivity."""

    path: Path
    results: FlopsResults

    @property
    def kind(self) -> str:
        return self.results.flops_kind

    @property
    def rows(self) -> list[FlopRow] | list[WholeRunFlopRow] | list[SensitivityRow]:
        return self.results.rows


@dataclass
class TimeFile:
    """``diffbench time --format json``."""

    path: Path
    results: TimeResults

    @property
    def rows(self) -> list[TimingRow]:
        return self.results.rows


@dataclass
class Inputs:
    """Everything found under the path given to ``diffbench report``."""

    path: Path  # the first input given; every input: ``sources``
    ablations: list[Ablation] = field(default_factory=list)
    runs: list[PretrainRun] = field(default_factory=list)
    flops: list[FlopsFile] = field(default_factory=list)
    times: list[TimeFile] = field(default_factory=list)
    projections: list[ProjectionFile] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.ablations or self.runs or self.flops or self.times or self.projections)

    @property
    def name(self) -> str:
        if len(self.ablations) == 1 and not (self.runs or self.flops or self.times):
            return self.ablations[0].name
        return self.path.stem if self.path.is_file() else self.path.resolve().name

    @property
    def paper_headline(self) -> PaperHeadline | None:
        """The headline figures stored in the results (the first found)."""
        stored = [a.results.paper_headline for a in self.ablations]
        stored += [f.results.paper_headline for f in self.flops]
        stored += [t.results.paper_headline for t in self.times]
        stored += [p.results.paper_headline for p in self.projections]
        return next((h for h in stored if h is not None), None)


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except MigrationError as error:
        raise ReportError(str(error)) from None


def _reading(load, *args):
    """Call a ``bench.migrate`` loader; its errors become ReportErrors."""
    try:
        return load(*args)
    except MigrationError as error:
        raise ReportError(str(error)) from None


def load_ablation(directory: Path) -> Ablation:
    """An ablation results directory (results.json; schema 1 is migrated on read)."""
    path = directory / "results.json"
    results = _reading(load_grid_results, path)
    if not results.records:
        raise ReportError(f"{path}: no records (the grid has not run any row yet)")
    ablation = Ablation(directory, results)
    for record in ablation.records:
        run_dir = _run_dir(directory, record)
        if run_dir is not None:
            ablation.metrics[record.run_id] = read_metrics(run_dir / "metrics.jsonl")
    return ablation


def _run_dir(results_dir: Path, record: GridRecord) -> Path | None:
    """A record's run directory: as recorded (relative to the results directory, or an
    older results' absolute path), else ``<results>/runs/<run_id>`` (moved)."""
    candidates = []
    if record.run_dir:
        candidates.append(results_dir / record.run_dir)  # an absolute run_dir stays as is
    candidates.append(results_dir / "runs" / record.run_id)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def load_run(directory: Path) -> PretrainRun:
    """A pre-training run directory (summary.json + metrics.jsonl)."""
    summary = _reading(load_summary, directory / "summary.json")
    return PretrainRun(directory, summary, read_metrics(directory / "metrics.jsonl"))


def classify_json(path: Path, payload: Any) -> FlopsFile | TimeFile | ProjectionFile | str | None:
    """What a JSON file is: a FlopsFile, a TimeFile, a ProjectionFile, "ablation" /
    "summary" (their directories are loaded instead), or None (not a diffbench output)."""
    if is_projection(payload):
        return ProjectionFile(path, _reading(load_projection, path, payload))
    if isinstance(payload, dict):
        kind = payload.get("kind")
        if "records" in payload or kind in ("ablation", "ablation-aggregate"):
            return "ablation"
        if kind == "pretrain":
            return "summary"
        rows = payload.get("rows")
        if kind == "time" or (
            isinstance(rows, list) and "environment" in payload and "configs" in payload
        ):
            return TimeFile(path, _reading(load_time, path, payload))
        if kind == "flops":
            return FlopsFile(path, _reading(load_flops, path, payload))
    elif isinstance(payload, list):
        rows = payload
    else:
        return None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return None
    if flops_kind(rows) is not None:
        return FlopsFile(path, _reading(load_flops, path, payload))
    if {"kind", "variant", "phase"} <= set(rows[0]):  # time rows without their envelope
        return TimeFile(path, _reading(load_time, path, payload))
    return None


def _load_file(path: Path, inputs: Inputs, strict: bool) -> None:
    payload = _read_json(path)
    kind = classify_json(path, payload)
    if isinstance(kind, FlopsFile):
        inputs.flops.append(kind)
    elif isinstance(kind, TimeFile):
        inputs.times.append(kind)
    elif isinstance(kind, ProjectionFile):
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


def load_inputs(*paths: str | Path) -> Inputs:
    """Find and load everything to report on under each of ``paths`` (see the module
    docstring), into one ``Inputs``: e.g. a grid's results directory and a base-size
    ``diffbench time`` projection file, reported together."""
    if not paths:
        raise ReportError("nothing to report: no input path given")
    inputs = Inputs(Path(paths[0]), sources=[Path(p) for p in paths])
    for path in inputs.sources:
        _load_path(path, inputs)
    if inputs.empty:
        where = ", ".join(str(p) for p in inputs.sources)
        raise ReportError(
            f"{where}: nothing to report (no ablation results.json, pre-training summary.json, "
            "or `diffbench flops/time --format json` file found)"
        )
    return inputs


def _load_path(path: Path, inputs: Inputs) -> None:
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
