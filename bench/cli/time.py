"""``diffbench time`` and ``diffbench profile`` (mounted in ``bench/cli/app.py``).

Heavy imports (torch, the model) happen inside the command bodies so ``--help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli import time_projection as wr
from bench.cli.options import (
    DEFAULT_MASK_RATIO,
    EXECUTION_PANEL,
    INPUT_PANEL,
    MEASURE_PANEL,
    OUTPUT_PANEL,
    BatchRule,
    BatchRuleOption,
    BatchScheduleOption,
    CompileOption,
    CurriculumEndOption,
    DecoderAudioOption,
    DecoderVideoOption,
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
    SamplesOption,
    SeedOption,
    ThreadsOption,
    VariantsOption,
    model_overrides,
)
from bench.errors import BadInput
from bench.requests import TimeRequest

TIME = TimeRequest.model_construct()  # the defaults (bench.requests), not validated
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where to run: cpu or cuda (cuda:N for another GPU).",
        rich_help_panel=EXECUTION_PANEL,
    ),
]
BatchOption = Annotated[
    int,
    typer.Option(
        "--batch-size", "-b", min=1, help="Samples per step.", rich_help_panel=INPUT_PANEL
    ),
]
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


def validate_device(device: str) -> str:
    """'cpu' | 'cuda' | 'cuda:N'; cuda only where torch sees a GPU. Raises BadInput."""
    import torch

    kind = device.split(":", 1)[0]
    if kind not in ("cpu", "cuda") or (kind == "cpu" and device != "cpu"):
        raise BadInput(f"--device {device!r}: allowed values are cpu, cuda, cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise BadInput(
                f"--device {device}: no CUDA device is available to torch "
                f"{torch.__version__}; use --device cpu"
            )
        index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            raise BadInput(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible"
            )
    return device


def _progress_bar(total: int):
    """A rich progress bar on stderr when it is a terminal; otherwise no output."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return None, None
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("timing", total=total)

    def advance(message: str) -> None:
        progress.update(task, advance=1, description=message)

    return progress, advance


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


RATIO_TITLES = {
    "peer_ratio": "speed vs the torch.nn peer: median(peer) / median(ours)",
    "compile_ratio": "compiled vs eager: median(eager) / median(compiled)",
    "fused_ratio": "fused vs default AdamW (eager): median(default) / median(fused)",
}


RATIO_COLUMNS = ["<variant", "<phase", "speed ratio", "95% CI", "repeats"]


def _ratio_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["variant"],
        r["phase"],
        f"{r['speed_ratio']:.3f}",
        f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
        str(r["repeats"]),
    ]


_OPTIONAL_TABLES = (
    (
        "components_sum",
        "components",
        "components timed alone vs the whole step (fwd+bwd)",
        ["<variant", "sum of components ms", "step fwd+bwd ms", "share"],
        lambda r: [
            r["variant"],
            _fmt(r["components_ms"]),
            _fmt(r["step_fwd_bwd_ms"]),
            f"{100 * r['components_share']:.0f}%",
        ],
    ),
    *(
        (
            kind,
            kind,
            title,
            ["<variant", "<phase", "speed ratio", "95% CI", "repeats"],
            _ratio_cells,
        )
        for kind, title in RATIO_TITLES.items()
    ),
    (
        "saving",
        "savings",
        "savings vs the first variant (fwd+bwd): time saving / FLOP saving",
        [
            "<variant",
            "<vs",
            "<component",
            "base ms",
            "variant ms",
            "FLOP saving",
            "time saving",
            "time/FLOP",
        ],
        lambda r: [
            r["variant"],
            r["baseline"],
            r["component"],
            _fmt(r["baseline_ms"]),
            _fmt(r["variant_ms"]),
            f"{100 * r['flop_saving']:.1f}%",
            f"{100 * r['time_saving']:.1f}%",
            _fmt(r["time_per_flop_saving"], 2),
        ],
    ),
)
"""The tables printed when their rows were measured: (row kind, key, title, columns, cells)."""


