"""The project's statistics, on ``scipy.stats``: the one place where intervals over seeds,
paired deltas, verdicts, power and the timing bootstraps are computed. A leaf: it imports
only the standard library, numpy and scipy.

Map (every level is the caller's; the defaults are named):

- ``intervals``: ``Interval`` (estimate, low, high, level, sides, n, df, method; "−2.1
  [−6.9, +2.6] (95%)"), ``t_quantile`` / ``t_cdf``, ``mean_interval`` (Student's t, n - 1
  df at every n >= 2, no normal fallback; 0.95 two-sided), ``seed_summary`` (n, mean, sd,
  t interval; missing values counted), ``pair_by_seed`` / ``paired_delta_interval`` (common
  seeds only, dropped seeds reported), ``accuracy_interval`` (logit-transformed t interval
  of the mean accuracy, inside [0, 100]; 0.95).
- ``power``: ``power_one_sided``, ``detectable_difference`` and ``seeds_for_power``
  (noncentral t, one-sided 0.95, power 0.8), ``sd_upper_bound`` (chi-square, one-sided
  0.8), ``seeds_for_half_width`` (two-sided 0.95).
- ``decisions``: ``non_inferiority`` (paired, one-sided t bounds at 0.95, verdicts "no
  loss within the margin" / "loss" / "undecided" / "not enough pairs", p-value,
  detectable loss at power 0.8), ``holm`` (step-down, alpha 0.05).
- ``bootstrap`` (timing): ``quantile`` (linear, numpy's), ``bootstrap_ratio_of_medians``
  (percentile, paired rounds, 0.95), ``block_picks`` / ``bootstrap_totals`` (percentile,
  circular blocks of rounds, 0.95).
- ``wallclock``: ``window_interval`` (Student's t over measurement windows, W - 1 df, in
  quadrature with a systematic half-width; 0.95), ``saving_systematic``, ``noise_floor``
  (a copy of the baseline against it, paired: the largest |mean delta| in its 0.95 t
  interval), ``unpaired_saving`` (runs of two recipes, not paired: Welch's t on log
  seconds, 0.95), ``coverage_check`` (each interval against the mean of the other estimates),
  ``difference_in_quadrature`` (two independent intervals' difference),
  ``history_half_width`` / ``leave_one_window_out`` (an interval from earlier estimates made
  at other times, t over them; its coverage with each window left out of its own history),
  ``sign_test`` (exact binomial, two-sided: are differences as often below 0 as above?).
- ``endpoints``: ``time_to_target`` (interpolated first crossing, censored otherwise),
  ``area_under_curve`` (trapezoid over [0, x_max]), ``paired_time_ratio`` (t interval of
  the log ratio over the common seeds, 0.95, only when >= 5/6 of the pairs reached).
"""

from bench.stats.bootstrap import (
    BOOTSTRAP_BLOCKS,
    BootstrapInterval,
    Term,
    TermLike,
    block_picks,
    bootstrap_ratio_of_medians,
    bootstrap_totals,
    percentile_bounds,
    quantile,
)
from bench.stats.decisions import (
    LOSS,
    NO_LOSS,
    NOT_ENOUGH_PAIRS,
    UNDECIDED,
    Holm,
    NonInferiority,
    holm,
    non_inferiority,
    non_inferiority_p_value,
)
from bench.stats.endpoints import (
    TimeRatio,
    TimeToTarget,
    area_under_curve,
    paired_time_ratio,
    time_to_target,
)
from bench.stats.intervals import (
    Interval,
    PairedDelta,
    Pairing,
    SeedSummary,
    Sides,
    accuracy_interval,
    common_seeds,
    mean_interval,
    pair_by_seed,
    paired_delta_interval,
    seed_summary,
    t_bounds,
    t_cdf,
    t_quantile,
)
from bench.stats.power import (
    detectable_difference,
    power_one_sided,
    sd_upper_bound,
    seeds_for_half_width,
    seeds_for_power,
)
from bench.stats.wallclock import (
    Coverage,
    NoiseFloor,
    SignTest,
    WindowInterval,
    coverage_check,
    difference_in_quadrature,
    history_half_width,
    leave_one_window_out,
    noise_floor,
    saving_systematic,
    sign_test,
    unpaired_saving,
    window_interval,
)

__all__ = [
    "BOOTSTRAP_BLOCKS",
    "LOSS",
    "NOT_ENOUGH_PAIRS",
    "NO_LOSS",
    "UNDECIDED",
    "BootstrapInterval",
    "Coverage",
    "Holm",
    "Interval",
    "NoiseFloor",
    "NonInferiority",
    "PairedDelta",
    "Pairing",
    "SeedSummary",
    "Sides",
    "SignTest",
    "Term",
    "TermLike",
    "TimeRatio",
    "TimeToTarget",
    "WindowInterval",
    "accuracy_interval",
    "area_under_curve",
    "block_picks",
    "bootstrap_ratio_of_medians",
    "bootstrap_totals",
    "common_seeds",
    "coverage_check",
    "detectable_difference",
    "difference_in_quadrature",
    "history_half_width",
    "holm",
    "leave_one_window_out",
    "mean_interval",
    "noise_floor",
    "non_inferiority",
    "non_inferiority_p_value",
    "pair_by_seed",
    "paired_delta_interval",
    "paired_time_ratio",
    "percentile_bounds",
    "power_one_sided",
    "quantile",
    "saving_systematic",
    "sd_upper_bound",
    "seed_summary",
    "seeds_for_half_width",
    "seeds_for_power",
    "sign_test",
    "t_bounds",
    "t_cdf",
    "t_quantile",
    "time_to_target",
    "unpaired_saving",
    "window_interval",
]
