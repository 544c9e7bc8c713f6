"""Paired one-sided verdicts (bench/ablate/non_inferiority.py): t quantiles against published
table values, verdicts on constructed differences, power arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.ablate.non_inferiority import (
    LOSS,
    NO_LOSS,
    UNDECIDED,
    compare_no_loss,
    seeds_for_power,
    smallest_detectable_difference,
    t_cdf,
    t_quantile,
)


@pytest.mark.parametrize(
    ("p", "df", "expected"),  # standard t-table values
    [
        (0.95, 1, 6.313752),
        (0.95, 2, 2.919986),
        (0.975, 2, 4.302653),
        (0.8, 2, 1.060660),
        (0.95, 5, 2.015048),
        (0.975, 9, 2.262157),
        (0.95, 9, 1.833113),
        (0.8, 9, 0.883404),
        (0.95, 30, 1.697261),
    ],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-6)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=2e-6)
    assert t_cdf(expected, df) == pytest.approx(p, abs=1e-6)


def test_t_cdf_is_cauchy_at_one_df_and_tends_to_the_normal():
    for t in (-3.0, -0.5, 0.0, 1.0, 4.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi)
    normal = 0.5 * (1 + math.erf(1.5 / math.sqrt(2)))
    assert t_cdf(1.5, 400) == pytest.approx(normal, abs=1e-3)
    with pytest.raises(ValueError, match="df=0"):
        t_cdf(1.0, 0)


def test_student_t_bounds_and_verdicts():
    reference = [80.0, 82.0, 81.0]
    close = compare_no_loss([80.5, 81.5, 81.0], reference, margin=2.0)
    d = np.array([0.5, -0.5, 0.0])
    half = 2.919986 * d.std(ddof=1) / math.sqrt(3)
    assert close.method == "student-t" and close.n == 3
    assert close.lower == pytest.approx(-half, abs=1e-5)
    assert close.upper == pytest.approx(half, abs=1e-5)
    assert close.verdict == NO_LOSS
    worse = compare_no_loss([75.0, 77.5, 75.5], reference, margin=2.0)
    assert worse.upper < -2.0 and worse.verdict == LOSS
    noisy = compare_no_loss([70.0, 90.0, 81.0], reference, margin=2.0)
    assert noisy.verdict == UNDECIDED
    assert noisy.detectable > close.detectable > 2.0


def test_bootstrap_from_ten_pairs_is_close_to_t():
    rng = np.random.default_rng(1)
    reference = rng.normal(80, 2, 40)
    candidate = reference + rng.normal(-0.5, 1.0, 40)
    result = compare_no_loss(candidate, reference, margin=2.0)
    assert result.method == "paired bootstrap"
    d = candidate - reference
    half = t_quantile(0.95, 39) * d.std(ddof=1) / math.sqrt(40)
    assert result.lower == pytest.approx(d.mean() - half, abs=0.1)
    assert result.upper == pytest.approx(d.mean() + half, abs=0.1)
    assert result.verdict == NO_LOSS
    again = compare_no_loss(candidate, reference, margin=2.0)
    assert again == result  # seeded


def test_power_arithmetic():
    # (t_.95 + t_.8) * sd / sqrt(n) at n = 10, df 9
    assert smallest_detectable_difference(2.0, 10) == pytest.approx(
        (1.833113 + 0.883404) * 2.0 / math.sqrt(10), abs=1e-5
    )
    n = seeds_for_power(2.0, margin=2.0)
    assert (
        smallest_detectable_difference(2.0, n) <= 2.0 < smallest_detectable_difference(2.0, n - 1)
    )
    assert seeds_for_power(4.0, margin=2.0) > n  # more spread, more seeds
    assert seeds_for_power(2.0, margin=2.0, true_difference=1.0) < n
    with pytest.raises(ValueError, match="can never be declared"):
        seeds_for_power(2.0, margin=1.0, true_difference=-1.0)


def test_bad_inputs_name_the_value():
    with pytest.raises(ValueError, match=r"one reference per candidate seed \(3 vs 2\)"):
        compare_no_loss([1, 2, 3], [1, 2], margin=1)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        compare_no_loss([1], [1], margin=1)
    with pytest.raises(ValueError, match="margin=-1"):
        compare_no_loss([1, 2], [1, 2], margin=-1)
