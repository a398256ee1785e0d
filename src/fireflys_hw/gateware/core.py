"""A layer core: Padding -> DataflowOrchestrator -> SynapseArray -> collector -> MaxPool.

Cycle cost of one frame (what :func:`core_cycles` and :func:`core_cycles_estimate` compute)
---------------------------------------------------------------------------------------------
Symbols: ``Ho x Wo`` output pixels, ``G = ceil(Co / P_Co)`` groups, ``T`` time steps, ``Kh x Kw``
window (the kernel; the whole input map for fc), ``Ci'`` binary input channels (``Ci *
input_bits``), ``n_chunks = Kh * Kw * ceil(Ci' / P_Ci)``, ``Hp x Wp`` the padded input map.

The dataflow is T-vectorised: a spike beat is a pixel at every step, and a window is walked
once per group, each chunk carrying its channels at every step. Every stage streams; the
slowest sets the pace. Per (output pixel, group) the orchestrator walks the ``n_chunks`` chunks
of the window, one per cycle, and sends the ones that spike at some step (and the window's
last); every detector lane needs ``max(1, pairs)`` cycles for the window's ``pairs =
popcount(OR over t of spikes & bitmap)`` effectual pairs (each weight read once for all steps;
empty chunks are dropped in its look-ahead too). Each lane takes its beats from its own FIFO of
``window_depth`` window beats (:class:`~fireflys_hw.gateware.synapse.SynapseArray`), so the lanes drift
apart instead of waiting for each other at every chunk, and a lane busy in one window catches up
in a lighter one. A block of ``B`` consecutive windows costs about ``max(B * n_chunks, busiest
lane's pairs in the block)``, with ``B = 2`` when a lane FIFO holds a whole window
(``window_depth >= n_chunks``), else 1 (:func:`fireflys_hw.compiler.base.lane_block`), and::

    cycles/frame ~= sum over blocks of B consecutive (pixel, group) windows of
                        max(B * n_chunks, max over lanes of the block's pairs)
                    + (Kh - 1) * Wp                                              # window fill

for frames back to back. The ``T`` neuron updates of a window follow in a ``T``-stage chain
(:class:`~fireflys_hw.gateware.neuron.NeuronLanes`) that takes a window per cycle, so they cost latency,
not throughput. The fill is the part of a frame's first window that the orchestrator's holding
area could not prefetch during the previous frame (``span = (Kh-1) * Wp + Kw`` pixels, ``Kw``
prefetched); the very first frame of a run waits for the whole ``span`` and the pipeline
latency instead. The input side needs ``Hp * Wp`` cycles per frame (a beat per pixel) and is
never the bottleneck while ``Ho * Wo * G * n_chunks >= Hp * Wp``. In terms of densities
(``s1`` input spikes per step, ``s2`` non-zero weights), for the planner::

    cycles/frame ~= Ho * Wo * G * max(n_chunks, Kh * Kw * Ci' * s_any * s2 * imbalance)
                    + (Kh - 1) * Wp,          s_any = 1 - (1 - s1) ** S

(``S = T``, or 1 for a static input; ``s_any`` the density of inputs that spike at some step,
for independent steps) with ``imbalance >= 1`` the ratio of the busiest lane's pairs to the
mean (1.0 for ``P_Co = 1``). The collector and the max-pool run at one beat (pixel) per cycle
and are never the bottleneck. Note the floor ``n_chunks = Kh * Kw * ceil(Ci' / P_Ci)`` per
window: the walk reads every chunk, empty or not (dropping an empty chunk saves the lanes its
beat, not the walk its cycle), so ``P_Ci >= Ci'`` is where ``P_Co`` pays off.

The formula is a model, not the exact recurrence (:func:`fireflys_hw.gateware.synapse.array_cycles` with
``walk=True`` is that, and :func:`fireflys_hw.compiler.cycles.batch_array_cycles` for the planner). A
lane that is busy on consecutive chunks is slower than the formula (its look-ahead holds two
non-empty chunks). ``benchmarks/bench_core.py`` compares the formula with simulation.
"""

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fireflys_sw.artifact import PoolLayer, SynapticLayer

