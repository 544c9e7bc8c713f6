"""bench.stats by simulation (numpy, fixed seeds, a few thousand draws each): the power the
design functions promise, the level of the non-inferiority test, and the coverage of the
t and accuracy intervals. Tolerances are about 3 binomial standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from bench import stats as S

DRAWS = 4000


def _tolerance(p: float, draws: int = DRAWS) -> float:
    return 3.2 * math.sqrt(p * (1 - p) / draws)


def _one_sided_lower_bounds(d: np.ndarray, level: float) -> np.ndarray:
    n = d.shape[1]
    return d.mean(1) - S.t_quantile(level, n - 1) * d.std(1, ddof=1) / math.sqrt(n)


@pytest.mark.parametrize(("n", "sd"), [(3, 1.0), (6, 1.46), (9, 2.13)])
def test_the_detectable_difference_is_detected_80_percent_of_the_time(n, sd):
    margin = 2.0
    loss = margin + S.detectable_difference(sd, n)  # a true loss this far beyond the margin
    d = np.random.default_rng(n).normal(-loss, sd, size=(DRAWS, n))
    upper = -_one_sided_lower_bounds(-d, 0.95)  # one-sided upper bounds
    assert np.mean(upper < -margin) == pytest.approx(0.8, abs=_tolerance(0.8))


def test_seeds_for_power_gives_80_percent_no_loss_verdicts():
    sd, margin = 2.133, 2.0
    n = S.seeds_for_power(sd, margin)  # 9
    d = np.random.default_rng(11).normal(0.0, sd, size=(DRAWS, n))
    rate = np.mean(_one_sided_lower_bounds(d, 0.95) > -margin)
    assert rate == pytest.approx(S.power_one_sided(margin, sd, n), abs=_tolerance(0.8))
    assert rate > 0.8 - _tolerance(0.8)


def test_non_inferiority_keeps_its_level_at_the_margin():
    rng = np.random.default_rng(5)
    rejected = p_small = 0
    for _ in range(1000):  # the full function, true mean exactly at -margin
        cand = rng.normal(78.0, 1.5, 6)
        result = S.non_inferiority(dict(enumerate(cand)), dict.fromkeys(range(6), 80.0), 2.0)
        rejected += result.verdict == S.NO_LOSS
        p_small += result.p_value < 0.05
    assert rejected == p_small  # the p-value and the bound decide alike
    assert rejected / 1000 == pytest.approx(0.05, abs=_tolerance(0.05, 1000))


@pytest.mark.parametrize("n", [3, 6])
def test_t_interval_covers_the_mean_at_its_level(n):
    x = np.random.default_rng(n).normal(1.0, 3.0, size=(DRAWS, n))
    half = S.t_quantile(0.975, n - 1) * x.std(1, ddof=1) / math.sqrt(n)
    vectorised = np.abs(x.mean(1) - 1.0) <= half
    assert vectorised.mean() == pytest.approx(0.95, abs=_tolerance(0.95))
    for row, hit in zip(x[:200], vectorised[:200], strict=True):  # the function itself
        assert S.mean_interval(row).contains(1.0) == hit


@pytest.mark.parametrize(("mu", "spread", "n"), [(0.8, 0.3, 6), (2.0, 0.5, 6), (2.5, 0.4, 10)])
def test_accuracy_interval_covers_the_mean_accuracy(mu, spread, n):
    """Per-seed accuracies expit(mu + spread z) (69% to 92% on average, skewed towards
    100): the interval covers their true mean at about 95% and never leaves [0, 100]."""
    rng = np.random.default_rng(int(10 * mu) + n)
    truth = 100 * float(special.expit(mu + spread * rng.standard_normal(2_000_000)).mean())
    samples = 100 * special.expit(mu + spread * rng.standard_normal((1500, n)))
    intervals = [S.accuracy_interval(row) for row in samples]
    assert all(0.0 <= i.low <= i.estimate <= i.high <= 100.0 for i in intervals)
    coverage = np.mean([i.contains(truth) for i in intervals])
    assert coverage == pytest.approx(0.95, abs=_tolerance(0.95, 1500))


def test_accuracy_interval_near_100_is_bounded_and_no_worse_than_the_plain_t():
    """Per-seed accuracies around 97-99.9% with a long left tail (the Table-2 regime): the
    plain t interval leaves [0, 100] and under-covers; the logit one stays inside and
    covers at least as often."""
    rng = np.random.default_rng(3)
    truth = 100 * float(special.expit(4.0 + rng.standard_normal(2_000_000)).mean())
    samples = 100 * special.expit(4.0 + rng.standard_normal((1500, 3)))
    plain = [S.mean_interval(row) for row in samples]
    bounded = [S.accuracy_interval(row) for row in samples]
    assert np.mean([p.high > 100 for p in plain]) > 0.3
    assert all(b.high < 100 for b in bounded if b.low < b.high)
    plain_coverage = np.mean([p.contains(truth) for p in plain])
    bounded_coverage = np.mean([b.contains(truth) for b in bounded])
    assert bounded_coverage >= plain_coverage + 0.03
