"""``diffbench pretrain`` (``diffbench finetune``: ``bench.cli.finetune``).

The options that set config fields fill ``bench.requests.PretrainFlags`` by name; the
``--config`` file, the flags and ``--set`` make the ``PretrainConfig``, validated once, which
the command hands to the model library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli.options import (
    EXECUTION_PANEL,
    INPUT_PANEL,
    MODEL_PANEL,
    OUTPUT_PANEL,
    BatchKind,
    BatchRule,
    CurriculumShape,
    DecoderAudioOption,
    DecoderVideoOption,
    DiffusionOption,
    Dtype,
    FormatOption,
    MaskingKind,
    OptionalPresetOption,
    OptionalVariantOption,
    OutputFormat,
    RequestOptions,
    TrainDevice,
)
from bench.errors import BadInput
from bench.requests import PretrainFlags, PretrainRequest, pretrain_config
from bench.requests.files import read_yaml

SCHEDULE_PANEL = "Schedules and budget"


PRETRAIN_FLAGS = RequestOptions.of(PretrainFlags)


def _read_config_file(path: Path | None) -> dict[str, Any]:
    """The ``--config`` file's mapping of config keys ({} without one)."""
    return {} if path is None else read_yaml(path, "--config file")


def _parse_sets(values: list[str] | None) -> dict[str, Any]:
    """``["batch.max_batch=64", "masking.shape=cosine"]`` -> nested dict (YAML values)."""
    import yaml

    from diffmavil.config import dotted_to_nested

    flat = {}
    for item in values or []:
        if "=" not in item:
            raise BadInput(f"--set {item!r}: expected KEY=VALUE, e.g. batch.max_batch=64")
        key, value = item.split("=", 1)
        flat[key.strip()] = yaml.safe_load(value)
    return dotted_to_nested(flat)


