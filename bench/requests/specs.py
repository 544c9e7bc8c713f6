"""What an ablation grid's ``run:`` and ``statistics:`` blocks set: ``TimeSpec`` (``run.time``),
``ProjectTimeSpec`` (``run.project_time``), ``RunSpec`` (the ``run:`` block: probe, time,
projection, controls), ``ComparisonSpec`` / ``StatisticsSpec`` (confirmatory comparisons,
margin, row order). Nothing here imports torch."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from diffmavil.config import PRESETS, Frozen, did_you_mean, parse_mask_ratio
from diffmavil.training.config import FinetuneConfig

MIN_PEER_REPEATS = 10
Ratios = tuple[float, float]


def parse_ratios(value: Any) -> Any:
    """'0.8,0.9' | 0.8 | [0.8, 0.9] -> (0.8, 0.9), checked (ConfigError otherwise)."""
    if value is None:
        return None
    return parse_mask_ratio(tuple(value) if isinstance(value, list) else value)


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

    _ratio_pair = field_validator("mask_ratio", mode="before")(lambda value: parse_ratios(value))

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
            raise ValueError(
                f"unknown preset {value!r}{did_you_mean(value, PRESETS)}; "
                f"allowed: {', '.join(PRESETS)}"
            )
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
