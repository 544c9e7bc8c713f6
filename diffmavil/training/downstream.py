"""Downstream evaluation of one initialisation (a pre-training checkpoint or encoder
snapshot, random init or raw fbank): build the downstream datasets, then a linear probe
(``probe``) or a full fine-tune (``finetune``), and one result dict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch

from diffmavil.config import ModelConfig
from diffmavil.model import DiffMAViL
from diffmavil.training.checkpoint import load_verified
from diffmavil.training.config import FinetuneConfig, PretrainConfig
from diffmavil.training.finetune import EpochCallback, full_finetune
from diffmavil.training.probe import extract_features, repeated_linear_probe
from diffmavil.training.snapshots import (
    ENCODE_COMPONENTS,  # what probes and fine-tunes run
    is_snapshot,
    model_from_snapshot,
)

Init = Literal["checkpoint", "random", "fbank"]
DOWNSTREAM_TRAIN_SPLIT = {"synthetic": "val"}  # the synthetic pre-training split is "train"


def _checkpoint_file(checkpoint: str | Path) -> Path:
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "checkpoint.pt"
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    return checkpoint


def _run_config(checkpoint: Path) -> PretrainConfig:
    config_path = checkpoint.parent / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} is missing beside the checkpoint")
    return PretrainConfig.model_validate(json.loads(config_path.read_text()))


def load_pretrained(checkpoint: str | Path, device: str = "cpu") -> DiffMAViL:
    """A DiffMAViL restored from a pre-training run: its directory or ``checkpoint.pt``
    (with the ``config.json`` beside it), or one of its encoder snapshots
    (``snapshots/samples-*.pt``, self-contained; see ``diffmavil.training.snapshots``).

    A snapshot restores the encoders and the fusion encoder, all that probes and
    fine-tunes run; its decoders keep their initial weights.
    """
    checkpoint = _checkpoint_file(checkpoint)
    state = load_verified(checkpoint)
    if is_snapshot(state):
        model = model_from_snapshot(state)
    else:
        model = DiffMAViL(_run_config(checkpoint).model)
        model.load_state_dict(state["model"])
    return model.to(device).eval()


def pretrained_model_config(checkpoint: str | Path) -> ModelConfig:
    """The model config of what ``load_pretrained`` loads: from the ``config.json`` beside
    a checkpoint, else from the file itself (a snapshot)."""
    checkpoint = _checkpoint_file(checkpoint)
    if (checkpoint.parent / "config.json").exists():
        return _run_config(checkpoint).model
    state = load_verified(checkpoint)
    if not is_snapshot(state):
        _run_config(checkpoint)  # raises: config.json missing
    return ModelConfig.model_validate(state["model_config"])


def downstream_splits(spec: str) -> tuple[str, str]:
    """(train split, evaluation split) of the downstream task for a data spec."""
    kind = spec.split(":", 1)[0]
    return DOWNSTREAM_TRAIN_SPLIT.get(kind, "train"), "test"


def evaluate(
    config: FinetuneConfig,
    init: Init,
    model_config: ModelConfig,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    datasets: tuple[Any, Any] | None = None,
    on_epoch: EpochCallback | None = None,
    *,
    dtype: str = "fp32",
) -> dict[str, Any]:
    """Probe or fine-tune one initialisation on the downstream task; returns metrics.

    ``datasets``: prebuilt (train, evaluation) datasets to share between calls (e.g. the
    pre-trained probe and its controls); built from ``config.data`` otherwise.
    ``on_epoch``: called after each fine-tuning epoch (see ``full_finetune``).
    ``dtype``: ``bf16`` runs a fine-tune's forward passes under bf16 autocast (CUDA only;
    an execution setting outside ``FinetuneConfig``, so the caller records it); a probe's
    features are always fp32.
    """
    from diffmavil.data import build_dataset

    if dtype != "fp32" and config.mode == "probe":
        raise ValueError(f"dtype={dtype}: a probe runs in fp32 (bf16 is a fine-tune option)")

    if datasets is None:
        train_split, eval_split = downstream_splits(config.data)
        datasets = (
            build_dataset(
                config.data, model_config, train_split, seed=config.seed, fold=config.fold
            ),
            build_dataset(
                config.data, model_config, eval_split, seed=config.seed, fold=config.fold
            ),
        )
    train_set, eval_set = datasets
    if init == "checkpoint":
        if checkpoint is None:
            raise ValueError("init=checkpoint needs a checkpoint path")
        model: DiffMAViL | None = load_pretrained(checkpoint, device)
    elif init == "random":
        torch.manual_seed(config.seed)
        model = DiffMAViL(model_config).to(device).eval()
    else:
        model = None
        if config.mode == "finetune":
            raise ValueError("init=fbank has no encoder to fine-tune; use mode=probe")
    if config.compile and model is not None:
        from diffmavil.training.compile import compile_components

        stats = compile_components(model, ENCODE_COMPONENTS)
    if config.mode == "probe":
        train = extract_features(model, train_set, config, device, config.max_train_items)
        evaluation = extract_features(model, eval_set, config, device, config.max_eval_items)
        metrics = repeated_linear_probe(train, evaluation, config)
    else:
        assert model is not None
        metrics = full_finetune(model, train_set, eval_set, config, device, on_epoch, dtype=dtype)
    if config.compile and model is not None:
        metrics["compile"] = stats.summary()
    return {
        "init": init,
        "mode": config.mode,
        "modality": config.modality,
        "data": config.data,
        "num_classes": int(train_set.num_classes),
        "train_items": min(len(train_set), config.max_train_items or len(train_set)),
        "eval_items": min(len(eval_set), config.max_eval_items or len(eval_set)),
        "skipped_files": int(getattr(train_set, "skipped", 0))
        + int(getattr(eval_set, "skipped", 0)),
        **metrics,
    }
