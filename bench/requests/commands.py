"""Typed requests of the commands: ``PretrainFlags`` -> ``PretrainRequest`` (``diffbench
pretrain``), ``FinetuneRequest``, ``TimeRequest`` (``diffbench time``, a ``TimeSpec`` plus
what a row sets), ``FlopsRequest``. Nothing here imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bench.requests.specs import Ratios, TimeSpec, parse_ratios
from diffmavil.config import (
    DEFAULT_MASK_RATIO,
    Frozen,
    ModelConfig,
    deep_merge,
    dotted_to_nested,
    make_config,
)
from diffmavil.schedules import BatchSchedule, MaskingSchedule
from diffmavil.training.config import FinetuneConfig, PretrainConfig, load_pretrain_config

WHOLE_RUN_BATCH = 32  # `diffbench flops`' whole-run base batch


# ------------------------------------------------------------------------------ pretrain
# Flag -> the PretrainConfig field it sets (dotted). Pairs of ratios and the decoder
# overrides are spelled out in ``PretrainFlags.overrides``.
_FLAG_FIELDS = {
    "preset": "preset",
    "variant": "variant",
    "data": "data",
    "masking": "masking.kind",
    "curriculum_shape": "masking.shape",
    "batch": "batch.kind",
    "batch_size": "batch.batch_size",
    "batch_rule": "batch.rule",
    "max_batch": "batch.max_batch",
    "samples": "budget_samples",
    "lr": "optimizer.base_lr",
    "seed": "seed",
    "device": "device",
    "dtype": "dtype",
    "threads": "threads",
    "workers": "num_workers",
    "compile": "compile",
}


class PretrainFlags(Frozen):
    """The ``diffbench pretrain`` options that set config fields (None: not given, the
    ``--config`` file's value or the default stands)."""

    preset: str | None = None
    variant: str | None = None
    decoder_audio: str | None = None
    decoder_video: str | None = None
    diffusion: bool | None = None
    data: str | None = None
    masking: str | None = None
    mask_ratio: Ratios | None = None
    mask_end: Ratios | None = None
    curriculum_shape: str | None = None
    batch: str | None = None
    batch_size: int | None = None
    batch_rule: str | None = None
    max_batch: int | None = None
    samples: int | None = None
    lr: float | None = None
    seed: int | None = None
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None
    workers: int | None = None
    compile: bool | None = None

    _ratio_pairs = field_validator("mask_ratio", "mask_end", mode="before")(
        lambda value: parse_ratios(value)
    )

    @field_validator("samples", mode="before")
    @classmethod
    def _whole_samples(cls, value: Any) -> Any:
        return int(value) if isinstance(value, float) and value == int(value) else value

    def overrides(self) -> dict[str, Any]:
        """The nested PretrainConfig fields these flags set."""
        dotted: dict[str, Any] = {
            path: getattr(self, flag)
            for flag, path in _FLAG_FIELDS.items()
            if getattr(self, flag) is not None
        }
        for flag, suffix in (("mask_ratio", ""), ("mask_end", "_end")):
            pair = getattr(self, flag)
            if pair is not None:
                dotted[f"masking.audio{suffix}"], dotted[f"masking.video{suffix}"] = pair
        nested = dotted_to_nested(dotted)
        model = {
            f"{modality}_decoder.kind": str(kind)
            for modality, kind in (("audio", self.decoder_audio), ("video", self.decoder_video))
            if kind is not None
        }
        if self.diffusion is not None:
            model.update({f"{m}_decoder.diffusion": self.diffusion for m in ("audio", "video")})
        if model:
            nested["model_overrides"] = model
        return nested


def pretrain_config(
    flags: PretrainFlags, file_payload: dict[str, Any], sets: dict[str, Any]
) -> PretrainConfig:
    """``--config`` file, then the flags, then ``--set`` overrides; validated once."""
    return load_pretrain_config(deep_merge(deep_merge(file_payload, flags.overrides()), sets))


class PretrainRequest(Frozen):
    """One ``diffbench pretrain`` run: the config and where and how it runs."""

    config: PretrainConfig
    run_dir: Path
    resume: bool = False
    progress: bool = True


# ------------------------------------------------------------------------------ finetune
Init = Literal["checkpoint", "random", "fbank"]


class FinetuneRequest(Frozen):
    """One ``diffbench finetune`` run: which initialisation, and the probe."""

    init: Init = "checkpoint"
    checkpoint: Path | None = Field(
        None, description="run directory, checkpoint.pt, or a snapshot (snapshots/samples-*.pt)"
    )
    preset: str = Field("tiny", description="model preset (init random | fbank)")
    variant: str = Field("cross-attn", description="model variant (init random)")
    device: Literal["cpu", "cuda"] = "cpu"
    probe: FinetuneConfig = FinetuneConfig()

    @model_validator(mode="after")
    def _checkpoint_given(self) -> FinetuneRequest:
        if self.init == "checkpoint" and self.checkpoint is None:
            raise ValueError(
                "give a CHECKPOINT (run directory or checkpoint.pt) or --init random|fbank"
            )
        return self

    @property
    def run_dir(self) -> Path | None:
        if self.checkpoint is None:
            return None
        return self.checkpoint if self.checkpoint.is_dir() else self.checkpoint.parent

    def resolve_model(self) -> ModelConfig:
        """The model: the checkpoint's run's config (a snapshot carries its own), or the
        preset and variant."""
        import json

        from bench.errors import BadInput

        if self.init != "checkpoint":
            return make_config(self.preset, self.variant)
        assert self.run_dir is not None
        path = self.run_dir / "config.json"
        if self.checkpoint is not None and self.checkpoint.is_file() and not path.exists():
            from diffmavil.training.downstream import pretrained_model_config

            return pretrained_model_config(self.checkpoint)
        if not path.exists():
            raise BadInput(f"{path}: not found (is {self.checkpoint} a pretrain run?)")
        return PretrainConfig.model_validate(json.loads(path.read_text())).model


class TimeRequest(TimeSpec):
    """Everything one ``diffbench time`` run measures."""

    preset: str = "tiny"
    variants: tuple[str, ...] = ("cross-attn",)
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted model overrides")
    device: str = "cpu"
    threads: int | None = Field(None, gt=0)
    seed: int = Field(0, ge=0)
    mask_ratio: Ratios = DEFAULT_MASK_RATIO

    @model_validator(mode="after")
    def _models(self) -> TimeRequest:
        if not self.variants:
            raise ValueError("variants: give at least one")
        for variant in self.variants:
            make_config(self.preset, variant, dict(self.overrides))  # validate before any work
        return self

    @classmethod
    def for_row(cls, spec: TimeSpec, config: PretrainConfig) -> TimeRequest:
        """The request that times one grid row's model (at its starting ratios unless set)."""
        from diffmavil.config import flatten

        return cls(
            **{**spec.model_dump(), "mask_ratio": spec.mask_ratio or config.masking.start},
            preset=config.preset,
            variants=(config.variant,),
            overrides=flatten(config.model_overrides),
            device=config.device,
            threads=config.threads,
            seed=config.seed,
        )


# --------------------------------------------------------------------------------- flops
class FlopsRequest(Frozen):
    """One ``diffbench flops`` run: a per-component breakdown, or (``masking``/``batch``
    set, or ``sensitivity``) the whole run against the MAViL recipe."""

    preset: str = "base"
    variants: tuple[str, ...] = ("cross-attn",)
    overrides: dict[str, Any] = Field(default_factory=dict)
    mask_ratio: Ratios = DEFAULT_MASK_RATIO
    batch_size: int | None = Field(None, gt=0)
    counter: Literal["torch", "fvcore", "analytic", "all"] = "all"
    backward: bool = True
    device: Literal["meta", "cpu"] = "meta"
    masking: Literal["fixed", "curriculum"] | None = None
    batch: Literal["fixed", "adaptive"] | None = None
    samples: int = Field(2_000_000, gt=0, description="whole run: budget in samples seen")
    batch_rule: Literal["tokens", "flops"] = "tokens"
    curriculum_end: Ratios = (MaskingSchedule().audio_end, MaskingSchedule().video_end)
    sensitivity: bool = False

    _ratio_pairs = field_validator("mask_ratio", "curriculum_end", mode="before")(
        lambda value: parse_ratios(value)
    )

    @field_validator("samples", mode="before")
    @classmethod
    def _samples(cls, value: Any) -> Any:
        """'2e6' -> 2000000; a positive whole number of samples."""
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(
                    f"{value!r}: expected a positive number of samples, e.g. 2e6"
                ) from None
        if isinstance(value, float):
            if value <= 0 or value != int(value):
                raise ValueError(f"{value!r}: expected a positive whole number of samples")
            return int(value)
        return value

    @property
    def whole_run(self) -> bool:
        return self.masking is not None or self.batch is not None or self.sensitivity

    def models(self) -> list[ModelConfig]:
        return [make_config(self.preset, v, dict(self.overrides)) for v in self.variants]

    def masking_schedule(self) -> MaskingSchedule:
        return MaskingSchedule(
            kind=self.masking or "fixed",
            audio=self.mask_ratio[0],
            video=self.mask_ratio[1],
            audio_end=self.curriculum_end[0],
            video_end=self.curriculum_end[1],
        )

    def batch_schedule(self) -> BatchSchedule:
        """The whole run's batch: ``batch_size`` (default 32) at the starting ratios."""
        return BatchSchedule(
            kind=self.batch or "fixed",
            batch_size=self.batch_size or WHOLE_RUN_BATCH,
            rule=self.batch_rule,
        )
