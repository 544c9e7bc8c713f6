"""Kaldi fbank in torch vs kaldi-native-fbank, and AudioMAE's feature pipeline."""

from __future__ import annotations

import math

import kaldi_native_fbank as knf
import numpy as np
import pytest
import torch

from diffmavil.config import AudioSpec
from diffmavil.data.fbank import (
    AUDIOSET,
    ESC50,
    FLOAT_EPS,
    SPC,
    NormStats,
    audio_features,
    empty_mel_filters,
    kaldi_fbank,
    samples_for_frames,
)


def reference_fbank(
    wave: np.ndarray, bins: int, window: str, snip_edges: bool, rate: int = 16000
) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = rate
    opts.frame_opts.window_type = window
    opts.frame_opts.snip_edges = snip_edges
    opts.mel_opts.num_bins = bins
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(rate, wave.tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def chirp_wave(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    chirp = np.sin(2 * np.pi * (200 + 1500 * t) * t)
    return (0.5 * chirp + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("bins", [80, 64, 40])
@pytest.mark.parametrize("window", ["hanning", "povey"])
@pytest.mark.parametrize("snip_edges", [True, False])
def test_matches_kaldi_native_fbank(bins: int, window: str, snip_edges: bool) -> None:
    wave = chirp_wave()
    expected = reference_fbank(wave, bins, window, snip_edges)
    ours = kaldi_fbank(
        torch.from_numpy(wave), num_mel_bins=bins, window=window, snip_edges=snip_edges
    )[0].numpy()
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=1e-3, rtol=0)


def test_matches_kaldi_native_fbank_at_8khz() -> None:
    wave = chirp_wave(rate=8000)
    expected = reference_fbank(wave, 40, "povey", True, rate=8000)
    ours = kaldi_fbank(torch.from_numpy(wave), sample_rate=8000, num_mel_bins=40, window="povey")[
        0
    ].numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-3, rtol=0)


def test_batched_equals_single_and_float64() -> None:
    waves = torch.from_numpy(np.stack([chirp_wave(), chirp_wave()[::-1].copy()]))
    batched = kaldi_fbank(waves, num_mel_bins=64)
    for row in range(2):
        torch.testing.assert_close(batched[row], kaldi_fbank(waves[row], num_mel_bins=64)[0])
    double = kaldi_fbank(waves.double(), num_mel_bins=64)
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), batched, atol=1e-3, rtol=0)


def test_128_bins_have_empty_filters_with_constant_log_eps_rows() -> None:
    empty = empty_mel_filters(128)
    assert empty, "at 128 bins / 25 ms / 16 kHz some filters cover no FFT bin"
    wave = torch.from_numpy(chirp_wave())
    fbank = kaldi_fbank(wave, num_mel_bins=128)[0]
    assert fbank.shape == (98, 128)
    log_eps = math.log(FLOAT_EPS)
    for index in empty:
        torch.testing.assert_close(fbank[:, index], torch.full((98,), log_eps))
    non_empty = [i for i in range(128) if i not in empty]
    assert (fbank[:, non_empty] > log_eps + 1).float().mean() > 0.99
    # kaldi-native-fbank refuses this setting, which is why we test the rows directly.
    with pytest.raises(Exception, match="num_mel_bins"):
        reference_fbank(chirp_wave(), 128, "hanning", True)


def test_energy_column_and_bad_window() -> None:
    wave = torch.from_numpy(chirp_wave())
    plain = kaldi_fbank(wave, num_mel_bins=40)
    first = kaldi_fbank(wave, num_mel_bins=40, use_energy=True)
    last = kaldi_fbank(wave, num_mel_bins=40, use_energy=True, htk_compat=True)
    torch.testing.assert_close(first[..., 1:], plain)
    torch.testing.assert_close(last[..., :-1], plain)
    torch.testing.assert_close(first[..., 0], last[..., -1])
    with pytest.raises(ValueError, match="unknown window"):
        kaldi_fbank(wave, window="triangle")


def test_audio_features_pad_crop_and_normalise() -> None:
    spec = AudioSpec(target_frames=64, mel_bins=64, patch_time=16, patch_freq=16)
    exact = torch.from_numpy(chirp_wave(1.0))[: samples_for_frames(64)]
    assert kaldi_fbank(exact, num_mel_bins=64).shape[1] == 64
    stats = NormStats(mean=-5.0, std=2.0)
    long_features = audio_features(torch.from_numpy(chirp_wave(1.0)), 16000, spec, stats)
    assert long_features.shape == (64, 64)
    short = audio_features(torch.from_numpy(chirp_wave(0.2)), 16000, spec, stats)
    assert short.shape == (64, 64)
    # 0.2 s gives 18 frames; the rest is zero fbank padding, normalised.
    torch.testing.assert_close(short[18:], torch.full((46, 64), (0.0 + 5.0) / 4.0))
    # The waveform's mean is removed first: a DC offset changes nothing.
    shifted = audio_features(torch.from_numpy(chirp_wave(0.2)) + 0.3, 16000, spec, stats)
    torch.testing.assert_close(shifted, short, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="resample"):
        audio_features(torch.zeros(8000), 8000, spec, stats)


def test_paper_statistics() -> None:
    assert (AUDIOSET.mean, AUDIOSET.std) == (-4.2677393, 4.5689974)
    assert (ESC50.mean, ESC50.std) == (-6.6268077, 5.358466)
    assert (SPC.mean, SPC.std) == (-6.845978, 5.5654526)