def pretrain_command(
    preset: OptionalPresetOption = None,
    variant: OptionalVariantOption = None,
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Data spec: synthetic, esc50:DIR, spc:DIR, manifest:FILE (default: synthetic).",
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    masking: Annotated[
        MaskingKind | None,
        typer.Option(
            help="Masking schedule (default: fixed).",
            case_sensitive=False,
            show_default=False,
            rich_help_panel=SCHEDULE_PANEL,
        ),
    ] = None,
    mask_ratio: Annotated[
        str | None,
        typer.Option(
            help="Fixed (or curriculum start) ratios AUDIO,VIDEO.", rich_help_panel=SCHEDULE_PANEL
        ),
    ] = None,
    mask_end: Annotated[
        str | None,
        typer.Option(help="Curriculum end ratios AUDIO,VIDEO.", rich_help_panel=SCHEDULE_PANEL),
    ] = None,
    curriculum_shape: Annotated[
        CurriculumShape | None,
        typer.Option(
            help="Curriculum shape (default: linear).",
            case_sensitive=False,
            show_default=False,
            rich_help_panel=SCHEDULE_PANEL,
        ),
    ] = None,
    batch: Annotated[
        BatchKind | None,
        typer.Option(
            help="Batch schedule (default: fixed).",
            case_sensitive=False,
            show_default=False,
            rich_help_panel=SCHEDULE_PANEL,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Base batch size (at the starting mask ratios).", rich_help_panel=SCHEDULE_PANEL
        ),
    ] = None,
    batch_rule: Annotated[
        BatchRule | None,
        typer.Option(
            help="Adaptive rule: what stays constant per step (default: tokens).",
            case_sensitive=False,
            show_default=False,
            rich_help_panel=SCHEDULE_PANEL,
        ),
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="Cap of the adaptive batch.", rich_help_panel=SCHEDULE_PANEL)
    ] = None,
    samples: Annotated[
        float | None,
        typer.Option(
            help="Budget in samples seen (e.g. 4096 or 2e6).", rich_help_panel=SCHEDULE_PANEL
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Base learning rate (x batch/256).", rich_help_panel=SCHEDULE_PANEL),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed (init, data order, masks).", rich_help_panel=MODEL_PANEL),
    ] = None,
    device: Annotated[
        TrainDevice | None,
        typer.Option(
            help="Device (default: cpu).",
            case_sensitive=False,
            show_default=False,
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = None,
    dtype: Annotated[
        Dtype | None,
        typer.Option(
            help="Precision (bf16: CUDA autocast) (default: fp32).",
            case_sensitive=False,
            show_default=False,
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads.", rich_help_panel=EXECUTION_PANEL)
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="DataLoader worker processes.", rich_help_panel=EXECUTION_PANEL),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML/JSON PretrainConfig; flags override.",
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Dotted override KEY=VALUE, repeatable (e.g. batch.multiple=4).",
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Run directory (default: runs/<run id>).", rich_help_panel=OUTPUT_PANEL),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from the run directory's checkpoint.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar.", rich_help_panel=OUTPUT_PANEL)
    ] = True,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the transformer blocks (config key compile; default: off).",
            rich_help_panel=EXECUTION_PANEL,
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Pre-train on a budget of samples with fixed/curriculum masking and fixed/adaptive batch.

    Writes config.json, metrics.jsonl, TensorBoard events, checkpoint.pt and summary.json.
    """
    flags = PRETRAIN_FLAGS.build(locals())
    config = pretrain_config(flags, _read_config_file(config_file), _parse_sets(set_values))
    request = PretrainRequest(
        config=config,
        run_dir=run_dir or Path("runs") / config.run_id(),
        resume=resume,
        progress=progress,
    )
    run_pretrain(request, fmt)


def run_pretrain(request: PretrainRequest, fmt: OutputFormat) -> None:
    """Run a ``PretrainRequest`` and print its summary."""
    from diffmavil.training.pretrain import TrainingFailed, pretrain

    if (request.run_dir / "summary.json").exists() and not request.resume:
        raise BadInput(f"{request.run_dir} already holds a finished run (use another --run-dir)")
    try:
        summary = pretrain(
            request.config, request.run_dir, resume=request.resume, progress=request.progress
        )
    except TrainingFailed as failure:
        typer.echo(f"error: run failed: {failure}", err=True)
        raise typer.Exit(1) from None
    _print_summary(summary, request.run_dir, fmt)


def _print_summary(summary: dict[str, Any], run_dir: Path, fmt: OutputFormat) -> None:
    from bench.cli.output import emit, rows_table

    row = {
        "run_dir": str(run_dir),
        "status": summary["status"],
        "steps": summary["steps"],
        "samples": summary["samples"],
        "total_flops": summary["total_flops"],
        "wall_clock_s": round(summary["wall_clock_seconds"], 2),
        "compute_s": round(summary["compute_seconds"], 2),
        "data_s": round(summary["data_seconds"], 2),
        "data_to_compute": round(summary["data_to_compute_ratio"], 3),
        "samples_per_s": round(summary["samples_per_second"], 2),
        "achieved_flops_per_s": summary["achieved_flops_per_second"],
        "final_loss": round(summary["final_losses"].get("loss", float("nan")), 4),
        "skipped_files": summary["skipped_files"],
    }
    table = rows_table(
        [{"name": k, "value": v} for k, v in row.items()],
        ["name", "value"],
        title=f"pretrain {summary['run_id']}",
        formatters={"value": _format_value},
    )
    emit([row], fmt, table=table)
    if summary["data_bound"]:
        typer.echo(
            f"note: the data pipeline bounds this run: data {summary['data_seconds']:.1f} s vs "
            f"compute {summary['compute_seconds']:.1f} s ({summary['data_to_compute_ratio']:.2f}x"
            "); try --workers N or a feature cache",
            err=True,
        )
    if summary.get("compile"):
        compiled = summary["compile"]
        typer.echo(
            f"torch.compile: {compiled['graphs']} graphs ({compiled['recompiles']} recompiles), "
            f"{compiled['compile_seconds']:.1f} s compiling",
            err=True,
        )


def _format_value(value: Any) -> str:
    from bench.report.format import si

    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > 10**6:
        return si(value)
    return str(value)
