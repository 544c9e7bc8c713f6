"""Downstream evaluation: linear probes on frozen features and full fine-tuning.

Every initialisation (a pre-training checkpoint, random init, raw fbank) goes through the
same probe: features pooled the same way, standardised with the training split's
statistics, a linear classifier trained with the same optimiser for the same epochs. Only
the features differ, so probe accuracies compare like for like.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from diffmavil.config import ModelConfig
from diffmavil.model import DiffMAViL
from diffmavil.schedules import lr_at
from diffmavil.training.checkpoint import load_verified
from diffmavil.training.config import PROBE_LR, FinetuneConfig, PretrainConfig

Init = Literal["checkpoint", "random", "fbank"]
DOWNSTREAM_TRAIN_SPLIT = {"synthetic": "val"}  # the synthetic pre-training split is "train"
ENCODE_COMPONENTS = ("audio_encoder", "video_encoder", "fusion")  # what probes and fine-tunes run


@dataclass
class FeatureSet:
    """features [N, D], labels [N] (single-label) or [N, C] (multi-label)."""

    features: torch.Tensor
    labels: torch.Tensor
    multi_label: bool
    num_classes: int


def load_pretrained(checkpoint: str | Path, device: str = "cpu") -> DiffMAViL:
    """A DiffMAViL restored from a pre-training run's checkpoint (and its config.json)."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "checkpoint.pt"
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    config_path = checkpoint.parent / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} is missing beside the checkpoint")
    run_config = PretrainConfig.model_validate(json.loads(config_path.read_text()))
    model = DiffMAViL(run_config.model)
    state = load_verified(checkpoint)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def _loader(dataset, batch_size: int, limit: int | None):
    if limit is not None and limit < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(limit))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)


def _labels_of(batch: dict[str, Any]) -> torch.Tensor:
    return batch["label"]


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
    for batch in _loader(dataset, config.batch_size, limit):
        audio = batch["audio"].to(device)
        if model is None:
            chunks.append(torch.cat([audio.mean(dim=1), audio.std(dim=1)], dim=1))
        else:
            video = batch["video"].to(device) if config.modality == "audio-video" else None
            chunks.append(_select_features(model.encode(audio, video), config))
        labels.append(_labels_of(batch))
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


def _select_features(encoded, config: FinetuneConfig) -> torch.Tensor:
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


def _loss(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool, smoothing: float):
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
    decay and batch size) for ``epochs`` shuffled epochs: the probe's and LP-FT's loop."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=config.weight_decay)
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            loss = _loss(head(features[index]), labels[index], multi_label, smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


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


def spec_augment(
    audio: torch.Tensor, freq_width: int, time_width: int, generator: torch.Generator
) -> torch.Tensor:
    """Zero one random frequency band (< freq_width bins) and one time band (< time_width
    frames) per clip: audio [B, T, F] -> [B, T, F]."""
    batch, frames, bins = audio.shape

    def band(width: int, size: int) -> torch.Tensor:
        """[B, size] True inside one random band of width < ``width`` per clip."""
        widths = torch.randint(0, min(width, size) + 1, (batch,), generator=generator)
        starts = (torch.rand(batch, generator=generator) * (size - widths + 1)).long()
        positions = torch.arange(size)[None, :]
        return (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])

    keep = torch.ones(batch, frames, bins)
    if freq_width > 0:
        keep = keep * (~band(freq_width, bins))[:, None, :]
    if time_width > 0:
        keep = keep * (~band(time_width, frames))[:, :, None]
    return audio * keep.to(audio.device)


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
        return self.head(self.norm(_select_features(encoded, self.config)))


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

# A fine-tune reads every training item once per epoch: it loads them once and keeps them in
# memory while they fit in this many bytes (synthetic clips are otherwise generated again,
# files decoded again, every epoch: at tiny that was most of an epoch's time).
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


def _batches(model: nn.Module, dataset, config: FinetuneConfig, device: str, limit=None):
    """(logits [N, C] on CPU, labels [N]) of ``dataset`` in eval mode, no grad."""
    model.eval()
    logits, labels = [], []
    with torch.no_grad():
        for batch in _loader(dataset, config.batch_size, limit):
            video = batch["video"].to(device) if config.modality == "audio-video" else None
            logits.append(model(batch["audio"].to(device), video).float().cpu())
            labels.append(batch["label"])
    return torch.cat(logits), torch.cat(labels)


def full_finetune(
    backbone: DiffMAViL,
    train_set,
    eval_set,
    config: FinetuneConfig,
    device: str = "cpu",
    on_epoch: EpochCallback | None = None,
) -> dict[str, float]:
    """Fine-tune (``train_classifier``), then score ``eval_set``: metrics, epochs_run,
    best_epoch, validation_items."""
    model, info = train_classifier(backbone, train_set, config, device, on_epoch)
    logits, labels = _batches(model, eval_set, config, device, config.max_eval_items)
    return {**classification_metrics(logits, labels, bool(train_set.multi_label)), **info}


