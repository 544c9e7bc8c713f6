"""Small media files for the data tests: wavs, an mp4, a frame folder."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile
from PIL import Image

from diffmavil.config import ModelConfig, make_config


def tiny_config(**overrides) -> ModelConfig:
    """The tiny preset (audio 256x64, video 3x4x64x64), optionally overridden."""
    return make_config("tiny", overrides=overrides or None)


def write_wav(
    path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0, channels: int = 1
) -> Path:
    """A sine tone (stereo: two tones) written with soundfile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * freq * t)
    data = tone if channels == 1 else np.stack([tone, 0.3 * np.sin(2 * np.pi * 2 * freq * t)], 1)
    soundfile.write(str(path), data.astype(np.float32), rate)
    return path


def write_garbage(path: Path, size: int = 400) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def write_mp4(path: Path, frames: int = 12, size: int = 48) -> Path:
    """An mp4 whose frame k is uniformly grey at level 20 * k (mpeg4, yuv420p)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for k in range(frames):
            image = np.full((size, size, 3), 20 * k, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames(folder: Path, frames: int = 6, size: int = 40) -> Path:
    """PNG frames whose frame k is red at level 40 * k."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(frames):
        image = np.zeros((size, size, 3), dtype=np.uint8)
        image[..., 0] = 40 * k
        Image.fromarray(image).save(folder / f"{k:04d}.png")
    return folder
