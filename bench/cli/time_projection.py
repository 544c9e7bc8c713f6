"""``diffbench time`` with whole-run options: the projected wall-clock of pre-training runs
(the recipe(s) and MAViL's recipe, measured in one interleaved run), as a table, JSON or
CSV. Called from ``bench/cli/time.py`` with a ``bench.requests.WholeRunRequest``; the work
is in ``bench.projection``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli.options import (
    WHOLE_RUN_PANEL,
    OutputFormat,
)
from bench.errors import BadInput
from bench.requests import WholeRunRequest

DataOption = Annotated[
    str,
    typer.Option(
        "--data",
        help="Whole run: the run's data spec (its loading is timed).",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
AnchorsOption = Annotated[
    int,
    typer.Option(
        "--anchors",
        help="Whole run: measured points per batch size at most (plus a check between "
        "each pair); the others are interpolated in FLOPs.",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
WindowsOption = Annotated[
    int,
    typer.Option(
        "--windows",
        help="Whole run: separate measurement windows, each with its own freshly built "
        "models, loading and fixed costs; the interval is Student's t over them plus the "
        "interpolation's error (1: a block bootstrap over one window's rounds).",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
MinSecondsOption = Annotated[
    float,
    typer.Option(
        "--min-seconds",
        help="Whole run: after --repeats rounds per window, more rounds until the timed "
        "rounds of all windows have lasted this long (each window its share).",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
CheckpointEveryOption = Annotated[
    int,
    typer.Option(
        "--checkpoint-every",
        help="Whole run: steps between checkpoints.",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
LogEveryOption = Annotated[
    int,
    typer.Option(
        "--log-every",
        help="Whole run: steps between logged rows.",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
MemoryOption = Annotated[
    bool,
    typer.Option(
        "--memory/--no-memory",
        help="Whole run: peak memory per recipe, each in a process of its own.",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]


HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="Whole run: a JSON-lines file of this machine's projections. Each projection "
        "is added to it; once a setting has 5 or more, its seconds' interval comes from "
        "their spread over time (docs/timing.md, 'The machine's history').",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]


def recipe_name(config) -> str:
    """'cross-attn+curriculum+adaptive/tokens'; MAViL's recipe is 'mavil'."""
    parts = [config.variant]
    if config.masking.kind == "curriculum":
        parts.append("curriculum")
    if config.batch.kind == "adaptive":
        parts.append(f"adaptive/{config.batch.rule}")
    return "+".join(parts)


def build_request(options: WholeRunRequest):
    """PretrainConfig per recipe (validated as ``pretrain`` validates it) plus MAViL's."""
    from bench.projection.recipes import BASELINE, ProjectionRequest, mavil_recipe
    from diffmavil.config import ConfigError
    from diffmavil.training.config import load_pretrain_config

    masking, batch = options.masking_schedule(), options.batch_schedule()
    if options.device not in ("cpu", "cuda"):
        raise BadInput(f"--device {options.device!r}: a whole-run projection runs on cpu or cuda")
    if options.repeats < 2:
        raise BadInput(f"--repeats {options.repeats}: a whole-run interval needs at least 2")
    if options.min_seconds < 0:
        raise BadInput(f"--min-seconds {options.min_seconds:g}: must be at least 0")
    if options.anchors < 2:
        raise BadInput(f"--anchors {options.anchors}: at least 2 (both ends of the ramp)")
    if options.windows < 1:
        raise BadInput(f"--windows {options.windows}: at least 1 (2 or more for a t interval)")
    cadence = {"checkpoint-every": options.checkpoint_every, "log-every": options.log_every}
    for name, value in cadence.items():
        if value < 1:
            raise BadInput(f"--{name} {value}: must be at least 1")
    from diffmavil.data import parse_data_spec

    parse_data_spec(options.data)  # DataError (exit 2) before anything runs
    recipes = {}
    for variant in options.variants:
        try:
            config = load_pretrain_config(
                {
                    "preset": options.preset,
                    "variant": variant,
                    "model_overrides": dict(options.overrides),
                    "data": options.data,
                    "masking": masking.model_dump(),
                    "batch": batch.model_dump(),
                    "budget_samples": options.samples,
                    "seed": options.seed,
                    "device": options.device,
                    "dtype": options.dtype,
                    "threads": options.threads,
                    "log_every": options.log_every,
                    "checkpoint_every": options.checkpoint_every,
                }
            )
        except ConfigError as error:
            raise BadInput(str(error)) from None
        recipes.setdefault(BASELINE, mavil_recipe(config))
        name = recipe_name(config)
        if config != recipes[BASELINE]:
            recipes[name] = config
    return ProjectionRequest(
        recipes=recipes,
        compile=options.compile,
        repeats=options.repeats,
        min_seconds=options.min_seconds,
        warmup=options.warmup,
        max_anchors=options.anchors,
        windows=options.windows,
        memory=options.memory,
        matmul_repeats=options.matmul_repeats,
        seed=options.seed,
    )


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}%"


