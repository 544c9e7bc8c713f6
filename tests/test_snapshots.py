"""Encoder snapshots during pre-training: cadence, contents, index, timing, resume, probing;
and the run ids and dumps of configs without snapshots, pinned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from diffmavil.data import build_dataset
from diffmavil.schedules import StepPlan
from diffmavil.training.checkpoint import CorruptCheckpoint, load_verified
from diffmavil.training.config import FinetuneConfig, PretrainConfig, config_hash
from diffmavil.training.downstream import (
    ENCODE_COMPONENTS,
    evaluate,
    load_pretrained,
    pretrained_model_config,
)
from diffmavil.training.pretrain import pretrain
from diffmavil.training.snapshots import (
    INDEX_NAME,
    load_snapshot,
    read_index,
    snapshot_name,
    snapshot_steps,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = "synthetic:classes=4,size=48,eval_size=16"

# Computed before ``snapshot_every`` existed: the hash of the whole ``model_dump`` (what an
# ablation grid's row id hashes) and the run id, for the default config and the base config
# of ablations/table2-endpoint.yaml. A field added to PretrainConfig must leave them as they are.
PINNED = {
    "default": ("d152d3ba607f", "c09bdee6e3f8"),
    "table2-base": ("821f6e484e93", "5bf8735e28a4"),
}


def tiny_config(**changes) -> PretrainConfig:
    payload = {
        "preset": "tiny",
        "variant": "cross-attn",
        "data": DATA,
        "budget_samples": 40,
        "batch": {"batch_size": 8},
        "threads": 2,
        "checkpoint_every": 2,
        **changes,
    }
    return PretrainConfig.model_validate(payload)


def _pinned_configs() -> dict[str, PretrainConfig]:
    base = yaml.safe_load((ROOT / "ablations" / "table2-endpoint.yaml").read_text())["base"]
    return {"default": PretrainConfig(), "table2-base": PretrainConfig.model_validate(base)}


@pytest.mark.parametrize("name", list(PINNED))
def test_dump_and_run_id_of_configs_without_snapshots_are_unchanged(name):
    config = _pinned_configs()[name]
    dump = config.model_dump(mode="json")
    assert "snapshot_every" not in dump
    assert (config_hash(dump), config.run_id()) == PINNED[name]
    with_snapshots = config.model_copy(update={"snapshot_every": 4096})
    assert with_snapshots.run_id() == config.run_id()  # an execution setting
    assert with_snapshots.model_dump(mode="json")["snapshot_every"] == 4096
    assert PretrainConfig.model_validate(with_snapshots.model_dump(mode="json")) == with_snapshots


def test_snapshot_every_must_be_positive():
    with pytest.raises(ValueError, match="snapshot_every"):
        tiny_config(snapshot_every=0)


def _plan(batches: list[int]) -> list[StepPlan]:
    plan, seen = [], 0
    for index, batch in enumerate(batches):
        plan.append(StepPlan(index, seen, batch, (0.8, 0.9), 1.0))
        seen += batch
    return plan


def test_snapshot_steps_first_step_at_or_past_each_multiple_and_the_last():
    # samples seen after each step: 16 32 48 64 96 128 136
    plan = _plan([16, 16, 16, 16, 32, 32, 8])
    assert snapshot_steps(plan, 32) == [1, 3, 4, 5, 6]
    # one step passing several multiples is one snapshot
    assert snapshot_steps(plan, 10) == [0, 1, 2, 3, 4, 5, 6]
    assert snapshot_steps(plan, 1000) == [6]
    assert snapshot_name(4096) == "samples-000004096.pt"


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory) -> tuple[PretrainConfig, Path, dict]:
    config = tiny_config(snapshot_every=16)  # samples 8 .. 40 in 5 steps: 16, 32, 40
    run_dir = tmp_path_factory.mktemp("snapshots")
    return config, run_dir, pretrain(config, run_dir)


def test_snapshots_hold_the_encoders_and_where_the_run_stood(snapshot_run):
    config, run_dir, summary = snapshot_run
    index = json.loads((run_dir / INDEX_NAME).read_text())
    assert index["run_id"] == config.run_id() and index["snapshot_every"] == 16
    entries = index["snapshots"]
    assert [e["samples"] for e in entries] == [16, 32, 40]
    assert [e["step"] for e in entries] == [1, 3, 4]
    assert [e["final"] for e in entries] == [False, False, True]
    assert sorted(p.name for p in (run_dir / "snapshots").iterdir()) == [
        snapshot_name(s) for s in (16, 32, 40)
    ]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for entry in entries:
        payload = load_snapshot(run_dir / entry["file"])
        assert {k: payload[k] for k in ("samples", "step", "flops")} == {
            k: entry[k] for k in ("samples", "step", "flops")
        }
        assert entry["flops"] == rows[entry["step"]]["cumulative_flops"]
        assert entry["samples"] == rows[entry["step"]]["samples_seen"]
        assert payload["model_config"] == config.model.model_dump(mode="json")
        assert {name.split(".")[0] for name in payload["model"]} == set(ENCODE_COMPONENTS)
    assert entries[-1]["flops"] == summary["total_flops"]
    # the final snapshot's encoders are the final checkpoint's
    final = load_snapshot(run_dir / entries[-1]["file"])["model"]
    model = load_verified(run_dir / "checkpoint.pt")["model"]
    encoders = {k: v for k, v in model.items() if k.split(".")[0] in ENCODE_COMPONENTS}
    assert final.keys() == encoders.keys()
    for name, value in encoders.items():
        assert torch.equal(final[name], value), name


def test_snapshot_time_is_left_out_of_the_timed_wall_clock(snapshot_run):
    _, run_dir, summary = snapshot_run
    parts = ("data_seconds", "compute_seconds", "overhead_seconds")
    assert summary["wall_clock_seconds"] == pytest.approx(sum(summary[key] for key in parts))
    assert summary["snapshot_seconds"] > 0
    assert json.loads((run_dir / "summary.json").read_text())["snapshot_seconds"] > 0
    walls = [e["wall_clock_seconds"] for e in read_index(run_dir)["snapshots"]]
    assert walls == sorted(walls) and walls[-1] <= summary["wall_clock_seconds"]
    assert load_verified(run_dir / "checkpoint.pt")["elapsed"]["snapshot"] > 0


def test_without_snapshot_every_a_run_writes_what_it_wrote_before(tmp_path):
    summary = pretrain(tiny_config(budget_samples=16), tmp_path)
    assert not (tmp_path / "snapshots").exists() and not (tmp_path / INDEX_NAME).exists()
    assert "snapshot_seconds" not in summary
    assert "snapshot_seconds" not in json.loads((tmp_path / "summary.json").read_text())
    assert "snapshot_every" not in json.loads((tmp_path / "config.json").read_text())
    elapsed = load_verified(tmp_path / "checkpoint.pt")["elapsed"]
    assert set(elapsed) == {"compute", "data", "overhead"}


class _Crash(RuntimeError):
    pass


def test_a_resumed_run_continues_the_snapshots_of_an_interrupted_one(snapshot_run, tmp_path):
    """Checkpoints every 3 steps, killed at step 4 (before its snapshot): the checkpoint
    after step 2 survives, with the snapshots of steps 1 (kept on resume) and 3 (past the
    checkpoint: written again). The snapshots then match an uninterrupted run's."""
    config, reference, _ = snapshot_run
    config = config.model_copy(update={"checkpoint_every": 3})  # same run id

    def crash_at_step_4(row: dict) -> None:
        if row["step"] == 4:
            raise _Crash

    run_dir = tmp_path / "interrupted"
    with pytest.raises(_Crash):
        pretrain(config, run_dir, on_step=crash_at_step_4)
    assert load_verified(run_dir / "checkpoint.pt")["next_step"] == 3
    assert [e["samples"] for e in read_index(run_dir)["snapshots"]] == [16, 32]
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "snapshots").iterdir()}
    (run_dir / "snapshots" / ".samples-000000040.pt.abc.tmp").write_bytes(b"half")  # kill -9

    summary = pretrain(config, run_dir, resume=True)
    assert summary["resumed_from_step"] == 3
    expected, resumed = read_index(reference)["snapshots"], read_index(run_dir)["snapshots"]
    keys = ("file", "samples", "step", "flops", "final")
    assert [{k: e[k] for k in keys} for e in resumed] == [{k: e[k] for k in keys} for e in expected]
    assert sorted(p.name for p in (run_dir / "snapshots").iterdir()) == [
        snapshot_name(s) for s in (16, 32, 40)
    ]
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "snapshots").iterdir()}
    assert after[snapshot_name(16)] == before[snapshot_name(16)]  # kept, not rewritten
    assert after[snapshot_name(32)] != before[snapshot_name(32)]  # past the checkpoint
    walls = [e["wall_clock_seconds"] for e in resumed]
    assert walls == sorted(walls)
    for entry in expected:
        want = load_snapshot(reference / entry["file"])
        got = load_snapshot(run_dir / entry["file"])
        assert {k: got[k] for k in keys if k != "file"} == {k: want[k] for k in keys if k != "file"}
        for name, value in want["model"].items():
            torch.testing.assert_close(got["model"][name], value, rtol=0, atol=0, msg=name)


