"""A grid's results are typed (``bench.schema.Comparison``, ``ControlGain``, ``PairedDeltas``,
the ``StatisticsSpec`` they were judged under) and at schema 4: the committed results (2)
migrate on read, judged again by ``bench.stats`` from their records (the same verdicts,
bounds and deltas; the detectable loss from the exact noncentral t; no curve, no fine-tune,
no time-to-accuracy endpoint), their run directories named relative to the results, and
render (without a time-to-accuracy section); results of 3 read as 4."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.migrate import load_grid_results
from bench.report.render import render_report
from bench.requests import StatisticsSpec
from bench.schema import Comparison, ControlGain, GridResults, PairedDeltas
from bench.stats import detectable_difference

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "reports").glob("*/results.json"))
TABLE2 = ROOT / "reports" / "table2" / "results.json"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_results_migrate_to_4_and_render(path: Path, tmp_path: Path):
    stored = json.loads(path.read_text())
    assert stored["schema_version"] in (2, 3, 4)
    results = load_grid_results(path)
    assert results.schema_version == 4
    assert [r.run_dir for r in results.records] == [f"runs/{r.run_id}" for r in results.records]
    assert [r.model_dump(exclude={"run_dir"}) for r in results.records] == [
        r.model_dump(exclude={"run_dir"})
        for r in (GridResults.model_validate({**stored, "schema_version": 4}).records)
    ]
    old = stored["schema_version"] < 4
    if old:  # no curve, no fine-tune, so no time-to-accuracy endpoint
        assert all(r.curve is None and r.finetune is None for r in results.records)
        assert results.endpoints == []
    else:  # a time-to-accuracy grid: its endpoints are stored
        assert any(r.curve for r in results.records) and results.endpoints
    again = GridResults.model_validate_json(results.model_dump_json())
    assert again == results  # 4 reads back as written
    written = render_report(path.parent, ("md",), tmp_path / "report")["md"].read_text()
    assert f"Results: `{path.parent}` (schema_version 4)" in written
    assert ("## Time to accuracy" in written) is not old


def test_results_of_3_read_as_4_with_the_same_judgement(tmp_path: Path):
    current = load_grid_results(TABLE2).model_dump(mode="json")
    three = {k: v for k, v in current.items() if k != "endpoints"}
    three["schema_version"] = 3
    (tmp_path / "results.json").write_text(json.dumps(three))
    results = load_grid_results(tmp_path / "results.json")
    assert results.schema_version == 4 and results.endpoints == []
    assert results.model_dump(mode="json") == current


def _close(new: dict, old: dict, skip: tuple[str, ...] = ()) -> None:
    assert set(new) == set(old)
    for key, value in old.items():
        if key not in skip:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            assert new[key] == (pytest.approx(value, rel=1e-9) if number else value), key


def test_table2_is_judged_again_with_the_same_verdicts_and_the_exact_detectable_loss():
    stored = json.loads(TABLE2.read_text())
    results = load_grid_results(TABLE2)
    assert isinstance(results.statistics, StatisticsSpec)
    assert all(isinstance(c, Comparison) for c in results.comparisons)
    assert all(isinstance(g, ControlGain) for g in results.control_gains)
    assert all(isinstance(d, PairedDeltas) for d in results.paired_deltas)
    power = results.statistics.power
    for new, old in zip(results.comparisons, stored["comparisons"], strict=True):
        dumped = new.model_dump(mode="json")
        _close(dumped, old, skip=("detectable_points", "seeds", "name", "verdict", "method"))
        assert (dumped["verdict"], dumped["seeds"]) == (old["verdict"], old["seeds"])
        exact = new.margin_points + detectable_difference(new.sd_points, new.n, 0.95, power)
        assert new.detectable_points == pytest.approx(exact)
        # the (t_0.95 + t_0.8) approximation 2 stored under-states it by about 0.5% at 6 pairs
        assert old["detectable_points"] > new.detectable_points > 0.99 * old["detectable_points"]
    for new, old in zip(results.control_gains, stored["control_gains"], strict=True):
        _close(new.model_dump(mode="json"), old, skip=("row", "control", "passes"))
        assert new.passes == old["passes"]
    for new, old in zip(results.paired_deltas, stored["paired_deltas"], strict=True):
        _close(new.model_dump(mode="json"), old, skip=("row", "baseline"))


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


def test_a_probe_with_compile_counts_is_a_valid_record_and_one_without_is_unchanged():
    """``evaluate`` adds torch.compile's counts to a compiled probe's metrics (a grid with
    ``run.compile: true``); the record's probe model takes them. A probe without them dumps
    exactly the keys it always had."""
    from bench.schema import ProbeMetrics
    from diffmavil import DiffMAViL, make_config
    from diffmavil.training.compile import compile_components
    from diffmavil.training.downstream import ENCODE_COMPONENTS

    # its own model: compile_components wraps the blocks of the model it is given
    stats = compile_components(DiffMAViL(make_config("tiny", "mavil")), ENCODE_COMPONENTS)
    plain = {"init": "checkpoint", "mode": "probe", "modality": "audio", "data": "synthetic"}
    compiled = ProbeMetrics.model_validate({**plain, "accuracy": 0.5, "compile": stats.summary()})
    assert compiled.compile == stats.summary()
    assert ProbeMetrics.model_validate(compiled.model_dump(mode="json")) == compiled
    assert "compile" not in ProbeMetrics.model_validate(plain).model_dump(mode="json")
