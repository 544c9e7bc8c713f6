"""``diffbench check``'s training rows (``bench.timing.check`` has the framework): a short
pre-training interrupted and resumed (equal to the uninterrupted run), a linear probe and
a fine-tune of its checkpoint, and DDP over two GPUs where there are two (equal to one
process). Tiny preset, a few steps on built-in synthetic data."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
from pathlib import Path
from typing import Any

import torch

from bench.timing.check import PRESET, VARIANT, CheckContext, Outcome, Row, Skip

DATA = "synthetic:classes=2,size=8,eval_size=8"


class _Interrupted(Exception):
    pass


def pretrain_config(context: CheckContext, samples: int = 6, batch: int = 2):
    from diffmavil.training.config import PretrainConfig

    return PretrainConfig.model_validate(
        {
            "preset": PRESET, "variant": VARIANT, "data": DATA, "budget_samples": samples,
            "batch": {"batch_size": batch}, "checkpoint_every": 1, "seed": context.seed,
            "device": context.device.type,
            "threads": None if context.cuda else torch.get_num_threads(),
        }
    )  # fmt: skip


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from diffmavil.training.checkpoint import load_verified

    return load_verified(run_dir / "checkpoint.pt")["model"]


def weight_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest |a - b| of any parameter over that parameter's largest |a|."""
    return max(
        float((b[name].float() - value.float()).abs().max() / value.abs().max().clamp_min(1e-12))
        for name, value in a.items()
    )


def _device_of_runs(context: CheckContext) -> str:
    """Where ``pretrain`` runs a single process: its local rank's GPU (cuda:0)."""
    return "cuda:0" if context.cuda else "cpu"


def resume_row(context: CheckContext) -> Outcome:
    """Three steps uninterrupted; the same run stopped after step 1 and resumed: the
    resumed run restarts at step 1 and ends with the same weights (bit-identical on a
    CPU; within 1e-5 of each parameter's largest on CUDA, whose kernels may reduce in
    another order)."""
    from diffmavil.training.pretrain import pretrain

    config = pretrain_config(context)
    reference = context.workdir / "pretrain-reference"
    summary = pretrain(config, reference)
    context.state.update(checkpoint=reference, config=config)

    def interrupt(row: dict[str, Any]) -> None:
        if row["step"] == 1:
            raise _Interrupted

    resumed = context.workdir / "pretrain-resumed"
    with contextlib.suppress(_Interrupted):
        pretrain(config, resumed, on_step=interrupt)
    again = pretrain(config, resumed, resume=True)
    difference = weight_difference(final_weights(reference), final_weights(resumed))
    tolerance = 1e-5 if context.cuda else 0.0
    passed = (
        summary["status"] == again["status"] == "completed"
        and again["resumed_from_step"] == 1 and difference <= tolerance
    )  # fmt: skip
    equal = f"within {tolerance:g} of" if tolerance else "bit-identical to"
    expected = f"resumed at step 1, final weights {equal} the uninterrupted run's"
    measured = (
        f"{summary['steps']} steps, resumed at step {again['resumed_from_step']}, "
        f"{again['status']}, weights differ by {difference:.1e}"
    )
    step_ms = 1e3 * summary["compute_seconds"] / max(summary["steps"], 1)
    figures = {"step_ms": round(step_ms, 2)}
    return Outcome(passed, expected, measured, figures, _device_of_runs(context))


def _pretrained(context: CheckContext) -> tuple[Path, Any]:
    if "checkpoint" not in context.state:
        raise RuntimeError("needs the pre-training row's checkpoint (run 'pretrain+resume')")
    return context.state["checkpoint"], context.state["config"]


