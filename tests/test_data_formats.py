"""File formats: manifests (JSON/CSV), ESC-50, Speech Commands; bad files; bad specs."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from diffmavil.data import BadFileWarning, DataError, build_dataset, parse_data_spec
from diffmavil.data.common import IMAGENET_MEAN, IMAGENET_STD
from diffmavil.data.media import load_audio
from tests.data_helpers import tiny_config, write_frames, write_garbage, write_mp4, write_wav


def test_audio_is_mono_mixed_and_resampled(tmp_path) -> None:
    wave8k = load_audio(write_wav(tmp_path / "a.wav", 0.5, rate=8000), 16000)
    wave16k = load_audio(write_wav(tmp_path / "b.wav", 0.5, rate=16000, channels=2), 16000)
    assert wave8k.shape == (8000,) and wave16k.shape == (8000,)
    # Resampled 440 Hz tone keeps its frequency: the spectrum peaks at 440 Hz (0.5 s -> 2 Hz bins).
    peak = int(torch.fft.rfft(wave8k).abs().argmax()) * 2
    assert abs(peak - 440) <= 4


def _manifest_files(root):
    write_wav(root / "a.wav", rate=8000)
    write_wav(root / "b.wav", rate=16000, freq=880)
    write_mp4(root / "a.mp4")
    write_frames(root / "b_frames")


def test_json_manifest_with_mp4_and_frames(tmp_path) -> None:
    _manifest_files(tmp_path)
    manifest = tmp_path / "data.json"
    manifest.write_text(
        json.dumps(
            {
                "data": [
                    {"wav": "a.wav", "video": "a.mp4", "labels": "dog"},
                    {"wav": "b.wav", "frames": "b_frames", "labels": "cat,dog"},
                ]
            }
        )
    )
    config = tiny_config()
    dataset = build_dataset(f"manifest:{manifest}", config, "train")
    assert len(dataset) == 2 and dataset.class_names == ["cat", "dog"]
    assert dataset.multi_label and dataset.has_video and dataset.skipped == 0
    first, second = dataset[0], dataset[1]
    assert first["audio"].shape == (256, 64)
    assert first["video"].shape == (3, 4, 64, 64)
    torch.testing.assert_close(first["label"], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(second["label"], torch.tensor([1.0, 1.0]))
    # mp4 frames are grey at 20 * k; 4 of 12 frames sampled uniformly: 1, 4, 7, 10.
    grey = first["video"][1].mean(dim=(1, 2)) * IMAGENET_STD[1] + IMAGENET_MEAN[1]
    torch.testing.assert_close(grey * 255, torch.tensor([20.0, 80.0, 140.0, 200.0]), atol=6, rtol=0)
    # Frame folder: red at 40 * k; 4 of 6 frames sampled: 0, 2, 3, 5.
    red = second["video"][0].mean(dim=(1, 2)) * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    torch.testing.assert_close(red * 255, torch.tensor([0.0, 80.0, 120.0, 200.0]), atol=1, rtol=0)


def test_csv_manifest_with_indices_and_split_column(tmp_path) -> None:
    _manifest_files(tmp_path)
    manifest = tmp_path / "data.csv"
    manifest.write_text("wav,video,labels,split\na.wav,a.mp4,2,train\nb.wav,,0,test\n")
    train = build_dataset(f"manifest:{manifest}", tiny_config(), "train")
    test = build_dataset(f"manifest:{manifest}", tiny_config(), "test")
    assert (len(train), len(test)) == (1, 1)
    assert train.num_classes == 3 and not train.multi_label
    assert int(train[0]["label"]) == 2 and train[0]["label"].dtype == torch.long
    assert torch.equal(test[0]["video"], torch.zeros(3, 4, 64, 64))


def test_json_list_manifest_skips_corrupt_and_missing(tmp_path) -> None:
    _manifest_files(tmp_path)
    write_garbage(tmp_path / "bad.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    manifest = tmp_path / "list.json"
    manifest.write_text(
        json.dumps(
            [
                {"wav": "a.wav", "labels": "x"},
                {"wav": "bad.wav", "labels": "x"},
                {"wav": "empty.wav", "labels": "y"},
                {"wav": "gone.wav", "labels": "y"},
                {"wav": "b.wav", "video": "missing.mp4", "labels": "y"},
            ]
        )
    )
    with pytest.warns(BadFileWarning) as record:
        dataset = build_dataset(f"manifest:{manifest}", tiny_config(), "train")
    assert len(dataset) == 1 and dataset.skipped == 4
    messages = " ".join(str(w.message) for w in record)
    assert "bad.wav" in messages and "gone.wav" in messages and "missing.mp4" in messages


def test_file_that_breaks_after_build_is_skipped_at_getitem(tmp_path) -> None:
    for name in ("a", "b", "c"):
        write_wav(tmp_path / f"{name}.wav")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"wav": f"{n}.wav", "labels": n} for n in "abc"]))
    dataset = build_dataset(f"manifest:{manifest}", tiny_config(), "train")
    write_garbage(tmp_path / "b.wav")
    with pytest.warns(BadFileWarning, match="b.wav"):
        item = dataset[1]
    assert item["index"] == 2 and dataset.skipped == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataset[1]["index"] == 2  # known bad: no new warning, no new count
    assert dataset.skipped == 1


def test_manifest_with_no_usable_file_is_an_error(tmp_path) -> None:
    write_garbage(tmp_path / "bad.wav")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"wav": "bad.wav", "labels": "x"}]))
    with pytest.warns(BadFileWarning), pytest.raises(DataError, match="no usable files"):
        build_dataset(f"manifest:{manifest}", tiny_config(), "train")


def _esc50(root):
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in (1, 2):
        for target, category in ((0, "dog"), (1, "rooster")):
            name = f"{fold}-{target}.wav"
            write_wav(root / "audio" / name, 0.3, rate=44100 if target else 16000)
            rows.append(f"{name},{fold},{target},{category},False,x,A")
    rows.append("3-0.wav,3,0,dog,False,x,A")  # listed but missing on disk
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")


def test_esc50_folds(tmp_path) -> None:
    _esc50(tmp_path)
    config = tiny_config()
    with pytest.warns(BadFileWarning, match="3-0.wav"):
        train = build_dataset(f"esc50:{tmp_path}", config, "train", fold=1)
    test = build_dataset(f"esc50:{tmp_path}", config, "test", fold=1)
    assert (len(train), len(test)) == (2, 2) and train.skipped == 1 and test.skipped == 0
    assert train.class_names == ["dog", "rooster"] and not train.has_video
    item = test[1]
    assert item["audio"].shape == (256, 64) and int(item["label"]) == 1
    assert torch.equal(item["video"], torch.zeros(3, 4, 64, 64))
    assert {e.wav.name for e in test.entries} == {"1-0.wav", "1-1.wav"}
    with pytest.raises(DataError, match="fold 7"):
        build_dataset(f"esc50:{tmp_path}", config, "test", fold=7)


def test_esc50_missing_metadata_is_an_error(tmp_path) -> None:
    (tmp_path / "audio").mkdir()
    with pytest.raises(DataError, match=r"esc50\.csv"):
        build_dataset(f"esc50:{tmp_path}", tiny_config(), "train")


def test_speech_commands_splits(tmp_path) -> None:
    for word in ("no", "yes"):
        for k in range(3):
            write_wav(tmp_path / word / f"{k}.wav", 0.2, rate=16000)
    write_wav(tmp_path / "_background_noise_" / "noise.wav", 0.2)
    (tmp_path / "validation_list.txt").write_text("yes/0.wav\n")
    (tmp_path / "testing_list.txt").write_text("no/1.wav\nyes/9.wav\n")
    config = tiny_config()
    train = build_dataset(f"spc:{tmp_path}", config, "train")
    val = build_dataset(f"spc:{tmp_path}", config, "val")
    with pytest.warns(BadFileWarning, match="yes/9.wav"):
        test = build_dataset(f"spc:{tmp_path}", config, "test")
    assert train.class_names == ["no", "yes"] and train.num_classes == 2
    assert (len(train), len(val), len(test)) == (4, 1, 1) and test.skipped == 1
    assert int(val[0]["label"]) == 1 and int(test[0]["label"]) == 0
    (tmp_path / "testing_list.txt").unlink()
    with pytest.raises(DataError, match=r"testing_list\.txt"):
        build_dataset(f"spc:{tmp_path}", config, "test")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("imagenet:/x", "unknown data spec 'imagenet:/x'"),
        ("synthetic:colours=3", "bad option 'colours=3'"),
        ("synthetic:classes=ten", "not an integer"),
        ("synthetic:classes=1", "at least 2"),
        ("esc50:", "needs a path"),
        ("esc50:/no/such/dir", "/no/such/dir does not exist"),
        ("manifest:/tmp/data.txt", "a manifest is a .json or .csv file"),
    ],
)
def test_bad_specs_are_rejected_with_their_name(spec: str, message: str) -> None:
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        build_dataset(spec, tiny_config(), "train")


def test_parse_spec_and_bad_split() -> None:
    parsed = parse_data_spec("synthetic:classes=6,size=30")
    assert parsed.kind == "synthetic" and parsed.options == {"classes": 6, "size": 30}
    assert str(parsed) == "synthetic:classes=6,size=30"
    with pytest.raises(DataError, match="unknown split 'dev'"):
        build_dataset("synthetic", tiny_config(), "dev")  # type: ignore[arg-type]
