"""Averaging the linear probe over probe seeds (``FinetuneConfig.probe_seeds``)."""

from __future__ import annotations

import pytest
import torch

from bench.ablate.plan import control_run_id, row_run_id
from diffmavil.training.config import FinetuneConfig, PretrainConfig
from diffmavil.training.probe import FeatureSet, linear_probe, repeated_linear_probe


def _features(n: int, seed: int) -> FeatureSet:
    """Two noisy Gaussian classes in 8 dimensions: a probe gets them mostly, not all, right."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.randn(3, 8, generator=generator)
    features = centres[labels] + 1.5 * torch.randn(n, 8, generator=generator)
    return FeatureSet(features=features, labels=labels, multi_label=False, num_classes=3)


@pytest.fixture(scope="module")
def splits() -> tuple[FeatureSet, FeatureSet]:
    return _features(120, 0), _features(300, 1)


def test_three_probe_seeds_report_the_mean_of_three_single_probes(splits) -> None:
    train, evaluation = splits
    config = FinetuneConfig(epochs=5, seed=7, probe_seeds=3)
    repeated = repeated_linear_probe(train, evaluation, config)
    singles = [
        linear_probe(train, evaluation, FinetuneConfig(epochs=5, seed=seed)) for seed in (7, 8, 9)
    ]
    assert repeated["per_probe_seed"] == singles
    assert repeated["accuracy"] == pytest.approx(sum(s["accuracy"] for s in singles) / 3)
    assert repeated["train_accuracy"] == pytest.approx(
        sum(s["train_accuracy"] for s in singles) / 3
    )
    # the probe seeds really differ (else averaging would cut no noise)
    assert len({tuple(sorted(s.items())) for s in singles}) > 1


def test_one_probe_seed_is_the_plain_probe(splits) -> None:
    train, evaluation = splits
    config = FinetuneConfig(epochs=5, seed=3)
    assert repeated_linear_probe(train, evaluation, config) == linear_probe(
        train, evaluation, config
    )


def test_probe_seeds_enter_run_ids_only_when_not_one() -> None:
    pretrain = PretrainConfig(preset="tiny", budget_samples=32)
    plain = FinetuneConfig(epochs=5)
    assert "probe_seeds" not in plain.identity()
    assert row_run_id(pretrain, plain, False) == row_run_id(
        pretrain, FinetuneConfig(epochs=5, probe_seeds=1), False
    )
    three = FinetuneConfig(epochs=5, probe_seeds=3)
    assert row_run_id(pretrain, three, False) != row_run_id(pretrain, plain, False)
    assert control_run_id("random", pretrain, three) != control_run_id("random", pretrain, plain)


def test_probe_seeds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="probe_seeds"):
        FinetuneConfig(probe_seeds=0)


def test_run_ids_of_grids_written_before_probe_seeds_are_unchanged() -> None:
    """The smoke grid's first run id, as the README shows it and as it was before
    ``probe_seeds`` existed: resuming an older output directory finds its runs."""
    from pathlib import Path

    from bench.ablate.grid import load_grid

    grid = load_grid(Path(__file__).resolve().parents[1] / "ablations" / "smoke.yaml")
    assert row_run_id(grid.rows[0].at_seed(0), grid.probe_at_seed(0), False) == "3f788c351007"
