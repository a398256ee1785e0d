# amaranth: UnusedElaboratable=no
"""SynapseArray == golden model (synaptic_currents + neuron_dynamics / sum_t I), bit for bit,
for random small layers, under random input gaps and output stalls."""

import dataclasses
import random

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring

from fireflys_sw.artifact import LayerKind
from fireflys_sw.golden import layer_widths
from fireflys_sw.spec import NeuronKind
from fireflys_hw.compiler.reference import im2col_windows, lane_outputs
from fireflys_hw.gateware.synapse import SynapseArray
from fireflys_hw.compiler.weights import pack_weights
from layers_helpers import random_layer, random_spikes
from streams_helpers import expect_idle, get, put, run_sim, valid_cycles


def run_array(dut, frames, layer, p_ci, p_co, seed, input_bits=None, gap=0.3, stall=0.3):
    """Feed the window streams of ``frames`` back to back; return (got, want)."""
    beats, want = [], []
    for x in frames:
        beats += im2col_windows(x, layer, p_ci, p_co, input_bits)
        want += lane_outputs(x, layer, p_co, input_bits)
    rng = random.Random(seed)
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, beats, gap, rng)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), stall, random.Random(seed + 1)))
        await expect_idle(ctx, dut.output)

    run_sim(dut, producer, consumer, max_cycles=40 * len(beats) + 1000)
    return got, want


def random_case(seed, max_beats=2500, **layer_kw):
    """A random layer and array geometry; redrawn (deterministically) until a frame's window
    stream has at most ``max_beats`` beats, to keep the default run fast."""
    rng = np.random.default_rng(seed)
    while True:
        layer = random_layer(rng, **layer_kw)
        T = int(rng.choice([1, 2, 4]))
        p_co = int(rng.choice([p for p in (1, 2, 4) if p <= layer.out_channels]))
        p_ci = int(rng.choice([4, 8]))
        n_chunks = np.prod(layer.weight.shape[2:] if layer.weight.ndim == 4 else
                           layer.in_shape[1:]) * -(-layer.in_channels // p_ci)
        groups = -(-layer.out_channels // p_co)
        beats = layer.out_shape[1] * layer.out_shape[2] * groups * n_chunks * T
        if beats <= max_beats:
            return rng, layer, T, p_co, p_ci


@pytest.mark.parametrize("seed", range(12))
def test_random_layers(seed, max_beats=2500):
    rng, layer, T, p_co, p_ci = random_case(seed, max_beats)
    frames = [random_spikes(rng, layer, T) for _ in range(2)]
    depth = int(rng.choice([2, 4, 16]))
    window_depth = [0, 1, 2, 16][seed % 4]
    dut = SynapseArray(layer, p_co, p_ci, T, depth=depth, window_depth=window_depth)
    got, want = run_array(dut, frames, layer, p_ci, p_co, seed)
    assert got == want, (f"seed {seed}: {layer.kind} {layer.in_shape}->{layer.out_shape} "
                         f"{layer.neuron} T={T} p_co={p_co} p_ci={p_ci} depth={depth} "
                         f"window_depth={window_depth}")


@pytest.mark.parametrize("seed", range(8))
def test_static_input(seed):
    """A direct-encoded first layer: one step in the window chunks, the lanes apply its current
    at every step (or ``T * I`` for the readout), under random gaps and stalls, with small and
    large result budgets."""
    rng, layer, T, p_co, p_ci = random_case(300 + seed, 1500)
    input_bits = int(rng.choice([1, 2, 3]))
    frames = [random_spikes(rng, layer, T, input_bits=input_bits) for _ in range(2)]
    depth = int(rng.choice([2, 4, 16]))
    window_depth = [0, 2, 16][seed % 3]
    dut = SynapseArray(layer, p_co, p_ci, T, input_bits=input_bits, depth=depth,
                       static_input=True, window_depth=window_depth)
    assert dut.steps == 1 and dut.lanes.steps == 1
    beats, want = [], []
    for x in frames:
        beats += im2col_windows(x, layer, p_ci, p_co, input_bits, static_input=True)
        want += lane_outputs(x, layer, p_co, input_bits)
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, beats, 0.3, random.Random(seed))

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), 0.3, random.Random(seed + 1)))
        await expect_idle(ctx, dut.output)

    run_sim(dut, producer, consumer, max_cycles=40 * len(beats) * T + 1000)
    assert got == want, (f"seed {seed}: {layer.kind} {layer.neuron} T={T} p_co={p_co} "
                         f"p_ci={p_ci} input_bits={input_bits} depth={depth} "
                         f"window_depth={window_depth}")


