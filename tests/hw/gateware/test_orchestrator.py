# amaranth: UnusedElaboratable=no
"""DataflowOrchestrator: the window stream of a spike map (one beat per pixel, all steps; chunks
that are empty at every step dropped) equals the numpy im2col of :mod:`fireflys_hw.compiler.reference`,
beat for beat, under random gaps and stalls, frames back to back."""

import random

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring

from fireflys_hw.gateware.orchestrator import DataflowOrchestrator
from fireflys_hw.gateware.padding import Padding
from fireflys_hw.compiler.reference import bit_planes, im2col_windows, pixel_beats, window_beats
from fireflys_hw.compiler.weights import window_kernel
from fireflys_sw.artifact import LayerKind
from layers_helpers import random_layer, random_spikes
from streams_helpers import expect_idle, get, put, run_sim, valid_cycles


def run_orchestrator(dut, frames, n_out, seed, gap_prob=0.3, stall_prob=0.3):
    rng = random.Random(seed)
    items = [{"spikes": b} for x in frames for b in pixel_beats(x)]
    out = []

    async def producer(ctx):
        await put(ctx, dut.input, items, gap_prob, rng)

    async def consumer(ctx):
        out.extend(await get(ctx, dut.output, n_out, stall_prob, rng))
        await expect_idle(ctx, dut.output, 30)

    run_sim(dut, producer, consumer)
    return out


def random_case(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 3]))
    h, w = (int(v) for v in rng.integers(k, 7, 2))
    c = int(rng.integers(1, 9))
    T = int(rng.choice([1, 2, 4]))
    p_ci = int(rng.choice([1, 2, 4, 8]))
    n_groups = int(rng.integers(1, 4))
    return rng, c, h, w, T, (k, k), p_ci, n_groups


def check(seed, c, h, w, T, kernel, p_ci, n_groups, rng, n_frames=2, depth=None,
          gap_prob=0.3, stall_prob=0.3, drop_empty=True):
    # sparse enough that whole chunks are empty at every step
    density = rng.choice([0.1, 0.3, 0.5])
    frames = [(rng.random((T, c, h, w)) < density).astype(int) for _ in range(n_frames)]
    dut = DataflowOrchestrator(c, h, w, T, kernel, p_ci, n_groups, depth=depth,
                               drop_empty=drop_empty)
    want = [b for x in frames for b in window_beats(x, kernel, p_ci, n_groups, drop_empty)]
    got = run_orchestrator(dut, frames, len(want), seed, gap_prob, stall_prob)
    assert len(got) == len(want), f"seed {seed}"
    for i, (g, e) in enumerate(zip(got, want)):
        assert g == e, f"seed {seed}: beat {i} is {g}, want {e}"


@pytest.mark.parametrize("seed", range(8))
def test_orchestrator_random(seed):
    rng, c, h, w, T, kernel, p_ci, n_groups = random_case(seed)
    check(seed, c, h, w, T, kernel, p_ci, n_groups, rng, drop_empty=seed % 4 != 3)


@pytest.mark.parametrize("seed,c,h,w,T,kernel,p_ci,n_groups,depth", [
    (100, 3, 4, 5, 2, (4, 5), 2, 2, None),     # FC: the window is the whole (non-square) map
    (101, 5, 3, 3, 1, (3, 3), 4, 1, None),     # FC on a square map, T = 1
    (102, 4, 5, 4, 2, 1, 4, 3, None),          # 1x1 conv
    (103, 2, 5, 6, 2, 3, 1, 1, 15),            # smallest buffer: depth = span, upstream waits
    (104, 8, 8, 8, 4, 3, 8, 1, None),          # the largest default geometry
    (105, 3, 6, 6, 2, (2, 3), 2, 2, None),     # rectangular kernel
])
def test_orchestrator_shapes(seed, c, h, w, T, kernel, p_ci, n_groups, depth):
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    check(seed, c, h, w, T, kernel, p_ci, n_groups, np.random.default_rng(seed), depth=depth)


def test_orchestrator_full_rate():
    """Without gaps or stalls (and without dropping) the output runs at one beat per cycle
    inside a frame, so a frame costs its beats plus the fill (the input of the first
    window)."""
    c, h, w, T, k, p_ci, groups = 4, 6, 6, 2, 3, 2, 2
    dut = DataflowOrchestrator(c, h, w, T, k, p_ci, groups, drop_empty=False)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 2, (T, c, h, w)) for _ in range(2)]
    items = [{"spikes": b} for x in frames for b in pixel_beats(x)]
    # counted from 1: the cycle after the one in which a beat is valid
    stamps = [c + 1 for c in valid_cycles(dut, items, 2 * dut.beats_per_frame)]
    n = dut.beats_per_frame
    # the first window waits for span pixels, then 2 cycles (the fill level register, the RAM
    # read); no bubble inside a frame
    assert stamps[0] == dut.span + 2
    assert stamps[n - 1] - stamps[0] == n - 1
    # the second frame's first window waits only for the part the holding area could not take
    assert stamps[n] - stamps[n - 1] - 1 <= (dut.span - dut.kernel_w) + 2
    assert stamps[2 * n - 1] - stamps[n] == n - 1


