"""``diffbench ablate``: run (or dry-run) an ablation grid (format: README, `diffbench ablate`)
and print its aggregate; the submitit options fill a ``bench.requests.SubmititRequest``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli.options import (
    EXECUTION_PANEL,
    OUTPUT_PANEL,
    FormatOption,
    OutputFormat,
    RequestOptions,
)
from bench.errors import BadInput
from bench.requests import SubmititRequest


class Executor(StrEnum):
    local = "local"
    submitit = "submitit"


class Cluster(StrEnum):
    slurm = "slurm"
    local = "local"
    debug = "debug"


GRID_PANEL = "Grid"
SUBMITIT_PANEL = "submitit (--executor submitit)"
SUBMITIT = SubmititRequest.model_construct()  # the defaults (bench.requests), not validated
SUBMITIT_REQUEST = RequestOptions.of(SubmititRequest)


def ablate_command(
    grid_file: Annotated[
        Path,
        typer.Option(
            "--grid",
            "-g",
            help="Grid YAML file (e.g. ablations/table2.yaml).",
            rich_help_panel=GRID_PANEL,
        ),
    ],
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Seeds, comma-separated (e.g. 0,1,2); overrides the grid's seeds.",
            rich_help_panel=GRID_PANEL,
        ),
    ] = None,
    rows: Annotated[
        str | None,
        typer.Option(
            help="Run only these rows (comma-separated names; the baseline row is always kept).",
            rich_help_panel=GRID_PANEL,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output directory (default: runs/<grid name>).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Validate and print the expanded grid (differences, planned steps and FLOPs); "
            "run and write nothing.",
            rich_help_panel=GRID_PANEL,
        ),
    ] = False,
    executor: Annotated[
        Executor,
        typer.Option(
            help="local: this machine; submitit: SLURM (or its local executor).",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = Executor.local,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Local parallel worker processes (their wall-clock is marked not comparable); "
            "with submitit, the job-array parallelism.",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = 1,
    submitit_cluster: Annotated[
        Cluster | None,
        typer.Option(
            help="submitit cluster (default: slurm if available, else local).",
            rich_help_panel=SUBMITIT_PANEL,
        ),
    ] = None,
    slurm_partition: Annotated[
        str | None, typer.Option(help="SLURM partition (submitit).", rich_help_panel=SUBMITIT_PANEL)
    ] = None,
    timeout_min: Annotated[
        int,
        typer.Option(min=1, help="Per-job time limit (submitit).", rich_help_panel=SUBMITIT_PANEL),
    ] = SUBMITIT.timeout_min,
    cpus_per_task: Annotated[
        int | None,
        typer.Option(min=1, help="CPUs per job (submitit).", rich_help_panel=SUBMITIT_PANEL),
    ] = None,
    gpus_per_node: Annotated[
        int | None,
        typer.Option(min=0, help="GPUs per job (submitit).", rich_help_panel=SUBMITIT_PANEL),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            help="Also render the report (bench.report: md + html in <out>/report) at the end, "
            "when that module is available; the aggregate table is printed either way.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = True,
    progress: Annotated[
        bool, typer.Option(help="Show progress bars.", rich_help_panel=OUTPUT_PANEL)
    ] = True,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Run an ablation grid: validate every row first, then pre-train, probe and aggregate.

    Runs already completed in --out are skipped (re-running resumes); a failed run is
    recorded with its reason and the grid goes on (exit code 1 at the end if any failed).
    Writes results.json/csv and aggregate.json/csv (mean, std and n over seeds, deltas vs
    the baseline row).
    """
    submitit = SUBMITIT_REQUEST.build(locals())
    grid = _load_grid(grid_file, seeds, rows)
    if dry_run:
        _print_dry_run(grid, fmt)
        return
    out = out or Path("runs") / grid.name
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out}: exists and is not a directory")
    if executor == Executor.local and submitit_cluster is not None:
        raise BadInput("--submitit-cluster needs --executor submitit")
    from functools import partial

    from rich.console import Console

    from bench.ablate.orchestrate import run_grid

    console = Console(stderr=True)
    console.print(f"grid {grid.name}: {len(grid.rows)} rows x {len(grid.seeds)} seed(s) -> {out}")
    local = executor == Executor.local
    result = run_grid(
        grid,
        out,
        executor=executor.value,
        workers=workers if local else 1,
        progress=progress,
        submitit_cluster=None if submitit_cluster is None else str(submitit_cluster),
        submitit_parameters=None if local else submitit.parameters(workers),
        on_record=partial(_print_record, console),
    )
    failed = _print_outcome(console, result, out)
    _print_aggregate(out, grid, fmt)
    if report:
        _render_report(out, console)
    if failed:
        raise typer.Exit(1)  # everything is written; the exit code tells scripts


