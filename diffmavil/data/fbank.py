"""Kaldi-compatible log-mel filterbank in torch, and AudioMAE's feature pipeline.

``kaldi_fbank`` reproduces ``torchaudio.compliance.kaldi.fbank`` (vtln off) batched and on
any device: framing with ``snip_edges``, dither, DC removal, pre-emphasis with a replicated
first sample, povey/hanning/hamming/rectangular/blackman windows, zero padding to a power of
two, power spectrum, torchaudio's ``get_mel_banks`` triangles (computed in float32 like
torchaudio) and ``log(max(energy, eps))`` with ``eps = finfo(float32).eps``. Mel filters that
cover no FFT bin (128 bins at 25 ms / 16 kHz) give a constant ``log(eps)`` row, as torchaudio
(hence AudioMAE) does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from diffmavil.config import AudioSpec

FLOAT_EPS: float = float(torch.finfo(torch.float32).eps)
WINDOW_TYPES: tuple[str, ...] = ("hanning", "povey", "hamming", "rectangular", "blackman")


@dataclass(frozen=True)
class NormStats:
    """Fbank normalisation statistics: features become ``(x - mean) / (2 * std)`` (AudioMAE)."""

    mean: float
    std: float

    def normalise(self, fbank: Tensor) -> Tensor:
        """[..., frames, bins] -> same shape, normalised."""
        return (fbank - self.mean) / (2.0 * self.std)


# AudioMAE's published dataset statistics (docs/data.md).
AUDIOSET = NormStats(mean=-4.2677393, std=4.5689974)
ESC50 = NormStats(mean=-6.6268077, std=5.358466)
SPC = NormStats(mean=-6.845978, std=5.5654526)


def mel_scale(freq: Tensor | float) -> Tensor | float:
    """Kaldi mel scale: 1127 ln(1 + f / 700)."""
    if isinstance(freq, Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


def _next_power_of_2(x: int) -> int:
    return 1 if x == 0 else 2 ** (x - 1).bit_length()


@lru_cache(maxsize=32)
def _mel_banks_cpu(
    num_bins: int, padded_window_size: int, sample_rate: float, low_freq: float, high_freq: float
) -> Tensor:
    if num_bins <= 3:
        raise ValueError(f"num_mel_bins={num_bins}: must be at least 4")
    num_fft_bins = padded_window_size // 2
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(
            f"bad mel range low_freq={low_freq}, high_freq={high_freq} for nyquist {nyquist}"
        )
    fft_bin_width = sample_rate / padded_window_size
    mel_low = mel_scale(low_freq)
    mel_high = mel_scale(high_freq)
    mel_delta = (mel_high - mel_low) / (num_bins + 1)
    bin_index = torch.arange(num_bins, dtype=torch.float32).unsqueeze(1)
    left_mel = mel_low + bin_index * mel_delta
    center_mel = mel_low + (bin_index + 1.0) * mel_delta
    right_mel = mel_low + (bin_index + 2.0) * mel_delta
    mel = mel_scale(fft_bin_width * torch.arange(num_fft_bins, dtype=torch.float32)).unsqueeze(0)
    up_slope = (mel - left_mel) / (center_mel - left_mel)
    down_slope = (right_mel - mel) / (right_mel - center_mel)
    banks = torch.clamp(torch.minimum(up_slope, down_slope), min=0.0)
    # Nyquist column is zero, as in torchaudio.
    return F.pad(banks, (0, 1))


def mel_banks(
    num_bins: int,
    padded_window_size: int,
    sample_rate: float = 16000.0,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> Tensor:
    """Triangular mel filters [num_bins, padded_window_size // 2 + 1] (torchaudio, vtln off)."""
    return _mel_banks_cpu(num_bins, padded_window_size, float(sample_rate), low_freq, high_freq)


def empty_mel_filters(
    num_bins: int = 128, sample_rate: float = 16000.0, frame_length_ms: float = 25.0
) -> list[int]:
    """Indices of mel filters that cover no FFT bin (their output is the constant log(eps))."""
    window = int(sample_rate * frame_length_ms * 0.001)
    banks = mel_banks(num_bins, _next_power_of_2(window), sample_rate)
    return [i for i in range(num_bins) if float(banks[i].sum()) == 0.0]


def feature_window(
    window: str, size: int, *, blackman_coeff: float = 0.42, device=None, dtype=None
) -> Tensor:
    """Kaldi analysis window [size]."""
    dtype = dtype or torch.float32
    if window == "hanning":
        return torch.hann_window(size, periodic=False, device=device, dtype=dtype)
    if window == "povey":
        return torch.hann_window(size, periodic=False, device=device, dtype=dtype).pow(0.85)
    if window == "hamming":
        return torch.hamming_window(
            size, periodic=False, alpha=0.54, beta=0.46, device=device, dtype=dtype
        )
    if window == "rectangular":
        return torch.ones(size, device=device, dtype=dtype)
    if window == "blackman":
        a = 2 * math.pi / (size - 1)
        n = torch.arange(size, device=device, dtype=torch.float64)
        w = blackman_coeff - 0.5 * torch.cos(a * n) + (0.5 - blackman_coeff) * torch.cos(2 * a * n)
        return w.to(dtype)
    raise ValueError(f"unknown window {window!r}; allowed: {', '.join(WINDOW_TYPES)}")


def _frames(waveform: Tensor, window_size: int, window_shift: int, snip_edges: bool) -> Tensor:
    """[B, N] -> [B, frames, window_size] (Kaldi framing)."""
    num_samples = waveform.shape[-1]
    if snip_edges:
        if num_samples < window_size:
            return waveform.new_zeros(waveform.shape[0], 0, window_size)
        return waveform.unfold(-1, window_size, window_shift)
    num_frames = (num_samples + window_shift // 2) // window_shift
    if num_frames == 0:
        return waveform.new_zeros(waveform.shape[0], 0, window_size)
    reversed_wave = torch.flip(waveform, [-1])
    pad = window_size // 2 - window_shift // 2
    if pad > 0:
        padded = torch.cat((reversed_wave[:, -pad:], waveform, reversed_wave), dim=-1)
    else:
        padded = torch.cat((waveform[:, -pad:], reversed_wave), dim=-1)
    return padded.unfold(-1, window_size, window_shift)[:, :num_frames]


def kaldi_fbank(
    waveform: Tensor,
    sample_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    window: str = "hanning",
    dither: float = 0.0,
    preemphasis: float = 0.97,
    remove_dc_offset: bool = True,
    use_energy: bool = False,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    snip_edges: bool = True,
    use_power: bool = True,
    use_log_fbank: bool = True,
    *,
    round_to_power_of_two: bool = True,
    raw_energy: bool = True,
    energy_floor: float = 1.0,
    htk_compat: bool = False,
    blackman_coeff: float = 0.42,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Kaldi log-mel fbank. waveform [N] or [B, N] -> [B, frames, bins] (bins + 1 with energy).

    Semantics of ``torchaudio.compliance.kaldi.fbank`` (same defaults except the window,
    which defaults to AudioMAE's ``hanning``; Kaldi's default is ``povey``).
    """
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be [N] or [B, N], got shape {tuple(waveform.shape)}")
    if not waveform.is_floating_point():
        waveform = waveform.float()
    device, dtype = waveform.device, waveform.dtype
    window_shift = int(sample_rate * frame_shift_ms * 0.001)
    window_size = int(sample_rate * frame_length_ms * 0.001)
    padded_size = _next_power_of_2(window_size) if round_to_power_of_two else window_size
    eps = torch.tensor(FLOAT_EPS, device=device, dtype=dtype)

    frames = _frames(waveform, window_size, window_shift, snip_edges)  # [B, M, W] (a view)
    if dither != 0.0:
        noise = torch.randn(frames.shape, generator=generator, dtype=dtype)
        frames = frames + noise.to(device) * dither
    means = frames.mean(dim=-1, keepdim=True) if remove_dc_offset else None

    def log_energy(x: Tensor) -> Tensor:
        energy = torch.maximum(x.pow(2).sum(-1), eps).log()
        if energy_floor == 0.0:
            return energy
        return torch.clamp(energy, min=math.log(energy_floor))

    signal_log_energy = None
    if use_energy and raw_energy:
        signal_log_energy = log_energy(frames if means is None else frames - means)
    # DC removal and pre-emphasis fused: (x - m) - c (x_prev - m) = x - c x_prev - (1 - c) m,
    # with x_prev[0] = x[0] (Kaldi replicates the first sample).
    if preemphasis != 0.0:
        previous = torch.cat((frames[..., :1], frames[..., :-1]), dim=-1)
        frames = frames - preemphasis * previous
        if means is not None:
            frames = frames.sub_((1.0 - preemphasis) * means)
    elif means is not None:
        frames = frames - means
    window_fn = feature_window(
        window, window_size, blackman_coeff=blackman_coeff, device=device, dtype=dtype
    )
    # Windowed frames written straight into a zero-padded buffer [B, M, padded_size].
    padded = frames.new_zeros(*frames.shape[:-1], padded_size)
    torch.mul(frames, window_fn, out=padded[..., :window_size])
    if use_energy and signal_log_energy is None:
        signal_log_energy = log_energy(padded)

    complex_spectrum = torch.fft.rfft(padded)
    power = complex_spectrum.real.square() + complex_spectrum.imag.square()
    spectrum = power if use_power else power.sqrt()
    banks = mel_banks(num_mel_bins, padded_size, sample_rate, low_freq, high_freq)
    energies = spectrum @ banks.to(device=device, dtype=dtype).T  # [B, M, bins]
    if use_log_fbank:
        energies = energies.clamp_(min=FLOAT_EPS).log_()
    if use_energy:
        assert signal_log_energy is not None
        energy_column = signal_log_energy.unsqueeze(-1)
        pieces = (energies, energy_column) if htk_compat else (energy_column, energies)
        energies = torch.cat(pieces, dim=-1)
    return energies


def pad_or_crop(fbank: Tensor, target_frames: int) -> Tensor:
    """[frames, bins] -> [target_frames, bins]: zero-pad at the end or crop the tail."""
    frames = fbank.shape[-2]
    if frames < target_frames:
        return F.pad(fbank, (0, 0, 0, target_frames - frames))
    return fbank[..., :target_frames, :]


def waveform_fbank(waveform: Tensor, sample_rate: int, spec: AudioSpec) -> Tensor:
    """AudioMAE fbank before normalisation: [N] or [B, N] -> [B, target_frames, mel_bins].

    The waveform's mean is removed (per clip), then a 128-bin-style hanning fbank at the
    spec's bins with 10 ms shift and no dither; frames are zero-padded or cropped.
    """
    if sample_rate != spec.sample_rate:
        raise ValueError(
            f"waveform at {sample_rate} Hz; resample to the spec's {spec.sample_rate} Hz first"
        )
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    waveform = waveform - waveform.mean(dim=-1, keepdim=True)
    fbank = kaldi_fbank(
        waveform,
        sample_rate=sample_rate,
        num_mel_bins=spec.mel_bins,
        window="hanning",
        dither=0.0,
        frame_shift_ms=10.0,
        use_energy=False,
        htk_compat=True,
    )
    return pad_or_crop(fbank, spec.target_frames)


def audio_features(waveform: Tensor, sample_rate: int, spec: AudioSpec, stats: NormStats) -> Tensor:
    """AudioMAE input: mono waveform [N] at ``spec.sample_rate`` -> [target_frames, mel_bins]."""
    return stats.normalise(waveform_fbank(waveform, sample_rate, spec)[0])


def samples_for_frames(frames: int, sample_rate: int = 16000) -> int:
    """Waveform length whose fbank has exactly ``frames`` frames (10 ms shift, 25 ms window)."""
    return (frames - 1) * (sample_rate // 100) + int(sample_rate * 0.025)
