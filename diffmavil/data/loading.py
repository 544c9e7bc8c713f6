"""DataLoaders, loading-time measurement and fbank statistics over a dataset."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from diffmavil.data.common import AVDataset
from diffmavil.data.fbank import NormStats


def _single_thread_worker(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader with a seeded shuffle; workers run single-threaded and persist.

    Batches are dicts: audio [B, target_frames, mel_bins], video [B, C, T, H, W],
    label [B] or [B, num_classes], index [B].
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        worker_init_fn=_single_thread_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
    )


@dataclass(frozen=True)
class LoadTiming:
    """Time spent waiting for batches, apart from any compute."""

    batches: int
    samples: int
    seconds: float

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("inf")

    @property
    def ms_per_sample(self) -> float:
        return 1000.0 * self.seconds / max(self.samples, 1)


def time_loading(loader: DataLoader, batches: int) -> LoadTiming:
    """Iterate ``batches`` batches doing nothing else; returns the loading throughput."""
    start = time.perf_counter()
    count = samples = 0
    for batch in loader:
        samples += int(batch["audio"].shape[0])
        count += 1
        if count >= batches:
            break
    return LoadTiming(count, samples, time.perf_counter() - start)


def compute_norm_stats(dataset: AVDataset, max_items: int | None = None) -> NormStats:
    """Mean and std of the un-normalised fbank over (the first ``max_items``) items.

    As AudioMAE: over the padded [target_frames, mel_bins] inputs, all values pooled.
    """
    count = len(dataset) if max_items is None else min(max_items, len(dataset))
    total = torch.zeros((), dtype=torch.float64)
    total_sq = torch.zeros((), dtype=torch.float64)
    values = 0
    for index in range(count):
        fbank = dataset.raw_fbank(index).double()
        total += fbank.sum()
        total_sq += fbank.square().sum()
        values += fbank.numel()
    if values == 0:
        raise ValueError("compute_norm_stats: empty dataset")
    mean = total / values
    variance = (total_sq / values - mean * mean).clamp(min=0.0)
    return NormStats(mean=float(mean), std=float(variance.sqrt()))