@pytest.mark.parametrize("seed", range(4))
def test_first_layer_bit_planes(seed):
    """Multi-bit direct-encoded input, carried as bit planes with weights * 2**b."""
    rng, layer, T, p_co, p_ci = random_case(50 + seed, ci=int(1 + seed % 3))
    input_bits = int(rng.choice([2, 4]))
    frames = [random_spikes(rng, layer, T, input_bits=input_bits)]
    dut = SynapseArray(layer, p_co, p_ci, T, input_bits=input_bits)
    got, want = run_array(dut, frames, layer, p_ci, p_co, seed, input_bits)
    assert got == want, f"seed {seed}"


@pytest.mark.parametrize("neuron", [NeuronKind.LIF, NeuronKind.IF, NeuronKind.NONE])
@pytest.mark.parametrize("sign", [1, -1])
def test_worst_case_widths(neuron, sign):
    """All-one input and every weight at the extreme of its range (with the bias on the same
    side): the current, membrane and score reach the derived bounds without overflow."""
    rng = np.random.default_rng(3)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=12, co=3, k=3, hw=(3, 3), padding=0,
                         neuron=neuron, sparsity=0.0)
    extreme = 7 if sign > 0 else -8
    layer = dataclasses.replace(layer, weight=np.full_like(layer.weight, extreme),
                                bias=np.full(3, 4 * sign, np.int64))
    if neuron is not NeuronKind.NONE:
        # thresholds so high that the membrane climbs (IF: for all T steps) before firing
        layer = dataclasses.replace(layer, threshold=np.array([1, 10 ** 4, 2 ** 20], np.int64))
    T = 4
    widths = layer_widths(layer, 1, T)
    frames = [np.ones((T,) + layer.in_shape, np.int64)]
    dut = SynapseArray(layer, 2, 8, T)
    assert dut.lanes.current_bits == widths.current_bits
    got, want = run_array(dut, frames, layer, 8, 2, 0, gap=0.0, stall=0.0)
    assert got == want
    lo, hi = widths.current
    assert (hi if sign > 0 else lo) == sign * (12 * 9 * abs(extreme) + 4)


def test_fc_readout():
    rng = np.random.default_rng(11)
    layer = random_layer(rng, kind=LayerKind.FC, ci=3, co=10, hw=(2, 2), neuron=NeuronKind.NONE)
    frames = [random_spikes(rng, layer, 4) for _ in range(3)]
    got, want = run_array(SynapseArray(layer, 4, 4, 4), frames, layer, 4, 4, 11)
    assert got == want


def test_errors():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, co=3)
    with pytest.raises(ValueError, match=r"^p_co must be at most the layer's output channels "
                                         r"\(3\), not 4$"):
        SynapseArray(layer, 4, 4, 2)
    with pytest.raises(ValueError, match=r"^p_ci must be at least 1, not 0$"):
        SynapseArray(layer, 1, 0, 2)
    with pytest.raises(ValueError, match=r"^depth must be at least 2, not 1$"):
        SynapseArray(layer, 1, 4, 2, depth=1)
    with pytest.raises(ValueError, match=r"^window_depth must be at least 0, not -1$"):
        SynapseArray(layer, 1, 4, 2, window_depth=-1)
    with pytest.raises(TypeError, match=r"^layer must be a SynapticLayer, not None$"):
        SynapseArray(None, 1, 4, 2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 160))
def test_random_layers_sweep(seed):
    test_random_layers(seed, max_beats=40_000)


@pytest.mark.parametrize("seed", range(10))
def test_cycles(seed):
    """Back-to-back input, always-ready output: each output beat is valid in exactly the
    cycle that :func:`array_cycles` gives (lane FIFOs of several depths or none, small and
    large result budgets, static input)."""
    from fireflys_hw.gateware.synapse import array_cycles
    rng, layer, T, p_co, p_ci = random_case(200 + seed, 1500)
    window_depth = [0, 1, 2, 4, 16][seed % 5]
    depth = int(rng.choice([2, 4, 16]))
    static = seed % 3 == 0
    input_bits = int(rng.choice([1, 2])) if static else 1
    x = random_spikes(rng, layer, T, input_bits=input_bits if static else None)
    dut = SynapseArray(layer, p_co, p_ci, T, input_bits=input_bits, depth=depth,
                       static_input=static, window_depth=window_depth)
    beats = im2col_windows(x, layer, p_ci, p_co, input_bits if static else None,
                           static_input=static, drop_empty=seed % 2 == 0)
    want = array_cycles(dut.weights, beats, layer.is_readout, T=T, steps=dut.steps,
                        window_depth=window_depth, depth=depth)
    assert valid_cycles(dut, beats, len(want)) == want, f"seed {seed}"


