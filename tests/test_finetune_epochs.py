"""Fine-tuning that fits its data: epochs chosen for the data size, a held-out validation
split, early stopping that keeps the best epoch, and progress one line per epoch."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from diffmavil import make_config
from diffmavil.data import build_dataset
from diffmavil.model import DiffMAViL
from diffmavil.training.config import FinetuneConfig
from diffmavil.training.finetune import (
    FINETUNE_MAX_EPOCHS,
    FINETUNE_MIN_EPOCHS,
    FINETUNE_STEPS,
    finetune_epochs,
    finetune_lr,
    logits_and_labels,
    train_classifier,
    validation_split,
)
from diffmavil.training.probe import classification_loss

DATA = "synthetic:classes=4,size=16,eval_size=16"  # downstream: train on val, score test


def test_epochs_follow_the_data_size():
    assert finetune_epochs(450, 64) == -(-FINETUNE_STEPS // 8)  # 8 batches per epoch
    assert finetune_epochs(10, 64) == min(FINETUNE_MAX_EPOCHS, FINETUNE_STEPS)  # one batch
    assert finetune_epochs(10**6, 64) == FINETUNE_MIN_EPOCHS
    sizes = [finetune_epochs(n, 32) for n in (50, 200, 800, 3200)]
    assert sizes == sorted(sizes, reverse=True)  # more data, fewer epochs


def test_validation_split_is_seeded_disjoint_and_complete():
    train, val = validation_split(50, 0.1, seed=3)
    assert len(val) == 5 and sorted(train + val) == list(range(50))
    assert validation_split(50, 0.1, seed=3) == (train, val)
    assert validation_split(50, 0.1, seed=4)[1] != val
    assert validation_split(2, 0.1, seed=0)[1] and validation_split(2, 0.4, seed=0)[0]


def test_cosine_schedule_warms_up_peaks_and_decays_to_zero():
    config = FinetuneConfig(mode="finetune", lr=1e-3, warmup_fraction=0.1)
    rates = [finetune_lr(config, step, 200) for step in range(200)]
    peak = max(range(200), key=rates.__getitem__)
    assert 0 < rates[0] < rates[5] < rates[peak] and 18 <= peak <= 20
    assert rates[peak] == pytest.approx(1e-3, rel=1e-3)
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :], strict=False))
    assert 0 < rates[-1] < 1e-3 * 1e-3  # ends at (almost) zero
    constant = FinetuneConfig(mode="finetune", lr=1e-3, lr_schedule="constant")
    assert {finetune_lr(constant, step, 200) for step in range(200)} == {1e-3}


def test_schedule_enters_finetune_ids_only():
    """A probe's run id ignores the fine-tune's schedule and early stopping (probe ids of
    earlier grids stay); a fine-tune's id changes with them."""
    from diffmavil.training.config import config_hash

    def run_id(**kw):
        return config_hash(FinetuneConfig(**kw).identity())

    assert run_id(lr_schedule="constant") == run_id(lr_schedule="cosine")
    assert run_id(warmup_fraction=0.3) == run_id()
    assert run_id() == run_id(patience=3)  # hashed with the old default patience
    assert run_id(mode="finetune", lr_schedule="constant") != run_id(mode="finetune")
    assert run_id(mode="finetune", warmup_fraction=0.3) != run_id(mode="finetune")
    assert run_id(mode="finetune", patience=3) != run_id(mode="finetune")


@pytest.fixture(scope="module")
def datasets():
    config = make_config("tiny", "cross-attn")
    return config, (
        build_dataset(DATA, config, "val", seed=0, cache="memory"),
        build_dataset(DATA, config, "test", seed=0),
    )


def test_early_stopping_keeps_the_best_epoch(datasets):
    """Validation loss is tracked every epoch; the run stops `patience` epochs after its
    best one (or at the cap), and the model comes back with the best epoch's weights."""
    model_config, (train_set, _) = datasets
    config = FinetuneConfig(
        data=DATA, mode="finetune", epochs=6, patience=2, batch_size=8, lr=3e-3,
        validation_fraction=0.25,
    )  # fmt: skip
    torch.manual_seed(0)
    rows: list[dict] = []
    model, info = train_classifier(DiffMAViL(model_config), train_set, config, on_epoch=rows.append)
    losses = [row["val_loss"] for row in rows]
    best = min(range(len(losses)), key=losses.__getitem__) + 1
    held_out = round(0.25 * len(train_set))
    assert info == {"epochs_run": len(rows), "best_epoch": best, "validation_items": held_out}
    assert len(rows) == min(6, best + 2) and all(row["epochs"] == 6 for row in rows)
    _, val = validation_split(len(train_set), 0.25, config.seed)
    logits, labels = logits_and_labels(
        model, torch.utils.data.Subset(train_set, val), config, "cpu"
    )
    assert float(classification_loss(logits, labels, False, 0.0)) == pytest.approx(
        losses[best - 1], rel=1e-5
    )


