"""End-to-end fine-tuning: the pre-trained encoders (+ fusion) and a linear head trained
together, with SpecAugment, mixup, patch dropout, LP-FT's head-first stage and early
stopping on a held-out validation split, as configured (``FinetuneConfig``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from diffmavil.model import DiffMAViL
from diffmavil.schedules import lr_at
from diffmavil.training.config import PROBE_LR, FinetuneConfig
from diffmavil.training.probe import (
    classification_loss,
    classification_metrics,
    fit_head,
    host_to_device,
    ordered_loader,
    pooled_features,
    select_features,
)
from diffmavil.training.step import autocast_context


def spec_augment(
    audio: torch.Tensor, freq_width: int, time_width: int, generator: torch.Generator
) -> torch.Tensor:
    """Zero one random frequency band (< freq_width bins) and one time band (< time_width
    frames) per clip: audio [B, T, F] -> [B, T, F].

    The bands are drawn from ``generator`` (a CPU generator: the same bands on every
    device); the mask is built on ``audio``'s device from them (B widths and starts copied,
    not a [B, T, F] mask per step)."""
    batch, frames, bins = audio.shape
    device = audio.device

    def band(width: int, size: int) -> torch.Tensor:
        """[B, size] True inside one random band of width < ``width`` per clip."""
        widths = torch.randint(0, min(width, size) + 1, (batch,), generator=generator)
        starts = (torch.rand(batch, generator=generator) * (size - widths + 1)).long()
        widths, starts = host_to_device(widths, device), host_to_device(starts, device)
        positions = torch.arange(size, device=device)[None, :]
        return (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])

    keep = torch.ones(batch, frames, bins, device=device)
    if freq_width > 0:
        keep = keep * (~band(freq_width, bins))[:, None, :]
    if time_width > 0:
        keep = keep * (~band(time_width, frames))[:, :, None]
    return audio * keep


class FineTuneClassifier(nn.Module):
    """The pre-trained encoders (+ fusion) with a linear head on mean-pooled features; in
    training mode the encoders see ``config.patch_keep`` of each clip's patches."""

    def __init__(self, backbone: DiffMAViL, config: FinetuneConfig, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        width = backbone.feature_dim * (
            2 if config.modality == "audio-video" and config.features == "encoder" else 1
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, audio: torch.Tensor, video: torch.Tensor | None) -> torch.Tensor:
        keep = self.config.patch_keep if self.training else 1.0
        encoded = self.backbone.encode_with_grad(audio, video, keep_fraction=keep)
        return self.head(self.norm(select_features(encoded, self.config)))


# A fine-tune trains for about this many optimizer steps (epochs = steps / batches per
# epoch, within [FINETUNE_MIN_EPOCHS, FINETUNE_MAX_EPOCHS]), its learning rate warming up
# and decaying over them. **choice**: 480 steps are 60 epochs of the default fine-tune of
# 500 clips at tiny; with the default patch dropout (``FinetuneConfig.patch_keep``, a
# quarter of the patches per step) they take about as long as 20 epochs on every patch
# did, and score as well as 100 epochs on every patch (paired comparison:
# reports/finetune/README.md).
FINETUNE_STEPS = 480
FINETUNE_MIN_EPOCHS = 5
FINETUNE_MAX_EPOCHS = 100

EpochCallback = Callable[[dict[str, Any]], None]
Autocast = Callable[[], AbstractContextManager[Any]]

# A fine-tune reads every training item once per epoch: it loads them once and keeps them in
# memory while they fit in this many bytes (synthetic clips are otherwise generated again,
# files decoded again, every epoch: at tiny, most of an epoch's time).
RESIDENT_BYTES = 2 * 1024**3


class ResidentItems(torch.utils.data.Dataset):
    """The first ``items`` items of ``dataset``, loaded once: audio, label and index, and
    video only when the fine-tune reads it (``modality="audio-video"``)."""

    def __init__(self, dataset, items: int, modality: str) -> None:
        keys = ("audio", "label", "index") + (("video",) if modality == "audio-video" else ())
        self.items = [_subset(dataset[i], keys) for i in range(items)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


def _subset(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: item[key] for key in keys}


def resident_items(dataset, items: int, modality: str):
    """``ResidentItems`` of ``dataset`` when its first ``items`` items fit in
    ``RESIDENT_BYTES`` (estimated from item 0), else ``dataset`` itself (read per epoch)."""
    if items == 0:
        return dataset
    first = dataset[0]
    tensors = [first["audio"]] + ([first["video"]] if modality == "audio-video" else [])
    per_item = sum(t.numel() * t.element_size() for t in tensors)
    if per_item * items > RESIDENT_BYTES:
        return dataset
    return ResidentItems(dataset, items, modality)


def finetune_epochs(train_items: int, batch_size: int) -> int:
    """Epochs of a fine-tune on ``train_items`` when none are given: about
    ``FINETUNE_STEPS`` optimizer steps, clamped to [FINETUNE_MIN_EPOCHS, FINETUNE_MAX_EPOCHS]."""
    batches = max(1, math.ceil(train_items / batch_size))
    return min(FINETUNE_MAX_EPOCHS, max(FINETUNE_MIN_EPOCHS, math.ceil(FINETUNE_STEPS / batches)))


def finetune_lr(config: FinetuneConfig, step: int, planned_steps: int) -> float:
    """The fine-tune's learning rate at optimizer step ``step`` (0-based) of
    ``planned_steps``: ``learning_rate`` throughout (``constant``), or a linear warm-up
    over ``warmup_fraction`` of the steps and a half cosine to 0 at the planned end
    (``cosine``; the first step trains at a small positive rate, not 0)."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    return lr_at(
        step + 1, planned_steps + 1, config.learning_rate, warmup_fraction=config.warmup_fraction
    )


def validation_split(items: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, validation indices) of ``items``: a seeded random ``fraction``
    (at least one item, and at least one left to train on) is held out."""
    held = min(items - 1, max(1, round(items * fraction)))
    order = torch.randperm(items, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[held:]), sorted(order[:held])


def finetune_autocast(device: str, dtype: str) -> Autocast:
    """The fine-tune's forward autocast (``autocast_context``): nothing for ``fp32`` (the
    default), bf16 autocast for ``bf16`` on CUDA; bf16 elsewhere is refused, as in
    pre-training. The loss is computed in fp32 either way."""
    if dtype != "fp32" and torch.device(device).type != "cuda":
        raise ValueError(f"dtype={dtype}: bf16 autocast is only supported on CUDA, not {device}")
    return autocast_context(torch.device(device), dtype)


def logits_and_labels(
    model: nn.Module,
    dataset,
    config: FinetuneConfig,
    device: str,
    limit=None,
    *,
    dtype: str = "fp32",
):
    """(logits [N, C] on CPU, labels [N]) of ``dataset`` in eval mode, no grad, the forward
    under ``dtype``'s autocast (``finetune_autocast``); the logits move to the CPU once."""
    autocast = finetune_autocast(device, dtype)
    model.eval()
    logits, labels = [], []
    with torch.no_grad():
        for batch in ordered_loader(dataset, config.batch_size, limit):
            video = batch["video"].to(device) if config.modality == "audio-video" else None
            with autocast():
                logits.append(model(batch["audio"].to(device), video).float())
            labels.append(batch["label"])
    return torch.cat(logits).cpu(), torch.cat(labels)


def full_finetune(
    backbone: DiffMAViL,
    train_set,
    eval_set,
    config: FinetuneConfig,
    device: str = "cpu",
    on_epoch: EpochCallback | None = None,
    *,
    dtype: str = "fp32",
) -> dict[str, float]:
    """Fine-tune (``train_classifier``), then score ``eval_set``: metrics, epochs_run,
    best_epoch, validation_items. ``dtype="bf16"``: bf16 autocast on CUDA."""
    model, info = train_classifier(backbone, train_set, config, device, on_epoch, dtype=dtype)
    logits, labels = logits_and_labels(
        model, eval_set, config, device, config.max_eval_items, dtype=dtype
    )
    return {**classification_metrics(logits, labels, bool(train_set.multi_label)), **info}


def train_classifier(
    backbone: DiffMAViL,
    train_set,
    config: FinetuneConfig,
    device: str = "cpu",
    on_epoch: EpochCallback | None = None,
    *,
    dtype: str = "fp32",
) -> tuple[FineTuneClassifier, dict[str, Any]]:
    """Fine-tune encoders + head with AdamW; SpecAugment and mixup as configured.

    With ``config.patience``, ``validation_fraction`` of the training items is held out
    (``validation_split``), training stops once the validation loss has not improved for
    ``patience`` epochs, and the model comes back with the best epoch's weights.
    ``on_epoch`` gets one dict per epoch (epoch, epochs, train_loss, lr, val_loss,
    val_accuracy or val_mAP, seconds). ``dtype="bf16"``: the forward passes under bf16
    autocast (CUDA only; ``finetune_autocast``). Returns (model, {epochs_run, best_epoch,
    validation_items}).
    """
    autocast = finetune_autocast(device, dtype)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = _classifier(backbone, config, train_set.num_classes, device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    multi_label = bool(train_set.multi_label)
    train_data, val_data = _training_and_validation(train_set, config)
    epochs = config.epochs or finetune_epochs(len(train_data), config.batch_size)
    head = {}
    if config.head_epochs:
        head = train_head_first(
            model, train_data, multi_label, config, device, generator, autocast=autocast
        )
        if on_epoch is not None:
            on_epoch({"epoch": 0, "epochs": epochs, **head})
    loader = torch.utils.data.DataLoader(
        train_data, batch_size=config.batch_size, shuffle=True, generator=generator
    )
    trainer = _Trainer(model, optimizer, config, train_set.num_classes, multi_label, device,
                       generator, autocast, planned_steps=epochs * len(loader))  # fmt: skip
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    for epoch in range(epochs):
        start = time.perf_counter()
        train_loss = trainer.epoch(loader)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "epochs": epochs,
            "train_loss": train_loss,
            "lr": optimizer.param_groups[0]["lr"],  # the epoch's last step's
        }
        if len(val_data):
            val_loss = _validate(model, val_data, config, device, multi_label, dtype, row)
            if best is None or val_loss < best[0]:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = (val_loss, epoch + 1, state)
        row["seconds"] = time.perf_counter() - start
        if on_epoch is not None:
            on_epoch(row)
        if best is not None and epoch + 1 - best[1] >= config.patience:
            break
    if best is not None:
        model.load_state_dict(best[2])
    return model, {
        "epochs_run": epoch + 1,
        "best_epoch": best[1] if best is not None else epoch + 1,
        "validation_items": len(val_data),
        **{f"head_{key}": value for key, value in head.items() if key != "stage"},
    }


def _classifier(
    backbone: DiffMAViL, config: FinetuneConfig, num_classes: int, device: str
) -> FineTuneClassifier:
    """The classifier on ``device``, its decoders and contrastive projections frozen
    (unused downstream)."""
    model = FineTuneClassifier(backbone, config, num_classes).to(device)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not any(key in name for key in ("decoder", "projection"))
    return model


def _training_and_validation(train_set, config: FinetuneConfig):
    """(training items, validation items) of the first ``max_train_items``: a validation
    split held out when ``config.patience`` is set (``validation_split``), else none;
    resident in memory when they fit (``resident_items``)."""
    items = min(len(train_set), config.max_train_items or len(train_set))
    train_indices, val_indices = list(range(items)), []
    if config.patience is not None and items >= 2:
        train_indices, val_indices = validation_split(
            items, config.validation_fraction, config.seed
        )
    resident = resident_items(train_set, items, config.modality)
    return (
        torch.utils.data.Subset(resident, train_indices),
        torch.utils.data.Subset(resident, val_indices),
    )


def _validate(model, val_data, config, device, multi_label, dtype, row) -> float:
    """The validation loss, with it and the validation metrics added to ``row``."""
    logits, labels = logits_and_labels(model, val_data, config, device, dtype=dtype)
    val_loss = float(classification_loss(logits, labels, multi_label, 0.0))
    row["val_loss"] = val_loss
    for key, value in classification_metrics(logits, labels, multi_label).items():
        row[f"val_{key}"] = value
    return val_loss


class _Trainer:
    """A fine-tune's training steps: augmentation, the learning-rate schedule over the
    planned steps, forward (under ``autocast``), backward and AdamW."""

    def __init__(self, model, optimizer, config, num_classes, multi_label, device, generator,
                 autocast, *, planned_steps: int) -> None:  # fmt: skip
        self.model, self.optimizer, self.config = model, optimizer, config
        self.num_classes, self.multi_label = num_classes, multi_label
        self.device, self.generator, self.autocast = device, generator, autocast
        self.planned_steps, self.steps = planned_steps, 0

    def epoch(self, loader) -> float:
        """One epoch; its mean training loss. The losses stay on the device and are read
        once, at the end (a read per step would wait for the device at every step)."""
        self.model.train()
        losses = [self.step(batch) for batch in loader]
        values = torch.stack(losses).tolist() if losses else []
        return sum(values) / max(len(values), 1)

    def step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One optimizer step on ``batch``; its loss (detached, on the device)."""
        config, device = self.config, self.device
        audio = batch["audio"].to(device)
        video = batch["video"].to(device) if config.modality == "audio-video" else None
        targets = batch["label"].to(device)
        if config.specaugment_freq or config.specaugment_time:
            audio = spec_augment(
                audio, config.specaugment_freq, config.specaugment_time, self.generator
            )
        if config.mixup > 0:
            audio, video, targets = _mixup(audio, video, targets, self.num_classes,
                                           self.multi_label, config, self.generator)  # fmt: skip
        for group in self.optimizer.param_groups:
            group["lr"] = finetune_lr(config, self.steps, self.planned_steps)
        self.steps += 1
        with self.autocast():
            logits = self.model(audio, video)
        loss = classification_loss(
            logits.float(), targets, self.multi_label, config.label_smoothing
        )
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def train_head_first(
    model: FineTuneClassifier,
    dataset,
    multi_label: bool,
    config: FinetuneConfig,
    device: str,
    generator: torch.Generator,
    *,
    autocast: Autocast = contextlib.nullcontext,
) -> dict[str, Any]:
    """LP-FT's first stage: ``model``'s head (LayerNorm + linear) trained alone for
    ``config.head_epochs`` epochs with AdamW at ``PROBE_LR`` on the frozen encoders' pooled
    features of ``dataset`` (computed once, in eval mode, under ``autocast``: [N, D]), so
    that the fine-tune starts from a head that already separates the classes rather than
    from a random one whose large early gradients disturb the pre-trained encoders.
    Returns {stage, train_loss, train_accuracy or train_mAP, seconds}."""
    start = time.perf_counter()
    model.eval()
    with autocast():
        features, targets = pooled_features(model.backbone, dataset, config, device)
    features, targets = features.float(), targets.to(device)
    fit_head(nn.Sequential(model.norm, model.head), features, targets, multi_label, config,
             PROBE_LR, config.head_epochs, generator, config.label_smoothing)  # fmt: skip
    with torch.no_grad():
        logits = model.head(model.norm(features))
        loss = float(classification_loss(logits, targets, multi_label, 0.0))
        metrics = classification_metrics(logits.cpu(), targets.cpu(), multi_label)
    return {
        "stage": "head",
        "train_loss": loss,
        **{f"train_{key}": value for key, value in metrics.items()},
        "seconds": time.perf_counter() - start,
    }


def _mixup(audio, video, targets, num_classes, multi_label, config, generator):
    weight = float(torch.distributions.Beta(config.mixup, config.mixup).sample())
    order = host_to_device(torch.randperm(audio.shape[0], generator=generator), audio.device)
    soft = targets.float() if multi_label else F.one_hot(targets, num_classes).float()
    mixed_audio = weight * audio + (1 - weight) * audio[order]
    mixed_video = None if video is None else weight * video + (1 - weight) * video[order]
    return mixed_audio, mixed_video, weight * soft + (1 - weight) * soft[order]
