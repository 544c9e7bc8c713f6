"""Typed requests: what each command (and each grid run) is asked to do.

One frozen pydantic model per request, built directly from CLI options or YAML, validated
once and passed down:

- ``PretrainFlags`` -> ``PretrainRequest`` (``diffbench pretrain``; the config itself is
  ``diffmavil.training.config.PretrainConfig``);
- ``FinetuneRequest`` (``diffbench finetune``; the probe is a ``FinetuneConfig``);
- ``TimeRequest`` (``diffbench time``) and ``TimeSpec``, its part a grid's ``run.time``
  sets (the row sets the model, device, threads and seed);
- ``FlopsRequest`` (``diffbench flops``);
- ``RunSpec``: a grid's ``run:`` block (``probe``: a ``FinetuneConfig``; ``time``: a
  ``TimeSpec``; ``project_time``: a ``ProjectTimeSpec``).

Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from diffmavil.config import (
    DEFAULT_MASK_RATIO,
    PRESETS,
    Frozen,
    ModelConfig,
    deep_merge,
    dotted_to_nested,
    make_config,
    parse_mask_ratio,
)
from diffmavil.schedules import BatchSchedule, MaskingSchedule
from diffmavil.training.config import FinetuneConfig, PretrainConfig, load_pretrain_config

MIN_PEER_REPEATS = 10
WHOLE_RUN_BATCH = 32  # `diffbench flops`' whole-run base batch
Ratios = tuple[float, float]


def _ratios(value: Any) -> Any:
    """'0.8,0.9' | 0.8 | [0.8, 0.9] -> (0.8, 0.9), checked (ConfigError otherwise)."""
    if value is None:
        return None
    return parse_mask_ratio(tuple(value) if isinstance(value, list) else value)


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
        lambda value: _ratios(value)
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
    checkpoint: Path | None = Field(None, description="run directory or checkpoint.pt")
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
        """The model: the checkpoint's run's config, or the preset and variant."""
        import json

        from bench.errors import BadInput

        if self.init != "checkpoint":
            return make_config(self.preset, self.variant)
        assert self.run_dir is not None
        path = self.run_dir / "config.json"
        if not path.exists():
            raise BadInput(f"{path}: not found (is {self.checkpoint} a pretrain run?)")
        return PretrainConfig.model_validate(json.loads(path.read_text())).model


# ---------------------------------------------------------------------------------- time
class TimeSpec(Frozen):
    """What a grid's ``run.time`` may set: the timing options of ``diffbench time`` except
    what each row sets (preset, variant, model overrides, device, threads, seed).
    ``mask_ratio`` None: the row's starting mask ratios."""

    dtype: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    compile_vs_eager: bool = Field(
        False, description="also time a compiled copy and a default-AdamW copy, interleaved"
    )
    batch_size: int = Field(8, gt=0)
    mask_ratio: Ratios | None = None
    repeats: int = Field(10, gt=0)
    warmup: int = Field(2, ge=0)
    peer: bool = False
    components: bool = True
    matmul_repeats: int = Field(5, gt=0)

    _ratio_pair = field_validator("mask_ratio", mode="before")(lambda value: _ratios(value))

    @model_validator(mode="after")
    def _peer_repeats(self) -> TimeSpec:
        if self.compile and self.compile_vs_eager:
            raise ValueError("compile_vs_eager times eager and compiled side by side: drop compile")
        if self.compile_vs_eager and self.repeats < MIN_PEER_REPEATS:
            raise ValueError(
                f"repeats={self.repeats}: the eager vs compiled comparison needs at least "
                f"{MIN_PEER_REPEATS} interleaved repeats for its bootstrap interval"
            )
        if self.peer and self.repeats < MIN_PEER_REPEATS:
            raise ValueError(
                f"repeats={self.repeats}: the peer comparison needs at least "
                f"{MIN_PEER_REPEATS} interleaved repeats for its bootstrap interval"
            )
        return self


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
        lambda value: _ratios(value)
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


