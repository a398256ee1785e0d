# amaranth: UnusedElaboratable=no
"""Padding: a spike map in, the same map with zero rings out, under random stalls."""

import random

import numpy as np
import pytest

from fireflys_hw.gateware.padding import Padding
from streams_helpers import expect_idle, get, put, run_sim


def run_stream(dut, items, n_out, seed, stall_prob=0.3, idle_after=20):
    """Feed ``items`` to ``dut.input`` and collect ``n_out`` beats of ``dut.output``, both
    with random gaps/stalls; then check that nothing more comes out for ``idle_after``
    cycles."""
    rng = random.Random(seed)
    out = []

    async def producer(ctx):
        beats = [b if isinstance(b, dict) else {"spikes": int(b)} for b in items]
        await put(ctx, dut.input, beats, stall_prob, rng)

    async def consumer(ctx):
        out.extend(b["spikes"] for b in await get(ctx, dut.output, n_out, stall_prob, rng))
        if idle_after:
            await expect_idle(ctx, dut.output, idle_after)

    run_sim(dut, producer, consumer)
    return out


def to_beats(x):
    """``x[t, c, h, w]`` (0/1) -> spike-stream beats (ints), raster order, ``t`` innermost."""
    T, c, h, w = x.shape
    weights = [1 << i for i in range(c)]
    return [sum(int(b) * wt for b, wt in zip(x[s, :, i, j], weights))
            for i in range(h) for j in range(w) for s in range(T)]


# --- tests --------------------------------------------------------------------------------------

CASES = [(seed, c, h, w, T, p) for seed, (c, h, w, T, p) in enumerate(
    [(1, 1, 1, 1, 1), (3, 4, 5, 2, 1), (8, 8, 8, 4, 1), (2, 3, 7, 1, 0), (5, 6, 3, 2, 2),
     (4, 2, 2, 4, 1), (3, 1, 4, 3, 3), (2, 5, 1, 1, 2)])]


@pytest.mark.parametrize("seed,c,h,w,T,p", CASES)
def test_padding_matches_numpy(seed, c, h, w, T, p):
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 2, (T, c, h, w)) for _ in range(2)]  # two frames back to back
    items = [b for x in frames for b in to_beats(x)]
    want = [b for x in frames for b in to_beats(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))))]
    dut = Padding(c, h, w, T, p)
    # the next frame's top border follows on its own, so no "nothing more" check
    got = run_stream(dut, items, len(want), seed, idle_after=0)
    assert got == want, f"seed {seed}"


def test_padding_full_rate():
    """With no gaps and no stalls, one beat leaves per cycle (border beats included)."""
    c, h, w, T, p = 2, 3, 3, 2, 1
    dut = Padding(c, h, w, T, p)
    x = np.ones((T, c, h, w), int)
    n_out = (h + 2 * p) * (w + 2 * p) * T

    async def producer(ctx):
        await put(ctx, dut.input, [{"spikes": b} for b in to_beats(x)], 0.0)

    async def consumer(ctx):
        await get(ctx, dut.output, n_out, 0.0)

    assert run_sim(dut, producer, consumer) == n_out


def test_padding_params():
    with pytest.raises(ValueError, match=r"^padding must be at least 0, not -1$"):
        Padding(1, 2, 2, 1, -1)
    with pytest.raises(TypeError, match=r"^channels must be an integer, not 1.5$"):
        Padding(1.5, 2, 2, 1, 1)
    with pytest.raises(ValueError, match=r"^T must be at least 1, not 0$"):
        Padding(1, 2, 2, 0, 1)