def _load_grid(grid_file: Path, seeds: str | None, rows: str | None):
    """The grid (``--seeds`` over its own), cut to ``--rows`` (the baseline row kept)."""
    from bench.ablate.grid import load_grid, select_rows

    grid = load_grid(grid_file, _parse_seeds(seeds))
    if rows is None:
        return grid
    return select_rows(grid, [name.strip() for name in rows.split(",") if name.strip()])


def _print_record(console, task, record: dict[str, Any], skipped: bool) -> None:
    """One line per finished (or skipped) run: its status, wall-clock, probe metric, curve
    and fine-tune."""
    from rich.markup import escape

    status = "skipped (done)" if skipped else record["status"]
    detail = ""
    if record.get("claimed_by"):
        status = f"skipped (claimed by {record['claimed_by']}, running there)"
    elif record.get("failure"):
        detail = f": {record['failure']}"
    elif record.get("wall_clock_seconds") is not None:
        detail = f" in {record['wall_clock_seconds']:.1f} s"
    probe = record.get("probe") or {}
    metric = probe.get("accuracy", probe.get("mAP"))
    if metric is not None:
        detail += f", probe {metric:.3f}"
    if record.get("curve"):
        detail += f", curve of {len(record['curve'])} snapshots"
    tuned = (record.get("finetune") or {}).get("accuracy")
    if tuned is not None:
        detail += f", fine-tune {tuned:.3f}"
    console.print(
        f"[bold]{escape(task.row)}[/] seed {task.seed} ({task.run_id}): {status}" + escape(detail)
    )


def _print_outcome(console, result: dict[str, Any], out: Path) -> int:
    """The grid's counts (ran, skipped, claimed elsewhere, failed) and the claimed runs;
    -> the number of failed runs."""
    from rich.markup import escape

    failed = sum(r["status"] == "failed" for r in result["records"])
    claimed = result["claimed"]
    console.print(
        f"{result['ran']} run(s), {result['skipped']} skipped as done, "
        + (f"{len(claimed)} claimed by another process, " if claimed else "")
        + f"{failed} failed; results in {out}"
    )
    if claimed:
        console.print(
            "not run here (another live process holds them and adds them to the results "
            "when it finishes):"
        )
        for record in claimed:
            console.print(
                f"  {escape(record['row'])} seed {record['seed']} ({record['run_id']}): "
                f"claimed by {escape(record['claimed_by'])}"
            )
    return failed


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"--seeds {text!r}: expected integers >= 0, e.g. 0,1,2") from None
    if not values or any(v < 0 for v in values):
        raise BadInput(f"--seeds {text!r}: expected integers >= 0, e.g. 0,1,2")
    if len(set(values)) != len(values):
        raise BadInput(f"--seeds {text!r}: a seed is repeated")
    return values


def _render_report(out: Path, console) -> bool:
    """Call bench.report.render.render_report when it exists (False when it does not). A report
    that fails to render is a warning: the results are already written."""
    try:
        from bench.report.render import render_report
    except ImportError:
        return False
    try:
        rendered = render_report(out, formats=("md", "html"), out=None)
    except Exception as error:  # the grid's results stand without a report
        from bench.errors import warn

        warn(f"report not rendered: {type(error).__name__}: {error}")
        return False
    paths = rendered.values() if isinstance(rendered, dict) else [rendered]
    console.print("report: " + ", ".join(str(p) for p in paths))
    return True


