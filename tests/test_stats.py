"""bench.stats: hand-computed values, invariants, and agreement with the implementations it
replaces (imported live while they exist; the deterministic ones also pinned as numbers).
Simulations (power, coverage) are in test_stats_coverage.py."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from bench import stats as S

T975_5, T95_5 = 2.5705818356, 2.0150483733  # t-table: t_{0.975,5}, t_{0.95,5}
T975_2, T95_2 = 4.3026527297, 2.9199855804  # t_{0.975,2}, t_{0.95,2}
CHI2_020_5 = 2.3425343058  # chi-square table: lower 0.20 point, 5 df


def by_seed(values) -> dict[int, float]:
    return dict(enumerate(values))


# ---------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.95, 1, 6.313752),
        (0.975, 2, 4.302653),
        (0.8, 2, 1.060660),
        (0.975, 9, 2.262157),
        (0.95, 30, 1.697261),
        (0.975, 40, 2.021075),
        (0.975, 120, 1.979930),
    ],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert S.t_quantile(p, df) == pytest.approx(expected, abs=2e-6)
    assert S.t_quantile(1 - p, df) == pytest.approx(-expected, abs=2e-6)
    assert S.t_cdf(expected, df) == pytest.approx(p, abs=1e-6)
    assert S.t_cdf(1.3, 1) == pytest.approx(0.5 + math.atan(1.3) / math.pi)  # Cauchy


def test_mean_interval_by_hand_at_n6():
    x = [1.2, 0.4, -0.3, 2.1, 1.0, 0.7]
    mean = sum(x) / 6
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / 5)
    two = S.mean_interval(x)
    assert (two.estimate, two.n, two.df, two.level, two.sides) == (
        pytest.approx(mean),
        6,
        5,
        0.95,
        "two-sided",
    )
    assert two.low == pytest.approx(mean - T975_5 * sd / math.sqrt(6), abs=1e-9)
    assert two.high == pytest.approx(mean + T975_5 * sd / math.sqrt(6), abs=1e-9)
    lower = S.mean_interval(x, 0.95, "one-sided lower")
    assert lower.low == pytest.approx(mean - T95_5 * sd / math.sqrt(6), abs=1e-9)
    assert lower.high == math.inf
    upper = S.mean_interval(x, 0.95, "one-sided upper")
    assert upper.low == -math.inf and upper.high == pytest.approx(2 * mean - lower.low)
    # a one-sided 95% bound is an end of the two-sided 90% interval
    assert S.mean_interval(x, 0.90).low == pytest.approx(lower.low)


def test_intervals_contain_the_estimate_and_nest_by_level():
    x = np.random.default_rng(0).normal(3, 2, size=7)
    widths = [S.mean_interval(x, level).width for level in (0.5, 0.8, 0.9, 0.95, 0.99)]
    assert widths == sorted(widths) and len(set(widths)) == 5
    for level in (0.8, 0.95):
        for method in (S.mean_interval, lambda v, lv: S.accuracy_interval(50 + v, lv)):
            inner, outer = method(x, level), method(x, 0.99)
            assert inner.contains(inner.estimate)
            assert outer.low <= inner.low <= inner.high <= outer.high


def test_interval_label():
    interval = S.Interval(-2.1, -6.94, 2.6, 0.95, "two-sided", 6, 5, "student-t")
    assert str(interval) == "−2.1 [−6.9, +2.6] (95%)"
    assert interval.label(signed=False, scale=10, digits=0) == "−21 [−69, 26] (95%)"
    one = S.mean_interval([1.0, 2.0, 3.0], 0.9, "one-sided lower")
    assert one.label().endswith("+∞) (90%, one-sided lower)")


def test_intervals_need_two_values_and_a_valid_level():
    for bad in ([1.0], [], [1.0, math.nan]):
        with pytest.raises(ValueError):
            S.mean_interval(bad)
    for level, sides in ((1.0, "two-sided"), (0.4, "one-sided lower"), (0.9, "both")):
        with pytest.raises(ValueError):
            S.mean_interval([1.0, 2.0], level, sides)


def test_seed_summary_counts_what_it_leaves_out():
    summary = S.seed_summary([0.8, None, 0.9, math.nan, True, 0.7])
    assert (summary.n, summary.dropped) == (3, 3)
    assert summary.as_dict()["low"] == pytest.approx(0.8 - T975_2 * 0.1 / math.sqrt(3))
    assert S.seed_summary([0.5]).as_dict() == {"mean": 0.5, "sd": None, "low": None, "high": None}
    assert S.seed_summary([]).n == 0


def test_pairing_uses_common_seeds_and_reports_the_rest():
    delta = S.paired_delta_interval(
        {0: 10.0, 1: 12.0, 2: 11.0, 5: 1.0}, {0: 9.0, 1: 10.0, 2: 11.5, 7: 3.0}
    )
    assert delta.pairing.seeds == (0, 1, 2) and delta.pairing.dropped == (5, 7)
    assert (delta.pairing.candidate_only, delta.pairing.reference_only) == ((5,), (7,))
    assert delta.deltas == (1.0, 2.0, -0.5)
    assert delta.interval == S.mean_interval([1.0, 2.0, -0.5])
    rel = S.paired_delta_interval({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0}, relative=True)
    assert rel.deltas == (1.0, 0.5)
    one = S.paired_delta_interval({0: 2.0, 1: 3.0}, {1: 2.5})
    assert (one.mean, one.interval) == (0.5, None)


def test_accuracy_interval_stays_in_0_100_where_the_plain_t_leaves_it():
    accuracies = [99.5, 92.0, 99.9]
    plain = S.mean_interval(accuracies)
    assert plain.high > 100  # the old report would print an upper bound above 100%
    bounded = S.accuracy_interval(accuracies)
    assert 0 < bounded.low < bounded.estimate < bounded.high < 100
    assert bounded.estimate == pytest.approx(statistics.fmean(accuracies))
    # by hand: logit(p) -+ t * se(p) / (p (1 - p)), back-transformed
    p = statistics.fmean(accuracies) / 100
    se = statistics.stdev(accuracies) / 100 / math.sqrt(3) / (p * (1 - p))
    logit = math.log(p / (1 - p))
    assert bounded.high == pytest.approx(100 / (1 + math.exp(-(logit + T975_2 * se))))
    assert bounded.low == pytest.approx(100 / (1 + math.exp(-(logit - T975_2 * se))))
    lower = S.accuracy_interval(accuracies, 0.95, "one-sided lower")
    assert lower.high == 100.0 and lower.low > bounded.low
    assert S.accuracy_interval([0.995, 0.92, 0.999], scale=1.0).high < 1.0
    for extreme in ([100.0, 100.0, 100.0], [0.0, 0.0], [97.0, 97.0, 97.0]):
        point = S.accuracy_interval(extreme)
        assert point.low == point.estimate == point.high
    with pytest.raises(ValueError):
        S.accuracy_interval([99.0, 100.5])


@pytest.mark.parametrize(
    "accuracies", [[72, 75, 70, 74, 73, 71], [48.0, 55.5, 51.0, 50.2], [81.3, 84.0, 82.2]]
)
def test_accuracy_interval_agrees_with_the_plain_t_in_mid_range(accuracies):
    plain, bounded = S.mean_interval(accuracies), S.accuracy_interval(accuracies)
    assert bounded.estimate == pytest.approx(plain.estimate)
    # the two differ at second order in the half-width: 5% of the width even at n = 3
    assert bounded.low == pytest.approx(plain.low, abs=0.05 * plain.width)
    assert bounded.high == pytest.approx(plain.high, abs=0.05 * plain.width)


# ---------------------------------------------------------------- power and decisions


def test_sd_upper_bound_and_the_pilot_design():
    ucb = S.sd_upper_bound(1.46, 6)
    assert ucb.high == pytest.approx(1.46 * math.sqrt(5 / CHI2_020_5), rel=1e-9)
    assert ucb.high == pytest.approx(2.133, abs=1e-3) and ucb.sides == "one-sided upper"
    # the design sized from the bound, 2-point margin, true difference 0: 9 pairs
    assert S.seeds_for_power(ucb.high, 2.0) == 9
    assert S.power_one_sided(2.0, ucb.high, 8) < 0.8 <= S.power_one_sided(2.0, ucb.high, 9)
    # from the point estimate the exact power needs 5 (the old approximation said 6)
    assert S.seeds_for_power(1.46, 2.0) == 5


def _power_by_integration(shift: float, sd: float, n: int, level: float) -> float:
    """P(Z + delta > t_c * sqrt(V / df)), V ~ chi2(df): the noncentral t's tail, integrated
    over V without scipy's nct."""
    from scipy import integrate, stats

    df, delta, critical = n - 1, shift * math.sqrt(n) / sd, stats.t.ppf(level, n - 1)
    inner = lambda v: stats.norm.sf(critical * math.sqrt(v / df) - delta) * stats.chi2.pdf(v, df)  # noqa: E731
    return integrate.quad(inner, 0, np.inf, epsabs=1e-12)[0]


