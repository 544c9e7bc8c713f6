"""Downstream: probes and fine-tuning from a checkpoint, random init and raw fbank."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from diffmavil import make_config
from diffmavil.training.config import FinetuneConfig, PretrainConfig
from diffmavil.training.downstream import evaluate
from diffmavil.training.finetune import spec_augment
from diffmavil.training.pretrain import pretrain
from diffmavil.training.probe import FeatureSet, linear_probe, mean_average_precision

DATA = "synthetic:classes=4,size=48,eval_size=24"


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pretrained")
    config = PretrainConfig.model_validate(
        {"preset": "tiny", "data": DATA, "budget_samples": 32, "batch": {"batch_size": 8}}
    )
    pretrain(config, run_dir)
    return run_dir


def test_linear_probe_separates_separable_features():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    features = torch.randn(60, 8, generator=generator) * 0.1
    features[torch.arange(60), labels] += 3.0
    train = FeatureSet(features[:40], labels[:40], False, 3)
    held_out = FeatureSet(features[40:], labels[40:], False, 3)
    metrics = linear_probe(train, held_out, FinetuneConfig(epochs=50, batch_size=16))
    assert metrics["accuracy"] == 1.0


def test_linear_probe_is_at_chance_on_noise():
    generator = torch.Generator().manual_seed(0)
    train = FeatureSet(torch.randn(200, 16, generator=generator), torch.arange(200) % 4, False, 4)
    test = FeatureSet(torch.randn(400, 16, generator=generator), torch.arange(400) % 4, False, 4)
    assert linear_probe(train, test, FinetuneConfig(epochs=20))["accuracy"] < 0.4


def test_mean_average_precision_known_values():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # class 0: positives at ranks 1 and 3 -> (1 + 2/3) / 2; class 1: positive at rank 1 -> 1
    expected = ((1 + 2 / 3) / 2 + 1.0) / 2
    assert mean_average_precision(scores, targets) == pytest.approx(expected)


def test_spec_augment_masks_bands_only():
    audio = torch.ones(4, 32, 16)
    out = spec_augment(audio, 4, 6, torch.Generator().manual_seed(0))
    assert out.shape == audio.shape
    zero_freq = (out == 0).all(dim=1)  # [B, F] bins zero at every frame
    zero_time = (out == 0).all(dim=2)  # [B, T]
    assert (zero_freq.sum(dim=1) <= 4).all() and (zero_time.sum(dim=1) <= 6).all()
    assert ((out == 0) <= (zero_freq[:, None, :] | zero_time[:, :, None])).all()


@pytest.mark.parametrize("init", ["checkpoint", "random", "fbank"])
def test_probe_every_initialisation(checkpoint_dir, init):
    config = FinetuneConfig(data=DATA, epochs=5)
    result = evaluate(config, init, make_config("tiny", "cross-attn"), checkpoint_dir)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["num_classes"] == 4 and result["eval_items"] == 24


def test_audio_visual_probe_and_finetune(checkpoint_dir):
    probe = evaluate(
        FinetuneConfig(data=DATA, epochs=3, modality="audio-video", features="fused"),
        "checkpoint",
        make_config("tiny", "cross-attn"),
        checkpoint_dir,
    )
    assert 0.0 <= probe["accuracy"] <= 1.0
    tuned = evaluate(
        FinetuneConfig(
            data=DATA,
            mode="finetune",
            epochs=1,
            batch_size=8,
            lr=1e-4,
            specaugment_freq=8,
            specaugment_time=16,
            mixup=0.5,
            max_train_items=16,
        ),
        "checkpoint",
        make_config("tiny", "cross-attn"),
        checkpoint_dir,
    )
    assert 0.0 <= tuned["accuracy"] <= 1.0


def _speech_commands(root: Path) -> None:
    """A Speech Commands-layout folder: class folders of 1 s wavs, validation/testing lists."""
    rng = np.random.default_rng(0)
    for word, pitch in (("yes", 300.0), ("no", 900.0)):
        folder = root / word
        folder.mkdir(parents=True)
        for i in range(6):
            t = np.arange(16000) / 16000
            wave = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.standard_normal(16000)
            soundfile.write(folder / f"clip{i}.wav", wave.astype(np.float32), 16000)
    (root / "validation_list.txt").write_text("yes/clip0.wav\nno/clip0.wav\n")
    (root / "testing_list.txt").write_text(
        "yes/clip1.wav\nno/clip1.wav\nyes/clip2.wav\nno/clip2.wav\n"
    )


def test_finetune_cli_on_speech_commands_layout(tmp_path, checkpoint_dir):
    root = tmp_path / "spc"
    _speech_commands(root)
    result = CliRunner().invoke(
        app,
        [
            "finetune",
            str(checkpoint_dir),
            "--data",
            f"spc:{root}",
            "--mode",
            "finetune",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert row["num_classes"] == 2 and row["eval_items"] == 4 and row["train_items"] == 6
    probe = CliRunner().invoke(
        app,
        [
            "finetune",
            "--init",
            "fbank",
            "--data",
            f"spc:{root}",
            "--epochs",
            "50",
            "--format",
            "json",
        ],
    )
    assert probe.exit_code == 0, probe.output
    assert json.loads(probe.stdout)[0]["accuracy"] == 1.0  # two pure tones: trivially separable


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--init", "pretrained"], "'pretrained' is not one of 'checkpoint', 'random', 'fbank'"),
        ([], "give a CHECKPOINT"),
        (["/nonexistent/run"], "not found"),
        (["--init", "random", "--mode", "linear"], "mode"),
        (["--init", "random", "--data", "esc50:/nonexistent"], "does not exist"),
        (["--init", "random", "--mode", "finetune", "--patch-keep", "1.5"], "patch_keep"),
        (["--init", "random", "--mode", "finetune", "--head-epochs", "-1"], "head_epochs"),
    ],
)
def test_finetune_cli_bad_input_exits_2(args, message):
    result = CliRunner().invoke(app, ["finetune", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
