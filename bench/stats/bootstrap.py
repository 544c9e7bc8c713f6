"""Timing statistics: the linear quantile and the percentile bootstraps of ``bench/timing``.

- ``quantile``: linear interpolation between order statistics (numpy's default, type 7).
- ``bootstrap_ratio_of_medians``: percentile bootstrap of median(num) / median(den), rounds
  resampled together when paired; draws from ``random.Random(seed)`` in the harness's
  order, so its intervals reproduce the harness's.
- ``block_picks`` / ``bootstrap_totals``: percentile bootstrap of weighted sums of means
  (projected totals) and of savings against a baseline; paired terms share rounds drawn
  in circular blocks of consecutive rounds (``BOOTSTRAP_BLOCKS`` blocks), other terms are
  drawn on their own (``numpy.random.default_rng(seed)``, the projection's draw order).

Intervals are two-sided percentile intervals at ``level`` (default 0.95).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bench.stats.intervals import Interval, check_level

# Paired rounds are resampled in about this many blocks of consecutive rounds: a machine's
# speed drifts over seconds, so neighbouring rounds are correlated; up to 10 rounds the
# blocks are single rounds (the plain paired bootstrap).
BOOTSTRAP_BLOCKS = 10


@dataclass(frozen=True)
class BootstrapInterval(Interval):
    """A percentile-bootstrap interval (``df`` None) and its number of ``resamples``."""

    resamples: int


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (``numpy.quantile``'s default); sorting not needed."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    if len(values) == 0:
        raise ValueError("quantile of no values")
    return float(np.quantile(np.asarray(values, dtype=float), q))


def percentile_bounds(draws: np.ndarray, level: float) -> tuple[float, float]:
    """The (1 - level) / 2 and (1 + level) / 2 quantiles of bootstrap draws."""
    check_level(level, "two-sided")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ratio_of_medians(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    paired: bool = True,
    resamples: int = 4000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Percentile bootstrap of median(numerator) / median(denominator).

    ``paired``: index i of both ran in the same interleaved round, so rounds are resampled
    together. Speed ratio of ours vs a peer: numerator = peer times, denominator = ours.
    """
    if paired and len(numerator) != len(denominator):
        raise ValueError("paired bootstrap needs equally many samples on both sides")
    if not len(numerator) or not len(denominator):
        raise ValueError("bootstrap needs samples on both sides")
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    generator = random.Random(seed)
    n_num, n_den = len(num), len(den)
    num_picks = np.empty((resamples, n_num), dtype=np.intp)
    den_picks = np.empty((resamples, n_den), dtype=np.intp)
    for r in range(resamples):  # the harness's draw order, one resample at a time
        num_picks[r] = [generator.randrange(n_num) for _ in range(n_num)]
        den_picks[r] = (
            num_picks[r] if paired else [generator.randrange(n_den) for _ in range(n_den)]
        )
    ratios = np.median(num[num_picks], axis=1) / np.median(den[den_picks], axis=1)
    low, high = percentile_bounds(ratios, level)
    method = "paired percentile bootstrap" if paired else "percentile bootstrap"
    return BootstrapInterval(
        float(np.median(num) / np.median(den)),
        low,
        high,
        level,
        "two-sided",
        n_num,
        None,
        method,
        resamples,
    )


def block_picks(
    generator: np.random.Generator, rounds: int, resamples: int, blocks: int = BOOTSTRAP_BLOCKS
) -> np.ndarray:
    """[resamples, rounds] round indices of a circular block bootstrap: each draw strings
    together blocks of ``ceil(rounds / blocks)`` consecutive rounds (wrapping round the
    end), each starting at a uniformly drawn round, cut to ``rounds``."""
    block = math.ceil(rounds / blocks)
    count = math.ceil(rounds / block)
    starts = generator.integers(0, rounds, size=(resamples, count))
    picks = (starts[:, :, None] + np.arange(block)) % rounds  # [resamples, count, block]
    return picks.reshape(resamples, count * block)[:, :rounds]


class TermLike(Protocol):
    """``coefficient * mean(samples)`` seconds; ``paired``: samples are interleaved rounds."""

    @property
    def samples(self) -> Sequence[float]: ...

    @property
    def coefficient(self) -> float: ...

    @property
    def paired(self) -> bool: ...


@dataclass(frozen=True)
class Term:
    """A concrete ``TermLike``."""

    samples: tuple[float, ...]
    coefficient: float
    paired: bool = False


def term_value(term: TermLike) -> float:
    return term.coefficient * float(np.mean(term.samples)) if term.coefficient else 0.0


def total(terms: Sequence[TermLike]) -> float:
    return sum(term_value(term) for term in terms)


def _draw_sums(
    recipes: Mapping[str, Sequence[TermLike]], generator: np.random.Generator, resamples: int
) -> tuple[dict[str, np.ndarray], int]:
    rounds = {len(t.samples) for terms in recipes.values() for t in terms if t.paired}
    if len(rounds) > 1:
        raise ValueError(f"paired terms need equally many rounds, got {sorted(rounds)}")
    n_rounds = rounds.pop() if rounds else 0
    paired_picks = block_picks(generator, n_rounds, resamples) if n_rounds else None
    draws: dict[str, np.ndarray] = {}
    for name, terms in recipes.items():
        sums = np.zeros(resamples)
        for term in terms:
            if not term.coefficient:
                continue
            values = np.asarray(term.samples, dtype=float)
            if term.paired:
                assert paired_picks is not None
                picks = paired_picks
            else:
                picks = generator.integers(0, len(values), size=(resamples, len(values)))
            sums += term.coefficient * values[picks].mean(axis=1)
        draws[name] = sums
    return draws, n_rounds


def bootstrap_totals(
    recipes: Mapping[str, Sequence[TermLike]],
    baseline: str,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, BootstrapInterval], dict[str, BootstrapInterval]]:
    """Percentile-bootstrap intervals of each recipe's total and of its saving against
    ``baseline`` (1 - total / baseline total), every recipe resampled in the same draw.

    -> ({recipe: total}, {recipe: saving}); ``n`` is the paired rounds (0 if none)."""
    draws, n_rounds = _draw_sums(recipes, np.random.default_rng(seed), resamples)
    method = "percentile bootstrap, circular blocks of rounds"
    base_value = total(recipes[baseline])
    totals: dict[str, BootstrapInterval] = {}
    savings: dict[str, BootstrapInterval] = {}
    for name, terms in recipes.items():
        value = total(terms)
        low, high = percentile_bounds(draws[name], level)
        totals[name] = BootstrapInterval(
            value, low, high, level, "two-sided", n_rounds, None, method, resamples
        )
        s_low, s_high = percentile_bounds(1.0 - draws[name] / draws[baseline], level)
        savings[name] = BootstrapInterval(
            1.0 - value / base_value,
            s_low,
            s_high,
            level,
            "two-sided",
            n_rounds,
            None,
            method,
            resamples,
        )
    return totals, savings