@pytest.mark.parametrize(("sd", "n"), [(1.5, 3), (1.46, 6), (2.0, 12)])
def test_detectable_difference_has_the_stated_power(sd, n):
    shift = S.detectable_difference(sd, n)
    assert _power_by_integration(shift, sd, n, 0.95) == pytest.approx(0.8, abs=1e-6)
    approx = (S.t_quantile(0.95, n - 1) + S.t_quantile(0.8, n - 1)) * sd / math.sqrt(n)
    assert shift == pytest.approx(approx, rel=0.015)  # the textbook approximation
    big = S.detectable_difference(sd, 4000)
    assert big == pytest.approx((1.644854 + 0.841621) * sd / math.sqrt(4000), rel=2e-3)


def test_seeds_for_power_is_the_smallest_sufficient_n():
    n = S.seeds_for_power(2.0, margin=2.0)
    assert S.power_one_sided(2.0, 2.0, n) >= 0.8 > S.power_one_sided(2.0, 2.0, n - 1)
    assert S.seeds_for_power(4.0, margin=2.0) > n
    assert S.seeds_for_power(2.0, margin=2.0, true_difference=1.0) < n
    with pytest.raises(ValueError):
        S.seeds_for_power(2.0, margin=1.0, true_difference=-1.0)
    # t_{0.975,17} * 2 / sqrt(18) = 2.1098 * 0.4714 = 0.9946; t_{0.975,16} * 2 / sqrt(17) = 1.028
    assert S.seeds_for_half_width(2.0, 1.0) == 18


