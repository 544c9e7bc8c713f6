"""The speed rewrite of ``diffmavil.rng`` (in-place mixer, wrapping int64 products, CPU
chunking) draws exactly the numbers of the reference formulation."""

from __future__ import annotations

import math

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


def test_normal_equals_box_muller_of_the_reference_bits():
    ids = torch.tensor([1, 5])
    shape = (3, rng._CPU_CHUNK // 2 + 7)  # spans several chunks
    count = math.prod(shape)
    bits = _reference_bits(2, ids, 6, 2 * count)
    u = ((bits.to(torch.float64) + 0.5) / 2.0**32).to(torch.float32)
    expected = torch.sqrt(-2.0 * torch.log(u[:, :count])) * torch.cos(
        (2.0 * math.pi) * u[:, count:]
    )
    torch.testing.assert_close(
        rng.normal(2, ids, 6, shape), expected.reshape(2, *shape), rtol=0, atol=1e-6
    )
