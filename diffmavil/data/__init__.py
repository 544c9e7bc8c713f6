"""Data layer: Kaldi fbank, the synthetic audio-visual dataset, file formats and loaders.

Entry point: ``build_dataset(spec, config, split)``; items are dicts ``{"audio": [frames,
bins], "video": [C, T, H, W], "label": [] or [classes], "index": int}``.
"""

from diffmavil.data.common import AVDataset, BadFileWarning, DataError, Split
from diffmavil.data.fbank import (
    AUDIOSET,
    ESC50,
    SPC,
    NormStats,
    audio_features,
    empty_mel_filters,
    kaldi_fbank,
    mel_banks,
    waveform_fbank,
)
from diffmavil.data.formats import DataSpec, build_dataset, parse_data_spec
from diffmavil.data.loading import LoadTiming, compute_norm_stats, make_loader, time_loading
from diffmavil.data.synthetic import SyntheticAVDataset, SyntheticOptions, synthetic_stats

__all__ = [
    "AUDIOSET",
    "ESC50",
    "SPC",
    "AVDataset",
    "BadFileWarning",
    "DataError",
    "DataSpec",
    "LoadTiming",
    "NormStats",
    "Split",
    "SyntheticAVDataset",
    "SyntheticOptions",
    "audio_features",
    "build_dataset",
    "compute_norm_stats",
    "empty_mel_filters",
    "kaldi_fbank",
    "make_loader",
    "mel_banks",
    "parse_data_spec",
    "synthetic_stats",
    "time_loading",
    "waveform_fbank",
]
