"""Shared pieces of the data layer: errors, the item format, the dataset base with caching."""

from __future__ import annotations

import hashlib
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffmavil.config import ModelConfig
from diffmavil.data.fbank import NormStats

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class DataError(ValueError):
    """A dataset cannot be built; the message names the spec or path and what is allowed."""


class BadFileWarning(UserWarning):
    """A data file was skipped (corrupt, empty, unreadable or missing)."""


def warn_skip(path: Path | str, reason: str) -> None:
    """Warn that ``path`` is skipped."""
    warnings.warn(f"skipping {path}: {reason}", BadFileWarning, stacklevel=3)


def check_split(split: str) -> Split:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return split  # type: ignore[return-value]


def imagenet_normalise(video: Tensor) -> Tensor:
    """[C, T, H, W] in [0, 1] -> ImageNet-normalised (grey for C=1, per channel for C=3)."""
    channels = video.shape[0]
    if channels == 3:
        mean = torch.tensor(IMAGENET_MEAN, dtype=video.dtype).view(3, 1, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=video.dtype).view(3, 1, 1, 1)
    else:
        mean = torch.full((channels, 1, 1, 1), sum(IMAGENET_MEAN) / 3, dtype=video.dtype)
        std = torch.full((channels, 1, 1, 1), sum(IMAGENET_STD) / 3, dtype=video.dtype)
    return (video - mean) / std


class AVDataset(Dataset, ABC):
    """Base of every dataset: items ``{"audio", "video", "label", "index"}``.

    audio: FloatTensor [target_frames, mel_bins] (normalised fbank); video: FloatTensor
    [C, T, H, W] (ImageNet-normalised, zeros when ``has_video`` is False); label: LongTensor []
    (single-label) or FloatTensor [num_classes] (multi-label); index: int.

    ``cache``: None (off), ``"memory"`` (per process: each DataLoader worker holds its own),
    or a directory where items are saved as ``.pt`` files keyed by a fingerprint of the
    dataset, the input sizes and the statistics.
    """

    num_classes: int
    class_names: list[str]
    multi_label: bool = False
    has_video: bool = True
    skipped: int = 0

    def __init__(self, config: ModelConfig, split: Split, stats: NormStats, cache: str | None):
        self.config = config
        self.split = split
        self.stats = stats
        self.skipped = 0
        self._memory: dict[int, dict[str, Any]] | None = {} if cache == "memory" else None
        self._cache_dir: Path | None = None
        if cache not in (None, "", "memory"):
            self._cache_dir = Path(cache)
            self._cache_dir.mkdir(parents=True, exist_ok=True)

    # Subclasses implement these two.
    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def load_item(self, index: int) -> dict[str, Any]:
        """Build item ``index`` from its source (may raise on a bad file)."""

    def fingerprint(self) -> str:
        """Identifies the data source for the disk cache (subclasses add their source)."""
        return f"{type(self).__name__}|{self.split}"

    def _cache_path(self, index: int) -> Path:
        assert self._cache_dir is not None
        key = "|".join(
            [
                self.fingerprint(),
                self.config.audio.model_dump_json(),
                self.config.video.model_dump_json(),
                repr(self.stats),
            ]
        )
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return self._cache_dir / digest / f"{index}.pt"

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        if self._memory is not None and index in self._memory:
            return self._memory[index]
        path = self._cache_path(index) if self._cache_dir is not None else None
        if path is not None and path.exists():
            item = torch.load(path, weights_only=True)
        else:
            item = self.load_item(index)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{torch.initial_seed() % 100000}.tmp")
                torch.save(item, tmp)
                tmp.replace(path)
        if self._memory is not None:
            self._memory[index] = item
        return item

    def raw_fbank(self, index: int) -> Tensor:
        """Un-normalised fbank [target_frames, mel_bins] of item ``index``."""
        audio = self[index]["audio"]
        return audio * (2.0 * self.stats.std) + self.stats.mean

    def describe(self) -> dict[str, Any]:
        """Summary for reports: size, classes, flags, skipped files."""
        return {
            "dataset": type(self).__name__,
            "split": self.split,
            "size": len(self),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "multi_label": self.multi_label,
            "has_video": self.has_video,
            "skipped": self.skipped,
            "stats": {"mean": self.stats.mean, "std": self.stats.std},
        }