@pytest.mark.parametrize("seed", range(4))
def test_block_ram_tables_read_a_cycle_early(seed, monkeypatch):
    """Every bitmap table a block RAM (as the readout's big ones are): with lane FIFOs, each
    detector reads its table at the FIFO's next head (``lookahead``), so the row is in a
    register with the beat; the results are right under random stalls and every output beat
    is valid in the cycle :func:`array_cycles` gives, as with LUT ROM tables."""
    from fireflys_hw.gateware import detector
    from fireflys_hw.gateware.synapse import array_cycles
    monkeypatch.setattr(detector, "TABLE_BRAM_ROWS", 1)
    rng, layer, T, p_co, p_ci = random_case(300 + seed, 1500)
    window_depth = [1, 2, 4, 16][seed]
    dut = SynapseArray(layer, p_co, p_ci, T, window_depth=window_depth)
    frames = [random_spikes(rng, layer, T) for _ in range(2)]
    got, want = run_array(dut, frames, layer, p_ci, p_co, seed)
    assert got == want, f"seed {seed}"

    dut = SynapseArray(layer, p_co, p_ci, T, window_depth=window_depth)
    beats = im2col_windows(frames[0], layer, p_ci, p_co, drop_empty=True)
    want = array_cycles(dut.weights, beats, layer.is_readout, T=T, window_depth=window_depth)
    assert valid_cycles(dut, beats, len(want)) == want, f"seed {seed}"


@pytest.mark.parametrize("readout", [False, True])
def test_window_fifos_decouple_lanes(readout):
    """Four lanes, each busy on its own chunks (lane ``l`` on kernel positions ``l`` and ``l +
    4``, light elsewhere): joined at the input they wait for each other at every chunk; with
    FIFOs of window beats they drift apart and the frame costs about the busiest lane's work
    (exact model, :func:`array_cycles`, which test_cycles checks against the gateware)."""
    from fireflys_hw.gateware.synapse import array_cycles
    rng = np.random.default_rng(5)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=16, co=8, k=3, hw=(5, 5), padding=1,
                         sparsity=0.0, neuron=NeuronKind.NONE if readout else NeuronKind.LIF)
    mask = np.zeros(layer.weight.shape, bool)
    for c in range(8):
        mask[c, :2] = True                             # light everywhere
        mask[c, :, c // 3, c % 3] = True               # heavy at kernel position c
    layer = dataclasses.replace(
        layer, weight=np.where(mask, np.where(layer.weight == 0, 1, layer.weight), 0))
    x = random_spikes(rng, layer, 2, density=0.5)
    beats = im2col_windows(x, layer, 16, 8)
    weights = pack_weights(layer, 8, 16)
    joined = array_cycles(weights, beats, readout, T=2, window_depth=0)[-1]
    fifos = array_cycles(weights, beats, readout, T=2, window_depth=16)[-1]
    assert fifos < 0.85 * joined, (joined, fifos)


class OrchestratedArray(Elaboratable):
    """DataflowOrchestrator -> SynapseArray, as a layer core chains them (no padding)."""

    def __init__(self, layer, p_co, p_ci, T, **kw):
        from fireflys_hw.gateware.orchestrator import DataflowOrchestrator
        from fireflys_hw.compiler.weights import window_kernel
        self.array = SynapseArray(layer, p_co, p_ci, T, **kw)
        ci, h, w = layer.in_shape
        self.orch = DataflowOrchestrator(ci, h, w, T, window_kernel(layer), p_ci,
                                         self.array.n_groups)
        self.input, self.output = self.orch.input, self.array.output

    def elaborate(self, platform):
        m = Module()
        m.submodules.orch, m.submodules.array = self.orch, self.array
        wiring.connect(m, self.orch.output, self.array.input)
        return m


@pytest.mark.parametrize("seed", range(6))
def test_cycles_with_orchestrator_walk(seed):
    """Orchestrator (dropping empty chunks) -> array, input at full rate: after the first
    window's fill every result comes exactly when :func:`array_cycles` with ``walk=True`` says
    (the model of the planner's recurrence), shifted by a constant."""
    from fireflys_hw.compiler.reference import pixel_beats
    from fireflys_hw.gateware.synapse import array_cycles
    rng = np.random.default_rng(400 + seed)
    layer = random_layer(rng, kind=LayerKind.CONV, padding=0, ci=int(rng.integers(3, 12)),
                         k=3, hw=(6, 6))
    T = int(rng.choice([1, 2, 4]))
    p_co = int(rng.integers(1, layer.out_channels + 1))
    p_ci = int(rng.choice([2, 4, 8]))
    window_depth = [0, 2, 16][seed % 3]
    x = random_spikes(rng, layer, T, density=float(rng.choice([0.05, 0.15, 0.3])))
    dut = OrchestratedArray(layer, p_co, p_ci, T, window_depth=window_depth)
    beats = im2col_windows(x, layer, p_ci, p_co, drop_empty=False)
    want = array_cycles(dut.array.weights, beats, layer.is_readout, T=T,
                        window_depth=window_depth, walk=True)
    items = [{"spikes": b} for b in pixel_beats(x)]
    got = valid_cycles(dut, items, len(want))
    offsets = {g - w for g, w in zip(got, want)}
    assert len(offsets) == 1, f"seed {seed}: {got} vs {want}"