def test_finetune_cli_prints_one_line_per_epoch(datasets):
    result = CliRunner().invoke(
        app,
        [
            "finetune", "--init", "random", "--data", DATA, "--mode", "finetune",
            "--epochs", "2", "--patience", "5", "--batch-size", "8", "--format", "json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert row["epochs_run"] == 2 and row["validation_items"] == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("finetune epoch")]
    assert [line.split(":")[0] for line in lines] == ["finetune epoch 1/2", "finetune epoch 2/2"]
    assert all("val loss" in line and "val accuracy" in line for line in lines)


def test_items_are_loaded_once_and_train_the_same_weights(datasets, monkeypatch):
    """A fine-tune loads each training item once (not once per epoch), keeping only what it
    reads (no video for an audio fine-tune); the weights equal those of a fine-tune that
    reads the dataset every epoch (items over ``RESIDENT_BYTES``)."""
    from diffmavil.training import finetune

    model_config, _ = datasets
    config = FinetuneConfig(data=DATA, mode="finetune", epochs=3, patience=5, batch_size=8)

    def fine_tune() -> tuple[dict[str, torch.Tensor], int]:
        dataset = build_dataset(DATA, model_config, "val", seed=0)  # no cache of its own
        loads = []
        original = dataset.load_item
        monkeypatch.setattr(dataset, "load_item", lambda i: loads.append(i) or original(i))
        torch.manual_seed(0)
        model, _ = train_classifier(DiffMAViL(model_config), dataset, config)
        return model.state_dict(), len(loads)

    resident, resident_loads = fine_tune()
    assert resident_loads == 16 + 1  # every item once, plus item 0 to size them
    monkeypatch.setattr(finetune, "RESIDENT_BYTES", 0)
    streamed, streamed_loads = fine_tune()
    assert streamed_loads == 1 + 3 * 16  # every epoch: training items and validation items
    assert resident.keys() == streamed.keys()
    for name, tensor in resident.items():
        assert torch.equal(tensor, streamed[name]), name
    items = finetune.ResidentItems(build_dataset(DATA, model_config, "val", seed=0), 2, "audio")
    assert set(items[1]) == {"audio", "label", "index"}


def test_no_early_stopping_trains_every_epoch_on_every_item(datasets):
    """``--no-early-stopping``: no validation split, every epoch run, and the same result as
    ``FinetuneConfig(patience=None)`` through the library."""
    from diffmavil.training.downstream import evaluate

    model_config, _ = datasets
    result = CliRunner().invoke(
        app,
        [
            "finetune", "--init", "random", "--data", DATA, "--mode", "finetune",
            "--epochs", "2", "--no-early-stopping", "--batch-size", "8", "--format", "json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert (row["epochs_run"], row["best_epoch"], row["validation_items"]) == (2, 2, 0)
    lines = [line for line in result.stderr.splitlines() if line.startswith("finetune epoch")]
    assert len(lines) == 2 and not any("val loss" in line for line in lines)
    assert all(" lr " in line for line in lines), lines
    config = FinetuneConfig(data=DATA, mode="finetune", epochs=2, patience=None, batch_size=8)
    assert evaluate(config, "random", model_config)["accuracy"] == row["accuracy"]
    default = FinetuneConfig(data=DATA, mode="finetune", epochs=2, batch_size=8)
    assert default.patience is None and default == config  # the default: no early stopping


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--mode", "finetune", "--no-early-stopping", "--patience", "4"], "--patience 4"),
        (["--mode", "probe", "--early-stopping"], "--early-stopping with --mode probe"),
        (["--mode", "probe", "--patience", "4"], "--patience 4 with --mode probe"),
        (["--mode", "finetune", "--patience", "0"], "patience"),
    ],
)
def test_early_stopping_bad_combinations_are_one_line_and_exit_2(options, named):
    result = CliRunner().invoke(app, ["finetune", "--init", "random", "--data", DATA, *options])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines


def test_head_first_trains_the_head_alone_on_frozen_features(datasets):
    """LP-FT's first stage: only the head (LayerNorm + linear) moves, its loss on the frozen
    features falls from the random head's, and the reported train accuracy is that of the
    head on features computed independently (``extract_features``)."""
    from diffmavil.training.finetune import FineTuneClassifier, train_head_first
    from diffmavil.training.probe import classification_metrics, extract_features

    model_config, (train_set, _) = datasets
    config = FinetuneConfig(data=DATA, mode="finetune", head_epochs=30, batch_size=8)
    torch.manual_seed(0)
    model = FineTuneClassifier(DiffMAViL(model_config), config, train_set.num_classes)
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    features = extract_features(model.backbone, train_set, config)
    with torch.no_grad():
        head_logits = model.head(model.norm(features.features))
        loss_before = float(classification_loss(head_logits, features.labels, False, 0.0))
    info = train_head_first(
        model, train_set, False, config, "cpu", torch.Generator().manual_seed(0)
    )
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone_before.items())
    assert not torch.equal(head_before, model.head.weight)
    with torch.no_grad():
        logits = model.head(model.norm(features.features))
    assert info["stage"] == "head" and info["train_loss"] < loss_before
    loss_after = float(classification_loss(logits, features.labels, False, 0.0))
    assert info["train_loss"] == pytest.approx(loss_after, rel=1e-4)
    expected = classification_metrics(logits, features.labels, False)["accuracy"]
    assert info["train_accuracy"] == pytest.approx(expected)


def test_head_first_enters_finetune_ids_and_the_cli(datasets):
    """``--head-epochs``: one line for the head stage before the epoch lines, the head's
    figures in the result, and a fine-tune id of its own (probe ids and head-less
    fine-tune ids unchanged)."""
    from diffmavil.training.config import config_hash

    def run_id(**kw):
        return config_hash(FinetuneConfig(**kw).identity())

    assert run_id(head_epochs=5) == run_id()  # a probe has no head stage
    assert run_id(mode="finetune", head_epochs=5) != run_id(mode="finetune")
    assert "head_epochs" not in FinetuneConfig(mode="finetune").identity()
    result = CliRunner().invoke(
        app,
        [
            "finetune", "--init", "random", "--data", DATA, "--mode", "finetune",
            "--epochs", "2", "--head-epochs", "3", "--batch-size", "8", "--format", "json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert 0 <= row["head_train_accuracy"] <= 1 and row["head_seconds"] > 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("finetune ")]
    assert lines[0].startswith("finetune head on frozen features: train loss")
    assert [line.split(":")[0] for line in lines[1:]] == [
        "finetune epoch 1/2",
        "finetune epoch 2/2",
    ]


def test_patch_dropout_in_training_only(datasets):
    """``patch_keep``: in training the encoder sees ``round(keep * L)`` patches per clip, a
    fresh random subset per call (seeded by torch's generator); in eval mode every patch,
    so scoring equals the head-less encoder's full features. It enters fine-tune ids only."""
    from diffmavil.training.config import config_hash
    from diffmavil.training.finetune import FineTuneClassifier

    model_config, (train_set, _) = datasets
    audio = torch.stack([train_set[i]["audio"] for i in range(4)])
    config = FinetuneConfig(data=DATA, mode="finetune", patch_keep=0.5)
    torch.manual_seed(0)
    model = FineTuneClassifier(DiffMAViL(model_config), config, train_set.num_classes)
    encoder = model.backbone.audio_encoder
    seen = []
    hook = encoder.register_forward_hook(lambda _m, args, _o: seen.append(args[1].clone()))
    model.train()
    torch.manual_seed(1)
    first = model(audio, None)
    torch.manual_seed(1)
    again = model(audio, None)
    second = model(audio, None)
    model.eval()
    with torch.no_grad():
        full = model(audio, None)
    hook.remove()
    length = seen[-1].shape[1]
    kept = round(0.5 * length)
    assert [k.shape for k in seen[:3]] == [(4, kept)] * 3 and length == 2 * kept
    assert all(bool((k[:, 1:] > k[:, :-1]).all()) for k in seen[:3])  # sorted, no repeats
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])
    assert torch.equal(first, again) and not torch.allclose(first, second)
    expected = model.head(model.norm(model.backbone.encode(audio).audio))
    assert torch.allclose(full, expected, atol=1e-6)
    with pytest.raises(ValueError, match="keep_fraction"):
        model.backbone.encode_with_grad(audio, keep_fraction=0.0)

    def run_id(**kw):
        return config_hash(FinetuneConfig(**kw).identity())

    assert run_id(patch_keep=0.5) == run_id()  # a probe has no patch dropout
    assert run_id(mode="finetune", patch_keep=1.0) != run_id(mode="finetune")
