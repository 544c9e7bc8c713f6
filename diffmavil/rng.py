"""Counter-based random numbers keyed by (seed, sample id, stream, position).

Masks, diffusion timesteps and noise must be identical for a given sample whatever the
batch it lands in, the process that draws it (DDP ranks) or a resume in between. A
stateful generator cannot promise that; a hash of the counter can. Everything is integer
arithmetic on the target device (exact on CPU, CUDA and `meta`), vectorised, with no host
synchronisation.

The mixer is murmur3's 32-bit finaliser; products are split into 16-bit halves so every
intermediate fits in int64 without overflow.
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF
_MASK16 = 0xFFFF

# Streams: one per kind of draw, so draws never reuse each other's counters.
STREAM_AUDIO_MASK = 1
STREAM_VIDEO_MASK = 2
STREAM_AUDIO_TIMESTEP = 3
STREAM_VIDEO_TIMESTEP = 4
STREAM_AUDIO_NOISE = 5
STREAM_VIDEO_NOISE = 6
STREAM_AUDIO_MASK_VIEW2 = 7
STREAM_VIDEO_MASK_VIEW2 = 8


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """(x * constant) mod 2**32 for x in [0, 2**32), without int64 overflow."""
    high = ((x >> 16) * constant) & _MASK16
    return ((high << 16) + (x & _MASK16) * constant) & _MASK32


def _fmix32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


def _fmix32_(x: torch.Tensor) -> torch.Tensor:
    """In-place ``_fmix32`` of an int64 tensor holding values in [0, 2**32).

    Speed: int64 products wrap modulo 2**64 (two's complement), whose low 32 bits are the
    exact product mod 2**32, so one multiply and one mask replace ``_mul32``'s eight ops;
    in-place ops avoid a temporary per step. Equal to ``_fmix32`` (tested).
    """
    x ^= x >> 16
    x.mul_(0x85EBCA6B).bitwise_and_(_MASK32)
    x ^= x >> 13
    x.mul_(0xC2B2AE35).bitwise_and_(_MASK32)
    x ^= x >> 16
    return x


# On CPU, long hash streams are computed in column chunks so that the ~15 elementwise
# passes of the mixer run in cache instead of streaming [B, count] int64 through memory.
_CPU_CHUNK = 4096


def _bits(key: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """[B, stop - start] hashes of positions start..stop-1 for keys [B]."""
    positions = torch.arange(start, stop, device=key.device, dtype=torch.int64)
    x = key[:, None] ^ positions[None, :]
    _fmix32_(x)
    x ^= key[:, None]
    return _fmix32_(x)


def _chunks(count: int, device: torch.device) -> list[tuple[int, int]]:
    if device.type != "cpu" or count <= _CPU_CHUNK:
        return [(0, count)]
    return [(s, min(count, s + _CPU_CHUNK)) for s in range(0, count, _CPU_CHUNK)]


def _key(seed: int, sample_ids: torch.Tensor, stream: int) -> torch.Tensor:
    """[B] int64 keys in [0, 2**32) from (seed, sample id, stream)."""
    ids = sample_ids.to(torch.int64)
    key = _fmix32(torch.full_like(ids, (seed * 0x9E3779B1 + stream * 0x632BE5AB) & _MASK32))
    key = _fmix32(key ^ (ids & _MASK32))
    return _fmix32(key ^ ((ids >> 32) & _MASK32) ^ 0x5BD1E995)


def random_bits(seed: int, sample_ids: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """[B, count] int64 hashes, uniform in [0, 2**32), one row per sample id."""
    key = _key(seed, sample_ids, stream)
    chunks = _chunks(count, key.device)
    if len(chunks) == 1:
        return _bits(key, 0, count)
    out = torch.empty(key.shape[0], count, dtype=torch.int64, device=key.device)
    for start, stop in chunks:
        out[:, start:stop] = _bits(key, start, stop)
    return out


def uniform(
    seed: int, sample_ids: torch.Tensor, stream: int, count: int, dtype=torch.float32
) -> torch.Tensor:
    """[B, count] uniform in the open interval (0, 1)."""
    bits = random_bits(seed, sample_ids, stream, count)
    return ((bits.to(torch.float64) + 0.5) / 2.0**32).to(dtype)


def _to_unit(bits: torch.Tensor) -> torch.Tensor:
    """int64 hashes in [0, 2**32) -> float32 in the open interval (0, 1)."""
    return ((bits.to(torch.float64) + 0.5) / 2.0**32).to(torch.float32)


def normal(
    seed: int, sample_ids: torch.Tensor, stream: int, shape: tuple[int, ...], dtype=torch.float32
) -> torch.Tensor:
    """[B, *shape] standard normal (Box-Muller over two halves of one counter stream:
    radius from positions 0..n-1, angle from positions n..2n-1)."""
    count = math.prod(shape)
    key = _key(seed, sample_ids, stream)
    out = torch.empty(key.shape[0], count, dtype=torch.float32, device=key.device)
    for start, stop in _chunks(count, key.device):
        radius = torch.sqrt(-2.0 * torch.log(_to_unit(_bits(key, start, stop))))
        angle = (2.0 * math.pi) * _to_unit(_bits(key, count + start, count + stop))
        out[:, start:stop] = radius * torch.cos(angle)
    return out.reshape(sample_ids.shape[0], *shape).to(dtype)


def integers(seed: int, sample_ids: torch.Tensor, stream: int, low: int, high: int) -> torch.Tensor:
    """[B] integers uniform in [low, high] (inclusive), one per sample id."""
    bits = random_bits(seed, sample_ids, stream, 1)[:, 0]
    return low + bits % (high - low + 1)