def test_orchestrator_drop_walk():
    """With dropping, the walk still reads one chunk per cycle: the non-empty chunks (and each
    window's last) leave in the cycles of their place in the walk, no cycle is lost to a
    dropped chunk and none is saved (the cycle model's orchestrator walk)."""
    c, h, w, T, k, p_ci, groups = 6, 5, 5, 2, 3, 2, 2
    dut = DataflowOrchestrator(c, h, w, T, k, p_ci, groups)
    rng = np.random.default_rng(1)
    x = (rng.random((T, c, h, w)) < 0.15).astype(int)
    full = window_beats(x, (k, k), p_ci, groups, drop_empty=False)
    walk = [i for i, b in enumerate(full) if b["spikes"] or b["last_chunk"]]
    items = [{"spikes": b} for b in pixel_beats(x)]
    stamps, got = [], []

    async def producer(ctx):
        await put(ctx, dut.input, items, 0.0)

    async def consumer(ctx):
        ctx.set(dut.output.ready, 1)
        cycle = 0
        while len(stamps) < len(walk):
            _, _, valid, payload = await ctx.tick().sample(dut.output.valid, dut.output.payload)
            cycle += 1
            if valid:
                stamps.append(cycle)
                got.append(int(payload.chunk))

    run_sim(dut, producer, consumer)
    assert got == [full[i]["chunk"] for i in walk]
    assert [s - stamps[0] for s in stamps] == [i - walk[0] for i in walk]
    assert len(walk) < len(full)


def test_orchestrator_params():
    with pytest.raises(ValueError, match=r"^kernel 4x4 does not fit the 3x5 map$"):
        DataflowOrchestrator(1, 3, 5, 1, 4, 1)
    with pytest.raises(ValueError, match=r"^depth must be at least the window span 15 pixels, "
                                         r"not 14$"):
        DataflowOrchestrator(1, 5, 6, 1, 3, 1, depth=14)
    with pytest.raises(ValueError, match=r"^p_ci must be at least 1, not 0$"):
        DataflowOrchestrator(1, 5, 6, 1, 3, 0)
    with pytest.raises(ValueError, match=r"^kernel must be an int or a pair \(kernel_h, "
                                         r"kernel_w\), not \(1, 2, 3\)$"):
        DataflowOrchestrator(1, 5, 6, 1, (1, 2, 3), 1)
    dut = DataflowOrchestrator(8, 30, 30, 4, 3, 4, 2)
    assert dut.span == 63 and dut.depth == 66 and dut.buffer_bits == 66 * 4 * 8
    assert dut.n_chunks == 18 and dut.beats_per_frame == 28 * 28 * 2 * 18


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 160))
def test_orchestrator_sweep(seed):
    rng, c, h, w, T, kernel, p_ci, n_groups = random_case(seed)
    check(seed, c, h, w, T, kernel, p_ci, n_groups, rng, n_frames=3)


class Front(Elaboratable):
    """Padding -> DataflowOrchestrator for one artifact layer, as a layer core builds them."""

    def __init__(self, layer, p_co, p_ci, T, input_bits):
        ci, h, w = layer.in_shape
        p = layer.padding
        self.pad = Padding(ci * input_bits * T, h, w, 1, p)
        self.orch = DataflowOrchestrator(ci * input_bits, h + 2 * p, w + 2 * p, T,
                                         window_kernel(layer), p_ci,
                                         -(-layer.out_channels // p_co))
        self.input, self.output = self.pad.input, self.orch.output

    def elaborate(self, platform):
        m = Module()
        m.submodules.pad, m.submodules.orch = self.pad, self.orch
        wiring.connect(m, self.pad.output, self.orch.input)
        return m


@pytest.mark.parametrize("seed,kind,k,pad,input_bits", [
    (200, LayerKind.CONV, 3, 1, 1), (201, LayerKind.CONV, 3, 1, 3), (202, LayerKind.FC, 0, 0, 1),
    (203, LayerKind.CONV, 1, 0, 2)])
def test_front_matches_im2col_windows(seed, kind, k, pad, input_bits):
    """Padding + orchestrator of an artifact layer == reference.im2col_windows (bit planes for
    the first layer, the whole map as the fc window)."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, kind=kind, k=k or None, padding=pad, ci=3, co=5)
    T, p_co, p_ci = 2, 2, 2
    dut = Front(layer, p_co, p_ci, T, input_bits)
    frames = [random_spikes(rng, layer, T, input_bits=input_bits if input_bits > 1 else None)
              for _ in range(2)]
    items = [{"spikes": b} for x in frames
             for b in pixel_beats(bit_planes(x, input_bits) if input_bits > 1 else x)]
    want = [b for x in frames for b in im2col_windows(x, layer, p_ci, p_co,
                                                        input_bits if input_bits > 1 else None)]
    rng_sim = random.Random(seed)
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, items, 0.3, rng_sim)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), 0.3, rng_sim))

    run_sim(dut, producer, consumer)
    assert got == want, f"seed {seed}"