def test_non_inferiority_verdicts():
    reference = by_seed([81.0, 81.2, 80.9])
    close = S.non_inferiority(by_seed([80.5, 81.5, 81.0]), reference, margin=2.0)
    assert close.verdict == S.NO_LOSS and close.lower_bound > -2.0
    assert close.p_value < 0.05
    worse = S.non_inferiority(by_seed([75.0, 77.5, 75.5]), reference, margin=2.0)
    assert worse.verdict == S.LOSS and worse.upper_bound < -2.0
    noisy = S.non_inferiority(by_seed([70.0, 90.0, 81.0]), reference, margin=2.0)
    assert noisy.verdict == S.UNDECIDED and noisy.p_value > 0.05
    one = S.non_inferiority({0: 80.0, 1: 79.0}, {1: 80.0, 4: 70.0}, margin=2.0)
    assert (one.verdict, one.mean, one.pairing.dropped) == (S.NOT_ENOUGH_PAIRS, -1.0, (0, 4))
    d = [-0.5, 0.3, 0.1]
    expected = statistics.fmean(d) - T95_2 * statistics.stdev(d) / math.sqrt(3)
    assert close.lower_bound == pytest.approx(expected)


def test_holm_on_a_known_family():
    result = S.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    assert result.adjusted == pytest.approx((0.03, 0.06, 0.06, 0.02))
    assert result.rejected == (True, False, False, True)
    assert S.holm([0.9, 0.8]).adjusted == (1.0, 1.0)  # capped at 1, kept monotone
    assert S.holm([]).adjusted == ()


