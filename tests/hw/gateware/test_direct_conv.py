# amaranth: UnusedElaboratable=no
"""DirectConv (the direct-encoded first layer's dense datapath) and StepSerialiser against the
golden model, with random stalls; the cycle function against simulation."""

import numpy as np
import pytest

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.golden import layer_forward, synaptic_currents
from fireflys_sw.spec import NeuronKind
from fireflys_hw.gateware.direct_conv import DirectConv, StepSerialiser
from fireflys_hw.compiler.direct import (CURRENT_STAGES, csd, direct_conv_cycles,
                                         direct_conv_frame_cycles)

from streams_helpers import get, put, run_sim


def conv_layer(rng, ci, co, k, hw, neuron, padding, sparsity=0.5, input_bits=8, x=None):
    """A random conv layer; with sample inputs ``x[n, c, h, w]``, each channel's threshold is a
    random quantile of its currents on them, so that some neurons fire and some do not."""
    h, w = hw
    weight = rng.integers(-8, 8, (co, ci, k, k))
    weight[rng.random(weight.shape) < sparsity] = 0
    scale = (1 << input_bits) - 1
    bias = rng.integers(-4 * scale, 4 * scale + 1, co)
    threshold = rng.integers(1, max(2, scale * k * k * ci // 4), co)
    leak = int(rng.integers(0, 4)) if neuron is NeuronKind.LIF else 0
    out = (co, h + 2 * padding - k + 1, w + 2 * padding - k + 1)

    def make(th):
        return SynapticLayer(LayerKind.CONV, (ci, h, w), out, k, padding,
                             weight.astype(np.int64), bias.astype(np.int64),
                             th.astype(np.int64), neuron, leak)

    layer = make(threshold)
    if x is not None:
        cur = synaptic_currents(layer, x[:, None], scale)[:, 0]        # (n, Co, Ho, Wo)
        q = rng.uniform(0.3, 0.9, co)
        threshold = np.array([max(1, int(np.quantile(cur[:, c], q[c]))) for c in range(co)])
        layer = make(threshold)
    return layer


def pixel_beats(x, input_bits):
    """``x[n, c, h, w]`` -> per frame, per pixel (raster), the int of its bit planes."""
    n, c, h, w = x.shape
    beats = []
    for f in range(n):
        for i in range(h):
            for j in range(w):
                beats.append(sum(int(x[f, ch, i, j]) << (ch * input_bits) for ch in range(c)))
    return beats


def expected_beats(layer, x, T, input_bits):
    xs = np.broadcast_to(x[:, None], (x.shape[0], T) + x.shape[1:])
    s = layer_forward(layer, xs, (1 << input_bits) - 1)          # (n, T, Co, Ho, Wo)
    n, _, co, ho, wo = s.shape
    out = []
    for f in range(n):
        for i in range(ho):
            for j in range(wo):
                out.append(sum(int(s[f, t, ch, i, j]) << (t * co + ch)
                               for t in range(T) for ch in range(co)))
    return out, s


def test_csd():
    for v in range(-64, 65):
        digits = csd(v)
        assert sum(d << s for s, d in digits) == v
        shifts = [s for s, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))
    assert max(len(csd(v)) for v in range(-8, 8)) == 2


CASES = [
    # ci, co, k, hw, p_co, input_bits, neuron, T, padding, tree_levels
    (1, 8, 3, (5, 6), 8, 8, NeuronKind.LIF, 4, 1, 2),
    (1, 8, 3, (4, 4), 3, 8, NeuronKind.IF, 3, 1, 1),
    (2, 5, 3, (4, 5), 2, 4, NeuronKind.LIF, 2, 0, 2),
    (3, 4, 1, (3, 3), 4, 2, NeuronKind.IF, 4, 0, 1),
    (2, 6, 5, (5, 4), 4, 3, NeuronKind.LIF, 1, 2, 3),
    (1, 3, 3, (3, 3), 1, 8, NeuronKind.IF, 5, 1, 2),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_direct_conv_matches_golden(case):
    ci, co, k, hw, p_co, ib, neuron, T, pad, levels = CASES[case]
    seed = 100 + case
    rng = np.random.default_rng(seed)
    frames = 2
    x = rng.integers(0, 1 << ib, (frames, ci) + hw)
    x[rng.random(x.shape) < 0.3] = 0
    layer = conv_layer(rng, ci, co, k, hw, neuron, pad, input_bits=ib, x=x)
    want, spikes = expected_beats(layer, x, T, ib)
    assert 0 < spikes.mean() < 1, "degenerate case: every neuron fires or none does"
    dut = DirectConv(layer, p_co=p_co, T=T, input_bits=ib, tree_levels=levels)
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, pixel_beats(x, ib), stall_prob=0.3, rng=seed)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), stall_prob=0.3, rng=seed + 1))

    run_sim(dut, producer, consumer, max_cycles=20_000)
    got = [b["spikes"] for b in got]
    assert got == want, f"seed {seed}: first mismatch at beat " \
        f"{next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)}"


