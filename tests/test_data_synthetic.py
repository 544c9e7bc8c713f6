"""The built-in synthetic audio-visual dataset."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import pytest
import torch

from diffmavil.config import make_config
from diffmavil.data import build_dataset, make_loader, synthetic, waveform_fbank
from diffmavil.data.synthetic import SyntheticAVDataset, SyntheticOptions, synth_clip
from diffmavil.model import DiffMAViL
from diffmavil.training.config import FinetuneConfig
from diffmavil.training.probe import FeatureSet, linear_probe
from tests.conftest import SESSION_THREADS
from tests.data_helpers import tiny_config


@pytest.fixture(autouse=True)
def single_thread():
    """Clip generation is many small ops: one thread, as in a DataLoader worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_deterministic_by_seed_and_index() -> None:
    config = tiny_config()
    first = build_dataset("synthetic", config, "train", seed=3)
    again = build_dataset("synthetic", config, "train", seed=3)
    other_seed = build_dataset("synthetic", config, "train", seed=4)
    a, b = first[5], again[5]
    assert torch.equal(a["audio"], b["audio"]) and torch.equal(a["video"], b["video"])
    assert not torch.equal(first[5]["audio"], first[15]["audio"])  # same class, other clip
    assert not torch.equal(first[5]["video"], first[15]["video"])
    assert not torch.equal(first[5]["audio"], other_seed[5]["audio"])


def test_splits_are_disjoint_and_sized() -> None:
    config = tiny_config()
    train = build_dataset("synthetic:classes=4,size=40,eval_size=12", config, "train")
    test = build_dataset("synthetic:classes=4,size=40,eval_size=12", config, "test")
    val = build_dataset("synthetic:classes=4,size=40,eval_size=12", config, "val")
    assert (len(train), len(val), len(test)) == (40, 12, 12)
    assert not torch.equal(train[0]["audio"], test[0]["audio"])
    assert not torch.equal(val[0]["audio"], test[0]["audio"])


def test_class_balance_and_item_format() -> None:
    dataset = build_dataset("synthetic:classes=10,size=200", tiny_config(), "train")
    labels = torch.tensor([int(dataset[i]["label"]) for i in range(0, 200, 7)])
    counts = torch.bincount(torch.tensor([i % 10 for i in range(200)]), minlength=10)
    assert torch.all(counts == 20)
    assert torch.equal(labels, torch.arange(0, 200, 7) % 10)
    item = dataset[3]
    assert item["label"].dtype == torch.long and item["label"].shape == ()
    assert item["index"] == 3
    assert dataset.num_classes == len(dataset.class_names) == 10
    assert dataset.has_video and not dataset.multi_label and dataset.skipped == 0


