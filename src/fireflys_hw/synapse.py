"""The synapse array of a layer core: ``P_Co`` sparsity detectors and their neuron lanes."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fireflys_sw.artifact import SynapticLayer

from .detector import SparsityDetector, lockstep_cycles
from .neuron import NEURON_LATENCY, NeuronLanes
from .streams import window_stream
from .weights import PackedWeights, pack_weights

__all__ = ["SynapseArray", "array_cycles"]


def _check(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


class SynapseArray(wiring.Component):
    """One layer's synaptic computation: window stream in, one beat per (pixel, group, t) out.

    ``P_Co`` :class:`~fireflys_hw.detector.SparsityDetector` lanes, each with its own bitmap
    ROM and compressed weight store (:func:`~fireflys_hw.weights.pack_weights`), feed a
    :class:`~fireflys_hw.neuron.NeuronLanes`. Lane ``l`` computes output channel ``group * P_Co
    + l``; ``Co`` need not be a multiple of ``P_Co`` (the last group's extra lanes hold no
    weights and emit 0).

    Keeping the lanes in step: the window stream is broadcast, and a beat is taken when every
    detector can take it (a join), so all lanes work on the same chunk window. A lane with more
    effectual pairs in a chunk holds the others back for those cycles, but each detector has a
    two-beat look-ahead (A0, A1) in which it drops empty chunks while it works, so a lane
    lagging on one chunk catches up on the following empty ones. Results leave each lane at its
    own time into its own output FIFO (``depth`` entries) and are joined into one beat there.
    The array admits a window beat only while fewer than ``depth`` results are in flight (taken
    in but not yet popped from ``output``), so the detector and neuron pipelines never stall
    and the FIFOs never overflow: backpressure acts at the input only.

    Parameters
    ----------
    layer : SynapticLayer
        The layer (weights, bias, threshold, neuron).
    p_co : int
        Lanes ``P_Co`` (``1 <= p_co <= Co``).
    p_ci : int
        Bits per window chunk ``P_Ci``.
    T : int
        Time steps.
    input_bits : int
        ``> 1`` for the first layer (bit-plane input, see :mod:`fireflys_hw.weights`).
    depth : int
        Output FIFO entries per lane; at least 12 sustains one time step per cycle.

    Members
    -------
    input : ``In(window_stream(p_ci, n_chunks, T, n_groups))``
    output : ``Out(stream.Signature(lane_spike_beat(p_co, T, n_groups)))``
        per output pixel, ``for group: for t`` one beat; for the readout
        ``Out(stream.Signature(lane_score_beat(p_co, score_bits, n_groups)))``, per output
        pixel one beat per group.
    """

    def __init__(self, layer: SynapticLayer, p_co: int, p_ci: int, T: int,
                 input_bits: int = 1, depth: int = 16):
        if not isinstance(layer, SynapticLayer):
            raise TypeError(f"layer must be a SynapticLayer, not {layer!r}")
        _check("p_co", p_co)
        _check("p_ci", p_ci)
        _check("T", T)
        _check("input_bits", input_bits)
        _check("depth", depth, 2)
        if p_co > layer.out_channels:
            raise ValueError(f"p_co must be at most the layer's output channels "
                             f"({layer.out_channels}), not {p_co}")
        self.layer = layer
        self.p_co = p_co
        self.p_ci = p_ci
        self.T = T
        self.input_bits = input_bits
        self.depth = depth
        self.weights: PackedWeights = pack_weights(layer, p_co, p_ci, input_bits)
        self.lanes = NeuronLanes(layer, p_co, T, self.weights.weight_bits,
                                 (1 << input_bits) - 1, depth)
        super().__init__({
            "input": In(window_stream(p_ci, self.n_chunks, T, self.n_groups)),
            "output": Out(stream.Signature(self.lanes.beat_layout)),
        })

    @property
    def n_groups(self) -> int:
        return self.weights.n_groups

    @property
    def n_chunks(self) -> int:
        return self.weights.n_chunks

    @property
    def readout(self) -> bool:
        return self.layer.is_readout

    def elaborate(self, platform):
        m = Module()
        m.submodules.lanes = lanes = self.lanes
        detectors = []
        for lane in range(self.p_co):
            det = SparsityDetector(self.weights, lane, self.T)
            m.submodules[f"detector{lane}"] = det
            wiring.connect(m, det.events, lanes.events[lane])
            detectors.append(det)

        # results in flight: window beats that will produce an output beat, taken in but
        # not yet popped at the output
        inflight = Signal(range(self.depth + 1))
        credit = Signal()
        all_ready = Signal()
        m.d.comb += [
            credit.eq(inflight < self.depth),
            all_ready.eq(_all(det.input.ready for det in detectors)),
            self.input.ready.eq(all_ready & credit),
        ]
        for det in detectors:
            m.d.comb += [
                det.input.payload.eq(self.input.payload),
                det.input.valid.eq(self.input.valid & all_ready & credit),
            ]
        wiring.connect(m, wiring.flipped(self.output), lanes.output)

        beat = self.input.payload
        produces = beat.last_chunk & beat.last_step if self.readout else beat.last_chunk
        taken = self.input.valid & self.input.ready & produces
        popped = self.output.valid & self.output.ready
        with m.If(taken & ~popped):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(popped & ~taken):
            m.d.sync += inflight.eq(inflight - 1)
        return m


def array_cycles(weights: PackedWeights, beats: list[dict], readout: bool = False) -> list[int]:
    """The exact cycle in which each output beat of a :class:`SynapseArray` is valid, for
    ``beats`` (window-stream dicts) back to back from cycle 0 and an always-ready output, as
    long as the results in flight stay below ``depth`` (true for ``depth >= 12``).

    Each lane runs the detector recurrence (:func:`~fireflys_hw.detector.lockstep_cycles`,
    which includes the join at the input); the beat of a time step (readout: of a group's last
    step) is valid ``NEURON_LATENCY`` cycles after the last lane's ``end`` slot of that step.
    For a frame: ``cycles = last output cycle + 1``.
    """
    lanes = []
    for lane in range(weights.p_co):
        words = weights.bitmap_words(lane)
        lanes.append([(bin(b["spikes"] & words[b["group"] * weights.n_chunks + b["chunk"]])
                       .count("1"), bool(b["last_chunk"])) for b in beats])
    slots = lockstep_cycles(lanes, with_ends=True)
    ends = [[c for c, end in lane_slots if end] for lane_slots in slots]
    produces = [bool(b["last_step"]) or not readout for b in beats if b["last_chunk"]]
    return [max(e[k] for e in ends) + NEURON_LATENCY
            for k, keep in enumerate(produces) if keep]


def _all(signals):
    result = None
    for s in signals:
        result = s if result is None else result & s
    return result