def _render_tables(rows: list[dict[str, Any]], environment: dict[str, Any]) -> list:
    """The step and component timings, and when measured: components vs the step, speed
    ratios (against the torch.nn peer, compiled, fused AdamW), time saving vs FLOP saving."""
    from bench.report.tables import Table

    timed = [r for r in rows if r["kind"] in ("step", "component")]
    title = (
        f"{rows[0]['preset']} batch {rows[0]['batch_size']} mask {rows[0]['mask_ratio']} "
        f"{environment['dtype']} on {environment['device_name']} ({environment['device']}, "
        f"{environment['torch_threads']} threads, torch {environment['torch_version']}); "
        f"matmul {rows[0]['matmul_gflops_per_s']:.1f} GFLOP/s"
    )
    columns = [
        ("<variant", "variant"),
        ("<impl", "implementation"),
        ("<component", "component"),
        ("<phase", "phase"),
        ("median ms", "median_ms"),
        ("IQR ms", "iqr_ms"),
        ("GFLOP/s", "achieved_gflops_per_s"),
        ("util", "utilisation"),
        ("samples/s", "samples_per_s"),
    ]
    if any(r.get("aten_ops") is not None for r in timed):
        columns.append(("ATen ops", "aten_ops"))
    if any(r.get("mfu") is not None for r in timed):
        columns.append(("MFU", "mfu"))
    cells = []
    for row in timed:
        line = []
        for _, key in columns:
            value = row.get(key)
            if key in ("utilisation", "mfu") and value is not None:
                line.append(f"{100 * value:.0f}%")
            elif key == "aten_ops":
                line.append(_fmt(value if value is None else f"{value:,}"))
            else:
                line.append(_fmt(value, 1 if key != "samples_per_s" else 2))
        cells.append(line)
    tables = [Table.of("timings", title, [header for header, _ in columns], cells)]
    for kind, key, title, columns, cells_of in _OPTIONAL_TABLES:
        selected = [r for r in rows if r["kind"] == kind]
        if selected:
            tables.append(Table.of(key, title, columns, [cells_of(r) for r in selected]))
    return tables


def _emit_tables(tables: list, fmt: OutputFormat, measurement, out: Path | None):
    from bench.cli.output import emit

    if fmt == OutputFormat.json:
        payload = measurement.stored().model_dump(mode="json")
        emit(payload.pop("rows"), fmt, meta=payload, out=out)
        return
    emit(measurement.rows, fmt, table=tables, out=out)


