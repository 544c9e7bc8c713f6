"""``diffbench profile``: a ``torch.profiler`` trace of train steps with a label per
component, and the top operators per component (``bench.timing.profiler``).

Heavy imports (torch, the model) happen inside the command body so ``--help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.options import (
    DEFAULT_MASK_RATIO,
    MEASURE_PANEL,
    OUTPUT_PANEL,
    BatchSizeOption,
    CompileOption,
    DecoderAudioOption,
    DecoderVideoOption,
    DeviceOption,
    DiffusionOption,
    Dtype,
    DtypeOption,
    FormatOption,
    MaskRatioOption,
    OutOption,
    OutputFormat,
    Preset,
    PresetOption,
    RequestOptions,
    SeedOption,
    ThreadsOption,
    VariantsOption,
    model_overrides,
    validate_device,
)
from bench.errors import BadInput
from bench.requests import ProfileRequest

PROFILE = ProfileRequest.model_construct()  # the defaults (bench.requests), not validated


def single_variant(variant: list[str] | None) -> str:
    """The one ``--variant`` (repeats of it count once; default: the request's)."""
    names = list(dict.fromkeys(str(v) for v in variant or [PROFILE.variant]))
    if len(names) != 1:
        raise BadInput("profile takes one --variant")
    return names[0]


PROFILE_REQUEST = RequestOptions.of(
    ProfileRequest, variant=single_variant, overrides=model_overrides
)


def profile_command(
    variant: VariantsOption = None,
    preset: PresetOption = Preset[PROFILE.preset],
    device: DeviceOption = PROFILE.device,
    dtype: DtypeOption = Dtype[PROFILE.dtype],
    compile: CompileOption = PROFILE.compile,
    batch_size: BatchSizeOption = PROFILE.batch_size,
    mask_ratio: MaskRatioOption = DEFAULT_MASK_RATIO,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup", min=0, help="Unprofiled steps first.", rich_help_panel=MEASURE_PANEL
        ),
    ] = PROFILE.warmup,
    steps: Annotated[
        int,
        typer.Option("--steps", min=1, help="Profiled train steps.", rich_help_panel=MEASURE_PANEL),
    ] = PROFILE.steps,
    top: Annotated[
        int,
        typer.Option(
            "--top", min=1, help="Operators listed per component.", rich_help_panel=OUTPUT_PANEL
        ),
    ] = PROFILE.top,
    threads: ThreadsOption = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir",
            help="Trace directory: open the *.pt.trace.json in ui.perfetto.dev, or run "
            "`tensorboard --logdir DIR` (torch-tb-profiler).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = PROFILE.out_dir,
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    seed: SeedOption = PROFILE.seed,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """torch.profiler trace of train steps with a label per component; prints the top
    operators per component, forward and backward (self time)."""
    validate_device(device)
    request = PROFILE_REQUEST.build(locals())
    from bench.cli.output import emit, rows_table
    from bench.timing.profiler import profile_request

    result = profile_request(request)
    rows = [{"variant": request.variant, "preset": preset, **row} for row in result.top_ops]
    meta = {
        "trace_dir": str(result.trace_dir),
        "trace_files": [str(p) for p in result.trace_files],
        "time_split": result.time_split,
    }
    table = rows_table(
        rows,
        ["component", "pass", "rank", "op", "self_ms", "calls", "share"],
        title=f"top operators per component: {request.variant} @ {preset}, batch {batch_size}",
        formatters={"share": lambda v: f"{100 * v:.0f}%", "self_ms": lambda v: f"{v:.2f}"},
    )
    emit(rows, fmt, table=table, meta=meta, out=out)
    split = result.time_split
    clock = ""
    if split["clock"] == "cuda":  # kernel time; the host's launch time apart
        clock = f" of GPU kernels (host {split['host_ms']:.1f} ms)"
    typer.echo(
        f"per step: {split['step_ms']:.1f} ms{clock}, matmuls {split['matmul_ms']:.1f} ms "
        f"({100 * split['matmul_share']:.0f}%), the rest {split['other_ms']:.1f} ms",
        err=True,
    )
    if fmt == OutputFormat.table:
        typer.echo(f"trace: {', '.join(meta['trace_files'])}", err=True)