@pytest.mark.parametrize("case", [0, 1, 4])
def test_step_serialiser_after_direct_conv(case):
    ci, co, k, hw, p_co, ib, neuron, T, pad, levels = CASES[case]
    seed = 200 + case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << ib, (2, ci) + hw)
    layer = conv_layer(rng, ci, co, k, hw, neuron, pad, input_bits=ib, x=x)
    _, spikes = expected_beats(layer, x, T, ib)
    want = [int(sum(int(spikes[f, t, ch, i, j]) << ch for ch in range(co)))
            for f in range(spikes.shape[0]) for i in range(spikes.shape[3])
            for j in range(spikes.shape[4]) for t in range(T)]
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    conv = DirectConv(layer, p_co=p_co, T=T, input_bits=ib, tree_levels=levels)
    ser = StepSerialiser(co, T)
    top = Module()
    top.submodules.conv = conv
    top.submodules.ser = ser
    wiring.connect(top, conv.output, ser.input)
    got = []

    async def producer(ctx):
        await put(ctx, conv.input, pixel_beats(x, ib), stall_prob=0.3, rng=seed)

    async def consumer(ctx):
        got.extend(await get(ctx, ser.output, len(want), stall_prob=0.3, rng=seed + 1))

    run_sim(top, producer, consumer, max_cycles=20_000)
    assert [b["spikes"] for b in got] == want, f"seed {seed}"


def _cycles_to_outputs(top, input, beats, output, n_out, *, max_cycles):
    """Cycles until ``output`` has carried ``n_out`` beats, ``beats`` fed to ``input`` without
    gaps and ``output`` always ready (what the cycle model counts)."""
    done = []

    async def producer(ctx):
        await put(ctx, input, beats, stall_prob=0.0)

    async def consumer(ctx):
        ctx.set(output.ready, 1)
        n = cycle = 0
        while n < n_out:
            _, _, valid = await ctx.tick().sample(output.valid)
            cycle += 1
            n += int(valid)
        done.append(cycle)

    run_sim(top, producer, consumer, max_cycles=max_cycles)
    return done[0]


@pytest.mark.parametrize("case,serialised", [(0, False), (0, True), (1, False), (1, True),
                                             (4, False), (3, True)])