def time_command(
    variant: VariantsOption = None,
    preset: PresetOption = Preset[TIME.preset],
    device: DeviceOption = TIME.device,
    dtype: DtypeOption = Dtype[TIME.dtype],
    compile: CompileOption = TIME.compile,
    batch_size: BatchOption = TIME.batch_size,
    mask_ratio: MaskRatioOption = DEFAULT_MASK_RATIO,
    repeats: RepeatsOption = TIME.repeats,
    warmup: WarmupOption = TIME.warmup,
    threads: ThreadsOption = None,
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
    samples: SamplesOption = "2e6",
    batch_rule: BatchRuleOption = BatchRule.tokens,
    curriculum_end: CurriculumEndOption = "0.9,0.95",
    data: wr.DataOption = "synthetic",
    anchors: wr.AnchorsOption = 4,
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
    from bench.timing.benchmark import run_time_benchmark

    validate_device(device)
    variants = tuple(dict.fromkeys(str(v) for v in variant or TIME.variants))
    if masking is not None or batch is not None:
        from bench.cli.time_projection import WholeRunOptions, run_whole_run
        from bench.requests import FlopsRequest

        schedules = FlopsRequest(
            preset=str(preset),
            variants=variants,
            mask_ratio=mask_ratio,
            batch_size=batch_size,
            masking=masking,
            batch=batch,
            samples=samples,
            batch_rule=batch_rule,
            curriculum_end=curriculum_end,
        )
        options = WholeRunOptions(
            preset=str(preset),
            variants=variants,
            overrides=model_overrides(decoder_audio, decoder_video, diffusion),
            masking=schedules.masking_schedule(),
            batch=schedules.batch_schedule(),
            samples=schedules.samples,
            data=data,
            device=device,
            dtype=str(dtype),
            threads=threads,
            compile=compile,
            repeats=repeats,
            min_seconds=min_seconds,
            warmup=warmup,
            max_anchors=anchors,
            checkpoint_every=checkpoint_every,
            log_every=log_every,
            memory=memory,
            matmul_repeats=matmul_repeats,
            seed=seed,
        )
        run_whole_run(options, fmt, out, _progress_bar)
        return
    request = TimeRequest(
        preset=str(preset),
        variants=variants,
        overrides=model_overrides(decoder_audio, decoder_video, diffusion),
        device=device,
        dtype=dtype,
        compile=compile,
        compile_vs_eager=compile_vs_eager,
        batch_size=batch_size,
        mask_ratio=mask_ratio,
        repeats=repeats,
        warmup=warmup,
        threads=threads,
        peer=peer,
        components=components,
        matmul_repeats=matmul_repeats,
        seed=seed,
    )
    tasks_per_round = len(variants) * (1 + peer + 2 * compile_vs_eager + 5 * components) + 1
    progress, advance = _progress_bar(tasks_per_round * (warmup + repeats))
    if progress is not None:
        with progress:
            result = run_time_benchmark(request, progress=advance)
    else:
        result = run_time_benchmark(request)
    tables = _render_tables(result.rows, result.environment) if fmt == OutputFormat.table else []
    _emit_tables(tables, fmt, result, out)
    for row in result.rows:
        if row["kind"] == "compile":
            typer.echo(
                f"torch.compile ({row['variant']}): {row['graphs']} graphs "
                f"({row['recompiles']} recompiles), {row['compile_seconds']:.1f} s compiling",
                err=True,
            )


def profile_command(
    variant: VariantsOption = None,
    preset: PresetOption = Preset.tiny,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = Dtype.fp32,
    compile: CompileOption = False,
    batch_size: BatchOption = 8,
    mask_ratio: MaskRatioOption = DEFAULT_MASK_RATIO,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup", min=0, help="Unprofiled steps first.", rich_help_panel=MEASURE_PANEL
        ),
    ] = 1,
    steps: Annotated[
        int,
        typer.Option("--steps", min=1, help="Profiled train steps.", rich_help_panel=MEASURE_PANEL),
    ] = 1,
    top: Annotated[
        int,
        typer.Option(
            "--top", min=1, help="Operators listed per component.", rich_help_panel=OUTPUT_PANEL
        ),
    ] = 5,
    threads: ThreadsOption = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir",
            help="Trace directory: open the *.pt.trace.json in ui.perfetto.dev, or run "
            "`tensorboard --logdir DIR` (torch-tb-profiler).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = Path("runs/profile"),
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    seed: SeedOption = 0,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """torch.profiler trace of train steps with a label per component; prints the top
    operators per component, forward and backward (self time)."""
    import torch

    from bench.cli.output import emit, rows_table
    from bench.timing.profile import profile_train_step
    from diffmavil import DiffMAViL
    from diffmavil.config import make_config, parse_mask_ratio
    from diffmavil.inputs import random_inputs

    validate_device(device)
    names = list(dict.fromkeys(str(v) for v in variant or ["cross-attn"]))
    if len(names) != 1:
        raise BadInput("profile takes one --variant")
    config = make_config(preset, names[0], model_overrides(decoder_audio, decoder_video, diffusion))
    ratios = parse_mask_ratio(mask_ratio)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    with torch.device(device):
        model = DiffMAViL(config)
    audio, video = random_inputs(config, batch_size, torch.device(device), seed)
    result = profile_train_step(
        model, audio, video, ratios, out_dir, dtype=dtype, compile=compile,
        warmup=warmup, active=steps, top=top,
    )  # fmt: skip
    rows = [{"variant": names[0], "preset": preset, **row} for row in result.top_ops]
    meta = {
        "trace_dir": str(result.trace_dir),
        "trace_files": [str(p) for p in result.trace_files],
        "time_split": result.time_split,
    }
    table = rows_table(
        rows,
        ["component", "pass", "rank", "op", "self_ms", "calls", "share"],
        title=f"top operators per component: {names[0]} @ {preset}, batch {batch_size}",
        formatters={"share": lambda v: f"{100 * v:.0f}%", "self_ms": lambda v: f"{v:.2f}"},
    )
    emit(rows, fmt, table=table, meta=meta, out=out)
    split = result.time_split
    typer.echo(
        f"per step: {split['step_ms']:.1f} ms, matmuls {split['matmul_ms']:.1f} ms "
        f"({100 * split['matmul_share']:.0f}%), the rest {split['other_ms']:.1f} ms",
        err=True,
    )
    if fmt == OutputFormat.table:
        typer.echo(f"trace: {', '.join(meta['trace_files'])}", err=True)
