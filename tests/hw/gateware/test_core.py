# amaranth: UnusedElaboratable=no
"""LayerCore and its output collector against the golden model, under random stalls."""

import dataclasses
import random

import numpy as np
import pytest
from amaranth.hdl import Fragment

from fireflys_hw.gateware.core import LayerCore, OutputCollector, ReadoutCollector, core_cycles
from fireflys_hw.compiler import LayerStats, predicted_cycles, recurrence_cycles
from fireflys_hw.compiler.workload import _pairs_of
from fireflys_hw.compiler.reference import bit_planes, pixel_beats
from fireflys_sw.artifact import LayerKind, PoolLayer
from fireflys_sw.golden import layer_forward, max_pool
from fireflys_sw.spec import NeuronKind
from layers_helpers import random_layer, random_spikes
from streams_helpers import expect_idle, get, put, run_sim
from test_padding import run_stream


@pytest.mark.parametrize("seed,co,p_co,T", [
    (0, 8, 3, 4), (1, 5, 5, 2), (2, 6, 2, 1), (3, 7, 4, 2), (4, 4, 1, 4)])
def test_collector(seed, co, p_co, T):
    rng = np.random.default_rng(seed)
    n_pix = 5
    spikes = rng.integers(0, 2, (n_pix, T, co))
    groups = -(-co // p_co)
    padded = np.zeros((n_pix, T, groups * p_co), int)
    padded[..., :co] = spikes
    # lanes past co carry garbage, which must be dropped
    padded[..., co:] = rng.integers(0, 2, padded[..., co:].shape)

    def word(bits):
        return sum(int(b) << i for i, b in enumerate(bits))

    items = [{"spikes": word(padded[p, :, g * p_co:(g + 1) * p_co].reshape(-1)), "group": g}
             for p in range(n_pix) for g in range(groups)]
    want = [word(spikes[p].reshape(-1)) for p in range(n_pix)]
    got = run_stream(OutputCollector(co, p_co, T), items, len(want), seed)
    assert got == want, f"seed {seed}"


@pytest.mark.parametrize("seed,classes,p_co,in_stall,out_stall", [
    (0, 10, 3, 0.0, 0.5), (1, 10, 10, 0.0, 0.3), (2, 7, 2, 0.3, 0.3), (3, 5, 4, 0.0, 0.0),
    (4, 12, 5, 0.2, 0.7)])
def test_readout_collector(seed, classes, p_co, in_stall, out_stall):
    """Pixels' score beats back to back into the pipelined argmax: every result carries its own
    pixel's scores, even while the next pixel's beats wait (a regression: the next pixel's
    scores used to overwrite the registers before the result left)."""
    rng = np.random.default_rng(seed)
    score_bits, n_pix = 6, 6
    dut = ReadoutCollector(classes, p_co, score_bits)
    G = dut.n_groups
    scores = rng.integers(-8, 8, (n_pix, G * p_co))     # narrow: ties happen
    items = [{"scores": [int(v) for v in scores[p, g * p_co:(g + 1) * p_co]], "group": g}
             for p in range(n_pix) for g in range(G)]
    want = [{"scores": [int(v) for v in scores[p, :classes]],
             "index": int(np.argmax(scores[p, :classes]))} for p in range(n_pix)]
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, items, in_stall, random.Random(seed))

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, n_pix, out_stall, random.Random(seed + 1)))
        await expect_idle(ctx, dut.output, 20)

    run_sim(dut, producer, consumer)
    assert got == want


# --- LayerCore against the golden model ---------------------------------------------------------

def frame_beats(x, input_bits):
    """``x[t, c, h, w]`` as the core's input beats (bit planes for a multi-bit input)."""
    return pixel_beats(bit_planes(x, input_bits) if input_bits > 1 else x)


def golden_beats(layer, pool, x, input_bits):
    """What the core must emit for the frame ``x[t, c, h, w]``: spike beats, or the readout's
    ``{"scores", "index"}``."""
    input_max = (1 << input_bits) - 1
    y = layer_forward(layer, x[None].astype(np.int64), input_max)[0]
    if layer.is_readout:
        scores = y.sum(axis=0)          # (Co, Ho, Wo)
        return [{"scores": [int(v) for v in scores[:, i, j]],
                 "index": int(np.argmax(scores[:, i, j]))}
                for i in range(scores.shape[1]) for j in range(scores.shape[2])]
    if pool is not None:
        y = max_pool(y, pool.kernel)
    return pixel_beats(y)


