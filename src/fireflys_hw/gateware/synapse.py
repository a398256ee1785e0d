"""The synapse array of a layer core: ``P_Co`` sparsity detectors and their neuron lanes."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fireflys_sw.artifact import SynapticLayer

from ..compiler.base import WINDOW_DEPTH
from ..compiler.cycles import DETECTOR_TAIL
from ..compiler.weights import PackedWeights, pack_weights
from .detector import DetectorModel, SparsityDetector
from ..compiler.reference import any_step
from .neuron import NeuronLanes, neuron_latency
from .streams import LaneQueue, window_stream

__all__ = ["SynapseArray", "array_cycles", "DEFAULT_WINDOW_DEPTH"]

#: Window beats each lane's FIFO holds by default (:class:`SynapseArray`). Measured on a random
#: SCNN5 (``random_artifact("scnn5", weight_sparsity=0.9, spike_density=0.15)``, 4 images,
#: Verilator; the detectors before the end-mark hand-over and the A0 drop, the cycle model with
#: one-step blocks): the busiest core's excess over the cycle model fell from 18 % (lanes
#: joined) to 8 % (4 beats), 3.5 % (8) and 2 % (16); 32 beats were no faster (a lane drifts
#: further, the frame interval is set elsewhere). A FIFO of 8, 16 or 32 entries costs the same
#: LUT RAM (32 deep); the pointers grow by a bit each. Defined once, in the compiler, whose
#: cycle and resource models assume it.
DEFAULT_WINDOW_DEPTH = WINDOW_DEPTH


def _check(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


class SynapseArray(wiring.Component):
    """One layer's synaptic computation: window stream in, one beat per (pixel, group) out
    (every lane's spikes at every step, or the readout's scores).

    ``P_Co`` :class:`~fireflys_hw.gateware.detector.SparsityDetector` lanes, each with its own
    bitmap ROM and compressed weight store (:func:`~fireflys_hw.compiler.weights.pack_weights`),
    feed a :class:`~fireflys_hw.gateware.neuron.NeuronLanes`. Lane ``l`` computes output channel
    ``group * P_Co + l``; ``Co`` need not be a multiple of ``P_Co`` (the last group's extra
    lanes hold no weights and emit 0).

    Decoupled lanes: the window stream is broadcast into one FIFO of ``window_depth`` beats
    per lane, and each detector takes its beats from its own FIFO at its own pace (one cycle
    per effectual pair, empty chunks dropped in its look-ahead). A beat is taken when every
    lane's FIFO has room (a registered flag: at most ``window_depth - 2`` beats in every FIFO
    in the cycle before, with ``window_depth >= 2``), so the lanes drift apart by up to
    ``window_depth`` beats: a lane busy
    on a dense chunk no longer holds the others back, and over a few chunks the busy lanes'
    pairs and the idle lanes' slack even out. (With ``window_depth = 0`` there are no FIFOs
    and a beat is taken when every detector can take it, a join with only the detectors'
    two-beat look-ahead: one lane's busy chunk stalls them all.) Results leave each lane at its
    own time into its own output FIFO (``depth`` entries) and are joined into one beat there.

    Admission (credit): the array takes a window beat only while fewer than ``depth`` results
    are in flight (their window's last chunk taken in, the result not yet popped from the
    lanes' output FIFOs, or popped in the previous cycle: the pop reaches the credit from a
    flip-flop; a result counts from the input broadcast, whichever lane is behind),
    so the detector and neuron pipelines never stall and no output FIFO overflows:
    backpressure acts at the input only. The windows queued in a lane's window FIFO count too,
    so ``depth`` also bounds how far ahead the FIFOs can run when windows are short (one
    chunk); 16 results (the default) kept one window per cycle in every case measured.

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
        ``> 1`` for the first layer (bit-plane input, see :mod:`fireflys_hw.compiler.weights`).
    depth : int
        Output FIFO entries per lane (results in flight, see above).
    radix : bool
        A layer of a radix network (:class:`~fireflys_hw.gateware.neuron.NeuronLanes`); the
        detectors serve its digit planes unchanged.
    static_input : bool
        The layer's input is the same at every time step (a direct-encoded first layer): the
        window chunks carry one step, whose current the neuron lanes apply at ``t = 0 ..
        T-1`` (:class:`~fireflys_hw.gateware.neuron.NeuronLanes`); the output is the same as without
        it.
    window_depth : int
        Window beats per lane FIFO (0: none, the lanes take each beat together);
        :data:`DEFAULT_WINDOW_DEPTH` by default.

    Members
    -------
    input : ``In(window_stream(p_ci, n_chunks, steps, n_groups))``
        ``steps`` is ``T``, or 1 with ``static_input``.
    output : ``Out(stream.Signature(lane_spike_beat(p_co, T, n_groups)))``
        per output pixel, per group one beat; for the readout
        ``Out(stream.Signature(lane_score_beat(p_co, score_bits, n_groups)))``, per output
        pixel one beat per group.

    Attributes
    ----------
    credit : Signal
        High while fewer than ``depth`` results are in flight (the admission rule above); the
        accelerator's profiling counters read it.
    working : Signal
        High while some lane's FIFO of window beats holds a beat (its detector has work; low
        without lane FIFOs); the profiling counters read it.
    """

    def __init__(self, layer: SynapticLayer, p_co: int, p_ci: int, T: int,
                 input_bits: int = 1, depth: int = 16, static_input: bool = False,
                 window_depth: int = DEFAULT_WINDOW_DEPTH, radix: bool = False):
        if not isinstance(layer, SynapticLayer):
            raise TypeError(f"layer must be a SynapticLayer, not {layer!r}")
        _check("p_co", p_co)
        _check("p_ci", p_ci)
        _check("T", T)
        _check("input_bits", input_bits)
        _check("depth", depth, 2)
        _check("window_depth", window_depth, 0)
        if p_co > layer.out_channels:
            raise ValueError(f"p_co must be at most the layer's output channels "
                             f"({layer.out_channels}), not {p_co}")
        self.layer = layer
        self.p_co = p_co
        self.p_ci = p_ci
        self.T = T
        self.input_bits = input_bits
        self.depth = depth
        self.window_depth = window_depth
        self.static_input = bool(static_input)
        self.weights: PackedWeights = pack_weights(layer, p_co, p_ci, input_bits)
        self.lanes = NeuronLanes(layer, p_co, T, self.weights.weight_bits,
                                 (1 << input_bits) - 1, depth, self.static_input,
                                 radix=radix)
        self.credit = Signal(init=1)
        self.working = Signal()
        super().__init__({
            "input": In(window_stream(p_ci, self.n_chunks, self.steps, self.n_groups)),
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

    @property
    def steps(self) -> int:
        """Time steps a window chunk carries: ``T``, or 1 with ``static_input``."""
        return self.lanes.steps

    @property
    def window_bits(self) -> int:
        """Bits of one window beat (a lane FIFO's width)."""
        return self.input.payload.shape().size

    def elaborate(self, platform):
        m = Module()
        m.submodules.lanes = lanes = self.lanes
        detectors = []
        for lane in range(self.p_co):
            # with lane FIFOs, a block RAM table is read a cycle early at the next head
            det = SparsityDetector(self.weights, lane, self.steps,
                                   lookahead=self.window_depth > 0)
            m.submodules[f"detector{lane}"] = det
            wiring.connect(m, det.events, lanes.events[lane])
            detectors.append(det)

        # results in flight: window beats that will produce an output beat, taken in but
        # not yet popped at the output; a thermometer code (``inflight[i]``: more than ``i``),
        # so that the hand-shakes steer one LUT per flip-flop, not an up/down counter's carry
        # chain (issue 14)
        inflight = Signal(self.depth)
        credit = self.credit
        room = Signal()
        take = Signal()
        # with staged window queues, ready is one register kept equal to room & credit (set
        # from both next values): the orchestrator's issue starts at a flip-flop that the
        # placer can put by it, not a LUT after two (core 4's credit -> ready -> issue ->
        # window end -> buffer level: the 121.61 MHz build's critical path, issue 14)
        ready_r = Signal(init=1)
        room_next = Signal()
        credit_next = Signal()
        staged = self.window_depth >= 2
        m.d.comb += [
            self.input.ready.eq(ready_r if staged else room & credit),
            take.eq(self.input.valid & self.input.ready),
        ]
        if self.window_depth:
            # a small distributed RAM read into a register (the detector's table read starts
            # at a flip-flop); a beat written in one cycle is at the detector's input in the
            # next (LaneQueue: SyncFIFO's timing)
            if staged:
                # the beat into a register, written into the FIFOs a cycle later: the take
                # reaches flip-flops, not every lane FIFO's write logic (a fan-out across the
                # core, core 1's path on the ECP5, issue 14); the data register loads every
                # cycle (the stream holds a beat until it is taken). The valid has a copy per
                # lane (below), so that no one flip-flop drives every lane's fill logic (core
                # 4's path alone on the ECP5 after the fifth round, 7.95 ns, 6.7 of it routing).
                w_valid = Signal()
                w_data = Signal(self.window_bits)
                m.d.sync += [w_valid.eq(take), w_data.eq(self.input.payload)]
            else:
                w_valid, w_data = take, self.input.payload
            queues = []
            for lane, det in enumerate(detectors):
                # the pop from a flip-flop: the detector's hand-shake chain ends at one
                # register, not at every register of a queue placed away from it (issue 14)
                q = LaneQueue(self.window_bits, self.window_depth, registered_read=True,
                              registered_pop=True)
                m.submodules[f"window{lane}"] = q
                queues.append(q)
                if staged:
                    # this lane's copy of the write register's valid: the take ANDed with
                    # the queue's own "not full", which the registered room flag makes always
                    # true when a beat is taken (so the copy equals w_valid), and which keeps
                    # the copies apart in synthesis (Yosys merges flip-flops with the same
                    # input into one)
                    lane_valid = Signal(name=f"w_valid{lane}")
                    m.d.sync += lane_valid.eq(take & q.w_rdy)
                else:
                    lane_valid = w_valid
                m.d.comb += [
                    q.w_data.eq(w_data),
                    q.w_en.eq(lane_valid),
                    det.input.payload.eq(q.r_data),
                    det.next_head.eq(q.next_head),
                    det.next_second.eq(q.next_second),
                    det.next_pick.eq(q.next_pick),
                    det.input.valid.eq(q.r_rdy),
                    q.r_en.eq(det.input.ready),
                ]
            if staged:
                # registered: room in the next cycle if every FIFO holds at most depth - 2
                # beats now, counting the one in the write register (whatever this cycle
                # writes and reads), so the AND over the lanes is off the ready path; a FIFO
                # still fills up, two cycles later
                room_r = Signal(init=1)
                m.d.comb += room_next.eq(Cat(Mux(w_valid, q.below(self.window_depth - 2)
                                                 if self.window_depth > 2 else 0,
                                                 q.below(self.window_depth - 1))
                                             for q in queues).all())
                m.d.sync += room_r.eq(room_next)
                m.d.comb += room.eq(room_r)
                m.d.comb += self.working.eq(Cat(*(q.r_rdy for q in queues), w_valid).any())
            else:
                m.d.comb += room.eq(Cat(q.w_rdy for q in queues).all())
                m.d.comb += self.working.eq(Cat(q.r_rdy for q in queues).any())
        else:
            m.d.comb += room.eq(Cat(det.input.ready for det in detectors).all())
            for det in detectors:
                m.d.comb += [
                    det.input.payload.eq(self.input.payload),
                    det.input.valid.eq(take),
                ]
        wiring.connect(m, wiring.flipped(self.output), lanes.output)

        taken = take & self.input.payload.last_chunk
        # a pop counts a cycle later, from a flip-flop: the downstream hand-shake (a link
        # FIFO's fill compare, through a max-pool's ready) does not reach across the core into
        # the credit and the input's ready (core 1's path, the ULX3S build's critical one at
        # 110.7 MHz, issue 14); in flight is over-counted by one for a cycle, which only
        # matters when the credit is spent
        popped = Signal()
        m.d.sync += popped.eq(self.output.valid & self.output.ready)
        # credit = fewer than depth in flight, a register kept equal to that (set from the
        # code's bits, picked like its next value: no compare after the hand-shake)
        m.d.comb += credit_next.eq(credit)
        with m.If(taken & ~popped):
            m.d.sync += inflight.eq(Cat(Const(1, 1), inflight[:-1]))
            m.d.comb += credit_next.eq(~inflight[self.depth - 2] if self.depth >= 2 else 0)
        with m.Elif(popped & ~taken):
            m.d.sync += inflight.eq(inflight[1:])
            m.d.comb += credit_next.eq(1)
        m.d.sync += [credit.eq(credit_next), ready_r.eq(room_next & credit_next)]
        return m


def array_cycles(weights: PackedWeights, beats: list[dict], readout: bool = False, *,
                 T: int = 1, steps: int | None = None,
                 window_depth: int = DEFAULT_WINDOW_DEPTH, depth: int = 16,
                 walk: bool = False) -> list[int]:
    """The exact cycle in which each output beat of a :class:`SynapseArray` is valid, for
    ``beats`` (window-stream dicts, chunks carrying ``steps`` steps, ``T`` by default)
    offered back to back from cycle 0 and an always-ready output (the register-transfer
    recurrence, evaluated cycle by cycle; tests check it).

    Per cycle: the input moves when every lane FIFO had room one cycle earlier (``level <
    window_depth - 1`` at the previous cycle's start, a registered flag, high in cycle 0;
    ``level < window_depth`` at this cycle's start when ``window_depth`` is 1) and fewer than
    ``depth`` results are in flight (a result popped in a cycle counts as in flight through
    the next; with ``window_depth >= 2`` a FIFO's level counts the
    beat in the write register); a beat taken in a cycle is written into the lane FIFOs in the
    next (``window_depth >= 2``: the array's write register) or the same (``window_depth =
    1``), and a beat written in a cycle is at its detector's input in the next; each detector
    runs its own recurrence (:class:`~fireflys_hw.gateware.detector.DetectorModel`, a beat's
    work being
    ``popcount(OR over t of spikes & bitmap)``) and takes its FIFO's head when its R is free.
    With ``window_depth = 0`` the lanes take each beat together
    (:func:`~fireflys_hw.gateware.detector.lockstep_cycles`). A window's result is valid
    :func:`~fireflys_hw.gateware.neuron.neuron_latency` cycles after the last lane's ``end`` slot of
    the window (the slot is at ``events`` ``DETECTOR_TAIL`` cycles after B emits it) and popped
    at once. For a
    frame: ``cycles = last output cycle + 1``.

    ``walk``: ``beats`` is every chunk of the window stream, empty ones included
    (``drop_empty=False``), and an orchestrator that drops the empty ones sits in front: its
    output register takes the next chunk in every cycle in which it is empty, holds a dropped
    chunk (0 at every step, not a window's last) or its beat is taken (the first chunk is
    there in cycle 1).
    """
    steps = T if steps is None else steps
    n = len(beats)
    words = [weights.bitmap_words(lane) for lane in range(weights.p_co)]
    ors = [any_step(b["spikes"], weights.p_ci, steps) for b in beats]
    lanes = [[(bin(x & w[b["group"] * weights.n_chunks + b["chunk"]]).count("1"),
               bool(b["last_chunk"])) for b, x in zip(beats, ors)] for w in words]
    dropped = [walk and not b["spikes"] and not b["last_chunk"] for b in beats]
    step_ends = [k for k, b in enumerate(beats) if b["last_chunk"]]
    latency = neuron_latency(T, readout)
    dets = [DetectorModel() for _ in lanes]
    queues = [[] for _ in lanes]          # (cycle written, beat index)
    ends = [[] for _ in lanes]            # per lane, the cycle of each window's end slot
    results = 0                           # results all lanes have finished
    outputs, pops = [], []
    taken = 0
    room = True                           # the registered room flag
    nxt = 0                               # the beat offered (walk: in the output register)
    pos = 0                               # walk: the next chunk to read
    cycle = 0
    while nxt < n or not all(d.idle for d in dets) or any(queues):
        # a pop counts from the cycle after next (the array registers it)
        inflight = taken - sum(1 for c in pops if c < cycle - 1)
        credit = inflight < depth
        offered = nxt < n and (not walk or (pos > nxt and not dropped[nxt]))
        if window_depth >= 2:
            take = offered and credit and room
            room = all(len(q) < window_depth - 1 for q in queues)
        elif window_depth:
            take = offered and credit and all(len(q) < window_depth for q in queues)
        else:
            take = offered and credit and all(d.ready for d in dets)
        for lane, det in enumerate(dets):
            if window_depth:
                q = queues[lane]
                head = q[0][1] if q and q[0][0] < cycle and det.ready else None
                if head is not None:
                    q.pop(0)
            else:
                head = nxt if take else None
            end = det.clock(None if head is None else lanes[lane][head])
            if end:
                ends[lane].append(cycle + DETECTOR_TAIL)
        if take:
            for q in queues if window_depth else ():
                # window_depth >= 2: through the write register, a cycle later
                q.append((cycle + (window_depth >= 2), nxt))
            taken += bool(beats[nxt]["last_chunk"])
        if walk:
            # the orchestrator's output register: empty, dropped or taken -> the next read
            if nxt < n and (pos <= nxt or dropped[nxt] or take):
                nxt, pos = pos, pos + 1
        elif take:
            nxt += 1
        # windows every lane has ended: their results
        while all(len(e) > results for e in ends):
            ready = max(e[results] for e in ends) + latency
            start = max(ready, outputs[-1] + 1) if outputs else ready
            outputs.append(start)
            pops.append(start)
            results += 1
        cycle += 1
    return outputs
