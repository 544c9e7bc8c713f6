"""Typed rows of a whole-run projection (``diffbench time --masking/--batch``), as stored in
its JSON and read by reports: one ``WholeRunRow`` per recipe, one ``PointRow`` per measured
step shape."""

from __future__ import annotations

from typing import Literal

from diffmavil.config import Frozen

# A projection's file: 3 added the windows and the parts of the interval (a file of 2
# reads as one window's block bootstrap), 4 the interval from the machine's history of
# projections (a file of 3 reads as one made without a history: ``bench.migrate``).
PROJECTION_SCHEMA_VERSION = 4

IntervalMethod = Literal[
    "history-t+systematic", "windows-t+systematic", "block-bootstrap+systematic", "block-bootstrap"
]


class WholeRunRow(Frozen):
    """One recipe's projected whole run. Seconds are means-based totals (the mean over
    the windows); savings are fractions against the baseline recipe. The intervals
    (``interval_level``, two-sided): with several windows, Student's t over the windows'
    values in quadrature with the interpolation's half-width (``windows-t+systematic``);
    with one, the percentile block bootstrap over its rounds, widened by it per side. With
    a history of the setting on this machine (``history_projections`` >= 5 earlier
    projections, ``bench.projection.history``), the seconds' interval is Student's t over
    those projections' relative spread (``drift_half_seconds``) in quadrature with the
    interpolation's half-width (``history-t+systematic``); the savings keep theirs."""

    kind: Literal["whole_run"] = "whole_run"
    recipe: str
    baseline: bool
    variant: str
    preset: str
    device: str
    dtype: str
    compile: bool
    threads: int
    masking: str
    batch: str
    samples: int
    steps: int
    points: int
    measured_points: int
    compute_seconds: float
    data_seconds: float
    overhead_seconds: float
    projected_seconds: float
    ci_low: float
    ci_high: float
    windows: int = 1
    interval_method: IntervalMethod = "block-bootstrap"
    interval_level: float = 0.95
    statistical_half_seconds: float | None = None
    systematic_half_seconds: float | None = None
    window_seconds: list[float] | None = None
    history_projections: int = 0
    drift_half_seconds: float | None = None
    loading_bound: bool
    flops: int
    flop_saving: float | None
    time_saving: float | None
    time_saving_ci_low: float | None
    time_saving_ci_high: float | None
    time_saving_systematic: float | None = None
    window_savings: list[float] | None = None
    time_per_flop_saving: float | None
    interpolation_error: float
    interpolated_share: float
    peak_memory_mb: float | None
    peak_memory_kind: str | None
    checkpoints: int
    logged_rows: int
    repeats: int
    matmul_gflops_per_s: float


class PointRow(Frozen):
    """One measured point of a recipe: its shape, steps and mean step seconds."""

    kind: Literal["whole_run_point"] = "whole_run_point"
    recipe: str
    batch_size: int
    visible_audio: int
    visible_video: int
    audio_mask_ratio: float
    video_mask_ratio: float
    steps: int
    flops: int
    role: Literal["anchor", "check"]
    mean_ms: float
    repeats: int
