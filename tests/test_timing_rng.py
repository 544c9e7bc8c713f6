"""The speed rewrites of ``diffmavil.rng`` (in-place mixer, wrapping int64 and int32
products, CPU chunking, both Box-Muller outputs) draw exactly the numbers of the reference
formulation, and ``normal`` draws standard normals."""

from __future__ import annotations

import math

import pytest
import torch

from diffmavil import rng


def _reference_bits(seed: int, ids: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    key = rng._key(seed, ids, stream)
    positions = torch.arange(count, dtype=torch.int64)
    return rng._fmix32(rng._fmix32(key[:, None] ^ positions[None, :]) ^ key[:, None])


def test_wrapping_mixer_equals_the_overflow_free_one():
    edges = torch.tensor([0, 1, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 1])
    randoms = torch.randint(0, 2**32, (100_000,), generator=torch.Generator().manual_seed(0))
    for x in (edges, randoms):
        assert torch.equal(rng._fmix32_(x.clone()), rng._fmix32(x))


def test_chunked_bits_equal_the_flat_reference():
    ids = torch.tensor([0, 7, 2**40 + 3])
    for count in (1, rng._CPU_CHUNK - 1, rng._CPU_CHUNK, 3 * rng._CPU_CHUNK + 5):
        assert torch.equal(rng.random_bits(9, ids, 4, count), _reference_bits(9, ids, 4, count))


def _reference_hash(key: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """[B, n] murmur hashes (in [0, 2**32)) of int64 counters [n] for keys [B]."""
    return rng._fmix32(rng._fmix32(key[:, None] ^ counters[None, :]) ^ key[:, None])


def _reference_normal(seed: int, ids: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """The documented ``normal`` in float64 from the int64 reference mixer: pair j takes
    its radius from counter j and its angle from counter j + 2**31; per layout block of
    2 * _NORMAL_BLOCK values, the block's r cos comes first and its r sin second."""
    block = rng._NORMAL_BLOCK
    pairs = -(-count // (2 * block)) * block
    key = rng._key(seed, ids, stream)
    j = torch.arange(pairs, dtype=torch.int64)
    radius_bits = _reference_hash(key, j)
    angle_bits = _reference_hash(key, j + 2**31)
    folded = torch.where(radius_bits < 2**31, radius_bits, 2**32 - 1 - radius_bits)
    radius = torch.sqrt(-2.0 * torch.log((folded.double() + 0.5) / 2.0**31))
    signed = torch.where(angle_bits < 2**31, angle_bits, angle_bits - 2**32)
    angle = signed.double() * (2.0 * math.pi / 2.0**32)
    cos = (radius * torch.cos(angle)).view(-1, pairs // block, 1, block)
    sin = (radius * torch.sin(angle)).view(-1, pairs // block, 1, block)
    return torch.cat((cos, sin), dim=2).reshape(len(ids), -1)[:, :count]


def test_int32_mixer_equals_the_int64_one():
    edges = torch.tensor([0, 1, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 1] * 3)
    randoms = torch.randint(0, 2**32, (100_003,), generator=torch.Generator().manual_seed(1))
    for x in (edges, randoms):  # odd lengths: the kernels' scalar tails too
        x32 = ((x ^ 2**31) - 2**31).to(torch.int32)
        mixed = rng._fmix32_i32_(x32, torch.empty_like(x32), rng._NORMAL_CPU_SCALARS)
        assert torch.equal(mixed.to(torch.int64) & 0xFFFFFFFF, rng._fmix32(x))
        x32 = ((x ^ 2**31) - 2**31).to(torch.int32)  # and with Python scalars (cuda, meta)
        mixed = rng._fmix32_i32_(x32, torch.empty_like(x32))
        assert torch.equal(mixed.to(torch.int64) & 0xFFFFFFFF, rng._fmix32(x))


@pytest.mark.parametrize("shape", [(1,), (3,), (2 * rng._NORMAL_BLOCK,), (5, 1001), (3, 2100)])
def test_normal_equals_box_muller_of_the_reference_bits(shape):
    ids = torch.tensor([1, 5, 2**40 + 3])
    expected = _reference_normal(2, ids, 6, math.prod(shape))
    got = rng.normal(2, ids, 6, shape)
    assert got.shape == (3, *shape) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected.reshape(3, *shape), rtol=1e-5, atol=1e-5)


def test_normal_is_standard_normal():
    z = rng.normal(0, torch.arange(4), rng.STREAM_VIDEO_NOISE, (1_000_003,)).double()
    flat = z.flatten()
    n = flat.numel()
    assert abs(flat.mean().item()) < 4 / math.sqrt(n)
    assert abs(flat.var().item() - 1) < 4 * math.sqrt(2 / n)
    assert abs((flat**3).mean().item()) < 4 * math.sqrt(15 / n)  # skewness
    assert abs((flat**4).mean().item() - 3) < 4 * math.sqrt(96 / n)  # kurtosis
    # Kolmogorov-Smirnov distance to the normal cdf (1% critical value 1.63 / sqrt(n))
    cdf = torch.special.ndtr(flat.sort().values)
    grid = torch.arange(n + 1, dtype=torch.float64) / n
    distance = torch.maximum(grid[1:] - cdf, cdf - grid[:-1]).max().item()
    assert distance < 1.63 / math.sqrt(n)
    # tails: P(|z| > 4) = 6.33e-5, and no value past the radius bound sqrt(64 ln 2)
    tail = (flat.abs() > 4).double().mean().item()
    assert abs(tail - 6.334e-5) < 4 * math.sqrt(6.334e-5 / n)
    assert flat.abs().max().item() <= math.sqrt(64 * math.log(2)) + 1e-4
    # both outputs of a Box-Muller pair (cos half and sin half of a block) and
    # neighbours are uncorrelated, also in their squares (they are independent normals)
    block = rng._NORMAL_BLOCK
    pairs = z[:, : (z.shape[1] // (2 * block)) * 2 * block].reshape(-1, 2, block)
    cos, sin = pairs[:, 0].flatten(), pairs[:, 1].flatten()
    bound = 5 / math.sqrt(cos.numel())
    assert abs(torch.corrcoef(torch.stack((cos, sin)))[0, 1].item()) < bound
    assert abs(torch.corrcoef(torch.stack((cos**2, sin**2)))[0, 1].item()) < bound
    assert abs(torch.corrcoef(torch.stack((flat[:-1], flat[1:])))[0, 1].item()) < bound
    # rows (sample ids) are uncorrelated
    assert abs(torch.corrcoef(z)[0, 1:].abs().max().item()) < 5 / math.sqrt(z.shape[1])


def test_normal_is_independent_of_batch_chunking_and_count(monkeypatch):
    ids = torch.tensor([3, 11, 2**33 + 1])
    shape = (7, 3 * rng._NORMAL_BLOCK + 5)  # several blocks, an odd count
    batch = rng.normal(4, ids, 5, shape)
    for i, sample in enumerate(ids):  # alone, or inside another batch
        assert torch.equal(rng.normal(4, sample[None], 5, shape)[0], batch[i])
    assert torch.equal(rng.normal(4, torch.tensor([9, 11]), 5, shape)[1], batch[1])
    count = math.prod(shape)  # a value depends on its position, not on the count
    longer = rng.normal(4, ids, 5, (count + 2 * rng._NORMAL_BLOCK + 1,))
    assert torch.equal(longer[:, :count], batch.reshape(3, count))
    for chunk in (1, 2 * rng._NORMAL_BLOCK, 5000, 3 * 4 * rng._NORMAL_BLOCK, 1 << 30):
        monkeypatch.setattr(rng, "_CPU_NORMAL_CHUNK", chunk)
        assert torch.equal(rng.normal(4, ids, 5, shape), batch)


def test_normal_on_meta_and_in_other_dtypes():
    ids = torch.arange(3)
    meta = rng.normal(0, ids.to("meta"), 6, (4, 1030))
    assert meta.device.type == "meta" and meta.shape == (3, 4, 1030)
    half = rng.normal(0, ids, 6, (4, 1030), dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert torch.equal(half, rng.normal(0, ids, 6, (4, 1030)).to(torch.bfloat16))
    assert rng.normal(0, ids, 6, (0,)).shape == (3, 0)
    assert rng.normal(0, ids[:0], 6, (5,)).shape == (0, 5)