# ---------------------------------------------------------------- endpoints


def test_time_to_target():
    x, acc = [100, 200, 300, 400], [40.0, 55.0, 70.0, 68.0]
    hit = S.time_to_target(x, acc, 60.0)
    assert (hit.value, hit.reached) == (pytest.approx(200 + 100 * 5 / 15), True)
    assert S.time_to_target(x, acc, 30.0).value == 100  # reached at the first snapshot
    assert S.time_to_target(x, acc, 70.0).value == 300
    censored = S.time_to_target(x, acc, 75.0)
    assert (censored.value, censored.reached) == (400, False)
    with pytest.raises(ValueError):
        S.time_to_target([1, 1, 2], [1, 2, 3], 2.0)


def test_area_under_curve_by_hand():
    x, acc = [10, 20, 40], [50.0, 60.0, 80.0]
    held = 10 * 50 + 10 * 55 + 20 * 70  # [0, 10] held at 50, then trapezoids
    assert S.area_under_curve(x, acc, 40) == pytest.approx(held)
    from_init = 10 * (10 + 50) / 2 + 10 * 55 + 20 * 70
    assert S.area_under_curve(x, acc, 40, initial_accuracy=10.0) == pytest.approx(from_init)
    cut = 10 * 50 + 10 * 55 + 10 * (60 + 70) / 2  # truncated at 30, accuracy 70 there
    assert S.area_under_curve(x, acc, 30) == pytest.approx(cut)
    assert S.area_under_curve(x, acc, 5) == pytest.approx(250)
    with pytest.raises(ValueError):
        S.area_under_curve(x, acc, 41)


def test_paired_time_ratio_needs_five_of_six_and_keeps_the_censored():
    tt = S.TimeToTarget
    reference = {s: tt(100.0 + 10 * s, True, 70.0) for s in range(6)}
    ratios = [0.8, 0.7, 0.9, 0.75, 0.85, 0.8]
    candidate = {s: tt(r * reference[s].value, True, 70.0) for s, r in enumerate(ratios)}
    full = S.paired_time_ratio(candidate, reference)
    logs = S.mean_interval([math.log(r) for r in ratios])
    assert full.interval.estimate == pytest.approx(math.exp(logs.estimate))
    assert (full.interval.low, full.interval.high) == pytest.approx(
        (math.exp(logs.low), math.exp(logs.high))
    )
    one_censored = {**candidate, 2: tt(400.0, False, 70.0), 9: tt(50.0, True, 70.0)}
    five = S.paired_time_ratio(one_censored, reference)
    assert five.reported and five.interval.n == 5 and five.candidate_censored == (2,)
    assert five.candidate_only == (9,) and five.counts().startswith("5/6")
    two_censored = {**one_censored, 4: tt(400.0, False, 70.0)}
    four = S.paired_time_ratio(two_censored, reference)
    assert not four.reported and four.reached_both == (0, 1, 3, 5)
    assert four.candidate_censored == (2, 4)
    assert S.paired_time_ratio(two_censored, reference, min_fraction=0.6).reported


# ---------------------------------------------------------------- the implementations replaced
# (the hand t, verdicts and t tables of bench.ablate and bench.report gave these functions'
# numbers where they were right when they were replaced: commits 4f49b55 and 7967f53)


