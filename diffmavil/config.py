"""Typed, frozen, validated configuration of a DiffMAViL model.

One ``ModelConfig`` describes the whole model; every grid size and token count is
derived from it. Presets are plain dicts (``PRESETS``), variants are plain dicts of
overrides (``VARIANTS``); ``make_config`` merges preset, variant and user overrides and
validates the result. Defaults marked **choice** are ours, not the paper's (see
docs/model.md): the paper's body could not be read.

Nothing here imports torch.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from diffmavil.tokens import keep_count

DecoderKind = Literal["self", "cross", "cross-self"]
NoiseScheduleKind = Literal["cosine", "linear"]
DECODER_KINDS: tuple[str, ...] = ("self", "cross", "cross-self")
MODALITIES: tuple[str, ...] = ("audio", "video")
COMPONENTS: tuple[str, ...] = (
    "audio_encoder",
    "video_encoder",
    "fusion",
    "audio_decoder",
    "video_decoder",
    "other",
)
# the components that are modules of DiffMAViL ("other" is the projections and schedule)
MODULE_COMPONENTS: tuple[str, ...] = tuple(c for c in COMPONENTS if c != "other")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and what is allowed."""


# **choice**: audio 0.8 (AudioMAE), video 0.9 (VideoMAE practice). The one place this
# default is written: the masking schedule, the model's forward, the CLI and the timing
# request read it from here.
DEFAULT_MASK_RATIO: tuple[float, float] = (0.8, 0.9)
DEFAULT_MASK_RATIO_TEXT = f"{DEFAULT_MASK_RATIO[0]},{DEFAULT_MASK_RATIO[1]}"