def test_cycles_match_simulation(case, serialised):
    ci, co, k, hw, p_co, ib, neuron, T, pad, levels = CASES[case]
    rng = np.random.default_rng(300 + case)
    layer = conv_layer(rng, ci, co, k, hw, neuron, pad, input_bits=ib)
    frames = 3
    x = rng.integers(0, 1 << ib, (frames, ci) + hw)
    conv = DirectConv(layer, p_co=p_co, T=T, input_bits=ib, tree_levels=levels)
    n_out = frames * layer.out_shape[1] * layer.out_shape[2] * (T if serialised else 1)
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    top = Module()
    top.submodules.conv = conv
    out = conv.output
    if serialised:
        top.submodules.ser = ser = StepSerialiser(co, T)
        wiring.connect(top, conv.output, ser.input)
        out = ser.output
    want = direct_conv_cycles(layer, p_co, T, frames, latency=conv.latency,
                              fifo_depth=conv.fifo_depth, serialised=serialised)
    assert _cycles_to_outputs(top, conv.input, pixel_beats(x, ib), out, n_out,
                              max_cycles=50_000) == want
    # the steady state: the last frame costs the formula's cycles per frame
    two = direct_conv_cycles(layer, p_co, T, frames - 1, latency=conv.latency,
                             fifo_depth=conv.fifo_depth, serialised=serialised)
    assert want - two == direct_conv_frame_cycles(layer, p_co, T, serialised)


def test_parameters_are_checked():
    rng = np.random.default_rng(0)
    layer = conv_layer(rng, 1, 4, 3, (4, 4), NeuronKind.LIF, 1)
    with pytest.raises(ValueError, match=r"^p_co must be at most the layer's output channels "
                                         r"\(4\), not 5$"):
        DirectConv(layer, p_co=5, T=4, input_bits=8)
    with pytest.raises(TypeError, match=r"^T must be an integer, not 2.0$"):
        DirectConv(layer, p_co=2, T=2.0, input_bits=8)


@pytest.mark.parametrize("seed", range(6))
def test_direct_conv_random_layers(seed):
    """Random Ci, Co, K, P_Co, input_bits, neuron, T, padding, tree depth; random stalls."""
    rng = np.random.default_rng(1000 + seed)
    ci, co = int(rng.integers(1, 4)), int(rng.integers(1, 10))
    k = int(rng.choice([1, 3, 5]))
    hw = (int(rng.integers(k, k + 3)), int(rng.integers(k, k + 3)))
    pad = int(rng.integers(0, k // 2 + 1))
    p_co = int(rng.integers(1, co + 1))
    ib = int(rng.integers(1, 9))
    neuron = NeuronKind.LIF if rng.random() < 0.5 else NeuronKind.IF
    T = int(rng.integers(1, 6))
    levels = int(rng.integers(1, 4))
    x = rng.integers(0, 1 << ib, (2, ci) + hw)
    layer = conv_layer(rng, ci, co, k, hw, neuron, pad, input_bits=ib, x=x,
                       sparsity=float(rng.uniform(0.0, 0.9)))
    want, _ = expected_beats(layer, x, T, ib)
    dut = DirectConv(layer, p_co=p_co, T=T, input_bits=ib, tree_levels=levels)
    got = []
    stall = float(rng.uniform(0.0, 0.6))

    async def producer(ctx):
        await put(ctx, dut.input, pixel_beats(x, ib), stall_prob=stall, rng=seed)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), stall_prob=stall, rng=seed + 1))

    run_sim(dut, producer, consumer, max_cycles=50_000)
    case = dict(ci=ci, co=co, k=k, hw=hw, pad=pad, p_co=p_co, input_bits=ib,
                neuron=neuron.value, T=T, tree_levels=levels)
    assert [b["spikes"] for b in got] == want, f"seed {1000 + seed}: {case}"


