# amaranth: UnusedElaboratable=no
"""MaxPool: the OR-pooled spike stream equals golden.max_pool, under random gaps and stalls."""

import numpy as np
import pytest

from fireflys_hw.gateware.maxpool import MaxPool
from fireflys_sw.golden import max_pool
from streams_helpers import get, put, run_sim
from test_padding import run_stream, to_beats


def check(seed, c, h, w, T, k, n_frames=2, stall_prob=0.3):
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 2, (T, c, h, w)).astype(np.uint8) for _ in range(n_frames)]
    items = [b for x in frames for b in to_beats(x)]
    want = [b for x in frames for b in to_beats(max_pool(x, k))]
    dut = MaxPool(c, h, w, T, k)
    got = run_stream(dut, items, len(want), seed, stall_prob)
    assert got == want, f"seed {seed}"


@pytest.mark.parametrize("seed,c,h,w,T,k", [
    (0, 3, 4, 4, 2, 2),
    (1, 8, 8, 8, 4, 2),
    (2, 1, 5, 7, 1, 2),      # ragged edges, T = 1 (back-to-back updates of one word)
    (3, 4, 6, 6, 2, 3),
    (4, 2, 7, 5, 4, 3),      # ragged edges
    (5, 5, 3, 3, 1, 1),      # k = 1 is the identity
    (6, 2, 2, 2, 2, 2),      # one output pixel
])
def test_maxpool(seed, c, h, w, T, k):
    check(seed, c, h, w, T, k)


def test_maxpool_full_rate():
    """No gaps, no stalls: the input never waits, the last beat leaves one cycle after the
    last input beat."""
    c, h, w, T, k = 4, 6, 6, 1, 2
    dut = MaxPool(c, h, w, T, k)
    x = np.random.default_rng(10).integers(0, 2, (T, c, h, w)).astype(np.uint8)
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, [{"spikes": b} for b in to_beats(x)], 0.0)

    async def consumer(ctx):
        got.extend(b["spikes"] for b in await get(ctx, dut.output, (h // k) * (w // k) * T, 0.0))

    assert run_sim(dut, producer, consumer) == h * w * T + 1
    assert got == to_beats(max_pool(x, k))


def test_maxpool_params():
    with pytest.raises(ValueError, match=r"^kernel 3 is larger than the 2x4 map$"):
        MaxPool(1, 2, 4, 1, 3)
    with pytest.raises(ValueError, match=r"^kernel must be at least 1, not 0$"):
        MaxPool(1, 2, 4, 1, 0)
    assert MaxPool(16, 28, 28, 4, 2).buffer_bits == 14 * 4 * 16


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 140))
def test_maxpool_sweep(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(k, 9, 2))
    check(seed, int(rng.integers(1, 9)), h, w, int(rng.choice([1, 2, 4])), k, n_frames=3)
