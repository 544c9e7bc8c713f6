"""Checkpoint files: weights-only loading (a pickled object is refused, never run), the
mandatory checksum, the previous checkpoint kept, and resuming past a corrupt checkpoint
(truncated, one flipped byte, empty) to the same final state as an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from typer.testing import CliRunner

from bench.cli.app import app
from diffmavil.training.checkpoint import (
    CorruptCheckpoint,
    UnsafeCheckpoint,
    load_checkpoint,
    load_verified,
    previous_path,
    save_checkpoint,
)
from diffmavil.training.config import PretrainConfig
from diffmavil.training.pretrain import pretrain
from tests.test_pretrain import _free_port

DATA = "synthetic:classes=4,size=16,eval_size=8"


class _RunsCodeWhenUnpickled:
    """Unpickling this calls ``exec``: it writes ``marker`` (proof that code ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _write_code_carrying_checkpoint(run_dir: Path, marker: Path) -> Path:
    """A pretrain-shaped run directory whose checkpoint.pt also pickles a code object."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = PretrainConfig.model_validate({"preset": "tiny", "data": DATA, "budget_samples": 8})
    (run_dir / "config.json").write_text(json.dumps(config.model_dump(mode="json")))
    path = run_dir / "checkpoint.pt"
    torch.save({"model": {}, "next_step": 0, "extra": _RunsCodeWhenUnpickled(marker)}, path)
    return path


def test_a_checkpoint_carrying_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    path = _write_code_carrying_checkpoint(tmp_path / "run", marker)
    with pytest.raises(UnsafeCheckpoint) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert str(path) in message and "exec" in message and "\n" not in message
    assert not marker.exists()
    # the control: an unrestricted load of the same file does run its code
    torch.load(path, weights_only=False)
    assert marker.read_text() == "ran"


def test_finetune_cli_refuses_a_code_carrying_checkpoint_with_one_line(tmp_path):
    marker = tmp_path / "marker"
    path = _write_code_carrying_checkpoint(tmp_path / "run", marker)
    result = CliRunner().invoke(
        app, ["finetune", str(path.parent), "--data", "synthetic:classes=2,size=4,eval_size=4"]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert "refused" in lines[0]
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Checksums and the previous checkpoint
# --------------------------------------------------------------------------------------


def _payload(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "run_id": "r",
        "next_step": seed,
        "model": {"w": torch.randn(64, 32, generator=generator), "b": torch.zeros(32)},
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1}]},
        "elapsed": {"compute": 1.5, "data": 0.25},
    }


def _largest_tensor_record(path: Path) -> tuple[int, int]:
    """(offset of the first data byte, size) of the largest tensor record in the zip."""
    with zipfile.ZipFile(path) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    with path.open("rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def flip_one_tensor_byte(path: Path) -> None:
    """Invert one byte in the middle of the largest tensor's data (the zip stays valid)."""
    start, size = _largest_tensor_record(path)
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


CORRUPTIONS = {"truncated": truncate, "one flipped byte": flip_one_tensor_byte, "empty": empty}


def test_save_keeps_the_previous_checkpoint_and_load_verifies_the_checksum(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, _payload(1))
    assert not previous_path(path).exists()
    save_checkpoint(path, _payload(2))
    assert load_verified(path)["next_step"] == 2
    assert load_verified(previous_path(path))["next_step"] == 1
    torch.testing.assert_close(load_verified(path)["model"]["w"], _payload(2)["model"]["w"])
    assert not list(tmp_path.glob("*.tmp"))


def test_a_flipped_tensor_byte_still_unpickles_but_fails_the_checksum(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, _payload(1))
    flip_one_tensor_byte(path)
    silently_wrong = load_checkpoint(path)  # torch alone loads the damaged weights
    assert not torch.equal(silently_wrong["model"]["w"], _payload(1)["model"]["w"])
    with pytest.raises(CorruptCheckpoint, match="checksum mismatch"):
        load_verified(path)


@pytest.mark.parametrize("corrupt", [truncate, empty], ids=["truncated", "empty"])
def test_an_unreadable_checkpoint_is_one_line_naming_it(tmp_path, corrupt):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, _payload(1))
    corrupt(path)
    with pytest.raises(CorruptCheckpoint) as error:
        load_verified(path)
    assert str(error.value).startswith(f"{path}: unreadable checkpoint")
    assert "\n" not in str(error.value)


