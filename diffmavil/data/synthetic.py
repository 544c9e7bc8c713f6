"""Built-in synthetic audio-visual dataset: the embedded default (spec ``synthetic``).

Every clip is generated from ``(seed, split, index)`` alone, at any preset's input sizes.
Class ``c`` fixes a *pitch group* (``c // 2``: the tone's fundamental band) and a *rhythm*
(``c % 2``: three long events, or twelve short blips of the same total duration), a shape,
a colour and a direction of motion. Per clip, event onsets are random and shared by both
modalities: the tone sounds during events, and the video object moves (along its class
direction), grows and brightens only while an event sounds. Nuisances per clip: pitch
jitter (neighbouring pitch groups overlap), harmonic mix, loudness, noise level, a
distractor tone at a random pitch and time, background colour and gradient, a distractor
shape with its own motion.

So the mean spectrum of a clip tells the pitch group at best (a linear probe on it stays
near 1/2 with 8+ classes), the rhythm needs the time structure, and the audio-video pairing
carries each clip's event timing. The waveform (16 kHz, ``target_frames * 10 ms + 15 ms``)
goes through the same fbank path as real audio.

``difficulty`` (``SyntheticOptions``, spec ``synthetic:...,difficulty=0.5``; a number in
[0, 1]) makes the downstream task harder: 0 is the data above, bit for bit; as it rises,
each setting of ``difficulty_settings`` moves linearly from its value at 0 to its value at
1: less class signal (noisier audio, a smaller and fainter class object) and more nuisance
(wider pitch jitter, so pitch groups overlap; wider colour and direction jitter; louder
distractor tones, a decoy tone train at a random pitch and rhythm, more and more colourful
distractor shapes). Draws that exist only above 0 come from a stream of their own, so
difficulty 0 draws exactly what it always did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffmavil.config import ModelConfig
from diffmavil.data.common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AVDataset,
    DataError,
    Split,
    check_split,
)
from diffmavil.data.fbank import NormStats, audio_features, samples_for_frames, waveform_fbank

# Bumped whenever a clip's content changes for the same (seed, split, index) and options:
# it keys the disk feature cache, so features of an older generator are never read back.
GENERATOR_VERSION = 2
SPLIT_STREAMS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
SHAPES: tuple[str, ...] = ("circle", "square", "diamond", "ring", "cross")
# (events, length / clip): equal total tone time, so the mean spectrum and each mel bin's
# spread over time carry no rhythm; a patch tells it only through its time structure.
RHYTHMS: tuple[tuple[int, float], ...] = ((3, 0.12), (12, 0.03))
LOW_PITCH_HZ = 250.0
PITCH_SPAN_OCTAVES = 2.5
PITCH_JITTER = 0.4  # of the spacing between pitch groups, each way
ATTACK_MS, RELEASE_MS = 10, 30
# Class object radius, of the frame's shorter side, before it grows with the events: the
# sound source is salient (at the tiny preset it spans 1-2 of the 16-pixel patches).
OBJECT_RADIUS = (0.14, 0.2)


DIFFICULTY_HELP = "a number from 0 (the default data) to 1 (the hardest)"


def check_difficulty(value: float) -> float:
    """``value`` as a float when it is a difficulty in [0, 1]; else DataError (one line)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DataError(f"synthetic: difficulty={value!r} is not allowed; {DIFFICULTY_HELP}")
    return float(value)


@dataclass(frozen=True)
class SyntheticOptions:
    """Options of the ``synthetic`` spec:
    ``synthetic:classes=10,size=2000,eval_size=500,difficulty=0.5`` (difficulty: see the
    module docstring and ``difficulty_settings``; 0, the default, is the pre-training data)."""

    classes: int = 10
    size: int = 2000
    eval_size: int = 500
    difficulty: float = 0.0


