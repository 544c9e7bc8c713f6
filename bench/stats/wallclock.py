"""Wall-clock intervals that cover what varies: between measurement windows, interpolation,
and a machine's own noise.

- ``window_interval``: a projection measured in W separate windows gives W estimates of
  one quantity (a recipe's seconds, a saving). The estimate is their mean; its interval is
  Student's t over the windows (W - 1 df: the spread between windows holds the machine's
  drift, not only the noise of one window's rounds) combined in quadrature with a
  systematic half-width (the interpolation error bound in the same units)::

      half = sqrt((t_{(1+level)/2, W-1} * sd_w / sqrt(W))^2 + systematic^2)

- ``saving_systematic``: the systematic half-width of a saving 1 - C / B from those of C
  and B (first-order propagation, in quadrature).
- ``noise_floor``: a copy of the baseline against the baseline, paired (relative deltas
  copy / baseline - 1): the largest |mean delta| inside its two-sided t interval. A
  wall-clock difference below it is noise on that machine.
- ``unpaired_saving``: the saving 1 - C / B measured from unpaired runs of each recipe
  (run in A-B-B-A order, not paired by seed): the ratio of geometric means, Welch's t
  interval on log seconds (Welch-Satterthwaite df), so run-to-run variation is in it.
- ``history_half_width``: an estimate's half-width from a history of earlier estimates of
  the same quantity on the machine, made at other times (t over them, in quadrature with a
  systematic part); ``leave_one_window_out`` scores such intervals, each calibrated on the
  other windows of time only.
- ``coverage_check``: n projections of one quantity (in several windows of time), each
  interval scored against the mean of the other projections' estimates; it passes when at
  most ``allowed_misses(n)`` miss (11 of 12) and the median half-width is at most
  ``WIDTH_LIMIT`` times the estimates' own sd (an interval cannot pass by being wide).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.stats.intervals import Interval, check_level, pair_by_seed, t_quantile

MIN_NOISE_PAIRS = 6  # pairs a noise floor is measured from, at least (fewer: flagged)
WIDTH_LIMIT = 2.0  # a passing coverage check's median half-width, in estimate sds, at most
COVERAGE_MIN_PROJECTIONS = 12
COVERAGE_MIN_WINDOWS = 3


def difference_in_quadrature(
    first: tuple[float, float, float], second: tuple[float, float, float]
) -> tuple[float, float, float]:
    """(estimate, low, high) of first − second from two independent intervals (estimate,
    low, high) at one level: each interval's half-width (the mean of its two sides),
    combined in quadrature."""
    halves = [(high - low) / 2.0 for _, low, high in (first, second)]
    if min(halves) < 0:
        raise ValueError(f"an interval's low exceeds its high: {first}, {second}")
    difference, half = first[0] - second[0], math.hypot(*halves)
    return difference, difference - half, difference + half


@dataclass(frozen=True)
class WindowInterval:
    """An estimate from W windows: ``interval`` (its method "windows-t+systematic"), the
    per-window values, the statistical and systematic half-widths that make it."""

    interval: Interval
    windows: tuple[float, ...]
    statistical: float
    systematic: float

    @property
    def half_width(self) -> float:
        return (self.interval.high - self.interval.low) / 2.0


def window_interval(
    per_window: Sequence[float], systematic: float = 0.0, level: float = 0.95
) -> WindowInterval:
    """The mean of ``per_window`` (at least 2 finite values) and its two-sided interval at
    ``level``: Student's t over the windows in quadrature with ``systematic`` (>= 0)."""
    check_level(level, "two-sided")
    values = np.asarray(list(per_window), dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"a window interval needs at least 2 windows, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ValueError("window values must be finite")
    if not (systematic >= 0.0 and math.isfinite(systematic)):
        raise ValueError(f"systematic={systematic}: a finite half-width >= 0")
    n = len(values)
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1)) / math.sqrt(n)
    statistical = t_quantile((1.0 + level) / 2.0, n - 1) * se
    half = math.hypot(statistical, systematic)
    interval = Interval(
        mean, mean - half, mean + half, level, "two-sided", n, n - 1, "windows-t+systematic"
    )
    return WindowInterval(interval, tuple(float(v) for v in values), statistical, systematic)


