"""``diffbench time``: wall-clock of the train step and of each component, side by side per
variant (``bench.timing.benchmark``); with ``--masking``/``--batch``, the projected
wall-clock of whole pre-training runs (``bench.cli.time_projection``). Its tables are the
report's (``bench.report.timing_tables``).

Heavy imports (torch, the model) happen inside the command body so ``--help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli import time_projection as wr
from bench.cli.options import (
    DEFAULT_CURRICULUM_END,
    DEFAULT_MASK_RATIO,
    DEFAULT_SAMPLES,
    EXECUTION_PANEL,
    MEASURE_PANEL,
    BatchRule,
    BatchRuleOption,
    BatchScheduleOption,
    BatchSizeOption,
    CompileOption,
    CurriculumEndOption,
    DecoderAudioOption,
    DecoderVideoOption,
    DeviceOption,
    DiffusionOption,
    Dtype,
    DtypeOption,
    FormatOption,
    MaskingOption,
    MaskRatioOption,
    OutOption,
    OutputFormat,
    Preset,
    PresetOption,
    RequestOptions,
    SamplesOption,
    SeedOption,
    ThreadsOption,
    VariantsOption,
    model_overrides,
    validate_device,
)
from bench.requests import TimeRequest, WholeRunRequest

TIME = TimeRequest.model_construct()  # the defaults (bench.requests), not validated
RepeatsOption = Annotated[
    int,
    typer.Option(
        "--repeats",
        "-n",
        min=1,
        help="Timed repeats per measurement (>= 10 with --peer).",
        rich_help_panel=MEASURE_PANEL,
    ),
]
WarmupOption = Annotated[
    int,
    typer.Option(
        "--warmup",
        min=0,
        help="Untimed calls before the timed repeats.",
        rich_help_panel=MEASURE_PANEL,
    ),
]

Tf32Option = Annotated[
    bool,
    typer.Option(
        "--tf32/--no-tf32",
        help="CUDA: allow TF32 for fp32 matmuls and cuDNN (set on purpose and recorded in "
        "the environment block; fp32 MFU is then against the TF32 peak). Off: IEEE fp32.",
        rich_help_panel=EXECUTION_PANEL,
    ),
]
MaxBatchFitsOption = Annotated[
    bool,
    typer.Option(
        "--max-batch-fits",
        help="Instead of timing: the largest batch whose train step fits on the device, "
        "per variant (doubling from --batch-size, then bisection; out-of-memory errors "
        "only; at most 4096).",
        rich_help_panel=MEASURE_PANEL,
    ),
]


def set_tf32(device: str, tf32: bool) -> None:
    """TF32 on or off on a CUDA device, before anything runs (nothing on a CPU)."""
    import torch

    from bench.timing.device import apply_tf32

    apply_tf32(torch.device(device), tf32)


def distinct_variants(variant: list[str] | None) -> tuple[str, ...]:
    """The ``--variant`` values in order, each once (default: the request's)."""
    return tuple(dict.fromkeys(str(v) for v in variant or TIME.variants))


TIME_REQUEST = RequestOptions.of(TimeRequest, variants=distinct_variants, overrides=model_overrides)
WHOLE_RUN_REQUEST = RequestOptions.of(
    WholeRunRequest, variants=distinct_variants, overrides=model_overrides
)


def time_command(
    variant: VariantsOption = None,
    preset: PresetOption = Preset[TIME.preset],
    device: DeviceOption = TIME.device,
    dtype: DtypeOption = Dtype[TIME.dtype],
    compile: CompileOption = TIME.compile,
    batch_size: BatchSizeOption = TIME.batch_size,
    mask_ratio: MaskRatioOption = DEFAULT_MASK_RATIO,
    repeats: RepeatsOption = TIME.repeats,
    warmup: WarmupOption = TIME.warmup,
    threads: ThreadsOption = None,
    tf32: Tf32Option = False,
    max_batch_fits: MaxBatchFitsOption = False,
    compile_vs_eager: Annotated[
        bool,
        typer.Option(
            "--compile-vs-eager",
            help="Also time a compiled copy and a default-AdamW copy of each variant, "
            "interleaved; report eager/compiled and default/fused speed ratios (95% CI).",
            rich_help_panel=MEASURE_PANEL,
        ),
    ] = TIME.compile_vs_eager,
    peer: Annotated[
        bool,
        typer.Option(
            "--peer/--no-peer",
            help="Also time the torch.nn peer, interleaved; report the speed ratio with a "
            "bootstrap confidence interval.",
            rich_help_panel=MEASURE_PANEL,
        ),
    ] = TIME.peer,
    components: Annotated[
        bool,
        typer.Option(
            "--components/--no-components",
            help="Also time each component (forward, backward) on its own.",
            rich_help_panel=MEASURE_PANEL,
        ),
    ] = TIME.components,
    matmul_repeats: Annotated[
        int,
        typer.Option(
            "--matmul-repeats",
            min=1,
            help="Best of N for the 2048^3 matmul rate.",
            rich_help_panel=MEASURE_PANEL,
        ),
    ] = TIME.matmul_repeats,
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    masking: MaskingOption = None,
    batch: BatchScheduleOption = None,
    samples: SamplesOption = DEFAULT_SAMPLES,
    batch_rule: BatchRuleOption = BatchRule.tokens,
    curriculum_end: CurriculumEndOption = DEFAULT_CURRICULUM_END,
    data: wr.DataOption = "synthetic",
    anchors: wr.AnchorsOption = 4,
    windows: wr.WindowsOption = 6,
    history: wr.HistoryOption = None,
    min_seconds: wr.MinSecondsOption = 60.0,
    checkpoint_every: wr.CheckpointEveryOption = 25,
    log_every: wr.LogEveryOption = 1,
    memory: wr.MemoryOption = True,
    seed: SeedOption = TIME.seed,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Wall-clock of the train step (forward, backward, optimizer) and of each component,
    with warm-up, repeats, median and IQR; achieved FLOP/s, utilisation against a matmul
    measured in the same run (MFU against the datasheet peak on GPUs), peak memory.

    Repeat --variant to measure variants side by side: savings are reported against the
    first one, per component, as time saving / FLOP saving.

    With --masking or --batch: the projected wall-clock of the whole pre-training run
    (--samples) of each variant's recipe and of MAViL's recipe, measured in one interleaved
    run (docs/timing.md, "Whole-run projection").
    """
    validate_device(device)
    set_tf32(device, tf32)
    if masking is not None or batch is not None:
        wr.run_whole_run(WHOLE_RUN_REQUEST.build(locals()), fmt, out)
        return
    if max_batch_fits:
        run_max_batch(TIME_REQUEST.build(locals()), fmt, out)
        return
    run_time(TIME_REQUEST.build(locals()), fmt, out)


def run_time(request: TimeRequest, fmt: OutputFormat, out: Path | None) -> None:
    """Measure ``request`` (a progress bar on a terminal) and print its rows in ``fmt``;
    torch.compile's graphs and seconds on stderr."""
    from bench.cli.output import emit
    from bench.cli.progress import task_bar
    from bench.report.timing_tables import time_tables
    from bench.timing.benchmark import run_time_benchmark

    tasks = 1 + request.peer + 2 * request.compile_vs_eager + 5 * request.components
    rounds = len(request.variants) * tasks + 1
    progress, advance = task_bar(rounds * (request.warmup + request.repeats))
    if progress is not None:
        with progress:
            result = run_time_benchmark(request, progress=advance)
    else:
        result = run_time_benchmark(request)
    if fmt == OutputFormat.json:
        payload = result.stored().model_dump(mode="json")
        emit(payload.pop("rows"), fmt, meta=payload, out=out)
    else:
        tables = time_tables(result.rows, result.environment) if fmt == OutputFormat.table else []
        emit(result.records(), fmt, table=tables, out=out)
    if result.environment.get("device") == "cuda":
        _cuda_notes(result)
    for row in result.rows:
        if row.kind == "compile":
            typer.echo(
                f"torch.compile ({row.variant}): {row.graphs} graphs "
                f"({row.recompiles} recompiles), {row.compile_seconds:.1f} s compiling",
                err=True,
            )


def _cuda_notes(result) -> None:
    """stderr: an unknown GPU's missing MFU, and each train step's reserved memory (the
    rows hold the allocated peak)."""
    if not result.mfu_peak.endswith((" bf16", " tf32", " fp32")):
        typer.echo(f"MFU: {result.mfu_peak}: no datasheet peak, no MFU column", err=True)
    for task, reading in result.memory.items():
        if task.endswith("/train_step"):
            typer.echo(
                f"memory {task}: peak allocated {reading.allocated_mb:,.0f} MB, peak reserved "
                f"{reading.reserved_mb:,.0f} MB (the caching allocator's segments; the CUDA "
                "context and library workspaces come on top)",
                err=True,
            )


def run_max_batch(request: TimeRequest, fmt: OutputFormat, out: Path | None) -> None:
    """The largest batch that fits, per variant (``bench.timing.capacity``)."""
    import torch

    from bench.cli.output import emit, rows_table
    from bench.timing.capacity import max_batch_rows
    from bench.timing.device import capture_environment

    rows = max_batch_rows(request)
    meta = {"environment": capture_environment(torch.device(request.device), request.dtype)}
    probes = {
        id(row): " ".join(f"{p['batch']}{'' if p['fits'] else ' OOM'}," for p in row["probes"])
        for row in rows
    }
    table = rows_table(
        [{**row, "probes": probes[id(row)].rstrip(",")} for row in rows],
        ["variant", "largest_batch", "limit_reached", "peak_memory_mb", "probes"],
        title=f"largest batch that fits: {request.preset}, {request.dtype}, "
        f"compile {'on' if request.compile else 'off'}, on {meta['environment']['device_name']}",
    )
    emit(rows, fmt, table=table, meta=meta, out=out)