@dataclass(frozen=True)
class DifficultySettings:
    """What one ``difficulty`` sets; at difficulty 0 each field is the default data's."""

    noise_scale: float  # background noise std, x
    pitch_jitter: float  # of the spacing between pitch groups, each way
    distractor_level: float  # the distractor tone's level is uniform in [0, this]
    decoy_probability: float  # chance of a decoy tone train (random pitch and rhythm)
    object_scale: float  # class object radius, x
    object_opacity: float  # class object blended over the background by this
    hue_jitter: float  # class colour jitter, of the hue spacing between classes, each way
    direction_jitter: float  # direction jitter, of the angle between classes, each way
    distractor_probability: float  # chance of the distractor shape
    distractor_saturation: float  # its colour's saturation
    extra_shape_probability: float  # chance of a second distractor shape


# (value at difficulty 0 = the default data, value at difficulty 1). **choice**: calibrated so
# that a linear probe of pre-trained MAViL features (the Table-2 probe, 10
# classes) falls from ~99% at 0 into 75-90% in mid-range (docs/data.md has the figures).
DIFFICULTY_RANGES: dict[str, tuple[float, float]] = {
    "noise_scale": (1.0, 4.0),
    "pitch_jitter": (PITCH_JITTER, 0.85),
    "distractor_level": (0.7, 1.3),
    "decoy_probability": (0.0, 0.75),
    "object_scale": (1.0, 0.625),
    "object_opacity": (1.0, 0.625),
    "hue_jitter": (0.3, 1.2),
    "direction_jitter": (0.5, 1.25),
    "distractor_probability": (0.7, 0.925),
    "distractor_saturation": (0.3, 0.75),
    "extra_shape_probability": (0.0, 0.75),
}
DECOY_LEVEL = (0.3, 0.8)  # of the class tone's level


def difficulty_settings(difficulty: float) -> DifficultySettings:
    """Each setting linear in ``difficulty`` between its (0, 1) values in
    ``DIFFICULTY_RANGES``: monotonic, and exactly the default data's values at 0."""
    difficulty = check_difficulty(difficulty)
    return DifficultySettings(
        **{name: a + (b - a) * difficulty for name, (a, b) in DIFFICULTY_RANGES.items()}
    )


DEFAULT_SETTINGS = difficulty_settings(0.0)


@dataclass(frozen=True)
class ClipPlan:
    """The random draws of one clip (class structure + nuisances)."""

    label: int
    onsets_ms: np.ndarray  # [E]
    offsets_ms: np.ndarray  # [E]
    event_gain: np.ndarray  # [E]
    f0: float
    harmonics: tuple[float, float, float]
    gain: float
    noise_std: float
    distractor: tuple[float, float, float, float]  # freq, start s, length s, level
    seed: int
    decoy: ClipPlan | None = None  # a tone train unrelated to the label (difficulty > 0)


def class_structure(label: int, num_classes: int) -> tuple[int, int, int]:
    """(pitch group, rhythm, number of pitch groups) of a class."""
    rhythms = len(RHYTHMS) if num_classes >= 4 else 1
    groups = math.ceil(num_classes / rhythms)
    return label // rhythms, label % rhythms, groups


def clip_rng(seed: int, split: Split, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_STREAMS[split], index, 0x5EED])


def difficulty_rng(seed: int, split: Split, index: int) -> np.random.Generator:
    """The stream of the draws that only a difficulty above 0 makes (decoys, extra shapes),
    apart from ``clip_rng`` so that difficulty 0 draws what it always did."""
    return np.random.default_rng([seed, SPLIT_STREAMS[split], index, 0xD1FF])


def _events(rng: np.random.Generator, rhythm: int, duration_ms: int) -> tuple[np.ndarray, float]:
    """(onsets [E] in ms, event length in ms) of one tone train of a rhythm."""
    events, fraction = RHYTHMS[rhythm]
    length_ms = fraction * duration_ms
    free_ms = duration_ms - events * length_ms
    gaps = rng.dirichlet(np.ones(events + 1)) * free_ms
    return np.cumsum(gaps[:-1]) + np.arange(events) * length_ms, length_ms


