"""Linear probes on frozen features.

Every initialisation (a pre-training checkpoint, random init, raw fbank) goes through the
same probe: features pooled the same way, standardised with the training split's
statistics, a linear classifier trained with the same optimiser for the same epochs. Only
the features differ, so probe accuracies compare like for like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from diffmavil.model import DiffMAViL
from diffmavil.training.config import FinetuneConfig


@dataclass
class FeatureSet:
    """features [N, D], labels [N] (single-label) or [N, C] (multi-label)."""

    features: torch.Tensor
    labels: torch.Tensor
    multi_label: bool
    num_classes: int


def ordered_loader(dataset, batch_size: int, limit: int | None):
    """Batches of the first ``limit`` items of ``dataset`` (all when None), in order."""
    if limit is not None and limit < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(limit))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)


@torch.no_grad()
def pooled_features(
    model: DiffMAViL | None,
    dataset,
    config: FinetuneConfig,
    device: str = "cpu",
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled features [N, D] on ``device``, labels [N] or [N, C]) of every item, no grad.
    ``model=None`` gives the raw-fbank baseline: the mean and standard deviation over time
    of each mel bin [N, 2 * bins]."""
    chunks, labels = [], []
    for batch in ordered_loader(dataset, config.batch_size, limit):
        audio = batch["audio"].to(device)
        if model is None:
            chunks.append(torch.cat([audio.mean(dim=1), audio.std(dim=1)], dim=1))
        else:
            video = batch["video"].to(device) if config.modality == "audio-video" else None
            chunks.append(select_features(model.encode(audio, video), config))
        labels.append(batch["label"])
    return torch.cat(chunks), torch.cat(labels)


def extract_features(
    model: DiffMAViL | None,
    dataset,
    config: FinetuneConfig,
    device: str = "cpu",
    limit: int | None = None,
) -> FeatureSet:
    """``pooled_features`` of every item as a CPU float ``FeatureSet`` (what probes cache)."""
    features, labels = pooled_features(model, dataset, config, device, limit)
    return FeatureSet(
        features.cpu().float(), labels, bool(dataset.multi_label), int(dataset.num_classes)
    )


def select_features(encoded, config: FinetuneConfig) -> torch.Tensor:
    """The pooled features [B, D] a probe or fine-tune reads from ``DiffMAViL.encode``'s
    output: audio only or audio + video, encoder outputs or fused (``config.features``)."""
    if config.modality == "audio":
        return encoded.audio if config.features == "encoder" else encoded.audio_fused
    if config.features == "encoder":
        return torch.cat([encoded.audio, encoded.video], dim=1)
    return encoded.joint


def classification_metrics(
    logits: torch.Tensor, labels: torch.Tensor, multi_label: bool
) -> dict[str, float]:
    """accuracy (single-label) or mAP over classes with a positive (multi-label)."""
    if not multi_label:
        return {"accuracy": float((logits.argmax(dim=1) == labels).float().mean())}
    return {"mAP": mean_average_precision(logits, labels)}


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """scores, targets [N, C] -> mean over classes (with >= 1 positive) of average precision."""
    precisions = []
    for c in range(scores.shape[1]):
        positives = targets[:, c] > 0.5
        if positives.sum() == 0:
            continue
        order = torch.argsort(scores[:, c], descending=True)
        hits = positives[order].float()
        precision_at_k = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
        precisions.append(float((precision_at_k * hits).sum() / hits.sum()))
    return sum(precisions) / max(len(precisions), 1)


def classification_loss(
    logits: torch.Tensor, targets: torch.Tensor, multi_label: bool, smoothing: float
) -> torch.Tensor:
    """Cross-entropy for class indices [N] (with label ``smoothing``), soft-target
    cross-entropy for mixed targets [N, C], binary cross-entropy when ``multi_label``."""
    if multi_label or targets.dtype.is_floating_point:
        if multi_label:
            return F.binary_cross_entropy_with_logits(logits, targets.float())
        return torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean()
    return F.cross_entropy(logits, targets, label_smoothing=smoothing)


def linear_probe(
    train: FeatureSet, evaluation: FeatureSet, config: FinetuneConfig
) -> dict[str, float]:
    """Standardise with train statistics, train a linear classifier, score ``evaluation``."""
    mean = train.features.mean(dim=0)
    std = train.features.std(dim=0).clamp_min(1e-6)
    x_train = (train.features - mean) / std
    x_eval = (evaluation.features - mean) / std
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    head = nn.Linear(x_train.shape[1], train.num_classes)
    fit_head(head, x_train, train.labels, train.multi_label, config, config.learning_rate,
             config.probe_epochs, generator)  # fmt: skip
    with torch.no_grad():
        train_metrics = classification_metrics(head(x_train), train.labels, train.multi_label)
        eval_metrics = classification_metrics(head(x_eval), evaluation.labels, train.multi_label)
    return {
        **{f"train_{k}": v for k, v in train_metrics.items()},
        **eval_metrics,
    }


def fit_head(
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    multi_label: bool,
    config: FinetuneConfig,
    lr: float,
    epochs: int,
    generator: torch.Generator,
    smoothing: float = 0.0,
) -> None:
    """Train ``head`` on fixed ``features`` [N, D] with AdamW (``lr``, the config's weight
    decay and batch size) for ``epochs`` shuffled epochs: the probe's and LP-FT's loop.

    Each epoch's order is drawn from ``generator`` (a CPU generator: the same batches on
    every device) and indexes the features on their own device (copied there once per
    epoch, not per batch)."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=config.weight_decay)
    for _ in range(epochs):
        order = host_to_device(torch.randperm(len(features), generator=generator), features.device)
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            loss = classification_loss(head(features[index]), labels[index], multi_label, smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def host_to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor on ``device``: as it is on a CPU; on CUDA copied from pinned
    memory without blocking the host (a copy from pageable memory waits for the device)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def repeated_linear_probe(
    train: FeatureSet, evaluation: FeatureSet, config: FinetuneConfig
) -> dict[str, Any]:
    """``config.probe_seeds`` linear probes (seeds ``seed``, ``seed + 1``, ...) on the same
    features: every metric is their mean; ``per_probe_seed`` keeps each probe's metrics.
    One probe (the default) returns exactly :func:`linear_probe`'s metrics."""
    if config.probe_seeds == 1:
        return linear_probe(train, evaluation, config)
    runs = [
        linear_probe(train, evaluation, config.model_copy(update={"seed": config.seed + k}))
        for k in range(config.probe_seeds)
    ]
    mean = {key: sum(run[key] for run in runs) / len(runs) for key in runs[0]}
    return {**mean, "per_probe_seed": runs}
