"""The ``difficulty`` option of the synthetic data: 0 is the data as it was (bit for bit on
this machine; the video's last bits vary between CPU instruction sets);
above 0 the classes separate less, by a real measure; the option keys the feature cache and
is validated with one line."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from diffmavil.config import make_config
from diffmavil.data import DataError, build_dataset, parse_data_spec, waveform_fbank
from diffmavil.data.synthetic import (
    DIFFICULTY_RANGES,
    OBJECT_RADIUS,
    PITCH_JITTER,
    SyntheticAVDataset,
    SyntheticOptions,
    difficulty_settings,
    synth_clip,
)
from tests.data_helpers import tiny_config


@pytest.fixture(autouse=True)
def single_thread():
    """One thread, as the pinned digests were computed (and as a DataLoader worker runs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _digest(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


_PLAIN = "synthetic:classes=10,size=2000,eval_size=2000"


def _moments(*tensors: torch.Tensor) -> tuple[float, ...]:
    """Each tensor's sum and sum of squares in float64 (pinned to a relative tolerance: the
    last bits of fbank and video differ between CPU instruction sets)."""
    out: list[float] = []
    for tensor in tensors:
        as_double = tensor.double()
        out += [float(as_double.sum()), float((as_double**2).sum())]
    return tuple(out)


# Computed before ``difficulty`` existed (tiny preset, one thread): (split, index, classes)
# -> digests of the waveform and the event activity (bit for bit on any x86 CPU seen here).
PINNED_CLIPS = {
    ("train", 0, 10): ("7100df2fbe9df468", "5c60d62edc28295e"),
    ("train", 7, 10): ("a6880945b24667bd", "d30dfc2cc674f527"),
    ("val", 3, 10): ("d487924514d2307f", "a93544a6589d7c1d"),
    ("test", 11, 4): ("9f6425e94cca33ff", "5f32a93134844cb5"),
    ("test", 5, 10): ("c7be5b06feb7c4db", "50d59b5acb7976ea"),
}
# The video's last bits differ between CPU instruction sets (an Intel Xeon and an AMD EPYC
# gave different digests for 4 of these 5 clips): its sum and sum of squares (float64) are
# pinned to a relative 1e-6 instead.
PINNED_VIDEO = {
    ("train", 0, 10): (3322.436047403382, 13732.372473905474),
    ("train", 7, 10): (-1316.0592205789726, 13598.271470412925),
    ("val", 3, 10): (-49390.82773674725, 55435.35936891845),
    ("test", 11, 4): (-67736.1749222494, 100748.72749990919),
    ("test", 5, 10): (-43438.37837094662, 44081.40814972318),
}


@pytest.mark.parametrize("difficulty", [None, 0, 0.0])
def test_difficulty_0_is_the_data_as_it_was(difficulty, tmp_path):
    config = tiny_config()
    extra = {} if difficulty is None else {"difficulty": difficulty}
    for (split, index, classes), pinned in PINNED_CLIPS.items():
        wave, video, label, activity = synth_clip(config, 0, split, index, classes, **extra)
        assert label == index % classes
        assert (_digest(wave), _digest(activity)) == pinned
        assert _moments(video) == pytest.approx(PINNED_VIDEO[(split, index, classes)], rel=1e-6)
        plain = synth_clip(config, 0, split, index, classes)[1]
        assert torch.equal(video, plain)  # the option at 0 is the plain path, bit for bit
    spec = _PLAIN
    if difficulty is not None:
        spec += f",difficulty={difficulty}"
    dataset = build_dataset(spec, config, "val", seed=0, cache=str(tmp_path / "with"))
    assert dataset.fingerprint() == (
        "synthetic-v2|SyntheticOptions(classes=10, size=2000, eval_size=2000)|0|val"
    )
    plain = build_dataset(_PLAIN, config, "val", seed=0, cache=str(tmp_path / "plain"))
    assert dataset._cache_path(0).relative_to(tmp_path / "with") == plain._cache_path(
        0
    ).relative_to(tmp_path / "plain")  # the same cache entries as before the option existed
    assert (dataset.stats.mean, dataset.stats.std) == pytest.approx(
        (-2.81308913230896, 3.668778419494629), rel=1e-6
    )
    item = dataset[5]
    assert _moments(item["audio"], item["video"]) == pytest.approx(
        (5699.538002016507, 4965.75793482569, -20893.135257064314, 20277.52429689021), rel=1e-5
    )
    table2 = build_dataset(spec, make_config("proportional", "mavil"), "test", seed=0)
    assert (table2.stats.mean, table2.stats.std) == pytest.approx(
        (-1.5478407144546509, 3.448530912399292), rel=1e-6
    )
    assert _moments(table2[17]["audio"], table2[17]["video"]) == pytest.approx(
        (-386.70461189157504, 464.5806219289392, -3237.3847556091787, 5322.844551180753),
        rel=1e-5,
    )


def test_every_setting_moves_monotonically_from_todays_value():
    today = difficulty_settings(0.0)
    assert today.pitch_jitter == PITCH_JITTER and today.noise_scale == 1.0
    assert today.object_scale == 1.0 and today.decoy_probability == 0.0
    assert OBJECT_RADIUS == (0.14, 0.2)
    levels = [difficulty_settings(d) for d in (0.0, 0.25, 0.5, 0.75, 1.0)]
    for name, (easy, hard) in DIFFICULTY_RANGES.items():
        values = [getattr(settings, name) for settings in levels]
        assert values[0] == easy and values[-1] == pytest.approx(hard), name
        assert values == sorted(values, reverse=hard < easy), name
        assert len(set(values)) == len(values), name  # every step moves it


def _separability(difficulty: float, count: int = 400, classes: int = 10) -> dict[str, float]:
    """Nearest-class-mean accuracy on held-out clips (proportional preset's input sizes),
    from standardised cheap statistics: audio, each mel bin's mean and std over time of
    the fbank; video, the clip average-pooled to [3, T/2, 3, 3]."""
    config = make_config("proportional", "mavil")

    def features(split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        clips = [
            synth_clip(config, 0, split, i, classes, difficulty=difficulty) for i in range(count)
        ]
        fbank = waveform_fbank(torch.stack([c[0] for c in clips]), 16000, config.audio)
        audio = torch.cat([fbank.mean(1), fbank.std(1)], 1)
        pooled = torch.nn.functional.adaptive_avg_pool3d(
            torch.stack([c[1] for c in clips]), (config.video.frames // 2, 3, 3)
        )
        return audio, pooled.flatten(1), torch.tensor([c[2] for c in clips])

    def nearest_class_mean(train: torch.Tensor, test: torch.Tensor) -> float:
        mean, std = train.mean(0), train.std(0) + 1e-6
        train, test = (train - mean) / std, (test - mean) / std
        centres = torch.stack([train[train_y == c].mean(0) for c in range(classes)])
        return float((torch.cdist(test, centres).argmin(1) == test_y).float().mean())

    train_audio, train_video, train_y = features("train")
    test_audio, test_video, test_y = features("test")
    return {
        "audio": nearest_class_mean(train_audio, test_audio),
        "video": nearest_class_mean(train_video, test_video),
    }


def test_difficulty_reduces_separability_monotonically():
    """Measured: audio 0.42 / 0.25 / 0.16, video 0.33 / 0.21 / 0.13 at difficulty 0 / 0.5 /
    1 (chance 0.1); each step must cost at least 4 points in both modalities."""
    easy, mid, hard = (_separability(d) for d in (0.0, 0.5, 1.0))
    for modality in ("audio", "video"):
        assert easy[modality] > mid[modality] + 0.04, (modality, easy, mid, hard)
        assert mid[modality] > hard[modality] + 0.04, (modality, easy, mid, hard)
    assert easy["audio"] > 0.3 and easy["video"] > 0.25, easy  # the measure sees the classes


def test_difficulty_keys_the_feature_cache(tmp_path):
    config = tiny_config()
    spec = "synthetic:classes=4,size=8,eval_size=4"
    plain = build_dataset(spec, config, "train", cache=str(tmp_path))
    harder = build_dataset(f"{spec},difficulty=0.5", config, "train", cache=str(tmp_path))
    same = build_dataset(f"{spec},difficulty=.50", config, "train", cache=str(tmp_path))
    assert harder.fingerprint().endswith("|difficulty=0.5|0|train")
    assert harder._cache_path(1) == same._cache_path(1) != plain._cache_path(1)
    first, second = plain[1], harder[1]
    assert len(list(tmp_path.rglob("*.pt"))) == 2  # two keys, not one file read back
    assert not torch.equal(first["audio"], second["audio"])
    assert not torch.equal(first["video"], second["video"])
    assert torch.equal(same[1]["audio"], second["audio"])
    assert harder.class_names == plain.class_names and harder.num_classes == 4


def test_the_spec_takes_a_difficulty():
    parsed = parse_data_spec("synthetic:classes=10,size=2000,eval_size=2000,difficulty=0.5")
    assert parsed.options == {"classes": 10, "size": 2000, "eval_size": 2000, "difficulty": 0.5}
    assert str(parsed) == "synthetic:classes=10,size=2000,eval_size=2000,difficulty=0.5"
    assert parse_data_spec("synthetic:difficulty=1").options == {"difficulty": 1.0}


@pytest.mark.parametrize("value", ["1.5", "-0.1", "hard", "nan", "inf", ""])
def test_a_bad_difficulty_is_one_line_naming_it_and_what_is_allowed(value):
    with pytest.raises(DataError) as error:
        parse_data_spec(f"synthetic:classes=10,difficulty={value}")
    message = str(error.value)
    assert "\n" not in message
    assert f"difficulty={value!r} is not allowed" in message
    assert "a number from 0 (the default data) to 1 (the hardest)" in message


def test_a_dataset_built_directly_checks_its_difficulty():
    options = dataclasses.replace(SyntheticOptions(classes=4, size=8), difficulty=2.0)
    with pytest.raises(DataError, match=r"difficulty=2\.0 is not allowed; a number from 0"):
        SyntheticAVDataset(tiny_config(), "train", options=options)