def train_classifier(
    backbone: DiffMAViL,
    train_set,
    config: FinetuneConfig,
    device: str = "cpu",
    on_epoch: EpochCallback | None = None,
) -> tuple[FineTuneClassifier, dict[str, Any]]:
    """Fine-tune encoders + head with AdamW; SpecAugment and mixup as configured.

    With ``config.patience``, ``validation_fraction`` of the training items is held out
    (``validation_split``), training stops once the validation loss has not improved for
    ``patience`` epochs, and the model comes back with the best epoch's weights.
    ``on_epoch`` gets one dict per epoch (epoch, epochs, train_loss, lr, val_loss,
    val_accuracy or val_mAP, seconds). Returns (model, {epochs_run, best_epoch,
    validation_items}).
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = FineTuneClassifier(backbone, config, train_set.num_classes).to(device)
    # Decoders and contrastive projections are unused downstream: freeze them.
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not any(key in name for key in ("decoder", "projection"))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    multi_label = bool(train_set.multi_label)
    items = min(len(train_set), config.max_train_items or len(train_set))
    train_indices, val_indices = list(range(items)), []
    if config.patience is not None and items >= 2:
        train_indices, val_indices = validation_split(
            items, config.validation_fraction, config.seed
        )
    resident = resident_items(train_set, items, config.modality)
    train_data = torch.utils.data.Subset(resident, train_indices)
    val_data = torch.utils.data.Subset(resident, val_indices)
    epochs = config.epochs or finetune_epochs(len(train_indices), config.batch_size)
    head = {}
    if config.head_epochs:
        head = train_head_first(model, train_data, multi_label, config, device, generator)
        if on_epoch is not None:
            on_epoch({"epoch": 0, "epochs": epochs, **head})
    loader = torch.utils.data.DataLoader(
        train_data, batch_size=config.batch_size, shuffle=True, generator=generator
    )
    planned_steps, step = epochs * len(loader), 0
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        losses = []
        for batch in loader:
            audio = batch["audio"].to(device)
            video = batch["video"].to(device) if config.modality == "audio-video" else None
            targets = batch["label"].to(device)
            if config.specaugment_freq or config.specaugment_time:
                audio = spec_augment(
                    audio, config.specaugment_freq, config.specaugment_time, generator
                )
            if config.mixup > 0:
                audio, video, targets = _mixup(
                    audio, video, targets, train_set.num_classes, multi_label, config, generator
                )
            for group in optimizer.param_groups:
                group["lr"] = finetune_lr(config, step, planned_steps)
            step += 1
            loss = _loss(model(audio, video), targets, multi_label, config.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "epochs": epochs,
            "train_loss": sum(losses) / max(len(losses), 1),
            "lr": optimizer.param_groups[0]["lr"],  # the epoch's last step's
        }
        if val_indices:
            logits, labels = _batches(model, val_data, config, device)
            val_loss = float(_loss(logits, labels, multi_label, 0.0))
            row["val_loss"] = val_loss
            for key, value in classification_metrics(logits, labels, multi_label).items():
                row[f"val_{key}"] = value
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
        "validation_items": len(val_indices),
        **{f"head_{key}": value for key, value in head.items() if key != "stage"},
    }


def train_head_first(
    model: FineTuneClassifier,
    dataset,
    multi_label: bool,
    config: FinetuneConfig,
    device: str,
    generator: torch.Generator,
) -> dict[str, Any]:
    """LP-FT's first stage: ``model``'s head (LayerNorm + linear) trained alone for
    ``config.head_epochs`` epochs with AdamW at ``PROBE_LR`` on the frozen encoders' pooled
    features of ``dataset`` (computed once, in eval mode: [N, D]), so that the fine-tune
    starts from a head that already separates the classes rather than from a random one
    whose large early gradients disturb the pre-trained encoders.
    Returns {stage, train_loss, train_accuracy or train_mAP, seconds}."""
    start = time.perf_counter()
    model.eval()
    features, targets = pooled_features(model.backbone, dataset, config, device)
    targets = targets.to(device)
    fit_head(nn.Sequential(model.norm, model.head), features, targets, multi_label, config,
             PROBE_LR, config.head_epochs, generator, config.label_smoothing)  # fmt: skip
    with torch.no_grad():
        logits = model.head(model.norm(features))
        loss = float(_loss(logits, targets, multi_label, 0.0))
        metrics = classification_metrics(logits.cpu(), targets.cpu(), multi_label)
    return {
        "stage": "head",
        "train_loss": loss,
        **{f"train_{key}": value for key, value in metrics.items()},
        "seconds": time.perf_counter() - start,
    }


def _mixup(audio, video, targets, num_classes, multi_label, config, generator):
    weight = float(torch.distributions.Beta(config.mixup, config.mixup).sample())
    order = torch.randperm(audio.shape[0], generator=generator).to(audio.device)
    soft = targets.float() if multi_label else F.one_hot(targets, num_classes).float()
    mixed_audio = weight * audio + (1 - weight) * audio[order]
    mixed_video = None if video is None else weight * video + (1 - weight) * video[order]
    return mixed_audio, mixed_video, weight * soft + (1 - weight) * soft[order]


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
) -> dict[str, Any]:
    """Probe or fine-tune one initialisation on the downstream task; returns metrics.

    ``datasets``: prebuilt (train, evaluation) datasets to share between calls (e.g. the
    pre-trained probe and its controls); built from ``config.data`` otherwise.
    ``on_epoch``: called after each fine-tuning epoch (see ``full_finetune``).
    """
    from diffmavil.data import build_dataset

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
        metrics = full_finetune(model, train_set, eval_set, config, device, on_epoch)
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