def plan_clip(
    rng: np.random.Generator,
    label: int,
    num_classes: int,
    duration_ms: int,
    settings: DifficultySettings = DEFAULT_SETTINGS,
    extra: np.random.Generator | None = None,
) -> ClipPlan:
    """Draw a clip's events and nuisances (``extra``: the stream of ``difficulty_rng``,
    needed when ``settings`` ask for a decoy)."""
    group, rhythm, groups = class_structure(label, num_classes)
    onsets, length_ms = _events(rng, rhythm, duration_ms)
    events = len(onsets)
    spacing = PITCH_SPAN_OCTAVES / max(groups, 1)
    jitter = settings.pitch_jitter
    octave = group * spacing + rng.uniform(-jitter, jitter) * spacing
    distractor_len = rng.uniform(0.1, 0.5) * duration_ms / 1000
    plan = ClipPlan(
        label=label,
        onsets_ms=onsets,
        offsets_ms=onsets + length_ms,
        event_gain=rng.uniform(0.6, 1.0, events),
        f0=LOW_PITCH_HZ * 2.0**octave,
        harmonics=(1.0, float(rng.uniform(0.1, 0.8)), float(rng.uniform(0.0, 0.5))),
        gain=float(np.exp(rng.uniform(np.log(0.05), np.log(0.5)))),
        noise_std=float(rng.uniform(0.01, 0.25)) * settings.noise_scale,
        distractor=(
            float(np.exp(rng.uniform(np.log(150.0), np.log(3000.0)))),
            float(rng.uniform(0.0, duration_ms / 1000 - distractor_len)),
            float(distractor_len),
            float(rng.uniform(0.0, settings.distractor_level)),
        ),
        seed=int(rng.integers(2**62)),
    )
    if extra is not None and extra.uniform() < settings.decoy_probability:
        # A tone train like a class's, at a random pitch (anywhere in the span) and rhythm,
        # quieter than the class tone and not shown in the video.
        decoy_onsets, decoy_length = _events(extra, int(extra.integers(len(RHYTHMS))), duration_ms)
        decoy = ClipPlan(
            label=-1,
            onsets_ms=decoy_onsets,
            offsets_ms=decoy_onsets + decoy_length,
            event_gain=extra.uniform(0.6, 1.0, len(decoy_onsets)),
            f0=LOW_PITCH_HZ * 2.0 ** extra.uniform(-0.5, PITCH_SPAN_OCTAVES),
            harmonics=(1.0, float(extra.uniform(0.1, 0.8)), float(extra.uniform(0.0, 0.5))),
            gain=plan.gain * float(extra.uniform(*DECOY_LEVEL)),
            noise_std=0.0,
            distractor=(0.0, 0.0, 0.0, 0.0),
            seed=0,
        )
        plan = replace(plan, decoy=decoy)
    return plan


def event_envelope_ms(plan: ClipPlan, duration_ms: int) -> Tensor:
    """Event envelope at 1 ms resolution [duration_ms], in [0, 1] times each event's gain."""
    t = torch.arange(duration_ms, dtype=torch.float32).unsqueeze(0)
    on = torch.from_numpy(plan.onsets_ms).float().unsqueeze(1)
    off = torch.from_numpy(plan.offsets_ms).float().unsqueeze(1)
    gain = torch.from_numpy(plan.event_gain).float().unsqueeze(1)
    rise = ((t - on) / ATTACK_MS).clamp(0, 1)
    fall = ((off - t) / RELEASE_MS).clamp(0, 1)
    return (rise * fall * gain).amax(dim=0)


NOISE_POOL_SAMPLES = 1 << 21


@lru_cache(maxsize=1)
def noise_pool() -> Tensor:
    """A fixed pool of white Gaussian noise [2**21]; clips read it at random offsets."""
    return torch.randn(NOISE_POOL_SAMPLES, generator=torch.Generator().manual_seed(12345))


def synth_waveform(plan: ClipPlan, num_samples: int, sample_rate: int) -> Tensor:
    """The clip's waveform [num_samples]: events of a harmonic tone + distractor + noise
    (+ the decoy tone train, when the plan has one)."""
    rng = np.random.default_rng(plan.seed)
    pool = noise_pool()
    if num_samples <= pool.numel():
        offset = int(rng.integers(pool.numel() - num_samples + 1))
        wave = pool[offset : offset + num_samples] * (plan.noise_std * plan.gain)
    else:
        generator = torch.Generator().manual_seed(plan.seed)
        wave = torch.randn(num_samples, generator=generator) * (plan.noise_std * plan.gain)
    _add_tone_events(wave, plan, sample_rate)
    freq, start, length, level = plan.distractor
    lo, hi = int(start * sample_rate), min(int((start + length) * sample_rate), num_samples)
    if level > 0 and hi > lo:
        omega = 2 * math.pi * freq / sample_rate
        phase = torch.arange(hi - lo, dtype=torch.float32).mul_(omega).add_((omega * lo) % math.tau)
        wave[lo:hi] += torch.sin(phase).mul_(level * plan.gain)
    if plan.decoy is not None:
        _add_tone_events(wave, plan.decoy, sample_rate)
    return wave


