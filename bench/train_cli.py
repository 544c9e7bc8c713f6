"""``diffbench pretrain`` and ``diffbench finetune``.

Each command builds its typed request (``bench.requests``) from its options, validated
once, and hands it to the model library."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.errors import BadInput
from bench.options import (
    EXECUTION_PANEL,
    INPUT_PANEL,
    MODEL_PANEL,
    OUTPUT_PANEL,
    BatchKind,
    BatchRule,
    CompileOption,
    CurriculumShape,
    DecoderAudioOption,
    DecoderVideoOption,
    DiffusionOption,
    Dtype,
    FormatOption,
    MaskingKind,
    OptionalPresetOption,
    OptionalVariantOption,
    OutOption,
    OutputFormat,
    Preset,
    PresetOption,
    TrainDevice,
    Variant,
    VariantOption,
)
from bench.progress import epoch_reporter
from bench.requests import FinetuneRequest
from diffmavil.training.config import (
    EARLY_STOPPING_PATIENCE,
    FINETUNE_LR,
    PROBE_LR,
    FinetuneConfig,
)

SCHEDULE_PANEL = "Schedules and budget"


def _read_config_file(path: Path | None) -> dict[str, Any]:
    import yaml

    if path is None:
        return {}
    if not path.exists():
        raise BadInput(f"--config {path}: no such file")
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise BadInput(f"--config {path}: expected a mapping of config keys")
    return loaded


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
    from bench.requests import PretrainFlags, PretrainRequest, pretrain_config

    flags = PretrainFlags(
        preset=preset,
        variant=variant,
        decoder_audio=decoder_audio,
        decoder_video=decoder_video,
        diffusion=diffusion,
        data=data,
        masking=masking,
        mask_ratio=mask_ratio,
        mask_end=mask_end,
        curriculum_shape=curriculum_shape,
        batch=batch,
        batch_size=batch_size,
        batch_rule=batch_rule,
        max_batch=max_batch,
        samples=samples,
        lr=lr,
        seed=seed,
        device=device,
        dtype=dtype,
        threads=threads,
        workers=workers,
        compile=compile,
    )
    config = pretrain_config(flags, _read_config_file(config_file), _parse_sets(set_values))
    request = PretrainRequest(
        config=config,
        run_dir=run_dir or Path("runs") / config.run_id(),
        resume=resume,
        progress=progress,
    )
    run_pretrain(request, fmt)


def run_pretrain(request, fmt: OutputFormat) -> None:
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
    from bench.output import emit, rows_table

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


class Init(StrEnum):
    checkpoint = "checkpoint"
    random = "random"
    fbank = "fbank"


class ProbeMode(StrEnum):
    probe = "probe"
    finetune = "finetune"


class Modality(StrEnum):
    audio = "audio"
    audio_video = "audio-video"


class LrSchedule(StrEnum):
    cosine = "cosine"
    constant = "constant"


class Features(StrEnum):
    encoder = "encoder"
    fused = "fused"


PROBE = FinetuneConfig()  # the probe's defaults (one place: diffmavil.training.config)
LR_DEFAULTS = f"probe {PROBE_LR:g}, finetune {FINETUNE_LR:g}"
FINETUNE = FinetuneRequest.model_construct()
PROBE_PANEL = "Probe / fine-tune"


def early_stopping_patience(
    early_stopping: bool | None, patience: int | None, mode: str
) -> int | None:
    """``FinetuneConfig.patience`` from ``--patience`` and ``--[no-]early-stopping``: off
    (None) unless asked for; ``--early-stopping`` alone stops after
    ``EARLY_STOPPING_PATIENCE`` epochs, ``--patience N`` after N. Either needs a finetune;
    ``--no-early-stopping`` takes no ``--patience``."""
    if early_stopping is None and patience is None:
        return None
    if early_stopping is False:
        if patience is not None:
            message = "patience only applies to early stopping; give one of the two"
            raise BadInput(f"--patience {patience} with --no-early-stopping: {message}")
        return None
    if mode != ProbeMode.finetune:
        flag = "--early-stopping" if patience is None else f"--patience {patience}"
        raise BadInput(f"{flag} with --mode {mode}: only --mode finetune stops early")
    return EARLY_STOPPING_PATIENCE if patience is None else patience


def finetune_command(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="A pre-training run directory or its checkpoint.pt.")
    ] = None,
    init: Annotated[
        Init,
        typer.Option(
            help="Initialisation (random init and raw fbank are controls).",
            case_sensitive=False,
            rich_help_panel=MODEL_PANEL,
        ),
    ] = Init[FINETUNE.init],
    preset: PresetOption = Preset[FINETUNE.preset],
    variant: VariantOption = Variant[FINETUNE.variant],
    data: Annotated[
        str, typer.Option(help="Downstream data spec.", rich_help_panel=INPUT_PANEL)
    ] = PROBE.data,
    mode: Annotated[
        ProbeMode,
        typer.Option(
            help="Linear probe (frozen) or full fine-tune.",
            case_sensitive=False,
            rich_help_panel=PROBE_PANEL,
        ),
    ] = ProbeMode[PROBE.mode],
    modality: Annotated[
        Modality,
        typer.Option(help="Input modalities.", case_sensitive=False, rich_help_panel=PROBE_PANEL),
    ] = Modality.audio,
    features: Annotated[
        Features,
        typer.Option(
            help="Pool encoder outputs or fusion outputs.",
            case_sensitive=False,
            rich_help_panel=PROBE_PANEL,
        ),
    ] = Features[PROBE.features],
    fold: Annotated[
        int | None, typer.Option(help="ESC-50 evaluation fold.", rich_help_panel=INPUT_PANEL)
    ] = PROBE.fold,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Training epochs (finetune: the schedule's, at most with early stopping; "
            "default: probe 100, finetune chosen for the data size).",
            rich_help_panel=PROBE_PANEL,
            show_default=False,
        ),
    ] = PROBE.epochs,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Finetune: stop early after this many epochs without a better validation "
            "loss (implies --early-stopping).",
            rich_help_panel=PROBE_PANEL,
            show_default=False,
        ),
    ] = None,
    early_stopping: Annotated[
        bool | None,
        typer.Option(
            "--early-stopping/--no-early-stopping",
            help="Finetune: hold out 10% of the items as a validation split and stop early "
            f"(patience {EARLY_STOPPING_PATIENCE}). Default: off, every item trains for "
            "the planned epochs.",
            rich_help_panel=PROBE_PANEL,
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate.", rich_help_panel=PROBE_PANEL, show_default=LR_DEFAULTS),
    ] = None,
    lr_schedule: Annotated[
        LrSchedule,
        typer.Option(
            help="Finetune: warm-up + cosine to 0 over the planned epochs, or constant.",
            case_sensitive=False,
            rich_help_panel=PROBE_PANEL,
        ),
    ] = LrSchedule[PROBE.lr_schedule],
    batch_size: Annotated[
        int, typer.Option(help="Batch size.", rich_help_panel=PROBE_PANEL)
    ] = PROBE.batch_size,
    specaugment_freq: Annotated[
        int, typer.Option(help="SpecAugment frequency mask.", rich_help_panel=PROBE_PANEL)
    ] = PROBE.specaugment_freq,
    specaugment_time: Annotated[
        int, typer.Option(help="SpecAugment time mask.", rich_help_panel=PROBE_PANEL)
    ] = PROBE.specaugment_time,
    mixup: Annotated[
        float, typer.Option(help="Mixup alpha (0: off).", rich_help_panel=PROBE_PANEL)
    ] = PROBE.mixup,
    seed: Annotated[int, typer.Option(help="Seed.", rich_help_panel=PROBE_PANEL)] = PROBE.seed,
    device: Annotated[
        TrainDevice,
        typer.Option(help="Device.", case_sensitive=False, rich_help_panel=EXECUTION_PANEL),
    ] = TrainDevice[FINETUNE.device],
    compile: CompileOption = PROBE.compile,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Linear probe or fine-tune a checkpoint (or a random-init / raw-fbank control).

    A fine-tune runs --epochs (default: chosen for the data size) under a warm-up + cosine
    learning rate; with --early-stopping it holds out 10% of the items and stops on their
    loss. Progress shows on a terminal, one line per epoch otherwise (stderr)."""
    from bench.output import emit, rows_table
    from diffmavil.training.finetune import evaluate

    request = FinetuneRequest(
        init=init,
        checkpoint=checkpoint,
        preset=preset,
        variant=variant,
        device=device,
        probe=FinetuneConfig(
            data=data,
            mode=mode,
            modality=modality,
            features=features,
            fold=fold,
            epochs=epochs,
            lr=lr,
            lr_schedule=lr_schedule,
            batch_size=batch_size,
            specaugment_freq=specaugment_freq,
            specaugment_time=specaugment_time,
            mixup=mixup,
            seed=seed,
            patience=early_stopping_patience(early_stopping, patience, mode),
            compile=compile,
        ),
    )
    model_config = request.resolve_model()
    with epoch_reporter() as on_epoch:
        result = evaluate(
            request.probe, request.init, model_config, request.checkpoint, request.device,
            on_epoch=on_epoch,
        )  # fmt: skip
    table = rows_table(
        [{"name": k, "value": v} for k, v in result.items()], ["name", "value"], title="finetune"
    )
    emit([result], fmt, table=table, out=out)
