"""``bench.stats.wallclock``: window intervals, the saving's systematic half-width, the noise
floor and the coverage check, each against a hand computation."""

from __future__ import annotations

import math

import pytest

from bench.stats.wallclock import (
    allowed_misses,
    coverage_check,
    history_half_width,
    leave_one_window_out,
    noise_floor,
    saving_systematic,
    unpaired_saving,
    window_interval,
)

T_1DF_975 = 12.706204736174707  # Student's t, 0.975 quantile, 1 df (tables: 12.71)
T_3DF_975 = 3.182446305284263  # Student's t, 0.975 quantile, 3 df (tables: 3.182)
T_5DF_975 = 2.570581835636314  # 5 df (tables: 2.571)
T_6DF_975 = 2.446911851144969  # 6 df (tables: 2.447)


def test_window_interval_is_t_over_windows_in_quadrature_with_the_systematic():
    values = [10.0, 12.0, 11.0, 13.0]  # mean 11.5, sd sqrt(5/3)
    se = math.sqrt(5.0 / 3.0) / 2.0
    statistical = T_3DF_975 * se
    result = window_interval(values, systematic=1.5)
    half = math.sqrt(statistical**2 + 1.5**2)
    assert result.interval.estimate == pytest.approx(11.5)
    assert result.statistical == pytest.approx(statistical, rel=1e-9)
    assert result.interval.low == pytest.approx(11.5 - half, rel=1e-9)
    assert result.interval.high == pytest.approx(11.5 + half, rel=1e-9)
    assert result.half_width == pytest.approx(half, rel=1e-9)
    assert (result.interval.df, result.interval.n, result.interval.level) == (3, 4, 0.95)
    assert result.interval.method == "windows-t+systematic"


def test_without_systematic_it_is_the_t_interval_and_grows_with_it():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    plain = window_interval(values)
    half = T_5DF_975 * math.sqrt(3.5) / math.sqrt(6.0)
    assert plain.half_width == pytest.approx(half, rel=1e-9)
    assert window_interval(values, systematic=0.5).half_width > plain.half_width
    assert window_interval(values, level=0.9).half_width < plain.half_width


@pytest.mark.parametrize(
    "values, systematic, message",
    [
        ([1.0], 0.0, "at least 2 windows"),
        ([1.0, math.nan], 0.0, "finite"),
        ([1.0, 2.0], -0.1, "systematic"),
    ],
)
def test_window_interval_rejects_bad_input(values, systematic, message):
    with pytest.raises(ValueError, match=message):
        window_interval(values, systematic)


def test_saving_systematic_is_first_order_propagation():
    # saving = 1 - C/B at C = 80, B = 100; dC = 2, dB = 1
    expected = math.sqrt((2 / 100) ** 2 + (80 * 1 / 100**2) ** 2)
    assert saving_systematic(80.0, 100.0, 2.0, 1.0) == pytest.approx(expected)
    assert saving_systematic(80.0, 100.0, 0.0, 0.0) == 0.0
    # the bound brackets the real change of the saving for small errors
    real = abs((1 - 82 / 100) - (1 - 80 / 100))
    assert saving_systematic(80.0, 100.0, 2.0, 0.0) == pytest.approx(real)


def test_noise_floor_is_the_largest_mean_delta_inside_the_interval():
    baseline = {0: 100.0, 1: 100.0, 2: 100.0, 3: 100.0, 4: 100.0, 5: 100.0}
    copy = {0: 101.0, 1: 99.0, 2: 102.0, 3: 100.0, 4: 103.0, 5: 101.0, 9: 50.0}
    deltas = [0.01, -0.01, 0.02, 0.0, 0.03, 0.01]
    mean = sum(deltas) / 6
    sd = math.sqrt(sum((d - mean) ** 2 for d in deltas) / 5)
    half = T_5DF_975 * sd / math.sqrt(6)
    floor = noise_floor(copy, baseline)
    assert floor.pairs == 6 and floor.enough  # seed 9 has no pair
    assert floor.interval.estimate == pytest.approx(mean)
    assert floor.floor == pytest.approx(max(abs(mean - half), abs(mean + half)))
    assert "differences below 2.5% are noise on this machine" in floor.sentence()
    few = noise_floor({0: 1.0, 1: 1.1}, {0: 1.0, 1: 1.0})
    assert not few.enough
    with pytest.raises(ValueError, match="at least 2 paired runs"):
        noise_floor({0: 1.0}, {0: 1.0, 1: 1.0})


def test_allowed_misses_is_one_in_twelve():
    assert [allowed_misses(n) for n in (3, 11, 12, 23, 24)] == [0, 0, 1, 1, 2]


def test_coverage_check_scores_each_interval_against_the_mean_of_the_others():
    estimates = [10.0, 11.0, 12.0]
    # references: (11+12)/2 = 11.5, (10+12)/2 = 11, (10+11)/2 = 10.5
    result = coverage_check(estimates, [9.0, 10.5, 11.6], [11.6, 11.5, 12.4], ["a", "b", "c"])
    assert result.references == pytest.approx((11.5, 11.0, 10.5))
    assert result.covered == (True, True, False)
    assert result.sd == pytest.approx(1.0)
    assert result.median_half_width == pytest.approx(0.5)  # half-widths 1.3, 0.5, 0.4
    assert result.width_ratio == pytest.approx(0.5)
    assert not result.enough and not result.passed  # 3 projections are not enough