@pytest.mark.parametrize("preset", ["tiny", "cpu"])
def test_shapes_and_generation_cost(preset: str) -> None:
    config = make_config(preset)
    dataset = build_dataset("synthetic", config, "train")
    dataset[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker; avoids counting thread spin-waits
    try:
        start = time.process_time()
        items = [dataset[i] for i in range(1, 9)]
        per_sample_ms = (time.process_time() - start) / 8 * 1000
    finally:
        torch.set_num_threads(threads)
    audio, video = config.audio, config.video
    for item in items:
        assert item["audio"].shape == (audio.target_frames, audio.mel_bins)
        assert item["video"].shape == (video.channels, video.frames, video.height, video.width)
        assert torch.isfinite(item["audio"]).all() and torch.isfinite(item["video"]).all()
    # Normalised audio is roughly zero-mean with std about 1/2 (AudioMAE's 2-std scaling).
    stacked = torch.stack([item["audio"] for item in items])
    assert abs(float(stacked.mean())) < 0.3 and 0.25 < float(stacked.std()) < 0.8
    # Single-thread CPU time of one sample (measured ~6 ms tiny, ~12 ms cpu); generous bound
    # against a loaded machine, still far below a step's time budget.
    assert per_sample_ms < 50, per_sample_ms


def _mean_spectra(
    config, split: str, count: int, classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    waves, labels = [], []
    for index in range(count):
        wave, _, label, _ = synth_clip(config, 0, split, index, classes)
        waves.append(wave)
        labels.append(label)
    fbank = waveform_fbank(torch.stack(waves), config.audio.sample_rate, config.audio)
    return fbank.mean(dim=1), torch.tensor(labels)


def test_mean_spectrum_linear_probe_is_above_chance_but_below_ceiling() -> None:
    config = tiny_config()
    classes = 8
    train_x, train_y = _mean_spectra(config, "train", 256, classes)
    test_x, test_y = _mean_spectra(config, "test", 128, classes)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    design = torch.cat([train_x, torch.ones(len(train_x), 1)], 1).double()
    targets = torch.nn.functional.one_hot(train_y, classes).double()
    ridge = 1.0 * torch.eye(design.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(design.T @ design + ridge, design.T @ targets)
    test_design = torch.cat([test_x, torch.ones(len(test_x), 1)], 1).double()
    accuracy = float(((test_design @ weights).argmax(1) == test_y).float().mean())
    train_acc = float(((design @ weights).argmax(1) == train_y).float().mean())
    chance = 1.0 / classes
    assert accuracy > 2 * chance, (accuracy, train_acc)
    assert accuracy < 0.8, (accuracy, train_acc)


def test_pairing_carries_event_timing() -> None:
    config = tiny_config(**{"video.frames": 8})
    frames = config.video.frames
    audio_energy, motion = [], []
    for index in range(48):
        wave, video, _, _ = synth_clip(config, 0, "train", index, 8, normalise=False)
        fbank = waveform_fbank(wave, 16000, config.audio)[0]
        energy = fbank.mean(dim=1).view(frames, -1).mean(dim=1)  # [T]
        change = (video[:, 1:] - video[:, :-1]).abs().mean(dim=(0, 2, 3))  # [T - 1]
        audio_energy.append(energy[1:] - energy[1:].mean())
        motion.append(change - change.mean())
    audio_t, motion_t = torch.stack(audio_energy), torch.stack(motion)

    def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a * b).sum() / (a.norm() * b.norm()))

    matched = correlation(audio_t, motion_t)
    shuffled = correlation(audio_t, motion_t.roll(1, dims=0))
    assert matched > 0.4, (matched, shuffled)
    assert matched > shuffled + 0.3, (matched, shuffled)


def _stacked(dataset: SyntheticAVDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole dataset as one batch: (audio, video, labels)."""
    batch = next(iter(make_loader(dataset, batch_size=len(dataset), shuffle=False)))
    return batch["audio"], batch["video"], batch["label"]


@dataclass
class ContrastiveRun:
    """A briefly trained narrow model, its untrained twin, and the clips."""

    trained: DiffMAViL
    untrained: DiffMAViL
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # audio, video, labels
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


PAIRING_BATCH, PAIRING_RATIOS = 32, (0.5, 0.5)  # held-out batches: chance is log 32
TRAIN_BATCH = 16


@pytest.fixture(scope="module")
def contrastive_run() -> ContrastiveRun:
    """A narrow DiffMAViL (2 blocks of width 96 at the tiny preset's input sizes) trained for
    300 steps of 16 pairs on the inter-modal InfoNCE alone, 512 training clips of 10
    classes; 256 held out. Budget: ~25 s (batches of 32 took ~40 s for the same verdicts)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(SESSION_THREADS)  # training, not clip generation: the suite's count
    try:
        config = make_config(
            "tiny",
            "cross-attn",
            {
                "encoder.dim": 96,
                "encoder.depth": 2,
                "encoder.heads": 2,
                "loss.contrastive_weight": 1.0,
                "loss.temperature": 0.2,
            },
        )
        options = SyntheticOptions(classes=10, size=512, eval_size=256)
        train = _stacked(SyntheticAVDataset(config, "train", options=options))
        test = _stacked(SyntheticAVDataset(config, "test", options=options))
        torch.manual_seed(0)
        model = DiffMAViL(config)
        untrained = copy.deepcopy(model).eval()
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
        generator = torch.Generator().manual_seed(0)
        audio, video, _ = train
        for step in range(300):
            index = torch.randint(0, len(audio), (TRAIN_BATCH,), generator=generator)
            ids = index + step * len(audio)  # fresh masks every step
            loss = model.contrastive_loss(audio[index], video[index], PAIRING_RATIOS, ids)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return ContrastiveRun(model.eval(), untrained, train, test)


def test_shuffling_pairs_raises_the_contrastive_loss_of_a_briefly_trained_model(
    contrastive_run: ContrastiveRun,
) -> None:
    """Held-out true pairs score well below log(batch) and shuffling them raises the loss.
    Measured (seeds 0-3 of the fixture): true 2.72-2.89, shuffled 3.30-3.55, log 32 = 3.47
    (at 32 training pairs per step: true 2.42-2.50, shuffled 3.40-3.63). With the class
    object at its former size (radius 0.08-0.12 of the frame, under one 16-pixel patch at
    this preset) both stayed at log 32."""
    model = contrastive_run.trained
    audio, video, _ = contrastive_run.test

    def held_out_loss(shift: int) -> float:
        losses = []
        with torch.no_grad():
            for start in range(0, len(audio), PAIRING_BATCH):
                rows = slice(start, start + PAIRING_BATCH)
                ids = torch.arange(start, start + PAIRING_BATCH)
                paired_video = video[rows].roll(shift, dims=0)
                loss = model.contrastive_loss(audio[rows], paired_video, PAIRING_RATIOS, ids)
                losses.append(float(loss))
        return sum(losses) / len(losses)

    true_pairs, shuffled = held_out_loss(0), held_out_loss(1)
    chance = math.log(PAIRING_BATCH)
    assert true_pairs < chance - 0.4, (true_pairs, shuffled, chance)
    assert shuffled > true_pairs + 0.3, (true_pairs, shuffled, chance)


def test_probe_on_the_briefly_trained_encoder_beats_random_init(
    contrastive_run: ContrastiveRun,
) -> None:
    """The audio encoder that learnt to match the video also tells the 10 classes apart far
    better than the same encoder at random init (measured: 73.0% vs 47.3%, 256 held-out
    clips; seeds 1-3 of the fixture: +16 to +23 points). The default pre-training's 3-seed figure is in reports/pretraining-gain."""
    probe = FinetuneConfig(modality="audio", epochs=100)
    accuracy = {}
    for name, model in (
        ("trained", contrastive_run.trained),
        ("random", contrastive_run.untrained),
    ):
        with torch.no_grad():
            features = [
                model.encode(audio=split[0]).audio
                for split in (contrastive_run.train, contrastive_run.test)
            ]
        train_set = FeatureSet(features[0], contrastive_run.train[2], False, 10)
        test_set = FeatureSet(features[1], contrastive_run.test[2], False, 10)
        accuracy[name] = linear_probe(train_set, test_set, probe)["accuracy"]
    assert accuracy["trained"] > accuracy["random"] + 0.15, accuracy
    assert accuracy["random"] > 0.1 + 0.1, accuracy  # the control itself is above chance


def test_memory_and_disk_cache(tmp_path) -> None:
    config = tiny_config()
    options = SyntheticOptions(classes=4, size=8, eval_size=4)
    memory = SyntheticAVDataset(config, "train", options=options, cache="memory")
    assert memory[2] is memory[2]
    disk = SyntheticAVDataset(config, "train", options=options, cache=str(tmp_path))
    fresh = disk[1]
    assert len(list(tmp_path.rglob("*.pt"))) == 1
    reloaded = SyntheticAVDataset(config, "train", options=options, cache=str(tmp_path))[1]
    assert torch.equal(fresh["audio"], reloaded["audio"])
    assert torch.equal(fresh["video"], reloaded["video"])


def test_disk_cache_is_keyed_by_generator_version(tmp_path, monkeypatch) -> None:
    """Features written by an older generator are never read back as current clips."""
    config = tiny_config()
    options = SyntheticOptions(classes=4, size=8, eval_size=4)
    SyntheticAVDataset(config, "train", options=options, cache=str(tmp_path))[1]
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    SyntheticAVDataset(config, "train", options=options, cache=str(tmp_path))[1]
    assert len(list(tmp_path.rglob("*.pt"))) == 2  # two keys, not one file read back


def test_loader_batches() -> None:
    dataset = build_dataset("synthetic:classes=4,size=8", tiny_config(), "train")
    batches = list(make_loader(dataset, batch_size=4, shuffle=True, seed=1))
    again = list(make_loader(dataset, batch_size=4, shuffle=True, seed=1))
    assert batches[0]["audio"].shape == (4, 256, 64)
    assert batches[0]["video"].shape == (4, 3, 4, 64, 64)
    assert torch.equal(batches[0]["index"], again[0]["index"])
