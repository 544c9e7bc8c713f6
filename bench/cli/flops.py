"""``diffbench flops``: FLOPs per component (three counters that must agree), whole-run totals
and the saving vs MAViL, and a sensitivity sweep of our own assumptions.

The options fill a ``bench.requests.FlopsRequest`` by name (``bench.cli.options.
RequestOptions``). Heavy imports live inside the function so that ``--help`` stays instant.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from bench.cli.options import (
    DEFAULT_CURRICULUM_END,
    DEFAULT_MASK_RATIO,
    DEFAULT_SAMPLES,
    EXECUTION_PANEL,
    INPUT_PANEL,
    MEASURE_PANEL,
    WHOLE_RUN_PANEL,
    BatchRule,
    BatchRuleOption,
    BatchScheduleOption,
    CurriculumEndOption,
    DecoderAudioOption,
    DecoderVideoOption,
    DiffusionOption,
    FormatOption,
    MaskingOption,
    MaskRatioOption,
    OutOption,
    OutputFormat,
    Preset,
    PresetOption,
    RequestOptions,
    SamplesOption,
    VariantsOption,
    model_overrides,
)
from bench.requests import FlopsRequest

COUNTER_HELP = (
    "Counter(s): torch (FlopCounterMode), fvcore (forward only), analytic (closed form) or all. "
    "Every counter that runs is checked against the closed form exactly."
)


FLOPS = FlopsRequest.model_construct()  # the defaults (bench.requests), not validated


class Counter(StrEnum):
    torch = "torch"
    fvcore = "fvcore"
    analytic = "analytic"
    all = "all"


class CountDevice(StrEnum):
    meta = "meta"
    cpu = "cpu"


def variant_names(variant: list[str] | None) -> tuple[str, ...]:
    """The ``--variant`` values in order (default: the request's)."""
    return tuple(str(v) for v in variant or FLOPS.variants)


FLOPS_REQUEST = RequestOptions.of(FlopsRequest, variants=variant_names, overrides=model_overrides)


def flops_command(
    variant: VariantsOption = None,
    preset: PresetOption = Preset[FLOPS.preset],
    mask_ratio: MaskRatioOption = DEFAULT_MASK_RATIO,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            "-b",
            min=1,
            help="Batch size: per-batch figures (default 1, i.e. per sample) or, for a "
            "whole run, the base batch at the start ratios (default 32).",
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    counter: Annotated[
        Counter,
        typer.Option(
            "--counter",
            "-c",
            help=COUNTER_HELP,
            case_sensitive=False,
            rich_help_panel=MEASURE_PANEL,
        ),
    ] = Counter[FLOPS.counter],
    backward: Annotated[
        bool,
        typer.Option(
            "--backward/--no-backward",
            help="Count the backward pass too.",
            rich_help_panel=MEASURE_PANEL,
        ),
    ] = FLOPS.backward,
    device: Annotated[
        CountDevice,
        typer.Option(
            "--device",
            help="Where models are counted: meta (shapes only) or cpu.",
            case_sensitive=False,
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = CountDevice[FLOPS.device],
    masking: MaskingOption = None,
    batch: BatchScheduleOption = None,
    samples: SamplesOption = DEFAULT_SAMPLES,
    batch_rule: BatchRuleOption = BatchRule[FLOPS.batch_rule],
    curriculum_end: CurriculumEndOption = DEFAULT_CURRICULUM_END,
    sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity",
            help="Sweep our assumptions (decoder width/depth, curriculum end, batch rule) and "
            "show the whole-run saving vs MAViL each gives.",
            rich_help_panel=WHOLE_RUN_PANEL,
        ),
    ] = FLOPS.sensitivity,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """FLOPs per component, forward and backward, from three counters that must agree
    exactly (2 FLOPs per multiply-add, matmul family only); with --masking/--batch, the
    whole pre-training run and its saving vs the MAViL recipe."""
    request = FLOPS_REQUEST.build(locals())
    from bench.flops import FlopCountError

    configs = request.models()
    try:
        if request.whole_run:
            masking_schedule, batch_schedule = request.masking_schedule(), request.batch_schedule()
            if request.sensitivity:
                _sensitivity(
                    configs[0], masking_schedule, batch_schedule, request.samples, fmt, out
                )
            else:
                _whole_run(configs, masking_schedule, batch_schedule, request.samples, fmt, out)
        else:
            _breakdown(
                configs,
                request.mask_ratio,
                request.batch_size or 1,
                request.counter,
                request.backward,
                request.device,
                fmt,
                out,
            )
    except FlopCountError as error:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error: FLOP COUNT REJECTED[/]: {error}")
        raise typer.Exit(code=1) from None


# ----------------------------------------------------------------------------- breakdown
def _breakdown(configs, ratios, batch_size, counter, backward, device, fmt, out) -> None:
    import time

    from bench.flops import count_flops
    from diffmavil.config import COMPONENTS

    started = time.perf_counter()
    reports = [
        count_flops(c, ratios, batch_size, counter=counter, backward=backward, device=device)
        for c in configs
    ]
    elapsed = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    first_totals: dict[str, int] = {}
    for index, report in enumerate(reports):
        analytic = report.analytic
        total_params = sum(report.params.values())
        grand = analytic.total if backward else analytic.total_forward
        for component in (*COMPONENTS, "total"):
            if component == "total":
                fwd, bwd = analytic.total_forward, analytic.total_backward
                params = total_params
                extra = sum(report.hardware_extra(c) for c in COMPONENTS)
            else:
                fwd, bwd = analytic.forward[component], analytic.backward[component]
                params = report.params[component]
                extra = report.hardware_extra(component)
            total = fwd + bwd if backward else fwd
            if index == 0:
                first_totals[component] = total
            base = first_totals[component]
            rows.append(
                {
                    "variant": report.config.variant,
                    "preset": report.config.preset,
                    "component": component,
                    "counter": report.counter_label,
                    "device": device if report.results else "none",
                    "forward_flops": fwd,
                    "backward_flops": bwd if backward else None,
                    "total_flops": total,
                    "hardware_extra_flops": extra if backward else None,
                    "flops_percent": round(100.0 * total / grand, 2) if grand else 0.0,
                    "total_flops_per_sample": total / batch_size,
                    "params": params,
                    "params_percent": round(100.0 * params / total_params, 2),
                    "delta_percent": round(100.0 * (total - base) / base, 2) if base else 0.0,
                    "audio_mask_ratio": report.mask_ratio[0],
                    "video_mask_ratio": report.mask_ratio[1],
                    "batch_size": batch_size,
                }
            )
    meta = {
        "counters": reports[0].counter_label,
        "convention": "model FLOPs, 2 per multiply-accumulate, matmul family only",
        "seconds": round(elapsed, 3),
    }
    table = None
    if fmt == OutputFormat.table:
        table = _breakdown_table(rows, reports, backward, batch_size, elapsed)
    _emit_results("breakdown", rows, fmt, table, out, **meta)


def _breakdown_table(rows, reports, backward, batch_size, elapsed):
    from bench.report.format import si
    from bench.report.tables import Table

    counters = reports[0].counter_label
    what = "forward+backward" if backward else "forward"
    first = reports[0].config
    title = (
        f"Model FLOPs per component @ {first.preset}, mask {reports[0].mask_ratio[0]}/"
        f"{reports[0].mask_ratio[1]}, batch {batch_size} (2 per multiply-add; counters: "
        f"{counters}, exact agreement; {elapsed:.1f} s)"
    )
    if len(reports) == 1:
        per_sample = batch_size > 1
        columns = ["<component", "params", "params %", "forward", "backward", what, "% FLOPs"]
        columns += ["per sample"] if per_sample else []
        columns += ["hw extra"]
        cells = []
        for row in rows:
            line = [
                row["component"],
                si(row["params"]),
                f"{row['params_percent']:.1f}%",
                si(row["forward_flops"]),
                si(row["backward_flops"]) if backward else "-",
                si(row["total_flops"]),
                f"{row['flops_percent']:.1f}%",
            ]
            line += [si(row["total_flops_per_sample"])] if per_sample else []
            line += [si(row["hardware_extra_flops"]) if backward else "-"]
            cells.append(line)
        return Table.of("breakdown", title, columns, cells)
    variants = [r.config.variant for r in reports]
    columns = ["<component"]
    for index, name in enumerate(variants):
        columns += [name] + ([f"Δ% vs {variants[0]}"] if index else [])
    cells = []
    for component in [r["component"] for r in rows if r["variant"] == variants[0]]:
        line = [component]
        for index, name in enumerate(variants):
            row = next(r for r in rows if r["variant"] == name and r["component"] == component)
            line.append(si(row["total_flops"]))
            if index:
                line.append(f"{row['delta_percent']:+.1f}%")
        cells.append(line)
    return Table.of("breakdown", title, columns, cells)


# ----------------------------------------------------------------------------- whole run
def _whole_run(configs, masking, batch, budget, fmt, out) -> None:
    from bench.flops import run_saving
    from diffmavil.config import COMPONENTS

    rows: list[dict[str, Any]] = []
    for config in configs:
        result = run_saving(config, masking, batch, budget)
        run, base = result["run"], result["baseline"]
        common = {
            "variant": config.variant,
            "preset": config.preset,
            "counter": "analytic",
            "masking": masking.kind,
            "batch": batch.kind,
            "batch_rule": batch.rule if batch.kind == "adaptive" else "",
            "samples": budget,
            "steps": run["steps"],
            "baseline_steps": base["steps"],
            "audio_mask_ratio": masking.audio,
            "video_mask_ratio": masking.video,
            "audio_mask_ratio_end": masking.end[0],
            "video_mask_ratio_end": masking.end[1],
            "batch_size": batch.batch_size,
        }
        for component in (*COMPONENTS, "total"):
            ours = run["total_flops"] if component == "total" else run["components"][component]
            theirs = base["total_flops"] if component == "total" else base["components"][component]
            rows.append(
                {
                    **common,
                    "component": component,
                    "run_flops": ours,
                    "baseline_flops": theirs,
                    "saving_percent": round(100.0 * (1 - ours / theirs), 2) if theirs else 0.0,
                }
            )
    table = None
    if fmt == OutputFormat.table:
        from bench.report.format import si
        from bench.report.tables import Table

        first = rows[0]
        title = (
            f"Whole-run model FLOPs (fwd+bwd) @ {first['preset']}, {budget:,} samples: masking "
            f"{masking.kind}, batch {batch.kind}"
            f"{'/' + batch.rule if batch.kind == 'adaptive' else ''} vs MAViL "
            "(fixed masking, fixed batch); counter: analytic"
        )
        columns = ["<variant", "<component", "steps", "run", "MAViL recipe", "saving"]
        cells = [
            [
                row["variant"],
                row["component"],
                f"{row['steps']:,} (MAViL {row['baseline_steps']:,})",
                si(row["run_flops"]),
                si(row["baseline_flops"]),
                f"{row['saving_percent']:+.1f}%",
            ]
            for row in rows
        ]
        table = Table.of("whole-run", title, columns, cells)
    _emit_results("whole-run", rows, fmt, table, out)


def _sensitivity(config, masking, batch, budget, fmt, out) -> None:
    from bench.flops import PAPER_SAVING, sensitivity

    rows = [
        {
            "variant": config.variant,
            "preset": config.preset,
            "counter": "analytic",
            "samples": budget,
            **row,
            "saving_percent": round(100.0 * row["saving"], 2),
        }
        for row in sensitivity(config, masking, batch, budget)
    ]
    table = None
    if fmt == OutputFormat.table:
        from bench.report.flop_sections import sensitivity_table
        from bench.schema import SensitivityRow

        table = sensitivity_table([SensitivityRow.model_validate(r) for r in rows])
        table.title = (
            f"Whole-run saving vs MAViL @ {config.preset}, {budget:,} samples: one "
            f"assumption changed per row (paper: {100 * PAPER_SAVING:.0f}%; counter: analytic)"
        )
    _emit_results("sensitivity", rows, fmt, table, out)


def _emit_results(kind: str, rows: list[dict[str, Any]], fmt, table, out, **meta: Any) -> None:
    """Print the rows; as JSON, a validated ``FlopsResults`` (schema 2) with the environment
    and the paper's headline figures (``bench.flops.headline``) stored beside them."""
    from bench.cli.output import emit
    from bench.schema import FlopsResults

    if fmt != OutputFormat.json:
        emit(rows, fmt, table=table, out=out)
        return
    from bench.flops.headline import paper_headline
    from diffmavil.environment import capture

    results = FlopsResults(
        flops_kind=kind,
        environment=capture("cpu"),
        paper_headline=paper_headline(),
        rows=rows,
        **meta,
    )
    payload = results.model_dump(mode="json")
    emit(payload.pop("rows"), fmt, meta=payload, out=out)
