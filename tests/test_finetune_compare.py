"""reports/finetune/compare.py's pure part: the run order, the paired statistics over
per-run records (against a hand computation) and the resume check."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import pytest

from bench.errors import BadInput

SCRIPT = Path(__file__).resolve().parents[1] / "reports" / "finetune" / "compare.py"
_spec = importlib.util.spec_from_file_location("finetune_compare", SCRIPT)
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)

T_975 = {2: 4.302652729911275, 3: 3.182446305284263}  # Student's t tables, 0.975 quantile


def _run(seed: int, arm: str, accuracy: float, wall: float) -> dict:
    return {
        "seed": seed, "arm": arm, "accuracy": accuracy, "wall_clock_seconds": wall,
        "train_seconds": wall - 1.0, "epochs_run": 25 if arm != "epochs100" else 100,
    }  # fmt: skip


RUNS = [
    *(_run(s, "default", a, 10.0) for s, a in enumerate([0.50, 0.60, 0.70, 0.80])),
    # epochs100: seeds 0-2 only, +1, +2, +3 points, 4x the wall-clock
    *(_run(s, "epochs100", a, 40.0) for s, a in enumerate([0.51, 0.62, 0.73])),
    # lr1e-4: -0.5, +0.5, -0.5, +0.5 points, half the wall-clock
    *(_run(s, "lr1e-4", a, 5.0) for s, a in enumerate([0.495, 0.605, 0.695, 0.805])),
]


def test_paired_summary_matches_a_hand_computed_t_interval():
    summary = compare.paired_summary(RUNS, margin=2.0, confidence=0.95)
    by_arm = {c["arm"]: c for c in summary["comparisons"]}
    longer, lower_lr = by_arm["epochs100"], by_arm["lr1e-4"]
    assert by_arm["constant"]["pairs"] == 0  # an arm with no runs: no interval
    # epochs100: differences 1, 2, 3 -> mean 2, sd 1, half-width t(0.975, 2) / sqrt(3)
    half = T_975[2] * 1.0 / math.sqrt(3)
    assert longer["arm"] == "epochs100" and longer["pairs"] == 3 and longer["seeds"] == [0, 1, 2]
    assert longer["mean"] == pytest.approx(2.0) and longer["sd"] == pytest.approx(1.0)
    assert longer["low"] == pytest.approx(2.0 - half) and longer["high"] == pytest.approx(2 + half)
    assert longer["within_margin"] is False and longer["median_wall_clock_ratio"] == 4.0
    # fewest pairs of sd 1 for +-2: n=3 gives 2.48, n=4 gives t(0.975, 3) / 2 = 1.59
    assert T_975[3] / 2 < 2.0 < half and longer["seeds_for_margin"] == 4
    assert "NOT within +-2 points, undecided; about 4 seeds" in longer["verdict"]
    # lr1e-4: differences -0.5, 0.5, -0.5, 0.5 -> mean 0, sd sqrt(1/3)
    half = T_975[3] * math.sqrt(1 / 3) / 2
    assert lower_lr["pairs"] == 4 and lower_lr["mean"] == pytest.approx(0.0, abs=1e-9)
    assert lower_lr["high"] == pytest.approx(half) and lower_lr["low"] == pytest.approx(-half)
    assert lower_lr["within_margin"] is True and lower_lr["verdict"].endswith("within +-2 points")
    assert summary["arms"]["default"] == {
        "runs": 4, "mean_accuracy_points": pytest.approx(65.0), "median_wall_clock_seconds": 10.0,
        "median_train_seconds": 9.0, "median_epochs_run": 25,
    }  # fmt: skip
    assert summary["arms"]["epochs100"]["median_epochs_run"] == 100


def test_verdict_says_which_side_and_when_there_is_no_interval():
    better = [_run(s, "default", 0.5, 1.0) for s in range(3)] + [
        _run(s, "lr1e-4", 0.5 + d, 1.0) for s, d in enumerate([0.05, 0.06, 0.07])
    ]
    lines = {c["arm"]: c["verdict"] for c in compare.paired_summary(better)["comparisons"]}
    assert "above +2 (lr1e-4 better)" in lines["lr1e-4"]
    assert lines["epochs100"] == "epochs100 vs default: 0 pair(s), not enough for an interval"
    worse = [_run(s, "default", 0.5, 1.0) for s in range(3)] + [
        _run(s, "epochs100", 0.5 - d, 1.0) for s, d in enumerate([0.05, 0.06, 0.07])
    ]
    (line,) = [c["verdict"] for c in compare.paired_summary(worse)["comparisons"][:1]]
    assert "below -2 (epochs100 worse)" in line


def test_each_seed_runs_every_arm_in_its_own_fixed_order():
    order = compare.schedule([0, 1, 2, 3, 4, 5])
    assert [seed for seed, _ in order] == [s for s in range(6) for _ in compare.ARMS]
    per_seed = [tuple(arm for seed, arm in order if seed == s) for s in range(6)]
    assert all(sorted(arms) == sorted(compare.ARMS) for arms in per_seed)
    assert len(set(per_seed)) > 1  # shuffled per seed, not one order for all
    assert compare.schedule([3]) == [(3, arm) for arm in per_seed[3]]  # same on resume


def test_arms_differ_from_the_default_only_in_their_settings():
    default = compare.arm_config("default", 2, 500, 2000)
    assert (default.data, default.mode, default.seed) == ("synthetic:eval_size=2000", "finetune", 2)
    assert (default.max_train_items, default.max_eval_items) == (500, 2000)
    assert default.epochs is None and default.patience is None  # the library's defaults
    assert default.patch_keep < 1  # patch dropout by default
    for arm, changed in (
        ("epochs100", {"epochs": 100, "patch_keep": 1.0}),
        ("previous", {"epochs": 20, "patch_keep": 1.0}),
        ("head-first", {"epochs": 20, "patch_keep": 1.0, "head_epochs": 100}),
        ("early-stopping", {"patience": 3}),
        ("lr1e-4", {"lr": 1e-4}),
        ("constant", {"lr_schedule": "constant"}),
    ):
        config = compare.arm_config(arm, 2, 500, 2000).model_dump()
        assert {k: v for k, v in config.items() if v != default.model_dump()[k]} == changed


def test_resume_refuses_runs_of_other_settings(tmp_path):
    settings = {"checkpoint": "/x", "train_items": 40, "eval_items": 40, "device": "cpu"}
    run = {"seed": 0, "arm": "lr1e-4"}
    run["config"] = compare.arm_config("lr1e-4", 0, 40, 40).model_dump(mode="json")
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"settings": settings, "runs": [run]}))
    assert compare.load_finished(path, settings) == [run]
    assert compare.load_finished(tmp_path / "none.json", settings) == []
    with pytest.raises(BadInput, match="other settings \\(eval_items\\)"):
        compare.load_finished(path, {**settings, "eval_items": 2000})
    run["config"]["lr"] = 1e-2
    path.write_text(json.dumps({"settings": settings, "runs": [run]}))
    with pytest.raises(BadInput, match="seed 0 lr1e-4 ran another configuration"):
        compare.load_finished(path, settings)


def test_a_subset_of_arms_runs_and_the_others_have_no_pairs():
    assert compare.arm_list("epochs100") == ["default", "epochs100"]  # reference always runs
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown arm.*bogus.*allowed: default"):
        compare.arm_list("epochs100,bogus")
    order = compare.schedule([0, 1], ["default", "epochs100"])
    assert sorted(order) == [(0, "default"), (0, "epochs100"), (1, "default"), (1, "epochs100")]
    runs = [
        {
            "seed": s,
            "arm": a,
            "accuracy": acc,
            "wall_clock_seconds": 1.0,
            "train_seconds": 1.0,
            "epochs_run": 5,
        }
        for s, a, acc in [
            (0, "default", 0.80),
            (0, "epochs100", 0.81),
            (1, "default", 0.70),
            (1, "epochs100", 0.73),
        ]
    ]
    summary = compare.paired_summary(runs)
    by_arm = {c["arm"]: c for c in summary["comparisons"]}
    assert by_arm["epochs100"]["differences_points"] == pytest.approx([1.0, 3.0])
    assert by_arm["lr1e-4"]["pairs"] == 0  # not run: no interval, said so