def _add_tone_events(wave: Tensor, plan: ClipPlan, sample_rate: int) -> None:
    """Add the plan's harmonic tone, sounding during its events, to ``wave`` in place."""
    num_samples = wave.numel()
    per_ms = sample_rate / 1000
    nyquist = sample_rate / 2
    a2 = plan.harmonics[1] if 2 * plan.f0 < nyquist else 0.0
    a3 = plan.harmonics[2] if 3 * plan.f0 < nyquist else 0.0
    for on, off, gain in zip(plan.onsets_ms, plan.offsets_ms, plan.event_gain, strict=True):
        lo, hi = int(on * per_ms), min(math.ceil(off * per_ms), num_samples)
        if hi <= lo:
            continue
        steps = torch.arange(hi - lo, dtype=torch.float32)
        t_ms = steps / per_ms + (lo / per_ms)
        envelope = ((t_ms - on) / ATTACK_MS).clamp_(0, 1) * ((off - t_ms) / RELEASE_MS).clamp_(0, 1)
        omega = 2 * math.pi * plan.f0 / sample_rate
        phase = steps.mul_(omega).add_((omega * lo) % (2 * math.pi))
        sin = torch.sin(phase)
        cos = torch.cos(phase) if a2 > 0 else None
        tone = sin.clone()
        if cos is not None:
            tone.add_(sin * cos, alpha=2 * a2)  # sin 2p = 2 sin p cos p
        if a3 > 0:
            tone.add_(sin * (3.0 - 4.0 * sin * sin), alpha=a3)  # sin 3p = sin p (3 - 4 sin^2 p)
        wave[lo:hi] += tone.mul_(envelope.mul_(gain * plan.gain))


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _shape_mask(shape: str, dx: Tensor, dy: Tensor, radius: Tensor) -> Tensor:
    """Anti-aliased mask in [0, 1]; dx, dy, radius broadcast to [T, H, W] (pixels)."""
    ax, ay = dx.abs(), dy.abs()
    if shape == "circle":
        signed = torch.sqrt(dx * dx + dy * dy) - radius
    elif shape == "square":
        signed = torch.maximum(ax, ay) - 0.85 * radius
    elif shape == "diamond":
        signed = ax + ay - 1.2 * radius
    elif shape == "ring":
        signed = (torch.sqrt(dx * dx + dy * dy) - 0.7 * radius).abs() - 0.3 * radius
    elif shape == "cross":
        bar = 0.3 * radius
        signed = torch.minimum(
            torch.maximum(ax - bar, ay - radius), torch.maximum(ay - bar, ax - radius)
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return (0.5 - signed).clamp_(0.0, 1.0)


def frame_activity(envelope_ms: Tensor, frames: int) -> Tensor:
    """Mean event envelope over each video frame's interval [frames]."""
    usable = envelope_ms[: (envelope_ms.numel() // frames) * frames]
    return usable.view(frames, -1).mean(dim=1)


def synth_video(
    plan: ClipPlan,
    rng: np.random.Generator,
    activity: Tensor,
    num_classes: int,
    channels: int,
    height: int,
    width: int,
    normalise: bool = True,
    settings: DifficultySettings = DEFAULT_SETTINGS,
    extra: np.random.Generator | None = None,
) -> Tensor:
    """The clip's video [C, T, H, W]: the class object moving with the events.

    Colours are composited directly in ImageNet-normalised space when ``normalise`` (the
    compositing is affine, so this equals normalising afterwards), else in [0, 1].
    ``extra``: the stream of ``difficulty_rng``, needed when ``settings`` ask for a second
    distractor shape.
    """
    if channels not in (1, 3):
        raise DataError(f"synthetic video supports 1 or 3 channels, not {channels}")
    frames = activity.numel()
    if normalise:
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    else:
        mean, std = torch.zeros(3, 1, 1, 1), torch.ones(3, 1, 1, 1)
    label = plan.label
    scale = float(min(height, width))
    ys = torch.arange(height, dtype=torch.float32).view(1, height, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, 1, width) + 0.5

    # Background: low-saturation colour with a linear gradient in a random direction.
    bg_colour = torch.from_numpy(
        _hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.35), rng.uniform(0.15, 0.6))
    ).float()
    angle = rng.uniform(0, 2 * math.pi)
    gradient = (math.cos(angle) * xs + math.sin(angle) * ys) / scale - 0.5
    shade = 1.0 + rng.uniform(0.0, 0.5) * gradient  # [1, H, W]
    background = (bg_colour.view(3, 1, 1, 1) * shade.unsqueeze(0) - mean) / std
    video = background.expand(3, frames, height, width).contiguous()

    # Distractor shapes: random shape, colour and straight motion, independent of the audio.
    k = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1)

    def distractor(draw: np.random.Generator, video: Tensor) -> Tensor:
        shape = SHAPES[int(draw.integers(len(SHAPES)))]
        start = draw.uniform(0.2, 0.8, 2) * scale
        velocity = draw.uniform(-0.08, 0.08, 2) * scale
        cx, cy = start[0] + velocity[0] * k, start[1] + velocity[1] * k
        radius = torch.tensor(draw.uniform(0.05, 0.1) * scale)
        mask = _shape_mask(shape, xs - cx, ys - cy, radius).unsqueeze(0)
        saturation = settings.distractor_saturation
        colour = torch.from_numpy(_hsv_to_rgb(draw.uniform(), saturation, draw.uniform(0.3, 0.9)))
        colour = (colour.float().view(3, 1, 1, 1) - mean) / std
        return torch.lerp(video, colour.expand_as(video), mask)

    if rng.uniform() < settings.distractor_probability:
        video = distractor(rng, video)
    if extra is not None and extra.uniform() < settings.extra_shape_probability:
        video = distractor(extra, video)

    # Class object: moves along its class direction only while events sound.
    shape = SHAPES[label % len(SHAPES)]
    hue_jitter, direction_jitter = settings.hue_jitter, settings.direction_jitter
    hue = (label / num_classes + rng.uniform(-hue_jitter, hue_jitter) / num_classes) % 1.0
    colour = torch.from_numpy(
        _hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.0))
    ).float()
    direction = (
        2 * math.pi * label / num_classes
        + rng.uniform(-direction_jitter, direction_jitter) * math.pi / num_classes
    )
    travelled = torch.cumsum(activity, 0) - 0.5 * activity.sum()  # centred path
    speed = 0.6 * scale / max(float(activity.sum()), 1.0)
    centre = rng.uniform(0.4, 0.6, 2) * scale
    cx = (centre[0] + speed * math.cos(direction) * travelled).view(frames, 1, 1)
    cy = (centre[1] + speed * math.sin(direction) * travelled).view(frames, 1, 1)
    size = rng.uniform(*OBJECT_RADIUS) * settings.object_scale * scale
    radius = (size * (1.0 + 0.6 * activity)).view(frames, 1, 1)
    mask = _shape_mask(shape, xs - cx, ys - cy, radius).unsqueeze(0)
    if settings.object_opacity != 1.0:
        mask = mask * settings.object_opacity
    brightness = (0.45 + 0.55 * activity).view(1, frames, 1, 1)
    video = torch.lerp(video, (colour.view(3, 1, 1, 1) * brightness - mean) / std, mask)
    if channels == 1:
        return video.mean(dim=0, keepdim=True)
    return video