def run_core(core, frames, seed, stall_prob=0.3):
    rng = random.Random(seed)
    # a static input (direct encoding) takes one beat per pixel: the frame's t = 0
    items = [{"spikes": b} for x in frames
             for b in frame_beats(x[:1] if core.static_input else x, core.input_bits)]
    want = [b for x in frames
            for b in golden_beats(core.layer, core.pool_layer, x, core.input_bits)]
    got = []

    async def producer(ctx):
        await put(ctx, core.input, items, stall_prob, rng)

    async def consumer(ctx):
        out = await get(ctx, core.output, len(want), stall_prob, rng)
        got.extend(out if core.layer.is_readout else [b["spikes"] for b in out])
        await expect_idle(ctx, core.output, 30)

    run_sim(core, producer, consumer)
    return got, want


def check_core(seed, layer, *, p_co, p_ci, T, input_bits=1, pool_kernel=None, n_frames=2,
               stall_prob=0.3, static_input=False, window_depth=16):
    rng = np.random.default_rng(seed)
    pool = None
    if pool_kernel:
        co, h, w = layer.out_shape
        pool = PoolLayer(layer.out_shape, (co, h // pool_kernel, w // pool_kernel), pool_kernel)
    core = LayerCore(layer, p_co=p_co, p_ci=p_ci, T=T, input_bits=input_bits, pool=pool,
                     static_input=static_input, window_depth=window_depth)
    core.pool_layer = pool
    if static_input:
        # direct encoding: the same (multi-bit) input at every step
        frames = [random_spikes(rng, layer, T, input_bits=input_bits) for _ in range(n_frames)]
    else:
        frames = [random_spikes(rng, layer, T, input_bits=input_bits if input_bits > 1
                                else None) for _ in range(n_frames)]
    got, want = run_core(core, frames, seed, stall_prob)
    assert len(got) == len(want), f"seed {seed}"
    for i, (g, e) in enumerate(zip(got, want)):
        assert g == e, f"seed {seed}: beat {i} is {g}, want {e}"


@pytest.mark.parametrize("seed,neuron,k,pad,hw,ci,co,p_co,p_ci,T,pool", [
    (0, "lif", 3, 1, (4, 4), 3, 5, 2, 2, 2, None),     # conv + LIF, 3 groups, ragged P_Co
    (1, "if", 3, 0, (5, 4), 4, 4, 4, 4, 2, None),      # conv + IF, valid, one group
    (2, "lif", 3, 1, (4, 5), 2, 6, 3, 1, 2, 2),        # conv + max-pool (ragged width)
    (3, "if", 1, 0, (3, 3), 5, 3, 1, 8, 4, None),      # 1x1 conv, P_Ci > Ci
    (4, "lif", 3, 1, (3, 3), 2, 2, 2, 2, 1, 3),        # T = 1, pool to 1x1
])
def test_core_conv(seed, neuron, k, pad, hw, ci, co, p_co, p_ci, T, pool):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=ci, co=co, k=k, hw=hw,
                         neuron=NeuronKind(neuron), padding=pad)
    check_core(seed, layer, p_co=p_co, p_ci=p_ci, T=T, pool_kernel=pool)


def test_core_first_layer_bit_planes():
    rng = np.random.default_rng(20)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=1, co=3, k=3, hw=(4, 4),
                         neuron=NeuronKind.LIF, padding=1)
    check_core(20, layer, p_co=3, p_ci=4, T=2, input_bits=3)


@pytest.mark.parametrize("seed", range(6))
def test_core_static_input(seed):
    """A direct-encoded first layer (one beat per pixel, the current computed once and applied
    at every step) equals the golden model, under random stalls, for random small layers
    (conv or fc, LIF / IF / readout, multi-bit input, ragged P_Co, lane FIFOs or none)."""
    check_static_core(60 + seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 240))
def test_core_static_input_sweep(seed):
    check_static_core(seed)


