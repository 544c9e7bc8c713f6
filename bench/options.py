"""Shared CLI option types (defined once, used by every command)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from diffmavil.config import PRESETS, VARIANTS


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


PresetOption = Annotated[
    str,
    typer.Option(
        "--preset", "-p", help=f"Model size preset: {', '.join(PRESETS)}.", show_default=True
    ),
]
VariantOption = Annotated[
    str,
    typer.Option("--variant", "-v", help=f"Model variant: {', '.join(VARIANTS)}."),
]
VariantsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--variant",
        "-v",
        help=f"Model variant, repeatable for side-by-side columns: {', '.join(VARIANTS)}.",
    ),
]
MaskRatioOption = Annotated[
    str,
    typer.Option(
        "--mask-ratio",
        help="Mask ratios 'AUDIO,VIDEO' in (0, 1) (one number sets both).",
    ),
]
DecoderAudioOption = Annotated[
    str | None,
    typer.Option("--decoder-audio", help="Override the audio decoder kind: self|cross|cross-self."),
]
DecoderVideoOption = Annotated[
    str | None,
    typer.Option("--decoder-video", help="Override the video decoder kind: self|cross|cross-self."),
]
DiffusionOption = Annotated[
    bool | None,
    typer.Option(
        "--diffusion/--no-diffusion",
        help="Override diffusion (noised masked patches) in both decoders.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Also write the result to this file.")
]


def model_overrides(
    decoder_audio: str | None, decoder_video: str | None, diffusion: bool | None
) -> dict[str, object]:
    """CLI overrides -> dotted config overrides."""
    overrides: dict[str, object] = {}
    if decoder_audio is not None:
        overrides["audio_decoder.kind"] = decoder_audio
    if decoder_video is not None:
        overrides["video_decoder.kind"] = decoder_video
    if diffusion is not None:
        overrides["audio_decoder.diffusion"] = diffusion
        overrides["video_decoder.diffusion"] = diffusion
    return overrides