def synth_clip(
    config: ModelConfig,
    seed: int,
    split: Split,
    index: int,
    num_classes: int,
    normalise: bool = True,
    difficulty: float = 0.0,
) -> tuple[Tensor, Tensor, int, Tensor]:
    """One clip: (waveform [N] at 16 kHz, video [C, T, H, W], label, event activity [T]).

    The video is ImageNet-normalised when ``normalise``, else in [0, 1]. ``difficulty``:
    see ``difficulty_settings`` (0: the default data).
    """
    audio, video = config.audio, config.video
    settings = difficulty_settings(difficulty)
    rng = clip_rng(seed, split, index)
    extra = difficulty_rng(seed, split, index) if difficulty > 0 else None
    label = index % num_classes
    num_samples = samples_for_frames(audio.target_frames, audio.sample_rate)
    duration_ms = math.ceil(num_samples * 1000 / audio.sample_rate)
    plan = plan_clip(rng, label, num_classes, duration_ms, settings, extra)
    wave = synth_waveform(plan, num_samples, audio.sample_rate)
    activity = frame_activity(event_envelope_ms(plan, duration_ms), video.frames)
    activity = activity / plan.event_gain.max()
    frames = synth_video(
        plan,
        rng,
        activity,
        num_classes,
        video.channels,
        video.height,
        video.width,
        normalise,
        settings,
        extra,
    )
    return wave, frames, label, activity


