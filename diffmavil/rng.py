"""Counter-based random numbers keyed by (seed, sample id, stream, position).

Masks, diffusion timesteps and noise must be identical for a given sample whatever the
batch it lands in, the process that draws it (DDP ranks) or a resume in between. A
stateful generator cannot promise that; a hash of the counter can. Everything is integer
arithmetic on the target device (exact on CPU, CUDA and `meta`), vectorised, with no host
synchronisation.

The mixer is murmur3's 32-bit finaliser; products are split into 16-bit halves so every
intermediate fits in int64 without overflow (``_fmix32``), or taken modulo 2**64 in int64
(``_fmix32_``) or modulo 2**32 in int32 (``_fmix32_i32_``, for ``normal``): the same bits.

``normal`` is Box-Muller with both outputs of each pair used, laid out in fixed blocks
(see ``_NORMAL_BLOCK``), so a value depends on its position alone: not on the batch, the
CPU chunking or the total count.

Always eager, also inside ``torch.compile``: the public draws are ``torch.compiler.disable``d
(dynamo runs them as they are, between graphs). Their speed tricks (``out=`` into views of
one shared buffer, in-place ops on overlapping views, a dtype-reinterpreting view, wrapping
int64/int32 multiplies, seed and stream as Python ints that ``dynamic=True`` makes
symbolic) are what dynamo, AOTAutograd and inductor mishandled when the whole model was
compiled (crashes; and inductor's own vectorised log/cos could change the bits), and the
draws must stay bit-identical with and without compilation.
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


_eager = torch.compiler.disable


@_eager
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


@_eager
def uniform(
    seed: int, sample_ids: torch.Tensor, stream: int, count: int, dtype=torch.float32
) -> torch.Tensor:
    """[B, count] uniform in the open interval (0, 1)."""
    bits = random_bits(seed, sample_ids, stream, count)
    return ((bits.to(torch.float64) + 0.5) / 2.0**32).to(dtype)


def _signed32(value: int) -> int:
    """The int32 with the same low 32 bits as ``value`` in [0, 2**32)."""
    return value - 2**32 if value >= 2**31 else value


_INT32_MIN = -(2**31)
_FMIX_C1 = _signed32(0x85EBCA6B)
_FMIX_C2 = _signed32(0xC2B2AE35)


def _constants(values: dict[str, int | float]) -> dict[str, torch.Tensor]:
    dtypes = {int: torch.int32, float: torch.float32}
    return {name: torch.tensor(v, dtype=dtypes[type(v)]) for name, v in values.items()}


# The scalars of ``normal``. On CPU they are passed as ready 0-dim tensors: a Python scalar
# costs a tensor allocation and copy per op call, which matters at ~40 op calls per chunk.
_NORMAL_SCALARS: dict[str, int | float] = {
    "13": 13,
    "16": 16,
    "31": 31,
    "low13": (1 << 19) - 1,
    "low16": (1 << 16) - 1,
    "c1": _FMIX_C1,
    "c2": _FMIX_C2,
    "int32_min": _INT32_MIN,
    "2^-31": 2.0**-31,
    "2^-32": 2.0**-32,
    "-2": -2.0,
    "turn": 2.0 * math.pi / 2.0**32,
}
_NORMAL_CPU_SCALARS = _constants(_NORMAL_SCALARS)


def _xorshift32_(x: torch.Tensor, shift: str, scratch: torch.Tensor, k: dict) -> None:
    """x ^= x >>> shift (logical) for int32 x: arithmetic shift, then drop the sign copies."""
    torch.bitwise_right_shift(x, k[shift], out=scratch)
    scratch &= k["low" + shift]
    x ^= scratch


def _fmix32_i32_(x: torch.Tensor, scratch: torch.Tensor, k: dict | None = None) -> torch.Tensor:
    """In-place ``_fmix32`` on int32 storage (the same 32 bits, read as signed).

    Speed: half the bytes of int64 and twice the SIMD lanes. int32 products wrap modulo
    2**32 (two's complement multiplies, on CPU and CUDA), which is exactly the mixer's
    product; right shifts are arithmetic, so the sign copies they bring in are masked
    off. Equal to ``_fmix32`` (tested on CPU).
    """
    k = _NORMAL_SCALARS if k is None else k
    _xorshift32_(x, "16", scratch, k)
    x.mul_(k["c1"])
    _xorshift32_(x, "13", scratch, k)
    x.mul_(k["c2"])
    _xorshift32_(x, "16", scratch, k)
    return x


# ``normal`` lays its output out in blocks of 2 * _NORMAL_BLOCK values: Box-Muller pair j
# (j = _NORMAL_BLOCK * b + i) writes r cos(theta) to position 2 * _NORMAL_BLOCK * b + i and
# r sin(theta) to position 2 * _NORMAL_BLOCK * b + _NORMAL_BLOCK + i. The layout is fixed,
# so a value depends on its position only (not on the count, the chunking or the batch).
_NORMAL_BLOCK = 512


def _normal_blocks(
    key: torch.Tensor, first: int, stop: int, dest: torch.Tensor, x: torch.Tensor, scratch
) -> None:
    """Standard normals of layout blocks first..stop-1 into dest [B, blocks, 2, _NORMAL_BLOCK].

    x and scratch are int32 work buffers of dest's shape. Pair j takes its radius from the
    hash of counter j and its angle from the hash of counter j + 2**31 (mod 2**32).
    """
    k = _NORMAL_CPU_SCALARS if key.device.type == "cpu" else _NORMAL_SCALARS
    width = _NORMAL_BLOCK
    pairs = torch.arange(first * width, stop * width, device=key.device, dtype=torch.int32)
    pairs = pairs.view(stop - first, 1, width)
    counters = torch.cat((pairs, pairs ^ k["int32_min"]), dim=1)  # [blocks, 2, width]
    torch.bitwise_xor(key, counters, out=x)
    _fmix32_i32_(x, scratch, k)
    x ^= key
    _fmix32_i32_(x, scratch, k)
    # radius bits: fold the signed hash onto [0, 2**31) (h ^ (h >> 31)), exactly uniform
    radius_bits, fold = x[:, :, :1], scratch[:, :, :1]
    torch.bitwise_right_shift(radius_bits, k["31"], out=fold)
    radius_bits ^= fold
    # reuse scratch's memory, except under fvcore's jit trace (no dtype-reinterpreting view)
    tracing = torch.jit.is_tracing()
    values = x.to(torch.float32) if tracing else scratch.view(torch.float32).copy_(x)
    # u = (k + 1/2) / 2**31 in (0, 1]: float32 keeps full resolution near 0 (the tail)
    radius = values[:, :, :1]
    radius.mul_(k["2^-31"]).add_(k["2^-32"]).log_().mul_(k["-2"]).sqrt_()
    # angle: the signed hash over 2**32 turns, in [-pi, pi)
    angle = values[:, :, 1]
    angle.mul_(k["turn"])
    torch.cos(angle, out=dest[:, :, 0])
    torch.sin(angle, out=dest[:, :, 1])
    dest.mul_(radius)


# On CPU, ``normal`` works through about this many values (all rows together) at a time,
# so its ~40 elementwise passes stream through cache rather than memory, while each op is
# big enough that call overhead stays small and intra-op threads split it. Fastest of
# 2**16..2**19 with 1 and 2 threads (8 x 706 x 1536 draw); values do not depend on it.
_CPU_NORMAL_CHUNK = 1 << 18


@_eager
def normal(
    seed: int, sample_ids: torch.Tensor, stream: int, shape: tuple[int, ...], dtype=torch.float32
) -> torch.Tensor:
    """[B, *shape] standard normal by Box-Muller, both outputs of each pair used (layout
    above ``_NORMAL_BLOCK``); computed in float32, then cast to dtype."""
    count = int(math.prod(shape))  # int(): shapes are tensors under jit tracing (fvcore)
    if count >= 2**32:
        raise ValueError(f"normal: {count} values per sample exceed the 2**32 counters")
    key = _key(seed, sample_ids, stream)
    key = ((key ^ 0x80000000) - 0x80000000).to(torch.int32).view(-1, 1, 1, 1)  # same bits
    batch, width, device = key.shape[0], 2 * _NORMAL_BLOCK, key.device
    out = torch.empty(batch, count, dtype=torch.float32, device=device)
    blocks, tail = divmod(count, width)
    step = _CPU_NORMAL_CHUNK // max(1, batch * width) if device.type == "cpu" else blocks
    step = max(1, min(step, blocks))
    buffers = torch.empty(2, batch, step, 2, _NORMAL_BLOCK, dtype=torch.int32, device=device)
    for first in range(0, blocks, step):
        stop = min(blocks, first + step)
        x, scratch = buffers[:, :, : stop - first]
        dest = out[:, first * width : stop * width].view(x.shape)
        _normal_blocks(key, first, stop, dest, x, scratch)
    if tail:  # a partial last block: draw it whole, keep its head
        x, scratch = buffers[:, :, :1]
        dest = torch.empty(x.shape, dtype=torch.float32, device=device)
        _normal_blocks(key, blocks, blocks + 1, dest, x, scratch)
        out[:, blocks * width :] = dest.view(batch, width)[:, :tail]
    return out.reshape(sample_ids.shape[0], *shape).to(dtype)


@_eager
def integers(seed: int, sample_ids: torch.Tensor, stream: int, low: int, high: int) -> torch.Tensor:
    """[B] integers uniform in [low, high] (inclusive), one per sample id."""
    bits = random_bits(seed, sample_ids, stream, 1)[:, 0]
    return low + bits % (high - low + 1)