def render_table(result) -> Any:
    from bench.report.format import si
    from bench.report.tables import Table

    rows = result.rows
    env = result.environment
    first = rows[0]
    title = (
        f"Projected whole-run wall-clock @ {first.preset}, {first.samples:,} samples, "
        f"{first.dtype}, compile {'on' if first.compile else 'off'}, on {env['device_name']} "
        f"({first.device}, {first.threads} threads, torch {env['torch_version']}); matmul "
        f"{first.matmul_gflops_per_s:.1f} GFLOP/s; load {env['load_average_1m']} -> "
        f"{env.get('load_average_1m_end')}; {first.repeats} interleaved rounds in "
        f"{first.windows} window(s); intervals: {first.interval_method}; savings vs "
        "MAViL's recipe (fixed masking, fixed batch)"
    )
    histories = sorted(
        {r.history_projections for r in rows if r.interval_method.startswith("history")}
    )
    if histories:
        title += (
            f"; seconds' intervals from this machine's history ({', '.join(map(str, histories))} "
            "earlier projections of the setting)"
        )
    headers = (
        "<recipe", "steps", "projected s", "95% CI", "compute s", "data s", "overhead s",
        "FLOPs", "FLOP saving", "time saving [95% CI]", "time/FLOP", "interp. err",
        "peak MB",
    )  # fmt: skip
    cells = []
    for row in rows:
        saving = ""
        if row.time_saving is not None:
            saving = (
                f"{_pct(row.time_saving)} [{_pct(row.time_saving_ci_low)}, "
                f"{_pct(row.time_saving_ci_high)}]"
            )
        data = f"{row.data_seconds:,.1f}" + (" (bound)" if row.loading_bound else "")
        cells.append(
            [
                row.recipe,
                f"{row.steps:,}",
                f"{row.projected_seconds:,.1f}",
                f"[{row.ci_low:,.1f}, {row.ci_high:,.1f}]",
                f"{row.compute_seconds:,.1f}",
                data,
                f"{row.overhead_seconds:,.1f}",
                si(row.flops),
                _pct(row.flop_saving),
                saving,
                "" if row.time_per_flop_saving is None else f"{row.time_per_flop_saving:.2f}",
                f"{100 * row.interpolation_error:.1f}% of {100 * row.interpolated_share:.0f}%",
                "" if row.peak_memory_mb is None else f"{row.peak_memory_mb:,.0f}",
            ]
        )
    return Table.of("whole-run", title, headers, cells)


def emit_result(result, fmt: OutputFormat, out: Path | None) -> None:
    """Rows of kind whole_run in ``fmt``; as JSON the typed ``ProjectionResults`` (schema 2),
    its points after its rows."""
    from bench.cli.output import emit

    if fmt == OutputFormat.json:
        payload = result.stored().model_dump(mode="json")
        emit(payload.pop("rows"), fmt, meta=payload, out=out)
        return
    rows = [row.model_dump() for row in result.rows]
    table = render_table(result) if fmt == OutputFormat.table else None
    emit(rows, fmt, table=table, out=out)


def run_whole_run(options: WholeRunRequest, fmt: OutputFormat, out: Path | None) -> None:
    """Project the runs of ``options`` (a progress bar on a terminal) and print them."""
    from bench.cli.progress import task_bar
    from bench.projection.measure import project_whole_run

    request = build_request(options)
    bar, advance = task_bar(_task_count(request))
    if bar is not None:
        with bar:
            result = project_whole_run(request, progress=advance)
    else:
        result = project_whole_run(request)
    if options.history is not None:
        from bench.projection.history import project_with_history

        result = project_with_history(result, options.history)
    emit_result(result, fmt, out)


def _task_count(request) -> int:
    from bench.projection.recipes import plan_recipe

    tasks = 1 + sum(
        len(plan_recipe(n, c, request.max_anchors).selection.measured)
        for n, c in request.recipes.items()
    )
    return tasks * (max(request.warmup, 1) + request.repeats)
