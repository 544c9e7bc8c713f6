"""What an ablation grid's ``run:`` and ``statistics:`` blocks set: ``TimeSpec`` (``run.time``),
``ProjectTimeSpec`` (``run.project_time``), ``CurveSpec`` (``run.curve``: probes of the
pre-training's snapshots), ``FinetuneSpec`` (``run.finetune``: the fine-tune column),
``RunSpec`` (the ``run:`` block: probe, curve, fine-tune, time, projection, controls),
``ComparisonSpec`` / ``PrimarySpec`` / ``StatisticsSpec`` (confirmatory comparisons, margin,
time-to-accuracy targets and the primary endpoint, row order). Nothing here imports torch."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

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
        60.0,
        ge=0,
        description="more interleaved rounds until those of all windows have lasted this long",
    )
    warmup: int = Field(1, ge=0)
    anchors: int = Field(3, ge=2)
    windows: int = Field(
        6, ge=1, description="separate measurement windows (the interval: t over them)"
    )
    memory: bool = False
    threads: int | None = Field(None, gt=0)
    history: str | None = Field(
        None,
        min_length=1,
        description="this machine's history of projections (JSON lines, as `diffbench time "
        "--history`; relative to the working directory): each row's seconds' interval from "
        "its setting's earlier projections once there are 5, and the rows join the history",
    )

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(
                f"unknown preset {value!r}{did_you_mean(value, PRESETS)}; "
                f"allowed: {', '.join(PRESETS)}"
            )
        return value


class CurveSpec(Frozen):
    """``run.curve``: after its pre-training, each row's snapshots (``snapshot_every``) are
    probed with ``run.probe``, the interior ones with ``probe_seeds`` probe seeds, the final
    one with ``run.probe.probe_seeds`` (it is the run's probe); outside the timed run."""

    probe_seeds: int = Field(
        1, ge=1, description="probe seeds of each interior snapshot (the final: run.probe's)"
    )


class FinetuneSpec(FinetuneConfig):
    """``run.finetune``: the rows whose final snapshots (and the random-init control) are
    fine-tuned end to end, and the fine-tune (``FinetuneConfig`` fields; ``mode: finetune``;
    ``data`` and ``fold`` default to ``run.probe``'s, the same downstream data, every other
    field to the default fine-tune's: audio, end to end; the seed is each run's)."""

    rows: list[str] = Field(min_length=1, description="the rows to fine-tune (row names)")
    mode: Literal["probe", "finetune"] = "finetune"

    @model_validator(mode="before")
    @classmethod
    def _seed_is_the_runs(cls, value: Any) -> Any:
        if isinstance(value, dict) and "seed" in value:
            raise ValueError("the fine-tune uses each run's seed (set seeds:)")
        return value

    @model_validator(mode="after")
    def _a_finetune(self) -> FinetuneSpec:
        if self.mode != "finetune":
            raise ValueError("mode: the fine-tune column is a fine-tune (mode: finetune)")
        if len(set(self.rows)) != len(self.rows):
            raise ValueError("rows: a row is named twice")
        return self

    def config(self, probe: FinetuneConfig | None) -> FinetuneConfig:
        """The fine-tune's ``FinetuneConfig``: the fields set here, the downstream data
        (``INHERITED``) from ``probe`` where not set, the default fine-tune's otherwise."""
        own = self.model_dump(include=self.model_fields_set - {"rows"})
        task = {} if probe is None else probe.model_dump(include=set(INHERITED))
        return FinetuneConfig.model_validate({**task, **own, "mode": "finetune"})


# the fields of the fine-tune that name the downstream data: run.probe's unless set
INHERITED = ("data", "fold")


class RunSpec(Frozen):
    """A grid's ``run:`` block: what every run of the grid does."""

    pretrain: bool = Field(True, description="pre-train each row (false needs flops_only)")
    probe: FinetuneConfig | None = Field(
        None, description="the downstream evaluation (its seed is each run's); none: no probe"
    )
    curve: CurveSpec | None = Field(
        None, description="probe every snapshot of each row's pre-training (a CurveSpec)"
    )
    finetune: FinetuneSpec | None = Field(
        None, description="fine-tune these rows' final snapshots and the random-init control"
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
        if self.curve is not None and (self.probe is None or "random" not in self.controls):
            raise ValueError(
                "curve: snapshots are probed with run.probe, and the curve starts at the "
                "random-init control's accuracy (run.controls: [random])"
            )
        if self.finetune is not None and self.flops_only:
            raise ValueError("finetune: flops_only trains nothing to fine-tune")
        return self


class ComparisonSpec(Frozen):
    """A confirmatory comparison: is ``candidate``'s probe accuracy no worse than
    ``reference``'s by more than the margin? One-sided, paired by seed."""

    candidate: str = Field(description="row name")
    reference: str = Field(description="row name")


# The endpoints a grid's primary may name (``statistics.primary.endpoint``): times to an
# accuracy target (first crossing of the snapshots' curve), the area under accuracy vs
# FLOPs, the final probe's and the final fine-tune's accuracy.
TO_TARGET = ("samples_to_target", "flops_to_target", "wall_clock_to_target")
ACCURACY_ENDPOINTS = ("auc_flops", "final_probe", "final_finetune")
Endpoint = Literal[
    "samples_to_target",
    "flops_to_target",
    "wall_clock_to_target",
    "auc_flops",
    "final_probe",
    "final_finetune",
]


class PrimarySpec(Frozen):
    """``statistics.primary``: the one endpoint per confirmatory comparison that gets a
    verdict (one-sided, at ``statistics.confidence``); every other endpoint is descriptive.
    ``target``: one of ``statistics.targets``, for the ``*_to_target`` endpoints only."""

    endpoint: Endpoint
    target: float | None = Field(None, description="accuracy target in %, *_to_target only")

    @model_validator(mode="after")
    def _target_where_needed(self) -> PrimarySpec:
        if self.endpoint in TO_TARGET and self.target is None:
            raise ValueError(f"endpoint {self.endpoint}: give its target (one of targets)")
        if self.endpoint not in TO_TARGET and self.target is not None:
            raise ValueError(f"endpoint {self.endpoint}: has no target (drop target)")
        return self


def _targets(value: Any) -> Any:
    if isinstance(value, list) and len(set(value)) != len(value):
        raise ValueError("a target is repeated")
    return value


Target = Annotated[float, Field(gt=0, lt=100)]


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
    targets: Annotated[list[Target], BeforeValidator(_targets)] = Field(
        default_factory=list,
        description="absolute accuracy targets in % for the time-to-accuracy endpoints",
    )
    primary: PrimarySpec | None = Field(
        None, description="the endpoint each comparison's verdict is on (the others: descriptive)"
    )
    min_reached_fraction: float = Field(
        5.0 / 6.0,
        gt=0,
        le=1,
        description="a time ratio is estimated only when at least this fraction of the "
        "pairs reached the target on both sides",
    )
    row_order: Literal["shuffled", "listed"] = Field(
        "shuffled",
        description="shuffled: each seed runs its rows in its own order (machine drift does "
        "not land on the same rows); listed: the file's order",
    )

    @model_validator(mode="after")
    def _primary_is_defined(self) -> StatisticsSpec:
        primary = self.primary
        if primary is not None and primary.target not in (None, *self.targets):
            raise ValueError(
                f"primary.target {primary.target:g} is not one of targets "
                f"({', '.join(f'{t:g}' for t in self.targets) or 'none'})"
            )
        if primary is not None and not self.comparisons:
            raise ValueError("primary: its verdicts are on the comparisons (none given)")
        return self