@pytest.mark.parametrize("pool", [None, 2])
def test_direct_core_with_pool(pool):
    """DirectCore (DirectConv -> StepSerialiser -> MaxPool): the per-step spike stream of a
    LayerCore, against the golden model."""
    from fireflys_sw.artifact import PoolLayer
    from fireflys_sw.golden import max_pool
    from fireflys_hw.gateware.direct_conv import DirectCore

    seed = 400 + (pool or 0)
    rng = np.random.default_rng(seed)
    ci, co, k, hw, T, ib = 1, 5, 3, (4, 6), 3, 8
    x = rng.integers(0, 256, (2, ci) + hw)
    layer = conv_layer(rng, ci, co, k, hw, NeuronKind.LIF, 1, input_bits=ib, x=x)
    _, spikes = expected_beats(layer, x, T, ib)
    pool_layer = None
    if pool:
        out = layer.out_shape
        pool_layer = PoolLayer(tuple(out), (out[0], out[1] // pool, out[2] // pool), pool)
        spikes = max_pool(spikes, pool)
    want = [int(sum(int(spikes[f, t, ch, i, j]) << ch for ch in range(co)))
            for f in range(spikes.shape[0]) for i in range(spikes.shape[3])
            for j in range(spikes.shape[4]) for t in range(T)]
    dut = DirectCore(layer, p_co=2, T=T, input_bits=ib, pool=pool_layer)
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, pixel_beats(x, ib), stall_prob=0.3, rng=seed)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), stall_prob=0.3, rng=seed + 1))

    run_sim(dut, producer, consumer, max_cycles=20_000)
    assert [b["spikes"] for b in got] == want, f"seed {seed}"


@pytest.mark.parametrize("pool", [None, 2])
def test_direct_core_t_vectorised(pool):
    """DirectCore(per_step=False): the T-vectorised beat leaves as it is (no serialiser); a
    pool ORs whole beats."""
    from fireflys_sw.artifact import PoolLayer
    from fireflys_sw.golden import max_pool
    from fireflys_hw.gateware.direct_conv import DirectCore

    seed = 450 + (pool or 0)
    rng = np.random.default_rng(seed)
    T = 3
    x = rng.integers(0, 256, (2, 1, 4, 5))
    layer = conv_layer(rng, 1, 6, 3, (4, 5), NeuronKind.IF, 1, input_bits=8, x=x)
    _, spikes = expected_beats(layer, x, T, 8)
    pool_layer = None
    if pool:
        co, ho, wo = layer.out_shape
        pool_layer = PoolLayer((co, ho, wo), (co, ho // pool, wo // pool), pool)
        spikes = max_pool(spikes, pool)
    n, _, co, ho, wo = spikes.shape
    want = [sum(int(spikes[f, t, c, i, j]) << (t * co + c) for t in range(T) for c in range(co))
            for f in range(n) for i in range(ho) for j in range(wo)]
    dut = DirectCore(layer, p_co=4, T=T, input_bits=8, per_step=False, pool=pool_layer)
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, pixel_beats(x, 8), stall_prob=0.3, rng=seed)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), stall_prob=0.3, rng=seed + 1))

    run_sim(dut, producer, consumer, max_cycles=20_000)
    assert [b["spikes"] for b in got] == want, f"seed {seed}"


# --- through the accelerator ---------------------------------------------------------------------

def run_accelerator(acc, artifact, images, *, seed=0, stall_in=0.2, stall_out=0.3):
    """Frames through ``acc`` in pysim; returns the decoded (scores, index) per frame and the
    counters at the last result."""
    from fireflys_hw.host.beats import decode_readout, input_beats
    from fireflys_hw.report import _counter_values
    from fireflys_hw.sim.run import run_frames

    beats = input_beats(artifact, images)
    trace = run_frames(acc, beats, backend="pysim", stall_in=stall_in, stall_out=stall_out,
                       seed=seed, max_idle=200_000).trace
    counters = _counter_values(trace.out_counters[-1], acc.counter_names, acc.counter_bits)
    return [decode_readout(v, artifact.classes, acc.score_bits)
            for v in trace.out_payloads], counters