def probe_row(context: CheckContext) -> Outcome:
    """A linear probe of the pre-trained checkpoint's encoder features: every item used
    and an accuracy in [0, 1] (a few steps of pre-training promise nothing better)."""
    from diffmavil.training.config import FinetuneConfig
    from diffmavil.training.downstream import evaluate

    checkpoint, config = _pretrained(context)
    probe = FinetuneConfig(data=DATA, mode="probe", epochs=5, batch_size=8, seed=context.seed)
    metrics = evaluate(probe, "checkpoint", config.model, checkpoint, config.device)
    accuracy = metrics["accuracy"]
    passed = (
        accuracy is not None and 0.0 <= accuracy <= 1.0
        and metrics["train_items"] == metrics["eval_items"] == 8
    )  # fmt: skip
    measured = (
        f"accuracy {accuracy}, {metrics['train_items']} train / {metrics['eval_items']} eval items"
    )
    expected = "accuracy in [0, 1] over 8 train and 8 evaluation items"
    return Outcome(passed, expected, measured, {}, _device_of_runs(context))


def finetune_row(context: CheckContext) -> Outcome:
    """One fine-tuning epoch of the checkpoint (bf16 autocast on CUDA): a finite training
    loss and an accuracy in [0, 1]."""
    from diffmavil.training.config import FinetuneConfig
    from diffmavil.training.downstream import evaluate

    checkpoint, config = _pretrained(context)
    tune = FinetuneConfig(data=DATA, mode="finetune", epochs=1, batch_size=4, seed=context.seed)
    epochs: list[dict[str, Any]] = []
    dtype = "bf16" if context.cuda else "fp32"
    metrics = evaluate(
        tune, "checkpoint", config.model, checkpoint, config.device, on_epoch=epochs.append,
        dtype=dtype,
    )  # fmt: skip
    losses = [row["train_loss"] for row in epochs if "train_loss" in row]
    accuracy = metrics["accuracy"]
    finite = bool(losses) and all(math.isfinite(loss) for loss in losses)
    passed = finite and accuracy is not None and 0.0 <= accuracy <= 1.0
    expected = f"{dtype}: finite training loss, accuracy in [0, 1]"
    shown = ", ".join(f"{loss:.4g}" for loss in losses)
    measured = f"{dtype}: training loss {shown}, accuracy {accuracy}"
    return Outcome(passed, expected, measured, {}, _device_of_runs(context))


# ------------------------------------------------------------------------------- DDP
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_worker(rank: int, world_size: int, port: int, config_json: str, run_dir: str) -> None:
    """One rank of the DDP row's run (``torch.multiprocessing.spawn``)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
    )  # fmt: skip
    from diffmavil.training import distributed
    from diffmavil.training.config import PretrainConfig
    from diffmavil.training.pretrain import pretrain

    try:
        pretrain(PretrainConfig.model_validate_json(config_json), run_dir)
    finally:
        distributed.destroy()


def run_ddp(config, run_dir: Path) -> dict[str, Any]:
    """Two ranks, one per GPU (NCCL); the run's summary."""
    import torch.multiprocessing as mp

    mp.spawn(
        ddp_worker, args=(2, _free_port(), config.model_dump_json(), str(run_dir)), nprocs=2,
        join=True,
    )  # fmt: skip
    return json.loads((run_dir / "summary.json").read_text())


def ddp_row(context: CheckContext) -> Outcome:
    """Two processes, one GPU each, equal one process over the same global batches
    (weights within 1e-3 of each parameter's largest): where there are two GPUs."""
    from diffmavil.training.pretrain import pretrain

    devices = torch.cuda.device_count() if context.cuda else 0
    if devices < 2:
        raise Skip(f"needs 2 or more CUDA devices (found {devices})")
    config = pretrain_config(context, samples=16, batch=8)
    single = context.workdir / "ddp-single"
    pretrain(config, single)
    summary = run_ddp(config, context.workdir / "ddp")
    difference = weight_difference(final_weights(single), final_weights(context.workdir / "ddp"))
    passed = summary["status"] == "completed" and summary["world_size"] == 2 and difference <= 1e-3
    expected = "2 ranks complete, final weights within 1e-3 of one process"
    measured = (
        f"{summary['world_size']} rank(s), {summary['status']}, weights differ by {difference:.1e}"
    )
    return Outcome(passed, expected, measured, {}, "cuda:0,1")


TRAINING_ROWS: dict[str, Row] = {
    "pretrain+resume": resume_row,
    "probe": probe_row,
    "finetune": finetune_row,
    "ddp": ddp_row,
}