def check_static_core(seed):
    rng = np.random.default_rng(seed)
    kind = LayerKind.FC if seed % 6 >= 4 else LayerKind.CONV
    neuron = NeuronKind(["lif", "if", "none"][seed % 3])
    layer = random_layer(rng, kind=kind, ci=int(rng.integers(1, 4)), co=int(rng.integers(2, 7)),
                         hw=None if kind is LayerKind.FC else (4, 4), neuron=neuron)
    co = layer.out_channels
    pool = 2 if (kind is LayerKind.CONV and not layer.is_readout
                 and min(layer.out_shape[1:]) >= 2 and seed % 2 == 0) else None
    check_core(seed, layer, p_co=int(rng.integers(1, co + 1)),
               p_ci=int(rng.choice([2, 4, 8])), T=int(rng.choice([1, 2, 3, 4])),
               input_bits=int(rng.choice([1, 2, 3])), pool_kernel=pool, static_input=True,
               window_depth=int(rng.choice([0, 2, 16])))


@pytest.mark.parametrize("seed,co,p_co,hw,ci,T", [
    (30, 5, 2, (2, 3), 3, 2),      # fc readout over a non-square map, 3 groups
    (31, 4, 4, (1, 1), 4, 4),      # fc over a 1x1 map
])
def test_core_fc_readout(seed, co, p_co, hw, ci, T):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, kind=LayerKind.FC, ci=ci, co=co, hw=hw, neuron=NeuronKind.NONE)
    check_core(seed, layer, p_co=p_co, p_ci=2, T=T)


def test_core_fc_spiking():
    rng = np.random.default_rng(40)
    layer = random_layer(rng, kind=LayerKind.FC, ci=3, co=6, hw=(2, 2), neuron=NeuronKind.IF)
    check_core(40, layer, p_co=4, p_ci=4, T=2)


def test_core_params():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=2, co=3, k=3, hw=(4, 4),
                         neuron=NeuronKind.LIF, padding=1)
    bad = PoolLayer((3, 5, 5), (3, 2, 2), 2)
    with pytest.raises(ValueError, match=r"^pool.in_shape must be the layer's out_shape "
                                         r"\[3, 4, 4\], not \[3, 5, 5\]$"):
        LayerCore(layer, p_co=1, p_ci=1, T=1, pool=bad)
    with pytest.raises(ValueError, match=r"^p_co must be at most the layer's output channels "
                                         r"\(3\), not 4$"):
        LayerCore(layer, p_co=4, p_ci=1, T=1)
    core = LayerCore(layer, p_co=2, p_ci=2, T=4)
    Fragment.get(core, None)     # elaborated, as a core always is in use
    # 6x6 padded map, 3x3: span 15 pixels + 3 of holding area, 4 steps, 2 channels
    assert core.buffer_bits == {"orchestrator": 18 * 4 * 2, "collector": 2 * 4 * 2 * 2,
                                "pool": 0}
    assert core.beats_per_frame == 16 and core.beat_bits == 8


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 130))
def test_core_sweep(seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, kind=LayerKind.CONV if seed % 4 else LayerKind.FC)
    co = layer.out_channels
    p_co = int(rng.integers(1, co + 1))
    p_ci = int(rng.choice([1, 2, 4, 8]))
    T = int(rng.choice([1, 2, 4]))
    pool = None
    if not layer.is_readout and layer.out_shape[1] >= 2 and layer.out_shape[2] >= 2 \
            and rng.random() < 0.5:
        pool = 2
    check_core(seed, layer, p_co=p_co, p_ci=p_ci, T=T, pool_kernel=pool, n_frames=3)


def test_core_cycles_formula():
    """Frames back to back, no stalls: the simulated cycles of the second frame are within
    15 % of core_cycles + the window fill (the planner's formula)."""
    rng = np.random.default_rng(50)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=4, co=6, k=3, hw=(4, 4),
                         neuron=NeuronKind.LIF, padding=1, sparsity=0.5)
    T, p_co, p_ci = 2, 3, 4
    core = LayerCore(layer, p_co=p_co, p_ci=p_ci, T=T)
    frames = [random_spikes(rng, layer, T, density=0.3) for _ in range(2)]
    [interval] = steady_frame_cycles(core, frames)
    fill = (3 - 1) * (4 + 2)
    model = core_cycles(layer, frames[1], p_co, p_ci) + fill
    assert abs(interval / model - 1) < 0.15, (interval, model)