def test_a_checkpoint_without_checksum_is_not_trusted(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(_payload(1), path)
    with pytest.raises(CorruptCheckpoint, match="no sha256 checksum"):
        load_verified(path)


# --------------------------------------------------------------------------------------
# Resuming past a corrupt checkpoint
# --------------------------------------------------------------------------------------


class _Interrupted(Exception):
    pass


def _tiny_config() -> PretrainConfig:
    return PretrainConfig.model_validate(
        {
            "preset": "tiny",
            "variant": "cross-attn",
            "data": DATA,
            "budget_samples": 16,
            "batch": {"batch_size": 4},
            "threads": 1,
            "checkpoint_every": 1,
        }
    )


def _interrupt_at(step: int):
    def on_step(row: dict) -> None:
        if row["step"] == step:
            raise _Interrupted

    return on_step


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """(config, reference run dir, interrupted run dir): the interrupted run stopped after
    logging step 3, so checkpoint.pt resumes at step 3 and checkpoint.prev.pt at step 2."""
    config = _tiny_config()
    root = tmp_path_factory.mktemp("checkpoints")
    pretrain(config, root / "reference")
    with pytest.raises(_Interrupted):
        pretrain(config, root / "interrupted", on_step=_interrupt_at(3))
    interrupted = root / "interrupted"
    assert load_verified(interrupted / "checkpoint.pt")["next_step"] == 3
    assert load_verified(interrupted / "checkpoint.prev.pt")["next_step"] == 2
    return config, root / "reference", interrupted


def _assert_equal_to_reference(run_dir: Path, reference: Path) -> None:
    expected = load_verified(reference / "checkpoint.pt")
    got = load_verified(run_dir / "checkpoint.pt")
    assert got["next_step"] == expected["next_step"]
    for name, value in expected["model"].items():
        torch.testing.assert_close(got["model"][name], value, rtol=0, atol=0, msg=name)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    assert steps == list(range(expected["next_step"]))  # no duplicate or missing step
    summary = json.loads((run_dir / "summary.json").read_text())
    reference_summary = json.loads((reference / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["final_losses"] == reference_summary["final_losses"]
    assert summary["total_flops"] == reference_summary["total_flops"]
    assert not (run_dir / "checkpoint.prev.pt").exists()  # dropped once the run completed


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_checkpoint_is_moved_aside_and_the_run_resumes_from_the_previous(
    interrupted_run, tmp_path, capsys, kind
):
    config, reference, interrupted = interrupted_run
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted, run_dir)
    CORRUPTIONS[kind](run_dir / "checkpoint.pt")
    capsys.readouterr()
    summary = pretrain(config, run_dir, resume=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: {run_dir / 'checkpoint.pt'}: ")
    assert warnings[0].endswith("moved aside to checkpoint.pt.bad-1; trying checkpoint.prev.pt")
    assert summary["resumed_from_step"] == 2  # the previous good checkpoint
    assert summary["discarded_checkpoints"] == [str(run_dir / "checkpoint.pt.bad-1")]
    assert (run_dir / "checkpoint.pt.bad-1").exists()
    _assert_equal_to_reference(run_dir, reference)


def test_with_no_good_checkpoint_left_the_run_starts_over(interrupted_run, tmp_path, capsys):
    config, reference, interrupted = interrupted_run
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted, run_dir)
    truncate(run_dir / "checkpoint.pt")
    flip_one_tensor_byte(run_dir / "checkpoint.prev.pt")
    capsys.readouterr()
    summary = pretrain(config, run_dir, resume=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 2, warnings
    assert warnings[1].endswith("moved aside to checkpoint.prev.pt.bad-1; starting over")
    assert summary["resumed_from_step"] is None
    _assert_equal_to_reference(run_dir, reference)


def _resume_worker(rank: int, world_size: int, port: int, config_json: str, run_dir: str):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from diffmavil.training import distributed

    try:
        pretrain(PretrainConfig.model_validate_json(config_json), run_dir, resume=True)
    finally:
        distributed.destroy()


def test_ddp_ranks_resume_together_past_a_corrupt_checkpoint(interrupted_run, tmp_path):
    config, reference, interrupted = interrupted_run
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted, run_dir)
    truncate(run_dir / "checkpoint.pt")
    mp.spawn(
        _resume_worker,
        args=(2, _free_port(), config.model_dump_json(), str(run_dir)),
        nprocs=2,
        join=True,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["resumed_from_step"] == 2
    # rank 0 moved the file aside once; rank 1 resumed from the same previous checkpoint
    assert summary["discarded_checkpoints"] == [str(run_dir / "checkpoint.pt.bad-1")]
    assert sorted(p.name for p in run_dir.glob("checkpoint*")) == [
        "checkpoint.pt",
        "checkpoint.pt.bad-1",
    ]
    expected, got = (
        load_verified(reference / "checkpoint.pt"),
        load_verified(run_dir / "checkpoint.pt"),
    )
    for name, value in expected["model"].items():
        torch.testing.assert_close(got["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