@pytest.mark.parametrize("seed,spec,parallelism,T,neuron,input_bits", [
    (0, "1x6x6-4c3p1-mp2-5c3p1-5fc", [(2, 0), (3, 4), (5, 8)], 2, NeuronKind.LIF, 3),
    (1, "2x5x5-3c3p1-4c3p0-3fc", [(3, 0), (4, 2), (3, 4)], 3, NeuronKind.IF, 8),
])
def test_accelerator_dense_first(seed, spec, parallelism, T, neuron, input_bits):
    """The accelerator with core 0 a DirectCore: bit-exact with the golden model, stalls on
    both ends."""
    from fireflys_hw.gateware.accelerator import Accelerator
    from fireflys_sw.golden import run_golden
    from fireflys_sw.synthetic import random_artifact, random_images

    a = random_artifact(spec, seed=seed, T=T, input_bits=input_bits, weight_sparsity=0.6,
                        neuron=neuron, spike_density=0.25)
    images = random_images(a, 3, seed=seed)
    acc = Accelerator(a, [(p, max(q, 1)) for p, q in parallelism], dense_first=True)
    got, counters = run_accelerator(acc, a, images, seed=seed)
    golden = run_golden(a, images)
    for f, (scores, index) in enumerate(got):
        assert scores == [int(v) for v in golden.scores[f]], f"seed {seed} frame {f}"
        assert index == int(golden.prediction[f]), f"seed {seed} frame {f}"
    # the first layer must spike somewhere, or the test shows little
    density = run_golden(a, images).spike_density()[0]
    assert 0 < density < 1, f"seed {seed}: first layer spike density {density}"
    # the dense core's counters: every spike beat sent, every window admitted once per group;
    # the convolution progresses in at least Hp * Wp + Ho * Wo * (G - 1) cycles per frame (one
    # more per window when the next pixel is late for the last group's cycle)
    layer = a.layers[0]
    _, h, w = layer.in_shape
    co, ho, wo = layer.out_shape
    groups = -(-co // parallelism[0][0])
    n, pixels = len(images), (h + 2 * layer.padding) * (w + 2 * layer.padding)
    steps = T if acc.cores[0].per_step else 1       # beats per output pixel
    assert counters["core0_windows"] == n * ho * wo * steps
    assert n * (pixels + ho * wo * (groups - 1)) <= counters["core0_busy"] \
        <= n * (pixels + ho * wo * groups)
    assert counters["core0_pairs"] == 0


# --- radix first layer (E3NE's radix encoding) ---------------------------------------------------

RADIX_CASES = [
    # spec, T, input_bits, p_co, tree_levels, stall probability
    ("1x6x6-5c3p1-mp2-4fc", 4, 4, 2, 2, 0.3),      # G = 3: shift and bias tables of the group
    ("2x5x5-4c3p1-4fc", 3, 5, 4, 1, 0.5),          # G = 1: constant shifts; input_bits != T
    ("1x4x6-6c3p0-mp2-3fc", 6, 6, 4, 2, 0.2),      # T = 6, a ragged last group
]


def radix_first(case):
    """A random radix net's first conv layer, its pool (if one follows), input frames and the
    golden model's digit planes of the layer (after the pool)."""
    from fireflys_sw.artifact import PoolLayer
    from fireflys_sw.golden import _radix_forward, encode_input
    from fireflys_sw.synthetic import random_images, random_radix_artifact

    spec, T, ib, p_co, levels, stall = RADIX_CASES[case]
    a = random_radix_artifact(spec, seed=700 + case, T=T, input_bits=ib, weight_sparsity=0.5)
    images = random_images(a, 3, seed=700 + case)
    x = encode_input(a, images)                    # (n, 1, Ci, H, W) the integer frame
    layer = a.layers[0]
    pool = a.layers[1] if isinstance(a.layers[1], PoolLayer) else None
    digits = _radix_forward(layer, x, True, T, a.input_max)
    if pool is not None:
        digits = _radix_forward(pool, digits, False, T, a.input_max)
    return a, layer, pool, x[:, 0], digits


@pytest.mark.parametrize("case", range(len(RADIX_CASES)))
def test_direct_core_radix(case):
    """DirectCore on a radix first layer (per_step=False): the beat carries the digits of the
    requantised T-bit values, MSB first, and a pool is the max of the values; bit-exact with
    the golden model under random stalls on both ends."""
    from fireflys_sw.golden import radix_value
    from fireflys_hw.gateware.direct_conv import DirectCore

    spec, T, ib, p_co, levels, stall = RADIX_CASES[case]
    seed = 700 + case
    a, layer, pool, x, digits = radix_first(case)
    values = radix_value(digits)
    # not degenerate: zeros (ReLU), values in between and some at the clip
    assert (values == 0).any() and ((values > 0) & (values < (1 << T) - 1)).any(), \
        f"seed {seed}: degenerate values"
    n, _, co, ho, wo = digits.shape
    want = [sum(int(digits[f, t, c, i, j]) << (t * co + c) for t in range(T) for c in range(co))
            for f in range(n) for i in range(ho) for j in range(wo)]
    dut = DirectCore(layer, p_co=p_co, T=T, input_bits=ib, per_step=False, pool=pool,
                     tree_levels=levels)
    assert dut.conv.radix and dut.conv.latency == dut.conv.tree_stages + CURRENT_STAGES + 1
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, pixel_beats(x, ib), stall_prob=stall, rng=seed)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), stall_prob=stall, rng=seed + 1))

    run_sim(dut, producer, consumer, max_cycles=20_000)
    got = [b["spikes"] for b in got]
    assert got == want, f"seed {seed}: first mismatch at beat " \
        f"{next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)}"