class Frozen(BaseModel):
    """Base of every typed config, request and result: frozen, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AudioSpec(Frozen):
    """Log-mel fbank input [target_frames, mel_bins], cut into patch_time x patch_freq patches."""

    target_frames: int = Field(1024, gt=0, description="fbank frames (10 ms each)")
    mel_bins: int = Field(128, gt=0)
    patch_time: int = Field(16, gt=0)
    patch_freq: int = Field(16, gt=0)
    sample_rate: int = Field(16000, gt=0)

    @model_validator(mode="after")
    def _divisible(self) -> AudioSpec:
        if self.target_frames % self.patch_time:
            raise ValueError(
                f"audio.patch_time={self.patch_time} does not divide "
                f"audio.target_frames={self.target_frames}"
            )
        if self.mel_bins % self.patch_freq:
            raise ValueError(
                f"audio.patch_freq={self.patch_freq} does not divide audio.mel_bins={self.mel_bins}"
            )
        return self

    @property
    def grid(self) -> tuple[int, int]:
        """(time patches, frequency patches)."""
        return self.target_frames // self.patch_time, self.mel_bins // self.patch_freq

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def patch_dim(self) -> int:
        return self.patch_time * self.patch_freq


class VideoSpec(Frozen):
    """RGB clip [channels, frames, height, width], cut into tubelet x patch x patch tubes."""

    frames: int = Field(8, gt=0)
    height: int = Field(224, gt=0)
    width: int = Field(224, gt=0)
    channels: int = Field(3, gt=0)
    tubelet: int = Field(2, gt=0)
    patch: int = Field(16, gt=0)

    @model_validator(mode="after")
    def _divisible(self) -> VideoSpec:
        if self.frames % self.tubelet:
            raise ValueError(
                f"video.tubelet={self.tubelet} does not divide video.frames={self.frames}"
            )
        for name in ("height", "width"):
            if getattr(self, name) % self.patch:
                raise ValueError(
                    f"video.patch={self.patch} does not divide video.{name}={getattr(self, name)}"
                )
        return self

    @property
    def grid(self) -> tuple[int, int, int]:
        """(time tubes, height patches, width patches)."""
        return self.frames // self.tubelet, self.height // self.patch, self.width // self.patch

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid
        return t * h * w

    @property
    def patch_dim(self) -> int:
        return self.tubelet * self.patch * self.patch * self.channels


class TransformerSize(Frozen):
    """Width, depth and heads of a stack of pre-norm transformer blocks."""

    dim: int = Field(gt=0)
    depth: int = Field(gt=0)
    heads: int = Field(gt=0)
    mlp_ratio: float = Field(4.0, gt=0)

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerSize:
        if self.dim % self.heads:
            raise ValueError(f"heads={self.heads} does not divide dim={self.dim}")
        if int(self.dim * self.mlp_ratio) <= 0:
            raise ValueError(f"mlp_ratio={self.mlp_ratio} gives an empty MLP at dim={self.dim}")
        return self

    @property
    def mlp_dim(self) -> int:
        return int(self.dim * self.mlp_ratio)


class DecoderSpec(TransformerSize):
    """One modality's decoder: attention kind, masked-position inputs and size.

    kind ``self``: MAE decoder, self-attention over all L+1 positions.
    kind ``cross``: queries are the masked positions only, cross-attending to the
    projected visible latents (DiffMAE "cross"). ``cross-self`` adds self-attention among
    the queries in every block. ``diffusion`` feeds noised masked patches with a timestep
    embedding instead of a learned [MASK] token.
    """

    kind: DecoderKind = "self"
    diffusion: bool = False


class DiffusionSpec(Frozen):
    """Forward noising of masked patches. **choice**: T=1000, cosine schedule, x0 target.

    The linear betas are DDPM's values at T = 1000; at another T both are scaled by 1000/T
    (user-set values too) and clamped below 1.
    """

    timesteps: int = Field(1000, gt=1)
    schedule: NoiseScheduleKind = "cosine"
    linear_beta_start: float = Field(
        1e-4, gt=0, lt=1, description="first linear beta at T=1000 (scaled by 1000/T)"
    )
    linear_beta_end: float = Field(
        0.02, gt=0, lt=1, description="last linear beta at T=1000 (scaled by 1000/T)"
    )


class LossSpec(Frozen):
    """Loss weights. **choice**: contrastive weight and temperature (MAViL's are unknown)."""

    audio_weight: float = Field(1.0, ge=0)
    video_weight: float = Field(1.0, ge=0)
    contrastive_weight: float = Field(0.01, ge=0, description="inter-modal InfoNCE weight")
    intra_contrastive_weight: float = Field(
        0.0, ge=0, description="intra-modal InfoNCE over two masked views (a second encoder pass)"
    )
    temperature: float = Field(0.07, gt=0)
    contrastive_dim: int = Field(256, gt=0, description="width of the contrastive projections")
    norm_pix_loss: bool = Field(True, description="targets normalised per patch (MAE)")


class ModelConfig(Frozen):
    """The whole model. ``preset`` and ``variant`` are labels for reports only."""

    preset: str = "custom"
    variant: str = "custom"
    audio: AudioSpec = AudioSpec()
    video: VideoSpec = VideoSpec()
    encoder: TransformerSize = TransformerSize(dim=768, depth=12, heads=12)
    fusion_depth: int = Field(3, ge=1, description="joint audio-video blocks at encoder width")
    audio_decoder: DecoderSpec = DecoderSpec(dim=512, depth=8, heads=16)
    video_decoder: DecoderSpec = DecoderSpec(dim=512, depth=8, heads=16)
    diffusion: DiffusionSpec = DiffusionSpec()
    loss: LossSpec = LossSpec()

    @model_validator(mode="after")
    def _token_grid(self) -> ModelConfig:
        for modality in MODALITIES:
            n = getattr(self, modality).num_patches
            if n < 2:
                raise ValueError(f"{modality} has {n} patch(es); masking needs at least 2")
        return self

    def spec(self, modality: str) -> AudioSpec | VideoSpec:
        return self.audio if modality == "audio" else self.video

    def decoder(self, modality: str) -> DecoderSpec:
        return self.audio_decoder if modality == "audio" else self.video_decoder

    def num_patches(self, modality: str) -> int:
        return self.spec(modality).num_patches

    def visible_tokens(self, modality: str, mask_ratio: float) -> int:
        return keep_count(self.num_patches(modality), mask_ratio)

    @property
    def uses_diffusion(self) -> bool:
        return self.audio_decoder.diffusion or self.video_decoder.diffusion


# --------------------------------------------------------------------------------------
# Presets: plain dicts (torchtitan style). Widths below base are **choices**.
# --------------------------------------------------------------------------------------

_BASE_DECODER = {"dim": 512, "depth": 8, "heads": 16}  # **choice**: AudioMAE's decoder

PRESETS: dict[str, dict[str, Any]] = {
    # MAViL's published encoder size: its audio (1024x128 fbank, 512 tokens) and video
    # (8x224x224, 784 tokens) inputs, ViT-B encoders, 3 fusion blocks (av-superb's MAViL);
    # the decoders are our choice. The DiffMAViL paper's own sizes are not known.
    "base": {
        "audio": {"target_frames": 1024, "mel_bins": 128},
        "video": {"frames": 8, "height": 224, "width": 224},
        "encoder": {"dim": 768, "depth": 12, "heads": 12},
        "fusion_depth": 3,
        "audio_decoder": _BASE_DECODER,
        "video_decoder": _BASE_DECODER,
    },
    "small": {
        "audio": {"target_frames": 1024, "mel_bins": 128},
        "video": {"frames": 8, "height": 224, "width": 224},
        "encoder": {"dim": 384, "depth": 12, "heads": 6},
        "fusion_depth": 3,
        "audio_decoder": {"dim": 256, "depth": 4, "heads": 8},
        "video_decoder": {"dim": 256, "depth": 4, "heads": 8},
    },
    # Base's token grid at narrow width: CPU ablations whose FLOP and time deltas keep
    # base's proportions of visible, masked and total tokens.
    # Video keeps base's 4x14x14 tubelet grid at half the pixels (8x8 patches on 112x112
    # frames) so that CPU data loading does not dominate a step.
    "cpu": {
        "audio": {"target_frames": 1024, "mel_bins": 128},
        "video": {"frames": 8, "height": 112, "width": 112, "patch": 8},
        "encoder": {"dim": 128, "depth": 3, "heads": 4},
        "fusion_depth": 1,
        "audio_decoder": {"dim": 96, "depth": 2, "heads": 4},
        "video_decoder": {"dim": 96, "depth": 2, "heads": 4},
        "loss": {"contrastive_dim": 64},
    },
    # Base's proportions at CPU cost: every Table-2 row's whole-run FLOP saving vs MAViL and
    # every component's FLOP share within 2 points of base's (tests/test_preset_search.py),
    # found by ``bench.preset_search``. Base's token grids cut by 8 (64 audio, 100 video
    # tokens), widths at base's token-to-width ratio, depths shortened together.
    "proportional": {
        "audio": {"target_frames": 96, "mel_bins": 24, "patch_time": 6, "patch_freq": 6},
        "video": {"frames": 8, "height": 30, "width": 30, "tubelet": 2, "patch": 6},
        "encoder": {"dim": 64, "depth": 8, "heads": 4},
        "fusion_depth": 2,
        "audio_decoder": {"dim": 48, "depth": 4, "heads": 4},
        "video_decoder": {"dim": 48, "depth": 4, "heads": 4},
        "loss": {"contrastive_dim": 64},
    },
    # Tests: 64 audio and 32 video tokens.
    "tiny": {
        "audio": {"target_frames": 256, "mel_bins": 64},
        "video": {"frames": 4, "height": 64, "width": 64},
        "encoder": {"dim": 192, "depth": 4, "heads": 3},
        "fusion_depth": 1,
        "audio_decoder": {"dim": 128, "depth": 2, "heads": 4},
        "video_decoder": {"dim": 128, "depth": 2, "heads": 4},
        "loss": {"contrastive_dim": 64},
    },
}

# Variants: the paper's ablation steps. "DiffMAViL" in reports is cross-attn + masking
# curriculum + adaptive batch; the architecture alone is ``cross-attn``.
VARIANTS: dict[str, dict[str, Any]] = {
    "mavil": {
        "audio_decoder": {"kind": "self", "diffusion": False},
        "video_decoder": {"kind": "self", "diffusion": False},
    },
    "diff-self": {
        "audio_decoder": {"kind": "self", "diffusion": True},
        "video_decoder": {"kind": "self", "diffusion": True},
    },
    "cross-attn": {
        "audio_decoder": {"kind": "self", "diffusion": True},
        "video_decoder": {"kind": "cross", "diffusion": True},
    },
    "cross-attn-both": {
        "audio_decoder": {"kind": "cross", "diffusion": True},
        "video_decoder": {"kind": "cross", "diffusion": True},
    },
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, recursing into mappings both sides hold (copies: neither
    input is modified). The one deep-merge of configs, grids and CLI overrides."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> dotted keys (leaves only)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def dotted_to_nested(overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"video_decoder.kind": "cross"}`` -> ``{"video_decoder": {"kind": "cross"}}``."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted!r} conflicts with another override")
        node[leaf] = value
    return nested


def did_you_mean(value: object, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest allowed name, or ``""``: the one hint every
    "unknown name" error of the project appends."""
    hint = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _choice_error(kind: str, value: str, allowed: list[str]) -> ConfigError:
    suggestion = did_you_mean(value, allowed)
    return ConfigError(f"unknown {kind} {value!r}{suggestion}; allowed: {', '.join(allowed)}")


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: ``field.path: message (got value)``."""
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "config"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "literal_error":
            message = f"{message}"
        got = item.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{field}: {message}{shown}")
    return "; ".join(lines)


def make_config(
    preset: str = "base",
    variant: str = "cross-attn",
    overrides: dict[str, Any] | None = None,
) -> ModelConfig:
    """Build a validated config from a preset, a variant and dotted or nested overrides.

    Raises ``ConfigError`` with a one-line message naming the bad field and what is allowed.
    """
    preset, variant = str(preset), str(variant)  # plain strings (CLI choices are StrEnums)
    if preset not in PRESETS:
        raise _choice_error("preset", preset, list(PRESETS))
    if variant not in VARIANTS:
        raise _choice_error("variant", variant, list(VARIANTS))
    merged = deep_merge(PRESETS[preset], VARIANTS[variant])
    merged = deep_merge(merged, {"preset": preset, "variant": variant})
    if overrides:
        nested = dotted_to_nested({k: v for k, v in overrides.items() if "." in k})
        nested = deep_merge(nested, {k: v for k, v in overrides.items() if "." not in k})
        merged = deep_merge(merged, nested)
    try:
        return ModelConfig.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


def parse_mask_ratio(text: str | float | tuple[float, float]) -> tuple[float, float]:
    """``"0.8,0.9"`` -> (0.8, 0.9); a single number applies to both modalities."""
    if isinstance(text, tuple):
        values = list(text)
    elif isinstance(text, (int, float)):
        values = [float(text)]
    else:
        try:
            values = [float(part) for part in str(text).split(",")]
        except ValueError:
            raise ConfigError(
                f"mask ratio {text!r}: expected 'AUDIO,VIDEO' numbers in (0, 1), e.g. 0.8,0.9"
            ) from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ConfigError(f"mask ratio {text!r}: expected one or two numbers (audio,video)")
    for name, value in zip(MODALITIES, values, strict=True):
        if not 0.0 < value < 1.0:
            raise ConfigError(
                f"{name} mask ratio {value}: allowed values lie strictly between 0 and 1"
            )
    return values[0], values[1]