def saving_systematic(
    candidate: float, baseline: float, candidate_half: float, baseline_half: float
) -> float:
    """Half-width of 1 - candidate / baseline from the half-widths of its two seconds
    (first order: d/dC = -1/B, d/dB = C/B^2; combined in quadrature)."""
    if baseline <= 0:
        raise ValueError(f"baseline={baseline}: seconds must be positive")
    return math.hypot(candidate_half / baseline, candidate * baseline_half / baseline**2)


@dataclass(frozen=True)
class NoiseFloor:
    """A copy of the baseline against it, paired by seed: the relative deltas, their t
    interval and ``floor`` = max(|low|, |high|) (a fraction: 0.03 = 3%). ``enough``: at
    least ``MIN_NOISE_PAIRS`` pairs."""

    pairs: int
    deltas: tuple[float, ...]
    interval: Interval
    floor: float

    @property
    def enough(self) -> bool:
        return self.pairs >= MIN_NOISE_PAIRS

    def sentence(self) -> str:
        return (
            f"differences below {100 * self.floor:.1f}% are noise on this machine (the "
            f"baseline against a copy of itself: {self.pairs} pairs, "
            f"{self.interval.label(1, scale=100)} of the mean delta)"
        )


def noise_floor(
    copy: Mapping[int, float], baseline: Mapping[int, float], level: float = 0.95
) -> NoiseFloor:
    """The noise floor from seconds by seed of a copy of the baseline and of the baseline
    (common seeds only; at least 2 pairs)."""
    from bench.stats.intervals import mean_interval

    pairing = pair_by_seed(copy, baseline)
    deltas = pairing.relative
    if len(deltas) < 2:
        raise ValueError(f"a noise floor needs at least 2 paired runs, got {len(deltas)}")
    interval = mean_interval(deltas, level, "two-sided")
    floor = max(abs(interval.low), abs(interval.high))
    return NoiseFloor(len(deltas), tuple(deltas), interval, floor)


def unpaired_saving(
    baseline: Sequence[float], candidate: Sequence[float], level: float = 0.95
) -> Interval:
    """Saving 1 - C / B (a fraction; > 0: the candidate is faster) from unpaired runs'
    seconds (at least 2 each): 1 - exp(mean log C - mean log B), with the two-sided Welch t
    interval of the log ratio at ``level`` mapped through the same function."""
    check_level(level, "two-sided")
    logs = []
    for name, seconds in (("baseline", baseline), ("candidate", candidate)):
        values = np.asarray(list(seconds), dtype=float)
        if len(values) < 2 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"{name}: at least 2 positive, finite run seconds, got {list(values)}")
        logs.append(np.log(values))
    b, c = logs
    var_b, var_c = b.var(ddof=1) / len(b), c.var(ddof=1) / len(c)
    se = math.sqrt(var_b + var_c)
    diff = float(c.mean() - b.mean())
    if se == 0.0:
        saving = 1.0 - math.exp(diff)
        return Interval(
            saving, saving, saving, level, "two-sided", len(b) + len(c), None, "welch-log"
        )
    df = (var_b + var_c) ** 2 / (var_b**2 / (len(b) - 1) + var_c**2 / (len(c) - 1))
    half = t_quantile((1.0 + level) / 2.0, df) * se
    return Interval(
        1.0 - math.exp(diff),
        1.0 - math.exp(diff + half),
        1.0 - math.exp(diff - half),
        level,
        "two-sided",
        len(b) + len(c),
        float(df),
        "welch-log",
    )


def allowed_misses(n: int) -> int:
    """Intervals that may miss among ``n`` scored projections: 1 in 12 (11 of 12 pass)."""
    return n // COVERAGE_MIN_PROJECTIONS


@dataclass(frozen=True)
class Coverage:
    """A coverage check of ``n`` projections: which intervals held the mean of the others,
    the estimates' sd, the median half-width and its ratio to that sd, and the verdict."""

    n: int
    windows: int
    covered: tuple[bool, ...]
    references: tuple[float, ...]
    sd: float
    median_half_width: float
    width_ratio: float
    enough: bool  # n >= 12 in >= 3 windows
    passed: bool

    @property
    def hits(self) -> int:
        return sum(self.covered)


