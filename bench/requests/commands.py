"""Typed requests of the commands, one field per option (``bench.cli.options.RequestOptions``
fills them by name): ``PretrainFlags`` -> ``PretrainRequest`` (``diffbench pretrain``),
``FinetuneRequest``, ``TimeRequest`` (``diffbench time``, a ``TimeSpec`` plus what a row
sets) and ``WholeRunRequest`` (its whole-run projection), ``FlopsRequest`` (both share
``WholeRunSchedules``), ``ProfileRequest``, ``SubmititRequest`` (``diffbench ablate
--executor submitit``). Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from bench.requests.specs import Ratios, TimeSpec, parse_ratios
from diffmavil.config import (
    DEFAULT_MASK_RATIO,
    DEFAULT_MASK_RATIO_TEXT,
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
@dataclass(frozen=True)
class Sets:
    """The ``PretrainConfig`` field (dotted) a ``PretrainFlags`` field sets."""

    path: str


class PretrainFlags(Frozen):
    """The ``diffbench pretrain`` options that set config fields (None: not given, the
    ``--config`` file's value or the default stands). A field sets the config field its
    ``Sets`` names; the ratio pairs and the decoder overrides are spelled out in
    ``overrides``."""

    preset: Annotated[str | None, Sets("preset")] = None
    variant: Annotated[str | None, Sets("variant")] = None
    decoder_audio: str | None = None
    decoder_video: str | None = None
    diffusion: bool | None = None
    data: Annotated[str | None, Sets("data")] = None
    masking: Annotated[str | None, Sets("masking.kind")] = None
    mask_ratio: Ratios | None = None
    mask_end: Ratios | None = None
    curriculum_shape: Annotated[str | None, Sets("masking.shape")] = None
    batch: Annotated[str | None, Sets("batch.kind")] = None
    batch_size: Annotated[int | None, Sets("batch.batch_size")] = None
    batch_rule: Annotated[str | None, Sets("batch.rule")] = None
    max_batch: Annotated[int | None, Sets("batch.max_batch")] = None
    samples: Annotated[int | None, Sets("budget_samples")] = None
    lr: Annotated[float | None, Sets("optimizer.base_lr")] = None
    seed: Annotated[int | None, Sets("seed")] = None
    device: Annotated[str | None, Sets("device")] = None
    dtype: Annotated[str | None, Sets("dtype")] = None
    threads: Annotated[int | None, Sets("threads")] = None
    workers: Annotated[int | None, Sets("num_workers")] = None
    compile: Annotated[bool | None, Sets("compile")] = None

    _ratio_pairs = field_validator("mask_ratio", "mask_end", mode="before")(
        lambda value: parse_ratios(value)
    )

    @field_validator("samples", mode="before")
    @classmethod
    def _whole_samples(cls, value: Any) -> Any:
        return int(value) if isinstance(value, float) and value == int(value) else value

    def overrides(self) -> dict[str, Any]:
        """The nested PretrainConfig fields these flags set."""
        dotted: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            target = next((m.path for m in info.metadata if isinstance(m, Sets)), None)
            if target is not None and getattr(self, name) is not None:
                dotted[target] = getattr(self, name)
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


# ------------------------------------------------------------------------------ whole runs
class WholeRunSchedules(Frozen):
    """A whole pre-training run's schedules and budget: the options ``diffbench flops`` and
    ``diffbench time`` share (``--masking``, ``--batch``, ``--samples``, ...)."""

    mask_ratio: Ratios = DEFAULT_MASK_RATIO
    batch_size: int | None = Field(None, gt=0)
    masking: Literal["fixed", "curriculum"] | None = None
    batch: Literal["fixed", "adaptive"] | None = None
    samples: int = Field(2_000_000, gt=0, description="whole run: budget in samples seen")
    batch_rule: Literal["tokens", "flops"] = "tokens"
    curriculum_end: Ratios = (MaskingSchedule().audio_end, MaskingSchedule().video_end)

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


class FlopsRequest(WholeRunSchedules):
    """One ``diffbench flops`` run: a per-component breakdown, or (``masking``/``batch``
    set, or ``sensitivity``) the whole run against the MAViL recipe."""

    preset: str = "base"
    variants: tuple[str, ...] = ("cross-attn",)
    overrides: dict[str, Any] = Field(default_factory=dict)
    counter: Literal["torch", "fvcore", "analytic", "all"] = "all"
    backward: bool = True
    device: Literal["meta", "cpu"] = "meta"
    sensitivity: bool = False

    @property
    def whole_run(self) -> bool:
        return self.masking is not None or self.batch is not None or self.sensitivity

    def models(self) -> list[ModelConfig]:
        return [make_config(self.preset, v, dict(self.overrides)) for v in self.variants]


class WholeRunRequest(WholeRunSchedules):
    """``diffbench time --masking/--batch``: the projected wall-clock of each variant's
    pre-training run and of MAViL's (``bench.projection``); checked, with messages naming
    the options, by ``bench.cli.time_projection.build_request``."""

    preset: str
    variants: tuple[str, ...]
    overrides: dict[str, Any]
    data: str
    device: str
    dtype: str
    threads: int | None
    compile: bool
    repeats: int
    min_seconds: float
    warmup: int
    anchors: int = Field(description="measured points per batch size, at most")
    windows: int = Field(description="separate measurement windows")
    history: Path | None = Field(None, description="the machine's history of projections")
    checkpoint_every: int
    log_every: int
    memory: bool
    matmul_repeats: int
    seed: int


# ------------------------------------------------------------------------------- profile
class ProfileRequest(Frozen):
    """One ``diffbench profile`` run: a ``torch.profiler`` trace of ``steps`` train steps
    of one model. ``mask_ratio`` is text ('AUDIO,VIDEO'), checked when the run starts."""

    preset: str = "tiny"
    variant: str = "cross-attn"
    overrides: dict[str, Any] = Field(default_factory=dict)
    device: str = "cpu"
    dtype: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    batch_size: int = Field(8, gt=0)
    mask_ratio: str = DEFAULT_MASK_RATIO_TEXT
    warmup: int = Field(1, ge=0)
    steps: int = Field(1, gt=0)
    top: int = Field(5, gt=0)
    threads: int | None = Field(None, gt=0)
    out_dir: Path = Path("runs/profile")
    seed: int = Field(0, ge=0)


# -------------------------------------------------------------------------------- ablate
class SubmititRequest(Frozen):
    """The submitit job settings of ``diffbench ablate --executor submitit``."""

    timeout_min: int = Field(60, gt=0)
    slurm_partition: str | None = None
    cpus_per_task: int | None = Field(None, gt=0)
    gpus_per_node: int | None = Field(None, ge=0)

    def parameters(self, workers: int) -> dict[str, Any]:
        """submitit's parameters; more than one worker is the job array's parallelism."""
        parameters = self.model_dump()
        if workers > 1:
            parameters["slurm_array_parallelism"] = workers
        return parameters
