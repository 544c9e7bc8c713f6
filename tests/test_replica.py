"""``PretrainConfig.replica``: a copy of a run under its own run id that trains identically,
so that the baseline against itself measures the wall-clock noise of a machine."""

from __future__ import annotations

import pytest
import torch

from diffmavil.training.checkpoint import load_verified
from diffmavil.training.config import PretrainConfig, config_hash
from diffmavil.training.pretrain import pretrain

DATA = "synthetic:classes=4,size=48,eval_size=16"


def tiny(**changes) -> PretrainConfig:
    payload = {
        "preset": "tiny",
        "variant": "mavil",
        "data": DATA,
        "budget_samples": 24,
        "batch": {"batch_size": 8},
        "threads": 2,
        "checkpoint_every": 3,
        **changes,
    }
    return PretrainConfig.model_validate(payload)


def test_unset_replica_leaves_dump_and_run_id_as_they_were():
    config = tiny()
    dump = config.model_dump(mode="json")
    assert "replica" not in dump
    assert config_hash(dump) == config_hash(tiny(replica=None).model_dump(mode="json"))


def test_each_replica_has_its_own_run_id():
    ids = {tiny().run_id(), tiny(replica=1).run_id(), tiny(replica=2).run_id()}
    assert len(ids) == 3
    copy = tiny(replica=1)
    assert copy.model_dump(mode="json")["replica"] == 1
    assert PretrainConfig.model_validate(copy.model_dump(mode="json")) == copy


@pytest.mark.parametrize("value", [0, -1])
def test_replica_numbers_start_at_one(value):
    with pytest.raises(ValueError, match="replica"):
        tiny(replica=value)


def test_a_replica_trains_identically(tmp_path):
    original = pretrain(tiny(), tmp_path / "original")
    copy = pretrain(tiny(replica=1), tmp_path / "copy")
    assert original["final_losses"] == copy["final_losses"]
    weights = [
        load_verified(tmp_path / name / "checkpoint.pt")["model"] for name in ("original", "copy")
    ]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