def skewed_layer(rng, ci=16, co=8, hw=(4, 4)):
    """A 3x3 conv whose output channels are each busy at a different kernel position (channel
    ``c`` has all its input channels at position ``c``, two elsewhere): in every step each
    lane has its own heavy chunk, where the others are light."""
    layer = random_layer(rng, kind=LayerKind.CONV, ci=ci, co=co, k=3, hw=hw,
                         neuron=NeuronKind.LIF, padding=1, sparsity=0.0)
    mask = np.zeros(layer.weight.shape, bool)
    for c in range(co):
        mask[c, :2] = True
        mask[c, :, c % 9 // 3, c % 3] = True
    weight = np.where(mask, np.where(layer.weight == 0, 1, layer.weight), 0)
    return dataclasses.replace(layer, weight=weight)


def steady_frame_cycles(core, frames):
    """Cycles between the last output beats of the frames (back to back, no stalls)."""
    items = [{"spikes": b} for x in frames for b in pixel_beats(x)]
    co, oh, ow = core.layer.out_shape
    per_frame = oh * ow
    ends = []

    async def producer(ctx):
        await put(ctx, core.input, items, 0.0)

    async def consumer(ctx):
        ctx.set(core.output.ready, 1)
        n = cycle = 0
        while len(ends) < len(frames):
            _, _, valid = await ctx.tick().sample(core.output.valid)
            cycle += 1
            n += valid
            if valid and n % per_frame == 0:
                ends.append(cycle)

    run_sim(core, producer, consumer)
    return [b - a for a, b in zip(ends, ends[1:])]


def test_core_cycles_skewed_lanes():
    """With each lane busy on different chunks, lanes joined at the input pay every lane's
    excess in turn; the lane FIFOs let them drift apart, which brings the simulated frame
    within 10 % of the planner's predicted_cycles (``max(n_chunks, busiest lane)`` per window)."""
    rng = np.random.default_rng(70)
    layer = skewed_layer(rng)
    T, p_co, p_ci = 2, 8, 16
    frames = [random_spikes(rng, layer, T, density=0.5) for _ in range(3)]
    pairs = _pairs_of(layer, np.stack(frames[1:]), 1)
    stats = LayerStats(0, 0.5, float(np.count_nonzero(layer.weight)) / layer.weight.size,
                       float(pairs.mean()), frames=2, pairs=pairs)
    sim, predicted = {}, {}
    for window_depth in (0, 16):
        core = LayerCore(layer, p_co=p_co, p_ci=p_ci, T=T, window_depth=window_depth)
        sim[window_depth] = np.mean(steady_frame_cycles(core, frames))
        predicted[window_depth] = predicted_cycles(layer, stats, p_co, p_ci, T,
                                                   window_depth=window_depth)
    assert abs(sim[16] / predicted[16] - 1) < 0.10, (sim, predicted)
    # the skew does bite when the lanes take each beat together (less than it would: each
    # detector's R register holds one beat of slack)
    assert sim[0] > 1.05 * predicted[0] and sim[0] > 1.15 * sim[16], (sim, predicted)


def test_recurrence_predicts_simulated_core():
    """The planner's recurrence (the synapse array's cycle recurrence on the frames plus the
    window fill) lands within 3 % of a core's simulated steady frame interval on skewed
    lanes (an 8x8 map: on a tiny one the fixed fill and pipeline terms weigh more)."""
    rng = np.random.default_rng(71)
    layer = skewed_layer(rng, hw=(8, 8))
    T, p_co, p_ci = 2, 8, 16
    frames = [random_spikes(rng, layer, T, density=0.5) for _ in range(4)]
    core = LayerCore(layer, p_co=p_co, p_ci=p_ci, T=T)
    sim = np.mean(steady_frame_cycles(core, frames))
    x = np.stack(frames[1:])
    stats = LayerStats(0, 0.5, float(np.count_nonzero(layer.weight)) / layer.weight.size,
                       float(_pairs_of(layer, x, 1).mean()), frames=3, inputs=x)
    predicted = recurrence_cycles(layer, stats, p_co, p_ci, T)
    assert abs(predicted / sim - 1) < 0.03, (sim, predicted)