# ------------------------------------------------------------------------------- grids
class ProjectTimeSpec(Frozen):
    """``run.project_time`` of an ablation grid: project every row's whole run, at
    ``preset`` (default: the row's) over ``samples`` (default: the base budget; a row with
    its own budget keeps its ratio to the base budget, so compute-matched rows stay
    matched). Savings are against the grid's baseline row."""

    preset: str | None = None
    samples: float | None = Field(None, gt=0)
    repeats: int = Field(5, ge=2)
    min_seconds: float = Field(
        60.0, ge=0, description="more interleaved rounds until they have lasted this long"
    )
    warmup: int = Field(1, ge=0)
    anchors: int = Field(3, ge=2)
    memory: bool = False
    threads: int | None = Field(None, gt=0)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; allowed: {', '.join(PRESETS)}")
        return value


class RunSpec(Frozen):
    """A grid's ``run:`` block: what every run of the grid does."""

    pretrain: bool = Field(True, description="pre-train each row (false needs flops_only)")
    probe: FinetuneConfig | None = Field(
        None, description="the downstream evaluation (its seed is each run's); none: no probe"
    )
    controls: list[Literal["random", "fbank"]] = Field(
        default_factory=list, description="control probes, once per (preset, variant) and seed"
    )
    flops_only: bool = Field(False, description="no training: planned FLOPs of the whole run")
    time: TimeSpec | None = Field(None, description="time each row's model (a TimeSpec)")
    project_time: ProjectTimeSpec | None = Field(
        None, description="project every row's whole-run wall-clock (bench.projection.recipes)"
    )
    compile: bool = Field(
        False, description="torch.compile every pre-training and probe/fine-tune of the grid"
    )

    @field_validator("probe", mode="before")
    @classmethod
    def _probe_seed_is_the_runs(cls, value: Any) -> Any:
        if isinstance(value, dict) and "seed" in value:
            raise ValueError("the probe uses each run's seed (set seeds:)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RunSpec:
        if not self.pretrain and not self.flops_only:
            raise ValueError(
                "pretrain: false needs run.flops_only: true (without pre-training a row has "
                "nothing to measure)"
            )
        if self.flops_only and (self.probe is not None or self.controls):
            raise ValueError("flops_only: no training, so no probe or controls")
        if self.controls and self.probe is None:
            raise ValueError("controls: control probes need run.probe")
        return self


class ComparisonSpec(Frozen):
    """A confirmatory comparison: is ``candidate``'s probe accuracy no worse than
    ``reference``'s by more than the margin? One-sided, paired by seed."""

    candidate: str = Field(description="row name")
    reference: str = Field(description="row name")


class StatisticsSpec(Frozen):
    """A grid's ``statistics:`` block: the confirmatory comparisons and how they are judged.

    Verdicts (``bench.ablate.verdicts``): "no loss within the margin" when the one-sided
    lower bound of the paired mean difference (candidate - reference, probe accuracy in
    points) lies above ``-margin_points``, "loss" when the upper bound lies below it, else
    "undecided". Every pre-trained row is also checked against its random-init control.
    """

    comparisons: list[ComparisonSpec] = Field(
        default_factory=list, description="confirmatory comparisons (candidate vs reference)"
    )
    margin_points: float = Field(
        2.0, ge=0, description="the loss in probe accuracy points that still counts as no loss"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="one-sided confidence")
    power: float = Field(
        0.8, gt=0.5, lt=1.0, description="for the smallest difference the grid can detect"
    )
    control_gain_points: float = Field(
        10.0,
        ge=0,
        description="a pre-trained row must beat its random-init control by this many points",
    )
    row_order: Literal["shuffled", "listed"] = Field(
        "shuffled",
        description="shuffled: each seed runs its rows in its own order (machine drift does "
        "not land on the same rows); listed: the file's order",
    )