from ..compiler.base import lane_block
from ..compiler.reference import any_step, im2col_windows
from ..compiler.weights import pack_weights, window_kernel
from .maxpool import MaxPool
from .neuron import Argmax, lane_score_beat, lane_spike_beat
from .orchestrator import DataflowOrchestrator
from .padding import Padding
from .streams import spike_stream
from .synapse import DEFAULT_WINDOW_DEPTH, SynapseArray
from .util import check_positive

__all__ = ["LayerCore", "OutputCollector", "ReadoutCollector", "readout_beat", "core_cycles",
           "core_cycles_estimate"]


class OutputCollector(wiring.Component):
    """Reassemble the per-group beats of the neuron lanes into spike-stream beats.

    The lanes produce, per output pixel, ``for group in range(n_groups)`` one beat of ``T *
    p_co`` spikes (bit ``t * p_co + l``: channel ``group * p_co + l`` at step ``t``). The next
    layer wants, per pixel, one beat of ``T * channels`` spikes (bit ``t * channels + c``).
    With one group this is a wire (the lane bits past ``channels`` are dropped). Otherwise the
    beats are written into a RAM of 2 words of ``T * n_groups * p_co`` bits (one ``p_co``-bit
    lane per (step, group), written through a port of that granularity), as two banks: one
    pixel is read out of one bank while the next pixel's groups fill the other, so neither side
    waits for the other unless the downstream stalls. Latency: one cycle (RAM read) after a
    pixel's last group.

    Parameters
    ----------
    channels : int
        Output channels ``Co``.
    p_co : int
        Lanes per group ``P_Co`` (at most ``channels``).
    T : int
        Time steps.

    Members
    -------
    input : ``In(stream.Signature(lane_spike_beat(p_co, T, n_groups)))``
        ``n_groups`` beats per output pixel (the synapse array's output; its ``group`` field
        is implied by the order and not looked at).
    output : ``Out(spike_stream(T * channels))``
        One beat per output pixel.
    """

    def __init__(self, channels: int, p_co: int, T: int):
        self.channels = check_positive("channels", channels)
        self.p_co = check_positive("p_co", p_co)
        if p_co > channels:
            raise ValueError(f"p_co must be at most channels ({channels}), not {p_co}")
        self.T = check_positive("T", T)
        super().__init__({
            "input": In(stream.Signature(lane_spike_beat(p_co, T, self.n_groups))),
            "output": Out(spike_stream(T * channels)),
        })

    @property
    def n_groups(self) -> int:
        return -(-self.channels // self.p_co)

    @property
    def buffer_bits(self) -> int:
        return 0 if self.n_groups == 1 else 2 * self.T * self.n_groups * self.p_co

    def elaborate(self, platform):
        m = Module()
        T, G, P, C = self.T, self.n_groups, self.p_co, self.channels
        spikes = self.input.payload.spikes
        if G == 1:
            # P == C: the beat is already in the stream's order
            m.d.comb += [
                self.output.valid.eq(self.input.valid),
                self.output.payload.spikes.eq(spikes),
                self.input.ready.eq(self.output.ready),
            ]
            return m

        # word layout: lane (t, g) at bits (t * G + g) * P, so channel c = g * P + l of step t
        # is bit t * G * P + c: the output beat is a wiring of the word
        m.submodules.banks = banks = memory.Memory(shape=T * G * P, depth=2, init=[])
        wr = banks.write_port(granularity=P)
        rd = banks.read_port()

        full = Signal(2)             # bank holds a whole pixel not yet read out
        w_bank = Signal()
        w_g = Signal(range(G))
        take = self.input.valid & self.input.ready
        m.d.comb += [
            self.input.ready.eq(~full.bit_select(w_bank, 1)),
            wr.addr.eq(w_bank),
            wr.data.eq(Cat(spikes[t * P:(t + 1) * P] for t in range(T) for _ in range(G))),
        ]
        for t in range(T):
            for g in range(G):
                m.d.comb += wr.en[t * G + g].eq(take & (w_g == g))
        set_full = Signal(2)
        clear_full = Signal(2)
        with m.If(take):
            with m.If(w_g == G - 1):
                m.d.sync += [w_g.eq(0), w_bank.eq(~w_bank)]
                m.d.comb += set_full.eq(Mux(w_bank, 0b10, 0b01))
            with m.Else():
                m.d.sync += w_g.eq(w_g + 1)

        r_bank = Signal()
        out_valid = Signal()
        advance = Signal()
        issue = Signal()
        m.d.comb += [
            advance.eq(~out_valid | self.output.ready),
            issue.eq(full.bit_select(r_bank, 1)),
            rd.addr.eq(r_bank),
            rd.en.eq(advance),
            self.output.valid.eq(out_valid),
            self.output.payload.spikes.eq(
                Cat(rd.data[t * G * P:t * G * P + C] for t in range(T))),
        ]
        with m.If(advance):
            m.d.sync += out_valid.eq(issue)
        with m.If(advance & issue):
            m.d.sync += r_bank.eq(~r_bank)
            m.d.comb += clear_full.eq(Mux(r_bank, 0b10, 0b01))
        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return m


def readout_beat(classes: int, score_bits: int) -> data.StructLayout:
    """The readout core's result for one frame: every class score (``sum_t I``) and the
    prediction (argmax, lowest index on ties)."""
    return data.StructLayout({
        "scores": data.ArrayLayout(signed(score_bits), classes),
        "index": range(max(classes, 2)),
    })


class ReadoutCollector(wiring.Component):
    """Gather the readout lanes' per-group score beats into one beat with every score and the
    prediction.

    The beats pass a register stage, then go to an :class:`~fireflys_hw.gateware.neuron.Argmax`
    and, in the same transfer, into registers (one ``score_bits`` register per class); the
    result leaves with the argmax's beat. The registers only change on a transfer into the
    argmax, and from a pixel's last beat until its result has left (the argmax is a pipeline)
    the next pixel's beats wait, so a pixel's scores stay put until its beat has left.

    Parameters
    ----------
    classes : int
        Readout channels ``Co``.
    p_co : int
        Lanes per score beat.
    score_bits : int
        Score width (:func:`fireflys_sw.golden.layer_widths`).

    Members
    -------
    input : ``In(stream.Signature(lane_score_beat(p_co, score_bits, n_groups)))``
        ``n_groups`` beats per output pixel.
    output : ``Out(stream.Signature(readout_beat(classes, score_bits)))``
        One beat per output pixel.
    """

    def __init__(self, classes: int, p_co: int, score_bits: int):
        self.classes = check_positive("classes", classes)
        self.p_co = check_positive("p_co", p_co)
        if p_co > classes:
            raise ValueError(f"p_co must be at most classes ({classes}), not {p_co}")
        self.score_bits = check_positive("score_bits", score_bits)
        super().__init__({
            "input": In(stream.Signature(lane_score_beat(p_co, score_bits, self.n_groups))),
            "output": Out(stream.Signature(readout_beat(classes, score_bits))),
        })

    @property
    def n_groups(self) -> int:
        return -(-self.classes // self.p_co)

    def elaborate(self, platform):
        m = Module()
        m.submodules.argmax = argmax = Argmax(self.classes, self.p_co, self.score_bits)
        G, P = self.n_groups, self.p_co
        scores = Signal(data.ArrayLayout(signed(self.score_bits), G * P))
        # a register stage in front: the lanes' FIFOs are read asynchronously (LUT RAM), and
        # their data went straight into the argmax's comparators (the critical path of the
        # ECP5 build); one cycle of latency per frame, no throughput
        r_valid = Signal()
        r_beat = Signal.like(self.input.payload)
        # a pixel's last beat is in the argmax's pipeline or its result waits: the next
        # pixel's beats wait here, so the score registers hold until the result has left
        in_flight = Signal()
        into_argmax = Signal()
        m.d.comb += [
            argmax.input.payload.eq(r_beat),
            argmax.input.valid.eq(r_valid & ~in_flight),
            into_argmax.eq(argmax.input.valid & argmax.input.ready),
            self.input.ready.eq(~r_valid | into_argmax),
        ]
        with m.If(self.input.ready):
            m.d.sync += [r_valid.eq(self.input.valid), r_beat.eq(self.input.payload)]
        with m.If(argmax.output.valid & argmax.output.ready):
            m.d.sync += in_flight.eq(0)
        with m.If(into_argmax & (r_beat.group == G - 1)):
            m.d.sync += in_flight.eq(1)
        with m.If(into_argmax):
            for g in range(G):
                with m.If(r_beat.group == g):
                    m.d.sync += [scores[g * P + lane].eq(r_beat.scores[lane])
                                 for lane in range(P)]
        m.d.comb += [
            self.output.valid.eq(argmax.output.valid),
            argmax.output.ready.eq(self.output.ready),
            self.output.payload.index.eq(argmax.output.payload.index),
        ]
        m.d.comb += [self.output.payload.scores[c].eq(scores[c]) for c in range(self.classes)]
        return m


class LayerCore(wiring.Component):
    """One layer of the accelerator: spike stream in, spike stream (or readout result) out.

    ``Padding -> DataflowOrchestrator -> SynapseArray -> OutputCollector (or
    ReadoutCollector) -> MaxPool (optional)``, connected stream to stream; every stage has
    valid/ready backpressure, so cores chain through FIFOs in any rhythm. Frames follow each
    other back to back (the orchestrator's buffer already takes the next frame's first rows
    while the last windows of a frame are replayed).

    Parameters
    ----------
    layer : SynapticLayer
        A conv or fc layer of the artifact (weights, bias, threshold, neuron).
    p_co : int
        Output channels per group ``P_Co`` (detector lanes), ``1 <= p_co <= Co``.
    p_ci : int
        Input channels per window chunk ``P_Ci``.
    T : int
        Time steps.
    input_bits : int
        ``1`` for a spiking input; the first layer's ``input_bits``-bit input arrives as bit
        planes (binary channel ``c * input_bits + b`` is bit ``b`` of input channel ``c``).
    pool : PoolLayer or None
        The max-pool that follows the layer, if any (not after the readout).
    depth : int
        Output FIFO entries per detector lane
        (:class:`~fireflys_hw.gateware.synapse.SynapseArray`).
    static_input : bool
        The input is the same at every time step (a direct-encoded first layer): the core
        takes one step per pixel (``Ci * input_bits``-bit beats), and the neuron lanes apply
        that one current at ``t = 0 .. T-1`` (:class:`~fireflys_hw.gateware.neuron.NeuronLanes`); the
        output is the same as without it.
    window_depth : int
        Window beats per detector lane FIFO (:class:`~fireflys_hw.gateware.synapse.SynapseArray`; 0:
        the lanes take each beat together).
    radix : bool
        A layer of a radix network (``docs/numeric-contract.md``): the lanes shift-add the
        digit planes and requantise, the pool takes the max of the values
        (:class:`~fireflys_hw.gateware.neuron.NeuronLanes`, :class:`~fireflys_hw.gateware.maxpool.MaxPool`).
    drop_empty : bool
        The orchestrator leaves out window chunks that are 0 at every step
        (:class:`~fireflys_hw.gateware.orchestrator.DataflowOrchestrator`).

    Members
    -------
    input : ``In(spike_stream(steps * Ci * input_bits))``
        ``H * W`` beats per frame (``layer.in_shape``), each a pixel at ``steps = T`` steps,
        or 1 with ``static_input``.
    output : ``Out(spike_stream(T * Co))``
        ``Ho' * Wo'`` beats per frame (after the pool if there is one); for the readout
        ``Out(stream.Signature(readout_beat(Co, score_bits)))``, one beat per frame.

    Attributes
    ----------
    padding, orchestrator, synapses, collector, pool : wiring.Component
        The stages (``pool`` may be ``None``), built at construction so that their parameters
        (buffer sizes, widths) can be read, and their streams probed in simulation for
        profiling, before elaboration.
    """

    def __init__(self, layer: SynapticLayer, *, p_co: int, p_ci: int, T: int,
                 input_bits: int = 1, pool: PoolLayer | None = None, depth: int = 16,
                 static_input: bool = False, window_depth: int = DEFAULT_WINDOW_DEPTH,
                 drop_empty: bool = True, radix: bool = False):
        if not isinstance(layer, SynapticLayer):
            raise TypeError(f"layer must be a SynapticLayer, not {layer!r}")
        check_positive("input_bits", input_bits)
        check_positive("p_co", p_co)
        check_positive("p_ci", p_ci)
        check_positive("T", T)
        if p_co > layer.out_channels:
            raise ValueError(f"p_co must be at most the layer's output channels "
                             f"({layer.out_channels}), not {p_co}")
        if pool is not None:
            if not isinstance(pool, PoolLayer):
                raise TypeError(f"pool must be a PoolLayer or None, not {pool!r}")
            if layer.is_readout:
                raise ValueError("pool must be None after the readout layer")
            if tuple(pool.in_shape) != tuple(layer.out_shape):
                raise ValueError(f"pool.in_shape must be the layer's out_shape "
                                 f"{list(layer.out_shape)}, not {list(pool.in_shape)}")
        self.layer = layer
        self.p_co = p_co
        self.p_ci = p_ci
        self.T = T
        self.input_bits = input_bits
        self.static_input = bool(static_input)
        ci, h, w = layer.in_shape
        co, oh, ow = layer.out_shape
        pad = layer.padding if layer.padding else 0
        self.in_channels = ci * input_bits
        self.synapses = SynapseArray(layer, p_co, p_ci, T, input_bits, depth,
                                     static_input=self.static_input,
                                     window_depth=window_depth, radix=radix)
        self.radix = bool(radix)
        steps = self.synapses.steps
        # one beat per pixel: padding and pool see T * C-bit words, one "step" each
        self.padding = Padding(self.in_channels * steps, h, w, 1, pad)
        self.orchestrator = DataflowOrchestrator(
            self.in_channels, h + 2 * pad, w + 2 * pad, steps, window_kernel(layer), p_ci,
            self.synapses.n_groups, drop_empty=drop_empty)
        if layer.is_readout:
            self.score_bits = self.synapses.lanes.widths.score_bits
            self.collector = ReadoutCollector(co, p_co, self.score_bits)
            out_sig = stream.Signature(readout_beat(co, self.score_bits))
        else:
            self.collector = OutputCollector(co, p_co, T)
            out_sig = spike_stream(T * co)
        # a radix layer's pool is the max of its T-bit values, not the OR of their digits
        self.pool = None if pool is None else MaxPool(T * co, oh, ow, 1, pool.kernel,
                                                      planes=T if radix else 0)
        super().__init__({
            "input": In(spike_stream(self.in_channels * steps)),
            "output": Out(out_sig),
        })

    @property
    def n_groups(self) -> int:
        return self.synapses.n_groups

    @property
    def n_chunks(self) -> int:
        return self.orchestrator.n_chunks

    @property
    def steps(self) -> int:
        """Time steps per input beat: ``T``, or 1 with ``static_input``."""
        return self.synapses.steps

    @property
    def beat_bits(self) -> int:
        """Bits per input beat, ``steps * Ci * input_bits``."""
        return self.in_channels * self.steps

    @property
    def beats_per_frame(self) -> int:
        """Input beats per frame, ``H * W`` (one per pixel)."""
        _, h, w = self.layer.in_shape
        return h * w

    @property
    def buffer_bits(self) -> dict:
        """On-chip buffer bits by stage (the weights are in :attr:`synapses`)."""
        return {"orchestrator": self.orchestrator.buffer_bits,
                "collector": getattr(self.collector, "buffer_bits", 0),
                "pool": 0 if self.pool is None else self.pool.buffer_bits}

    def elaborate(self, platform):
        m = Module()
        m.submodules.padding = self.padding
        m.submodules.orchestrator = self.orchestrator
        m.submodules.synapses = self.synapses
        m.submodules.collector = self.collector
        wiring.connect(m, wiring.flipped(self.input), self.padding.input)
        wiring.connect(m, self.padding.output, self.orchestrator.input)
        wiring.connect(m, self.orchestrator.output, self.synapses.input)
        wiring.connect(m, self.synapses.output, self.collector.input)
        if self.pool is None:
            wiring.connect(m, self.collector.output, wiring.flipped(self.output))
        else:
            m.submodules.pool = self.pool
            wiring.connect(m, self.collector.output, self.pool.input)
            wiring.connect(m, self.pool.output, wiring.flipped(self.output))
        return m


def core_cycles(layer: SynapticLayer, spikes: np.ndarray, p_co: int, p_ci: int,
                input_bits: int = 1, static_input: bool = False,
                window_depth: int = DEFAULT_WINDOW_DEPTH) -> int:
    """Modelled compute cycles of one frame ``spikes[t, c, h, w]`` through a
    :class:`LayerCore`: ``sum over blocks of B consecutive (pixel, group) windows of max(B *
    n_chunks, max over lanes of the block's pairs)``, a pair being effectual in some step (see
    the module docstring; add the fill ``(Kh - 1) * Wp`` for a frame that follows another, or
    ``span`` for the very first)."""
    pw = pack_weights(layer, p_co, p_ci, input_bits)
    steps = 1 if static_input else len(spikes)
    beats = im2col_windows(spikes, layer, p_ci, p_co, input_bits, static_input,
                           drop_empty=False)
    words = np.array([pw.bitmap_words(lane) for lane in range(p_co)], dtype=object)
    block = lane_block(window_depth, pw.n_chunks)
    total = 0
    pairs = [0] * p_co
    windows = 0
    for beat in beats:
        index = beat["group"] * pw.n_chunks + beat["chunk"]
        x = any_step(beat["spikes"], p_ci, steps)
        if x:
            for lane in range(p_co):
                pairs[lane] += bin(x & words[lane, index]).count("1")
        if beat["last_chunk"]:
            windows += 1
            if windows == block:
                total += max(windows * pw.n_chunks, max(pairs))
                pairs, windows = [0] * p_co, 0
    if windows:
        total += max(windows * pw.n_chunks, max(pairs))
    return total


def core_cycles_estimate(layer: SynapticLayer, p_co: int, p_ci: int, T: int,
                         spike_density: float, input_bits: int = 1,
                         imbalance: float = 1.0, static_input: bool = False) -> float:
    """The planner's estimate of the cycles per frame of a :class:`LayerCore` from densities
    (module docstring): ``Ho * Wo * G * max(n_chunks, Kh*Kw*Ci' * s_any * s2 * imbalance)``
    plus the window fill ``(Kh - 1) * Wp``, ``s_any = 1 - (1 - s1) ** S`` (``S = 1`` for a
    ``static_input``, else ``T``)."""
    co, oh, ow = layer.out_shape
    ci = layer.in_channels * input_bits
    kh, kw = window_kernel(layer)
    groups = -(-co // p_co)
    n_chunks = kh * kw * -(-ci // p_ci)
    s2 = float(np.count_nonzero(layer.weight)) / layer.weight.size
    steps = 1 if static_input else T
    s_any = 1.0 - (1.0 - spike_density) ** steps
    pairs = kh * kw * ci * s_any * s2 * imbalance
    wp = layer.in_shape[2] + 2 * layer.padding
    return oh * ow * groups * max(n_chunks, pairs) + (kh - 1) * wp