def test_same_quantile_and_bootstrap_as_timing_harness():
    peer = [3.1, 3.3, 2.9, 3.0, 3.6, 3.2, 3.05, 2.95, 3.4, 3.15]
    ours = [1.5, 1.6, 1.4, 1.55, 1.7, 1.52, 1.48, 1.45, 1.66, 1.58]
    pinned = {
        True: (1.9593653411869998, 2.088815789473684),
        False: (1.9019965277777777, 2.1718250798722045),
    }
    for paired, (low, high) in pinned.items():  # the harness's output, seed 3, 500 resamples
        now = S.bootstrap_ratio_of_medians(peer, ours, paired=paired, resamples=500, seed=3)
        assert (now.estimate, now.low, now.high) == pytest.approx(
            (2.035830618892508, low, high), rel=1e-15
        )
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 40):
        values = sorted(rng.lognormal(size=size))
        for q in (0.0, 0.025, 0.25, 0.5, 0.75, 1.0):
            assert S.quantile(values, q) == float(np.quantile(values, q))
    was = (2.0394736842105265, 1.9354838709677418, 2.1052631578947367)  # the harness's, seed 9
    now = S.bootstrap_ratio_of_medians(peer[:7], ours[:7], resamples=300, seed=9)
    assert (now.estimate, now.low, now.high) == pytest.approx(was, rel=1e-15)
    constant = S.bootstrap_ratio_of_medians([3.0] * 10, [1.5] * 10, resamples=50)
    assert constant.low == constant.estimate == constant.high == 2.0


def test_same_half_width_sizing_as_finetune_compare():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "reports" / "finetune" / "compare.py"
    if not script.exists():
        pytest.skip(f"{script} moved or removed")
    spec = importlib.util.spec_from_file_location("finetune_compare_for_stats", script)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    for sd, half in ((2.0, 1.0), (1.46, 2.0), (3.7, 0.5), (0.1, 5.0)):
        assert S.seeds_for_half_width(sd, half) == compare.seeds_for_half_width(sd, half, 0.95)


def test_same_block_bootstrap_as_timing_projection():
    # the projection's block picks (sum, first draw's first indices) and totals, pinned
    was_picks = {
        1: (0, [0]),
        7: (1098, [5, 6, 6, 3, 6, 6, 6]),
        10: (2304, [7, 9, 8, 5, 9, 9, 9, 0, 4, 6]),
        23: (12803, [16, 17, 18, 21, 22, 0, 20, 21, 22, 11, 12, 13]),
        61: (92606, [44, 45, 46, 47, 48, 49, 50, 57, 58, 59, 60, 0]),
    }
    for rounds, (total, first) in was_picks.items():
        picks = S.block_picks(np.random.default_rng(4), rounds, 50)
        assert picks.shape == (50, rounds) and int(picks.sum()) == total
        assert picks[0].tolist()[:12] == first
    rng = np.random.default_rng(7)
    steps, steps2 = (tuple(rng.normal(m, 0.1, 23)) for m in (1.0, 0.8))
    load = tuple(rng.normal(0.3, 0.05, 5))
    recipes = {
        "a": [(steps, 100.0, True), (load, 10.0, False)],
        "b": [(steps2, 100.0, True), (load, 12.0, False), ((1.0,), 0.0, False)],
    }
    was = (
        {
            "a": (99.10454611987673, 95.36482971644723, 101.8357071369586),
            "b": (80.79900761761273, 77.77279289976872, 83.63802902317491),
        },
        {
            "a": (0.0, 0.0, 0.0),
            "b": (0.18470937226352502, 0.14291405823884495, 0.22190560173532412),
        },
    )
    now = S.bootstrap_totals(
        {k: [S.Term(*t) for t in v] for k, v in recipes.items()}, "a", resamples=300, seed=5
    )
    for old_part, new_part in zip(was, now, strict=True):
        for name in recipes:
            n = new_part[name]
            assert (n.estimate, n.low, n.high) == old_part[name]
