"""Shared CLI option types and choices (defined once, used by every command), and
``RequestOptions``: how a command's options fill its typed request by name, so that each
option is declared once, in the command's signature.

Choices are ``StrEnum``s: typer lists them in ``--help`` and rejects anything else before
the command runs (one line, exit code 2, from the error handler in ``bench.cli.app``). A
``StrEnum`` member is a ``str`` whose ``str()`` is its value, so it passes straight into
the typed configs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import typer
from pydantic import BaseModel

from bench.errors import BadInput
from bench.requests import WholeRunSchedules
from diffmavil.config import DECODER_KINDS, DEFAULT_MASK_RATIO_TEXT, PRESETS, VARIANTS

RequestT = TypeVar("RequestT", bound=BaseModel)

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


DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where to run: cpu or cuda (cuda:N for another GPU).",
        rich_help_panel=EXECUTION_PANEL,
    ),
]
BatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size", "-b", min=1, help="Samples per step.", rich_help_panel=INPUT_PANEL
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


# the whole-run options of `flops` (planned FLOPs) and `time` (projected wall-clock), their
# defaults those of the requests (bench.requests.WholeRunSchedules)
WHOLE_RUN_PANEL = "Whole run (--masking / --batch)"
_SCHEDULES = WholeRunSchedules.model_construct()
DEFAULT_SAMPLES = f"{_SCHEDULES.samples:.0e}".replace("e+0", "e")  # "2e6"
DEFAULT_CURRICULUM_END = f"{_SCHEDULES.curriculum_end[0]},{_SCHEDULES.curriculum_end[1]}"
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


# --------------------------------------------------------------------- options -> requests
@dataclass(frozen=True)
class RequestOptions(Generic[RequestT]):
    """How a command's options become its typed request, so that an option is declared once,
    in the command's signature, and reaches the request by its name.

    Each field of ``model`` takes the option of the same name, except the ``derived`` ones
    (a function of options, whose parameter names are the options it reads, or a nested
    ``RequestOptions``) and the ``unset`` ones (no option sets them: the model's default
    stands). A command calls ``build(locals())`` first thing; ``tests/test_cli_options.py``
    checks every command both ways: each option reaches a request (or the command's body),
    each request field has its option.
    """

    model: type[RequestT]
    derived: Mapping[str, Callable[..., Any] | RequestOptions[Any]] = field(default_factory=dict)
    unset: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        model: type[RequestT],
        *,
        unset: Iterable[str] = (),
        **derived: Callable[..., Any] | RequestOptions[Any],
    ) -> RequestOptions[RequestT]:
        return cls(model, derived, frozenset(unset))

    def by_name(self) -> list[str]:
        """The fields that take the option of their name."""
        skipped = set(self.derived) | self.unset
        return [name for name in self.model.model_fields if name not in skipped]

    def options(self) -> frozenset[str]:
        """Every option this request reads."""
        names = set(self.by_name())
        for source in self.derived.values():
            if isinstance(source, RequestOptions):
                names |= source.options()
            else:
                names |= set(inspect.signature(source).parameters)
        return frozenset(names)

    def build(self, values: Mapping[str, Any]) -> RequestT:
        """The request from option values (a command's ``locals()``), validated once."""
        return self.model(**self.fields(values))

    def fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        missing = [name for name in self.options() if name not in values]
        if missing:
            raise TypeError(f"{self.model.__name__}: no option named {', '.join(missing)}")
        fields = {name: values[name] for name in self.by_name()}
        for name, source in self.derived.items():
            if isinstance(source, RequestOptions):
                fields[name] = source.build(values)
            else:
                parameters = inspect.signature(source).parameters
                fields[name] = source(**{p: values[p] for p in parameters})
        return fields