class SyntheticAVDataset(AVDataset):
    """Procedural audio-visual clips, class-balanced (label = index % classes)."""

    multi_label = False
    has_video = True

    def __init__(
        self,
        config: ModelConfig,
        split: Split = "train",
        *,
        options: SyntheticOptions = SyntheticOptions(),
        seed: int = 0,
        stats: NormStats | None = None,
        cache: str | None = None,
    ):
        split = check_split(split)
        if options.classes < 2:
            raise DataError(f"synthetic: classes={options.classes}; need at least 2")
        if options.size < 1 or options.eval_size < 1:
            raise DataError("synthetic: size and eval_size must be positive")
        check_difficulty(options.difficulty)
        if stats is None:
            stats = synthetic_stats(config, options.classes, seed, options.difficulty)
        super().__init__(config, split, stats, cache)
        self.options = options
        self.seed = seed
        self.num_classes = options.classes
        self.class_names = [
            f"{SHAPES[c % len(SHAPES)]}-pitch{class_structure(c, options.classes)[0]}"
            f"-{'slow' if class_structure(c, options.classes)[1] == 0 else 'fast'}"
            for c in range(options.classes)
        ]
        self._size = options.size if split == "train" else options.eval_size

    def __len__(self) -> int:
        return self._size

    def fingerprint(self) -> str:
        """The generator version, options, seed and split. The options read as they did
        before ``difficulty`` existed, with the difficulty added when it is not 0: features
        of one difficulty are never read back for another, and difficulty 0 keeps the keys
        of caches written before."""
        o = self.options
        options = f"SyntheticOptions(classes={o.classes}, size={o.size}, eval_size={o.eval_size})"
        if o.difficulty:
            options += f"|difficulty={float(o.difficulty)!r}"
        return f"synthetic-v{GENERATOR_VERSION}|{options}|{self.seed}|{self.split}"

    def load_item(self, index: int) -> dict[str, Any]:
        wave, frames, label, _ = synth_clip(
            self.config,
            self.seed,
            self.split,
            index,
            self.num_classes,
            difficulty=self.options.difficulty,
        )
        spec = self.config.audio
        return {
            "audio": audio_features(wave, spec.sample_rate, spec, self.stats),
            "video": frames,
            "label": torch.tensor(label, dtype=torch.long),
            "index": index,
        }


@lru_cache(maxsize=16)
def _synthetic_stats(
    audio_json: str, config: ModelConfig, classes: int, seed: int, difficulty: float
) -> NormStats:
    waves = [
        synth_clip(config, seed, "train", i, classes, difficulty=difficulty)[0]
        for i in range(min(4 * classes, 64))
    ]
    fbank = waveform_fbank(torch.stack(waves), config.audio.sample_rate, config.audio)
    return NormStats(mean=float(fbank.mean()), std=float(fbank.std()))


def synthetic_stats(
    config: ModelConfig, classes: int = 10, seed: int = 0, difficulty: float = 0.0
) -> NormStats:
    """Fbank mean/std of the synthetic data at this config and difficulty (first train
    clips; cached): each difficulty is normalised by its own statistics, as each real
    dataset is by its own."""
    return _synthetic_stats(
        config.audio.model_dump_json(), config, classes, seed, float(difficulty)
    )
