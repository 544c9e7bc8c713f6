"""Power and design size of the one-sided paired t test, from the noncentral t.

A one-sided bound at ``level`` over n pairs of spread ``sd`` clears a bound lying ``shift``
beyond the true mean when T' > t_{level, n-1}, T' noncentral t with n - 1 degrees of
freedom and noncentrality shift * sqrt(n) / sd (``scipy.stats.nct``), so

    power(shift) = P(T' > t_{level, n-1}).

Defaults: level 0.95 (one-sided), power 0.8; the sd's upper confidence bound is one-sided
at 0.8 (chi-square).
"""

from __future__ import annotations

import math

from scipy import optimize, stats

from bench.stats.intervals import Interval, check_level, t_quantile


def _check(sd: float, n: int) -> None:
    if n < 2 or int(n) != n:
        raise ValueError(f"n={n}: needs an integer of at least 2 pairs")
    if not sd >= 0:
        raise ValueError(f"sd={sd}: must be >= 0")


def power_one_sided(shift: float, sd: float, n: int, level: float = 0.95) -> float:
    """Probability that the one-sided t bound at ``level`` from ``n`` pairs of true spread
    ``sd`` lies beyond a bound ``shift`` away from the true mean (on the bound's side)."""
    _check(sd, n)
    check_level(level, "one-sided lower")
    if sd == 0:
        return 1.0 if shift > 0 else 0.0
    critical = t_quantile(level, n - 1)
    return float(stats.nct.sf(critical, n - 1, shift * math.sqrt(n) / sd))


def detectable_difference(sd: float, n: int, level: float = 0.95, power: float = 0.8) -> float:
    """The shift past a bound that ``n`` pairs of spread ``sd`` clear with probability
    ``power`` (one-sided at ``level``): ncp * sd / sqrt(n), ncp solving
    P(nct(n - 1, ncp) > t_{level, n-1}) = power."""
    _check(sd, n)
    check_level(level, "one-sided lower")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power={power}: allowed values lie strictly between 0 and 1")
    if sd == 0:
        return 0.0
    critical, df = t_quantile(level, n - 1), n - 1

    def excess(ncp: float) -> float:
        return float(stats.nct.sf(critical, df, ncp)) - power

    high = critical + 4.0
    while excess(high) < 0:
        high *= 2.0
    ncp = optimize.brentq(excess, -critical - 10.0, high, xtol=1e-12, rtol=1e-12)
    return float(ncp) * sd / math.sqrt(n)


def seeds_for_power(
    sd: float,
    margin: float,
    *,
    true_difference: float = 0.0,
    level: float = 0.95,
    power: float = 0.8,
    most: int = 1000,
) -> int:
    """Fewest pairs (>= 2) for which a true mean difference ``true_difference`` (0: no
    loss) is declared "no loss within ``margin``" with probability ``power``, from the
    spread ``sd`` of paired differences (size from ``sd_upper_bound`` of a pilot's sd)."""
    room = margin + true_difference
    if room <= 0:
        raise ValueError(
            f"margin + true_difference = {room}: a true loss at or beyond the margin "
            "can never be declared no loss"
        )
    for n in range(2, most + 1):
        if power_one_sided(room, sd, n, level) >= power:
            return n
    raise ValueError(f"more than {most} pairs needed (sd={sd}, margin={margin})")


def sd_upper_bound(sd: float, n: int, level: float = 0.8) -> Interval:
    """One-sided upper confidence bound of a normal population's sd from a sample sd of
    ``n`` values: sd * sqrt((n - 1) / chi2_{1-level, n-1}). Returned as an Interval [0, UCB]."""
    _check(sd, n)
    check_level(level, "one-sided upper")
    bound = sd * math.sqrt((n - 1) / float(stats.chi2.ppf(1.0 - level, n - 1)))
    return Interval(sd, 0.0, bound, level, "one-sided upper", n, n - 1, "chi-square")


def seeds_for_half_width(
    sd: float, half_width: float, level: float = 0.95, *, most: int = 10_000
) -> int:
    """Fewest values (>= 2) whose two-sided t interval of the mean at ``level`` has a half
    width of at most ``half_width``, given their spread ``sd`` (planning, not power)."""
    if half_width <= 0:
        raise ValueError(f"half_width={half_width}: must be positive")
    check_level(level, "two-sided")
    for n in range(2, most + 1):
        if t_quantile((1.0 + level) / 2.0, n - 1) * sd / math.sqrt(n) <= half_width:
            return n
    raise ValueError(f"more than {most} values needed (sd={sd}, half_width={half_width})")
