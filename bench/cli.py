"""The ``diffbench`` command line (typer). Heavy imports live inside command bodies so
that ``--help`` is instant."""

from __future__ import annotations

from typing import Annotated

import typer

from bench.errors import user_errors
from bench.options import (
    DecoderAudioOption,
    DecoderVideoOption,
    DiffusionOption,
    FormatOption,
    OutOption,
    OutputFormat,
    PresetOption,
    VariantOption,
    model_overrides,
)

app = typer.Typer(
    name="diffbench",
    help="Efficiency benchmarking and ablations for DiffMAViL (arXiv 2310.03937).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from diffmavil import __version__

        typer.echo(f"diffbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Efficiency benchmarking and ablations for DiffMAViL (arXiv 2310.03937)."""


@app.command("info")
@user_errors
def info(
    preset: PresetOption = "base",
    variant: VariantOption = "cross-attn",
    decoder_audio: DecoderAudioOption = None,
    decoder_video: DecoderVideoOption = None,
    diffusion: DiffusionOption = None,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Print a model's components, token grid and parameter counts (built on `meta`)."""
    import torch

    from bench.output import emit, rich_table
    from diffmavil import DiffMAViL, count_parameters_by_component, make_config

    config = make_config(preset, variant, model_overrides(decoder_audio, decoder_video, diffusion))
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
            "preset": preset,
            "variant": variant,
            "component": name,
            "params": count,
            "percent": round(100.0 * count / total, 2),
            "structure": describe[name],
        }
        for name, count in counts.items()
    ]
    rows.append(
        {
            "preset": preset,
            "variant": variant,
            "component": "total",
            "params": total,
            "percent": 100.0,
            "structure": "",
        }
    )
    table = rich_table(
        rows,
        ["component", "params", "percent", "structure"],
        title=f"DiffMAViL {variant} @ {preset}",
        formatters={"params": lambda v: f"{v:,}", "percent": lambda v: f"{v:.1f}%"},
    )
    emit(rows, fmt, table=table, out=out)


def _describe_decoder(spec) -> str:
    inputs = "noised patches + t" if spec.diffusion else "[MASK] tokens"
    return f"{spec.kind} {spec.dim}x{spec.depth}, {inputs}"


def _mount_optional_commands() -> None:
    """Commands that live in their own modules."""
    import importlib

    for module_name, attribute, name in (("bench.data_cli", "data_app", "data"),):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        app.add_typer(getattr(module, attribute), name=name)


_mount_optional_commands()


def _register_commands() -> None:
    """Each command lives in its own module; their heavy imports stay inside the bodies."""
    from bench.ablate_cli import ablate_command
    from bench.flops_cli import flops_command
    from bench.report_cli import report_command
    from bench.time_cli import profile_command, time_command
    from bench.train_cli import finetune_command, pretrain_command

    for name, command in (
        ("flops", flops_command),
        ("time", time_command),
        ("profile", profile_command),
        ("pretrain", pretrain_command),
        ("finetune", finetune_command),
        ("ablate", ablate_command),
        ("report", report_command),
    ):
        app.command(name)(command)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
