"""Reading audio (soundfile + soxr) and video (PyAV mp4, Pillow frame folders)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile
import soxr
import torch
from PIL import Image
from torch import Tensor

from diffmavil.config import VideoSpec
from diffmavil.data.common import imagenet_normalise

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})


def probe_audio(path: Path) -> str | None:
    """Why ``path`` is not a usable audio file (None when it is), from its header only."""
    if not path.is_file():
        return "missing file"
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # libsndfile raises several kinds
        return f"unreadable audio ({type(error).__name__}: {str(error).strip()[:80]})"
    if info.frames <= 0:
        return "empty audio (0 samples)"
    return None


def load_audio(path: Path, sample_rate: int) -> Tensor:
    """Mono waveform [N] at ``sample_rate`` (channels averaged, soxr-resampled)."""
    data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError(f"{path}: empty audio")
    mono = data.mean(axis=1)
    if file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate).astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(mono))


def probe_video(path: Path) -> str | None:
    """Why ``path`` (an mp4 or a folder of images) is not usable video; None when it is."""
    if path.is_dir():
        return None if frame_files(path) else "frame folder has no images"
    if not path.is_file():
        return "missing file"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
    except Exception as error:  # PyAV raises several kinds
        return f"unreadable video ({type(error).__name__})"
    return None


def frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def uniform_indices(total: int, count: int) -> list[int]:
    """``count`` indices spread uniformly over ``total`` (centre of each segment)."""
    return [min(total - 1, int((k + 0.5) * total / count)) for k in range(count)]


def _to_tensor(images: list[Image.Image], spec: VideoSpec) -> Tensor:
    mode = "RGB" if spec.channels == 3 else "L"
    arrays = [
        np.asarray(
            image.convert(mode).resize((spec.width, spec.height), Image.Resampling.BILINEAR),
            dtype=np.float32,
        )
        for image in images
    ]
    stacked = torch.from_numpy(np.stack(arrays)) / 255.0  # [T, H, W] or [T, H, W, C]
    if stacked.dim() == 3:
        stacked = stacked.unsqueeze(-1)
    return imagenet_normalise(stacked.permute(3, 0, 1, 2).contiguous())


def load_video_file(path: Path, spec: VideoSpec) -> Tensor:
    """``spec.frames`` frames sampled uniformly from a video file -> [C, T, H, W] normalised."""
    with av.open(str(path)) as container:
        decoded = [frame.to_image() for frame in container.decode(video=0)]
    if not decoded:
        raise ValueError(f"{path}: no decodable video frames")
    return _to_tensor([decoded[i] for i in uniform_indices(len(decoded), spec.frames)], spec)


def load_frame_folder(folder: Path, spec: VideoSpec) -> Tensor:
    """``spec.frames`` images sampled uniformly from a folder -> [C, T, H, W] normalised."""
    files = frame_files(folder)
    if not files:
        raise ValueError(f"{folder}: no images")
    images = []
    for index in uniform_indices(len(files), spec.frames):
        with Image.open(files[index]) as image:
            image.load()
            images.append(image)
    return _to_tensor(images, spec)


def load_video(path: Path, spec: VideoSpec) -> Tensor:
    """A video file or a frame folder -> [C, T, H, W] normalised."""
    return load_frame_folder(path, spec) if path.is_dir() else load_video_file(path, spec)