def test_probing_the_final_snapshot_equals_probing_the_final_checkpoint(snapshot_run):
    config, run_dir, _ = snapshot_run
    final = run_dir / read_index(run_dir)["snapshots"][-1]["file"]
    assert pretrained_model_config(final) == config.model == pretrained_model_config(run_dir)
    probe = FinetuneConfig(
        data=DATA, modality="audio-video", features="fused", epochs=20, batch_size=16
    )
    datasets = tuple(build_dataset(DATA, config.model, split) for split in ("val", "test"))
    from_checkpoint = evaluate(probe, "checkpoint", config.model, run_dir, datasets=datasets)
    from_snapshot = evaluate(probe, "checkpoint", config.model, final, datasets=datasets)
    assert from_snapshot == from_checkpoint
    audio, video = datasets[1][0]["audio"][None], datasets[1][0]["video"][None]
    features = [load_pretrained(path).encode(audio, video).joint for path in (run_dir, final)]
    assert torch.equal(features[0], features[1])


def test_a_checkpoint_is_not_loaded_as_a_snapshot(snapshot_run):
    _, run_dir, _ = snapshot_run
    with pytest.raises(CorruptCheckpoint, match="not an encoder snapshot"):
        load_snapshot(run_dir / "checkpoint.pt")


def test_diffbench_finetune_probes_a_snapshot_file(snapshot_run):
    """The command line takes a snapshot as its CHECKPOINT (the model config comes from the
    snapshot itself) and scores it as it scores the run directory of the same weights."""
    from typer.testing import CliRunner

    from bench.cli.app import app

    _, run_dir, _ = snapshot_run
    final = run_dir / read_index(run_dir)["snapshots"][-1]["file"]
    args = ["--data", DATA, "--modality", "audio-video", "--features", "fused", "--epochs", "5"]
    scores = []
    for checkpoint in (final, run_dir):
        result = CliRunner().invoke(app, ["finetune", str(checkpoint), *args, "--format", "json"])
        assert result.exit_code == 0, result.output
        scores.append(json.loads(result.stdout)[0]["accuracy"])
    assert scores[0] == scores[1]
