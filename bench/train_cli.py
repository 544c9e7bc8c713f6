"""``diffbench pretrain`` and ``diffbench finetune``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.errors import BadInput, user_errors
from bench.options import (
    DecoderAudioOption,
    DecoderVideoOption,
    DiffusionOption,
    FormatOption,
    OutOption,
    OutputFormat,
    model_overrides,
)


def _parse_pair(text: str | None, name: str) -> tuple[float, float] | None:
    if text is None:
        return None
    from diffmavil.config import parse_mask_ratio

    try:
        return parse_mask_ratio(text)
    except ValueError as error:
        raise BadInput(f"--{name}: {error}") from None


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


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def pretrain_command(
    preset: Annotated[
        str | None, typer.Option("--preset", "-p", help="Model size preset [default: tiny].")
    ] = None,
    variant: Annotated[
        str | None, typer.Option("--variant", "-v", help="Model variant [default: cross-attn].")
    ] = None,
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    data: Annotated[
        str | None,
        typer.Option(help="Data spec: synthetic, esc50:DIR, spc:DIR, manifest:FILE [synthetic]."),
    ] = None,
    masking: Annotated[
        str | None, typer.Option(help="Masking schedule: fixed|curriculum [fixed].")
    ] = None,
    mask_ratio: Annotated[
        str | None, typer.Option(help="Fixed (or curriculum start) ratios AUDIO,VIDEO.")
    ] = None,
    mask_end: Annotated[str | None, typer.Option(help="Curriculum end ratios AUDIO,VIDEO.")] = None,
    curriculum_shape: Annotated[
        str | None, typer.Option(help="Curriculum shape: linear|cosine|step.")
    ] = None,
    batch: Annotated[
        str | None, typer.Option(help="Batch schedule: fixed|adaptive [fixed].")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Base batch size (at the starting mask ratios).")
    ] = None,
    batch_rule: Annotated[str | None, typer.Option(help="Adaptive rule: tokens|flops.")] = None,
    max_batch: Annotated[int | None, typer.Option(help="Cap of the adaptive batch.")] = None,
    samples: Annotated[
        float | None, typer.Option(help="Budget in samples seen (e.g. 4096 or 2e6).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate (x batch/256).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (init, data order, masks).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu|cuda.")] = None,
    dtype: Annotated[str | None, typer.Option(help="fp32|bf16 (bf16: CUDA autocast).")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader worker processes.")] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML/JSON PretrainConfig; flags override.")
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Dotted override KEY=VALUE, repeatable (e.g. batch.multiple=4)."
        ),
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<run id>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run directory's checkpoint.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Pre-train on a budget of samples with fixed/curriculum masking and fixed/adaptive batch.

    Writes config.json, metrics.jsonl, TensorBoard events, checkpoint.pt and summary.json.
    """
    _pretrain(**locals())


@user_errors
def _pretrain(**options: Any) -> None:
    import yaml

    from diffmavil.training.config import load_pretrain_config
    from diffmavil.training.pretrain import TrainingFailed, pretrain

    payload: dict[str, Any] = {}
    if options["config_file"] is not None:
        path: Path = options["config_file"]
        if not path.exists():
            raise BadInput(f"--config {path}: no such file")
        loaded = yaml.safe_load(path.read_text())
        if not isinstance(loaded, dict):
            raise BadInput(f"--config {path}: expected a mapping of config keys")
        payload = loaded
    flags: dict[str, Any] = {}
    overrides = model_overrides(
        options["decoder_audio"], options["decoder_video"], options["diffusion"]
    )
    if overrides:
        flags["model_overrides"] = {**payload.get("model_overrides", {}), **overrides}
    masking: dict[str, Any] = {}
    start = _parse_pair(options["mask_ratio"], "mask-ratio")
    end = _parse_pair(options["mask_end"], "mask-end")
    if start:
        masking.update(audio=start[0], video=start[1])
    if end:
        masking.update(audio_end=end[0], video_end=end[1])
    for key, name in (("kind", "masking"), ("shape", "curriculum_shape")):
        if options[name] is not None:
            masking[key] = options[name]
    batch: dict[str, Any] = {}
    for key, name in (
        ("kind", "batch"),
        ("batch_size", "batch_size"),
        ("rule", "batch_rule"),
        ("max_batch", "max_batch"),
    ):
        if options[name] is not None:
            batch[key] = options[name]
    if masking:
        flags["masking"] = masking
    if batch:
        flags["batch"] = batch
    for key, name in (
        ("preset", "preset"),
        ("variant", "variant"),
        ("seed", "seed"),
        ("device", "device"),
        ("dtype", "dtype"),
        ("threads", "threads"),
        ("num_workers", "workers"),
        ("data", "data"),
    ):
        if options[name] is not None:
            flags[key] = options[name]
    if options["samples"] is not None:
        flags["budget_samples"] = int(options["samples"])
    if options["lr"] is not None:
        flags["optimizer"] = {"base_lr": options["lr"]}
    config = load_pretrain_config(
        _merge(_merge(payload, flags), _parse_sets(options["set_values"]))
    )
    run_dir = options["run_dir"] or Path("runs") / config.run_id()
    if (run_dir / "summary.json").exists() and not options["resume"]:
        raise BadInput(f"{run_dir} already holds a finished run (use another --run-dir)")
    try:
        summary = pretrain(config, run_dir, resume=options["resume"], progress=options["progress"])
    except TrainingFailed as failure:
        typer.echo(f"error: run failed: {failure}", err=True)
        raise typer.Exit(1) from None
    _print_summary(summary, run_dir, options["fmt"])