def coverage_check(
    estimates: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    windows: Sequence[object],
) -> Coverage:
    """Score each projection's [low, high] against the mean of the other estimates.
    ``windows``: each projection's window of time (any labels). Passes when there are at
    least 12 projections in at least 3 windows, at most ``allowed_misses`` intervals miss,
    and the median half-width is at most ``WIDTH_LIMIT`` sds of the estimates."""
    x = np.asarray(estimates, dtype=float)
    low, high = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    n = len(x)
    if n < 3 or not (len(low) == len(high) == len(windows) == n):
        raise ValueError("a coverage check needs at least 3 projections, each with its bounds")
    if np.any(low > x) or np.any(high < x):
        raise ValueError("every interval must contain its own estimate")
    references = (x.sum() - x) / (n - 1)
    covered = tuple(bool(lo <= r <= hi) for lo, r, hi in zip(low, references, high, strict=True))
    sd = float(np.std(x, ddof=1))
    median_half = float(np.median((high - low) / 2.0))
    ratio = median_half / sd if sd > 0 else math.inf
    distinct = len(set(windows))
    enough = n >= COVERAGE_MIN_PROJECTIONS and distinct >= COVERAGE_MIN_WINDOWS
    misses = n - sum(covered)
    passed = enough and misses <= allowed_misses(n) and ratio <= WIDTH_LIMIT
    return Coverage(
        n, distinct, covered, tuple(map(float, references)), sd, median_half, ratio, enough, passed
    )


def history_half_width(
    history: Sequence[float],
    estimate: float,
    *,
    relative: bool,
    systematic: float = 0.0,
    level: float = 0.95,
) -> float:
    """Half-width of ``estimate``'s two-sided interval from a history of earlier estimates
    of the same quantity on the same machine, made at other times (at least 2): Student's
    t (n - 1 df) times their sd, in quadrature with ``systematic``. ``relative``: the
    spread scales with the estimate (seconds: sd / mean of the history times the
    estimate); otherwise it is absolute (a saving in points)."""
    check_level(level, "two-sided")
    values = np.asarray(list(history), dtype=float)
    if len(values) < 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"a history interval needs at least 2 finite estimates, got {values}")
    sd = float(np.std(values, ddof=1))
    spread = sd / float(np.mean(values)) * estimate if relative else sd
    return math.hypot(t_quantile((1.0 + level) / 2.0, len(values) - 1) * spread, systematic)


def leave_one_window_out(
    estimates: Sequence[float],
    systematic: Sequence[float],
    windows: Sequence[object],
    *,
    relative: bool,
    level: float = 0.95,
) -> Coverage:
    """The coverage check of ``history_half_width`` intervals, each projection's history
    being the projections of the *other* windows of time (so no interval is calibrated on
    its own window): an exploratory check on one data set, not a pre-registered one."""
    x = np.asarray(estimates, dtype=float)
    if len(set(windows)) < 2:
        raise ValueError("leaving a window out needs projections in at least 2 windows")
    halves = [
        history_half_width(
            [v for v, w in zip(x, windows, strict=True) if w != windows[i]],
            float(x[i]),
            relative=relative,
            systematic=systematic[i],
            level=level,
        )
        for i in range(len(x))
    ]
    return coverage_check(x, x - np.asarray(halves), x + np.asarray(halves), windows)


@dataclass(frozen=True)
class SignTest:
    """How many differences fall below and above 0 (zeros left out) and the two-sided
    exact binomial p-value of that split under p = 1/2."""

    below: int
    above: int
    p_value: float

    @property
    def n(self) -> int:
        return self.below + self.above


def sign_test(differences: Sequence[float]) -> SignTest:
    """The sign test of ``differences`` (``scipy.stats.binomtest``, two-sided): is a
    difference as likely to be negative as positive? Zeros carry no sign and are left out."""
    from scipy import stats

    below = sum(d < 0 for d in differences)
    above = sum(d > 0 for d in differences)
    if below + above == 0:
        raise ValueError("the sign test needs at least one non-zero difference")
    result = stats.binomtest(below, below + above, 0.5, alternative="two-sided")
    return SignTest(below, above, float(result.pvalue))