def _twelve(half: float, shift_one: float = 0.0):
    estimates = [100.0 + (i % 4) - 1.5 for i in range(12)]  # sd about 1.17
    estimates[0] += shift_one
    lows = [e - half for e in estimates]
    highs = [e + half for e in estimates]
    windows = [i // 4 for i in range(12)]
    return coverage_check(estimates, lows, highs, windows)


def test_coverage_check_passes_a_calibrated_interval_and_fails_wide_or_narrow_ones():
    calibrated = _twelve(2.0)
    assert calibrated.enough and calibrated.hits == 12 and calibrated.passed
    assert calibrated.width_ratio == pytest.approx(2.0 / calibrated.sd)
    wide = _twelve(5.0)  # covers everything by being wide
    assert wide.hits == 12 and wide.width_ratio > 2.0 and not wide.passed
    narrow = _twelve(0.5)  # misses most
    assert narrow.hits < 11 and not narrow.passed
    outlier = _twelve(2.2, shift_one=4.0)  # one projection far off: its interval misses
    assert outlier.hits == 11
    assert outlier.passed == (outlier.width_ratio <= 2.0)


def test_coverage_check_needs_three_windows():
    estimates = [float(i % 3) for i in range(12)]
    result = coverage_check(estimates, [e - 2 for e in estimates], [e + 2 for e in estimates],
                            [0] * 6 + [1] * 6)  # fmt: skip
    assert not result.enough and not result.passed


def test_coverage_check_rejects_an_interval_without_its_estimate():
    with pytest.raises(ValueError, match="its own estimate"):
        coverage_check([1.0, 2.0, 3.0], [1.5, 1.0, 2.0], [2.0, 3.0, 4.0], [0, 1, 2])


def test_unpaired_saving_is_welch_t_on_log_seconds_by_hand():
    baseline = [100.0, 110.0, 105.0, 95.0]
    candidate = [0.8 * x for x in baseline]  # equal log variances: Welch's df is 3 + 3 = 6
    logs = [math.log(x) for x in baseline]
    mean = sum(logs) / 4
    var = sum((x - mean) ** 2 for x in logs) / 3
    half = T_6DF_975 * math.sqrt(2 * var / 4)
    diff = math.log(0.8)
    got = unpaired_saving(baseline, candidate)
    assert got.estimate == pytest.approx(0.2, abs=1e-12)
    assert got.low == pytest.approx(1 - math.exp(diff + half), rel=1e-9)
    assert got.high == pytest.approx(1 - math.exp(diff - half), rel=1e-9)
    assert got.df == pytest.approx(6.0) and got.n == 8 and got.method == "welch-log"
    # unequal spreads: fewer df than 6, so a wider interval than pooled t would give
    spread = unpaired_saving(baseline, [80.0, 80.5, 81.0, 79.5])
    assert 3.0 < spread.df < 6.0
    # equal runs give exactly 1 - C / B and no width
    exact = unpaired_saving([100.0, 100.0], [80.0, 80.0])
    assert exact.estimate == pytest.approx(0.2) and exact.low == exact.high == exact.estimate
    wider = unpaired_saving(baseline, candidate, 0.99)
    assert wider.low < got.low < got.estimate < got.high < wider.high


@pytest.mark.parametrize(
    "baseline, candidate",
    [([100.0], [80.0, 81.0]), ([100.0, -1.0], [80.0, 81.0]), ([100.0, 101.0], [80.0, math.nan])],
)
def test_unpaired_saving_rejects_too_few_or_bad_seconds(baseline, candidate):
    with pytest.raises(ValueError, match="at least 2 positive, finite run seconds"):
        unpaired_saving(baseline, candidate)


T_2DF_975 = 4.302652729749464  # Student's t, 0.975 quantile, 2 df (tables: 4.303)


def test_history_half_width_is_t_over_the_history_by_hand():
    history = [100.0, 104.0, 98.0]  # mean 100.6667, sd sqrt(28/3)
    sd = math.sqrt(28.0 / 3.0)
    relative = history_half_width(history, 101.0, relative=True, systematic=2.0)
    spread = T_2DF_975 * sd / (302.0 / 3.0) * 101.0
    assert relative == pytest.approx(math.hypot(spread, 2.0), rel=1e-9)
    absolute = history_half_width(history, 50.0, relative=False)
    assert absolute == pytest.approx(T_2DF_975 * sd, rel=1e-9)
    with pytest.raises(ValueError, match="at least 2 finite estimates"):
        history_half_width([100.0], 100.0, relative=True)


def test_leave_one_window_out_calibrates_each_interval_on_the_other_windows():
    estimates = [10.0, 12.0, 11.0, 13.0]
    windows = ["a", "a", "b", "b"]
    check = leave_one_window_out(estimates, [0.0] * 4, windows, relative=False)
    # window a's intervals come from b's two estimates (sd sqrt(2), 1 df) and vice versa
    half = T_1DF_975 * math.sqrt(2.0)
    references = [(46.0 - v) / 3 for v in estimates]
    assert check.covered == tuple(
        abs(r - v) <= half for r, v in zip(references, estimates, strict=True)
    )
    assert check.median_half_width == pytest.approx(half, rel=1e-9)
    with pytest.raises(ValueError, match="at least 2 windows"):
        leave_one_window_out(estimates, [0.0] * 4, ["a"] * 4, relative=False)


def test_difference_in_quadrature_by_hand():
    """14.5% [11.5, 17.5] measured against 18.1% [16.9, 19.3] projected: −3.6 with a
    half-width of hypot(3.0, 1.2)."""
    from bench.stats import difference_in_quadrature

    estimate, low, high = difference_in_quadrature((14.5, 11.5, 17.5), (18.1, 16.9, 19.3))
    half = math.sqrt(3.0**2 + 1.2**2)
    assert estimate == pytest.approx(-3.6)
    assert (low, high) == pytest.approx((-3.6 - half, -3.6 + half))
    with pytest.raises(ValueError, match="low exceeds its high"):
        difference_in_quadrature((1.0, 2.0, 0.0), (0.0, 0.0, 0.0))