AGGREGATE_COLUMNS = (
    ("row", "row"),
    ("n", "n"),
    ("status", "status"),
    ("total_flops_mean", "FLOPs"),
    ("delta_flops_pct", "FLOPs vs base"),
    ("wall_clock_seconds_mean", "wall-clock s"),
    ("wall_clock_seconds_std", "± std"),
    ("delta_wall_clock_pct", "wall vs base"),
    ("samples_per_second_mean", "samples/s"),
    ("probe.accuracy_mean", "probe acc"),
    ("probe.accuracy_std", "± std"),
    ("delta_accuracy_points", "acc vs base (pts)"),
    ("probe.mAP_mean", "probe mAP"),
    ("delta_mAP_points", "mAP vs base (pts)"),
    ("finetune.accuracy_mean", "fine-tune acc"),
    ("delta_finetune_accuracy_points", "fine-tune vs base (pts)"),
)


def _print_aggregate(out: Path, grid, fmt: OutputFormat) -> None:
    import json

    from bench.cli.output import emit
    from bench.report.format import si
    from bench.report.tables import Table

    rows = json.loads((out / "aggregate.json").read_text())["rows"]
    columns = [(k, t) for k, t in AGGREGATE_COLUMNS if any(r.get(k) is not None for r in rows)]

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key.startswith("delta_"):
            return f"{value:+.1f}" + ("%" if key.endswith("_pct") else "")
        if key == "total_flops_mean":
            return si(value, "FLOP")
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return str(value)

    cells = []
    for row in rows:
        flags = []
        if row.get("baseline"):
            flags.append("baseline")
        if row.get("single_seed"):
            flags.append("1 seed")
        if row.get("wall_clock_comparable") is False:
            flags.append("wall-clock not comparable")
        line = [cell(key, row.get(key)) for key, _ in columns]
        line[0] = row["row"] + (f" ({', '.join(flags)})" if flags else "")
        cells.append(line)
    title = f"ablation {grid.name}: mean over seeds, deltas vs the baseline row"
    labels = [f"<{t}" if k == "row" else t for k, t in columns]
    emit(rows, fmt, table=Table.of("aggregate", title, labels, cells))


def _print_dry_run(grid, fmt: OutputFormat) -> None:
    from bench.ablate.grid import dry_run_rows
    from bench.cli.output import emit
    from bench.report.format import si
    from bench.report.tables import Table

    rows = dry_run_rows(grid)
    run = grid.run
    what = "FLOPs only (no training)" if run.flops_only else "pre-train"
    if grid.probe is not None:
        probe = grid.probe
        epochs = (
            f"{probe.probe_epochs} epochs"
            if probe.mode == "probe" or probe.epochs is not None
            else "epochs for the data size"
        )
        what += f" + {probe.mode} on {probe.data} ({epochs})"
    if run.curve is not None:
        what += f" + every snapshot probed ({run.curve.probe_seeds} probe seeds each)"
    if run.finetune is not None:
        what += f" + fine-tune of {', '.join(run.finetune.rows)}"
    if run.controls:
        what += f" + controls {', '.join(run.controls)} (once per seed and preset)"
    cells = [
        [
            row["row"] + (" (baseline)" if row["baseline"] else ""),
            row["differences"]
            + (f" [matched to {row['match_flops_of']}]" if row["match_flops_of"] else ""),
            f"{row['budget_samples']:,}",
            f"{row['planned_steps']:,}",
            si(row["planned_flops"], "FLOP"),
            f"{row['delta_flops_pct']:+.1f}%",
            row["run_ids"].split(",")[0],
        ]
        for row in rows
    ]
    columns = ["<row", "<differences from the base", "budget", "steps", "planned FLOPs"]
    columns += ["vs baseline", "run id (1st seed)"]
    title = (
        f"{grid.name}: {len(rows)} rows x seeds {','.join(map(str, grid.seeds))} "
        "(dry run: nothing run, nothing written)"
    )
    notes = [f"{grid.path}: base preset {grid.base.preset}; {what}"]
    emit(rows, fmt, table=Table.of("dry-run", title, columns, cells, notes=notes))
