"""The datasets of a process, cached in memory (the rows of one grid share their data, and
their probes, curves, fine-tunes and controls their downstream datasets), and
``run_probe``: ``evaluate`` on the cached downstream datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATASETS: dict[tuple, Any] = {}


def cached_dataset(spec: str, model_config, split: str, seed: int, fold: int | None = None):
    """``build_dataset`` (cached in memory), kept for this process (the last 8)."""
    from diffmavil.data import build_dataset

    key = (spec, model_config.audio, model_config.video, split, seed, fold)
    if key not in DATASETS:
        if len(DATASETS) >= 8:
            DATASETS.pop(next(iter(DATASETS)))
        DATASETS[key] = build_dataset(
            spec, model_config, split, seed=seed, fold=fold, cache="memory"
        )
    return DATASETS[key]


def run_probe(probe, init: str, model_config, checkpoint: Path | None, device: str = "cpu"):
    """``diffmavil.training.downstream.evaluate`` (a probe or a fine-tune) on this process's
    cached downstream datasets (the pre-trained probe and its controls share them)."""
    from diffmavil.training.downstream import downstream_splits, evaluate

    train_split, eval_split = downstream_splits(probe.data)
    datasets = (
        cached_dataset(probe.data, model_config, train_split, probe.seed, probe.fold),
        cached_dataset(probe.data, model_config, eval_split, probe.seed, probe.fold),
    )
    return evaluate(probe, init, model_config, checkpoint, device, datasets=datasets)
