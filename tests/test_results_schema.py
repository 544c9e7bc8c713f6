"""The verdict fields of a grid's results are typed (``bench.schema.Comparison``,
``ControlGain``, ``PairedDeltas``, the ``StatisticsSpec`` they were judged under) and store
the JSON the untyped dicts stored: the committed results load and dump back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.requests import StatisticsSpec
from bench.schema import Comparison, ControlGain, GridResults, PairedDeltas

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "reports").glob("*/results.json"))
JUDGED = ("statistics", "comparisons", "control_gains", "paired_deltas", "paper_headline")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_results_store_the_same_judged_fields_after_a_round_trip(path: Path):
    stored = json.loads(path.read_text())
    results = GridResults.model_validate(stored)
    dumped = results.model_dump(mode="json")
    for name in JUDGED:
        if name in stored:
            assert dumped[name] == stored[name], name


def test_table2_results_round_trip_byte_for_byte():
    path = ROOT / "reports" / "table2" / "results.json"
    results = GridResults.model_validate_json(path.read_text())
    assert json.dumps(results.model_dump(mode="json"), indent=2) + "\n" == path.read_text()
    assert isinstance(results.statistics, StatisticsSpec)
    assert all(isinstance(c, Comparison) for c in results.comparisons)
    assert all(isinstance(g, ControlGain) for g in results.control_gains)
    assert all(isinstance(d, PairedDeltas) for d in results.paired_deltas)
    assert results.comparisons[0].verdict == "undecided"


def test_a_comparison_without_enough_pairs_stores_no_bounds():
    single = Comparison(
        name="a vs b",
        candidate="a",
        reference="b",
        n=1,
        seeds=[0],
        margin_points=2.0,
        confidence=0.95,
        verdict="not enough pairs",
        mean_points=3.0,
    )
    assert list(single.model_dump(mode="json")) == [
        "name",
        "candidate",
        "reference",
        "n",
        "seeds",
        "margin_points",
        "confidence",
        "verdict",
        "mean_points",
    ]
    assert Comparison.model_validate(single.model_dump(mode="json")) == single


def test_an_unknown_verdict_or_field_is_rejected():
    with pytest.raises(ValueError, match="verdict"):
        Comparison.model_validate(
            {
                "name": "a vs b",
                "candidate": "a",
                "reference": "b",
                "n": 0,
                "seeds": [],
                "margin_points": 2.0,
                "confidence": 0.95,
                "verdict": "maybe",
                "mean_points": None,
            }
        )
    with pytest.raises(ValueError, match="surprise"):
        ControlGain.model_validate(
            {
                "row": "a",
                "control": "c",
                "n": 0,
                "gain_points": None,
                "lower_points": None,
                "upper_points": None,
                "confidence": 0.95,
                "required_points": 10.0,
                "passes": None,
                "surprise": 1,
            }
        )