def _print_summary(summary: dict[str, Any], run_dir: Path, fmt: OutputFormat) -> None:
    from bench.output import emit, rich_table

    row = {
        "run_dir": str(run_dir),
        "status": summary["status"],
        "steps": summary["steps"],
        "samples": summary["samples"],
        "total_flops": summary["total_flops"],
        "wall_clock_s": round(summary["wall_clock_seconds"], 2),
        "compute_s": round(summary["compute_seconds"], 2),
        "data_s": round(summary["data_seconds"], 2),
        "samples_per_s": round(summary["samples_per_second"], 2),
        "achieved_flops_per_s": summary["achieved_flops_per_second"],
        "final_loss": round(summary["final_losses"].get("loss", float("nan")), 4),
        "skipped_files": summary["skipped_files"],
    }
    table = rich_table(
        [{"name": k, "value": v} for k, v in row.items()],
        ["name", "value"],
        title=f"pretrain {summary['run_id']}",
        formatters={"value": _format_value},
    )
    emit([row], fmt, table=table)


def _format_value(value: Any) -> str:
    from bench.output import human_count

    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > 10**6:
        return human_count(value)
    return str(value)


def finetune_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="A pre-training run directory or its checkpoint.pt."),
    ] = None,
    init: Annotated[
        str, typer.Option(help="checkpoint|random|fbank (random init and raw fbank are controls).")
    ] = "checkpoint",
    preset: Annotated[
        str, typer.Option("--preset", "-p", help="Model preset (for --init random|fbank).")
    ] = "tiny",
    variant: Annotated[
        str, typer.Option("--variant", "-v", help="Variant (for --init random).")
    ] = "cross-attn",
    data: Annotated[str, typer.Option(help="Downstream data spec.")] = "synthetic",
    mode: Annotated[str, typer.Option(help="probe (linear, frozen) | finetune.")] = "probe",
    modality: Annotated[str, typer.Option(help="audio | audio-video.")] = "audio",
    features: Annotated[str, typer.Option(help="encoder | fused.")] = "encoder",
    fold: Annotated[int | None, typer.Option(help="ESC-50 evaluation fold.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    specaugment_freq: Annotated[int, typer.Option(help="SpecAugment frequency mask.")] = 0,
    specaugment_time: Annotated[int, typer.Option(help="SpecAugment time mask.")] = 0,
    mixup: Annotated[float, typer.Option(help="Mixup alpha (0: off).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="cpu|cuda.")] = "cpu",
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Linear probe or fine-tune a checkpoint (or a random-init / raw-fbank control)."""
    _finetune(**locals())


@user_errors
def _finetune(**options: Any) -> None:
    from pydantic import ValidationError

    from bench.output import emit, rich_table
    from diffmavil.config import format_validation_error, make_config
    from diffmavil.training.config import FinetuneConfig, PretrainConfig
    from diffmavil.training.finetune import evaluate

    if options["init"] not in ("checkpoint", "random", "fbank"):
        raise BadInput(f"--init {options['init']!r}: allowed: checkpoint, random, fbank")
    checkpoint = options["checkpoint"]
    if options["init"] == "checkpoint":
        if checkpoint is None:
            raise BadInput(
                "give a CHECKPOINT (run directory or checkpoint.pt) or --init random|fbank"
            )
        run_dir = checkpoint if checkpoint.is_dir() else checkpoint.parent
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise BadInput(f"{config_path}: not found (is {checkpoint} a pretrain run?)")
        model_config = PretrainConfig.model_validate(json.loads(config_path.read_text())).model
    else:
        model_config = make_config(options["preset"], options["variant"])
    payload = {
        key: options[key]
        for key in (
            "data",
            "mode",
            "modality",
            "features",
            "fold",
            "epochs",
            "lr",
            "batch_size",
            "specaugment_freq",
            "specaugment_time",
            "mixup",
            "seed",
        )
        if options[key] is not None
    }
    try:
        config = FinetuneConfig.model_validate(payload)
    except ValidationError as error:
        raise BadInput(format_validation_error(error)) from None
    result = evaluate(config, options["init"], model_config, checkpoint, options["device"])
    table = rich_table(
        [{"name": k, "value": v} for k, v in result.items()], ["name", "value"], title="finetune"
    )
    emit([result], options["fmt"], table=table, out=options["out"])
