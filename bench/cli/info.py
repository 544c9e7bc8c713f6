"""``diffbench info``: a model's components, token grid and parameter counts."""

from __future__ import annotations

from typing import Annotated

import typer

from bench.cli.options import (
    DecoderAudioOption,
    DecoderVideoOption,
    DiffusionOption,
    FormatOption,
    OutOption,
    OutputFormat,
    Preset,
    PresetOption,
    Variant,
    VariantOption,
    model_overrides,
)


def info_command(
    preset: PresetOption = Preset.base,
    variant: VariantOption = Variant["cross-attn"],
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    proportions: Annotated[
        bool,
        typer.Option(
            "--proportions",
            help="Instead: the preset's FLOP shares, savings and cost per sample beside "
            "base's, per Table-2 row (whole runs over the curriculum).",
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Print a model's components, token grid and parameter counts (built on `meta`)."""
    import torch

    from bench.cli.output import emit, rows_table
    from diffmavil import DiffMAViL, count_parameters_by_component, make_config

    config = make_config(preset, variant, model_overrides(decoder_audio, decoder_video, diffusion))
    if proportions:
        from bench.cli.preset_search import proportions_table
        from bench.presets.search import comparison_rows

        rows = comparison_rows(str(preset))
        title = f"FLOP proportions @ {preset} beside base (Table-2 rows, whole runs)"
        emit(rows, fmt, table=proportions_table(rows, title), out=out)
        return
    with torch.device("meta"):
        model = DiffMAViL(config)
    counts = count_parameters_by_component(model)
    total = sum(counts.values())
    describe = {
        "audio_encoder": f"ViT {config.encoder.dim}x{config.encoder.depth}, "
        f"{config.audio.num_patches} patches {config.audio.grid}",
        "video_encoder": f"ViT {config.encoder.dim}x{config.encoder.depth}, "
        f"{config.video.num_patches} patches {config.video.grid}",
        "fusion": f"{config.fusion_depth} joint blocks",
        "audio_decoder": _describe_decoder(config.audio_decoder),
        "video_decoder": _describe_decoder(config.video_decoder),
        "other": "contrastive projections, noise schedule",
    }
    rows = [
        {
            "preset": str(preset),
            "variant": str(variant),
            "component": name,
            "params": count,
            "percent": round(100.0 * count / total, 2),
            "structure": describe[name],
        }
        for name, count in counts.items()
    ]
    rows.append(
        {
            "preset": str(preset),
            "variant": str(variant),
            "component": "total",
            "params": total,
            "percent": 100.0,
            "structure": "",
        }
    )
    table = rows_table(
        rows,
        ["component", "params", "percent", "structure"],
        title=f"DiffMAViL {variant} @ {preset}",
        formatters={"params": lambda v: f"{v:,}", "percent": lambda v: f"{v:.1f}%"},
    )
    emit(rows, fmt, table=table, out=out)


def _describe_decoder(spec) -> str:
    inputs = "noised patches + t" if spec.diffusion else "[MASK] tokens"
    return f"{spec.kind} {spec.dim}x{spec.depth}, {inputs}"