def test_direct_core_radix_cycles():
    """The cycle model holds for the radix datapath (one requantisation stage instead of T
    neuron steps)."""
    from amaranth.hdl import Module
    _, layer, _, x, _ = radix_first(0)
    _, T, ib, p_co, levels, _ = RADIX_CASES[0]
    conv = DirectConv(layer, p_co=p_co, T=T, input_bits=ib, tree_levels=levels)
    frames = x.shape[0]
    n_out = frames * layer.out_shape[1] * layer.out_shape[2]
    top = Module()
    top.submodules.conv = conv
    assert _cycles_to_outputs(top, conv.input, pixel_beats(x, ib), conv.output, n_out,
                              max_cycles=20_000) \
        == direct_conv_cycles(layer, p_co, T, frames, latency=conv.latency,
                              fifo_depth=conv.fifo_depth)


def test_direct_core_radix_pool_needs_vectorised_beats():
    from fireflys_hw.gateware.direct_conv import DirectCore
    _, layer, pool, _, _ = radix_first(0)
    with pytest.raises(ValueError, match=r"^a radix layer's pool needs per_step=False"):
        DirectCore(layer, p_co=2, T=4, input_bits=4, pool=pool)


def test_accelerator_dense_first_radix():
    """A random radix net through the accelerator with core 0 a DirectCore: scores bit-exact
    with the golden model, stalls on both ends."""
    from fireflys_hw.gateware.accelerator import Accelerator
    from fireflys_sw.golden import run_golden
    from fireflys_sw.synthetic import random_images, random_radix_artifact

    a = random_radix_artifact("1x6x6-4c3p1-mp2-5c3p1-5fc", seed=7, T=3, weight_sparsity=0.6)
    images = random_images(a, 3, seed=7)
    acc = Accelerator(a, [(2, 1), (3, 4), (5, 8)], dense_first=True)
    assert type(acc.cores[0]).__name__ == "DirectCore"
    got, counters = run_accelerator(acc, a, images, seed=7)
    golden = run_golden(a, images)
    for f, (scores, index) in enumerate(got):
        assert scores == [int(v) for v in golden.scores[f]], f"frame {f}"
        assert index == int(golden.prediction[f]), f"frame {f}"
    density = golden.spike_density()[0]
    assert 0 < density < 1, f"first layer digit density {density}"
    assert counters["core0_windows"] == 3 * 6 * 6
