"""Shared CLI option types and choices (defined once, used by every command).

Choices are ``StrEnum``s: typer lists them in ``--help`` and rejects anything else before
the command runs (one line, exit code 2, from the error handler in ``bench.cli.app``). A
``StrEnum`` member is a ``str`` whose ``str()`` is its value, so it passes straight into
the typed configs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from diffmavil.config import DECODER_KINDS, DEFAULT_MASK_RATIO_TEXT, PRESETS, VARIANTS

# rich help panels: long option lists are grouped under these headings in --help
MODEL_PANEL = "Model"
INPUT_PANEL = "Inputs and schedules"
MEASURE_PANEL = "Measurement"
EXECUTION_PANEL = "Execution"
OUTPUT_PANEL = "Output"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


Preset = StrEnum("Preset", {name: name for name in PRESETS})  # type: ignore[misc]
Variant = StrEnum("Variant", {name: name for name in VARIANTS})  # type: ignore[misc]
DecoderKind = StrEnum("DecoderKind", {name: name for name in DECODER_KINDS})  # type: ignore[misc]


class Dtype(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"


class TrainDevice(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class MaskingKind(StrEnum):
    fixed = "fixed"
    curriculum = "curriculum"


class BatchKind(StrEnum):
    fixed = "fixed"
    adaptive = "adaptive"


class BatchRule(StrEnum):
    tokens = "tokens"
    flops = "flops"


class CurriculumShape(StrEnum):
    linear = "linear"
    cosine = "cosine"
    step = "step"


def _names(choices: dict[str, object] | tuple[str, ...]) -> str:
    return ", ".join(choices)


PresetOption = Annotated[
    Preset,
    typer.Option(
        "--preset",
        "-p",
        help=f"Model size preset: {_names(PRESETS)}.",
        case_sensitive=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
OptionalPresetOption = Annotated[
    Preset | None,
    typer.Option(
        "--preset",
        "-p",
        help="Model size preset (default: tiny, or the --config file's).",
        case_sensitive=False,
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
VariantOption = Annotated[
    Variant,
    typer.Option(
        "--variant",
        "-v",
        help=f"Model variant: {_names(VARIANTS)}.",
        case_sensitive=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
OptionalVariantOption = Annotated[
    Variant | None,
    typer.Option(
        "--variant",
        "-v",
        help="Model variant (default: cross-attn, or the --config file's).",
        case_sensitive=False,
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
VariantsOption = Annotated[
    list[Variant] | None,
    typer.Option(
        "--variant",
        "-v",
        help="Model variant, repeatable for side-by-side columns (default: cross-attn).",
        case_sensitive=False,
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
MaskRatioOption = Annotated[
    str,
    typer.Option(
        "--mask-ratio",
        help="Mask ratios 'AUDIO,VIDEO' in (0, 1) (one number sets both).",
        rich_help_panel=INPUT_PANEL,
    ),
]
DEFAULT_MASK_RATIO = DEFAULT_MASK_RATIO_TEXT
DecoderAudioOption = Annotated[
    DecoderKind | None,
    typer.Option(
        "--decoder-audio",
        help="Override the audio decoder kind.",
        case_sensitive=False,
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
DecoderVideoOption = Annotated[
    DecoderKind | None,
    typer.Option(
        "--decoder-video",
        help="Override the video decoder kind.",
        case_sensitive=False,
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
DiffusionOption = Annotated[
    bool | None,
    typer.Option(
        "--diffusion/--no-diffusion",
        help="Override diffusion (noised masked patches) in both decoders.",
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
DtypeOption = Annotated[
    Dtype,
    typer.Option(
        "--dtype",
        help="fp32, or bf16 (autocast for the forward; weights stay fp32).",
        case_sensitive=False,
        rich_help_panel=EXECUTION_PANEL,
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads (torch.set_num_threads); default: torch's.",
        rich_help_panel=EXECUTION_PANEL,
    ),
]
SeedOption = Annotated[
    int,
    typer.Option("--seed", min=0, help="Seed of weights and inputs.", rich_help_panel=MODEL_PANEL),
]
FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-f",
        help="Output format.",
        case_sensitive=False,
        rich_help_panel=OUTPUT_PANEL,
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Also write the result to this file.", rich_help_panel=OUTPUT_PANEL
    ),
]


def model_overrides(
    decoder_audio: str | None, decoder_video: str | None, diffusion: bool | None
) -> dict[str, object]:
    """CLI overrides -> dotted config overrides."""
    overrides: dict[str, object] = {}
    if decoder_audio is not None:
        overrides["audio_decoder.kind"] = str(decoder_audio)
    if decoder_video is not None:
        overrides["video_decoder.kind"] = str(decoder_video)
    if diffusion is not None:
        overrides["audio_decoder.diffusion"] = diffusion
        overrides["video_decoder.diffusion"] = diffusion
    return overrides


CompileOption = Annotated[
    bool,
    typer.Option(
        "--compile/--no-compile",
        help="torch.compile the transformer blocks (masking and randomness stay eager); "
        "graphs, recompiles and compile seconds are reported.",
        rich_help_panel=EXECUTION_PANEL,
    ),
]


# the whole-run options of `flops` (planned FLOPs) and `time` (projected wall-clock)
WHOLE_RUN_PANEL = "Whole run (--masking / --batch)"
MaskingOption = Annotated[
    MaskingKind | None,
    typer.Option(
        "--masking",
        help="Whole run: masking schedule.",
        case_sensitive=False,
        show_default=False,
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
BatchScheduleOption = Annotated[
    BatchKind | None,
    typer.Option(
        "--batch",
        help="Whole run: batch schedule (--batch-size is the base batch).",
        case_sensitive=False,
        show_default=False,
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
SamplesOption = Annotated[
    str,
    typer.Option(
        "--samples",
        help="Whole run: budget in samples seen (e.g. 2e6).",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
BatchRuleOption = Annotated[
    BatchRule,
    typer.Option(
        "--batch-rule",
        help="Whole run, adaptive batch: what stays constant per step.",
        case_sensitive=False,
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
CurriculumEndOption = Annotated[
    str,
    typer.Option(
        "--curriculum-end",
        help="Whole run: curriculum end ratios 'AUDIO,VIDEO'.",
        rich_help_panel=WHOLE_RUN_PANEL,
    ),
]
