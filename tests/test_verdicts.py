"""The grid's paired one-sided verdicts, as ``bench.schema.judge`` gets them from
``bench.stats``: t quantiles against published table values, verdicts on constructed
differences (Student's t at every number of pairs), the exact power arithmetic, pairing on
common seeds and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import (
    LOSS,
    NO_LOSS,
    NOT_ENOUGH_PAIRS,
    UNDECIDED,
    detectable_difference,
    non_inferiority,
    power_one_sided,
    seeds_for_power,
    t_cdf,
    t_quantile,
)


def by_seed(values) -> dict[int, float]:
    return dict(enumerate(float(v) for v in values))


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
    reference = by_seed([80.0, 82.0, 81.0])
    close = non_inferiority(by_seed([80.5, 81.5, 81.0]), reference, margin=2.0)
    d = np.array([0.5, -0.5, 0.0])
    half = 2.919986 * d.std(ddof=1) / math.sqrt(3)
    assert close.lower.method == "student-t" and close.n == 3
    assert close.lower_bound == pytest.approx(-half, abs=1e-5)
    assert close.upper_bound == pytest.approx(half, abs=1e-5)
    assert close.verdict == NO_LOSS
    worse = non_inferiority(by_seed([75.0, 77.5, 75.5]), reference, margin=2.0)
    assert worse.upper_bound < -2.0 and worse.verdict == LOSS
    noisy = non_inferiority(by_seed([70.0, 90.0, 81.0]), reference, margin=2.0)
    assert noisy.verdict == UNDECIDED
    assert noisy.detectable_loss > close.detectable_loss > 2.0


def test_student_t_from_ten_pairs_on_too():
    """No switch to a bootstrap at 10 pairs: the bounds are Student's t at every n."""
    rng = np.random.default_rng(1)
    reference = rng.normal(80, 2, 40)
    candidate = reference + rng.normal(-0.5, 1.0, 40)
    result = non_inferiority(by_seed(candidate), by_seed(reference), margin=2.0)
    d = candidate - reference
    half = t_quantile(0.95, 39) * d.std(ddof=1) / math.sqrt(40)
    assert result.lower.method == "student-t" and result.lower.df == 39
    assert result.lower_bound == pytest.approx(d.mean() - half, rel=1e-12)
    assert result.upper_bound == pytest.approx(d.mean() + half, rel=1e-12)
    assert result.verdict == NO_LOSS
    assert non_inferiority(by_seed(candidate), by_seed(reference), margin=2.0) == result


def test_power_arithmetic():
    # the exact shift at n = 10 (df 9) is close to (t_.95 + t_.8) * sd / sqrt(n)
    approximate = (1.833113 + 0.883404) * 2.0 / math.sqrt(10)
    exact = detectable_difference(2.0, 10)
    assert exact == pytest.approx(approximate, rel=0.011)
    assert power_one_sided(exact, 2.0, 10) == pytest.approx(0.8, abs=1e-9)
    n = seeds_for_power(2.0, margin=2.0)
    assert power_one_sided(2.0, 2.0, n) >= 0.8 > power_one_sided(2.0, 2.0, n - 1)
    assert seeds_for_power(4.0, margin=2.0) > n  # more spread, more seeds
    assert seeds_for_power(2.0, margin=2.0, true_difference=1.0) < n
    with pytest.raises(ValueError, match="can never be declared"):
        seeds_for_power(2.0, margin=1.0, true_difference=-1.0)


def test_pairs_are_the_common_seeds_and_bad_inputs_name_the_value():
    three = non_inferiority({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 2: 2.0, 5: 9.0}, margin=1)
    assert three.pairing.seeds == (0, 2) and three.pairing.dropped == (1, 5)
    one = non_inferiority({0: 1.0}, {0: 0.5}, margin=1)
    assert one.verdict == NOT_ENOUGH_PAIRS and one.mean == pytest.approx(0.5)
    assert one.lower is None and one.detectable_loss is None
    with pytest.raises(ValueError, match="margin=-1"):
        non_inferiority(by_seed([1, 2]), by_seed([1, 2]), margin=-1)
