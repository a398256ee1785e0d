"""The neuron lanes of a synapse array (LIF / IF / readout) and the readout's argmax."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fireflys_sw.artifact import SynapticLayer
from fireflys_sw.golden import layer_widths, signed_bits
from fireflys_sw.spec import NeuronKind

from ..compiler.cycles import readout_registers
from .streams import LaneQueue, effectual_event

__all__ = ["NeuronLanes", "Argmax", "lane_spike_beat", "lane_score_beat", "prediction_beat",
           "neuron_latency", "readout_registers"]


def neuron_latency(T: int, readout: bool) -> int:
    """Cycles from a window's ``end`` slot at ``events`` to the beat being valid at ``output``
    when the output FIFOs are empty: accumulator register, then the ``T`` updates of two
    register stages each, the spikes' register that writes the FIFO, then the FIFO; the
    readout sums into the FIFO through :func:`readout_registers` stages."""
    return 2 + readout_registers(T) if readout else 2 * T + 2


def lane_spike_beat(p_co: int, T: int, n_groups: int) -> data.StructLayout:
    """One output pixel of one group of ``p_co`` output channels at every step: bit ``t * p_co
    + l`` of ``spikes`` is channel ``group * p_co + l`` at step ``t``."""
    return data.StructLayout({"spikes": T * p_co, "group": range(max(n_groups, 2))})


def lane_score_beat(p_co: int, score_bits: int, n_groups: int) -> data.StructLayout:
    """The readout scores ``sum_t I`` of one group of ``p_co`` output channels."""
    return data.StructLayout({"scores": data.ArrayLayout(signed(score_bits), p_co),
                              "group": range(max(n_groups, 2))})


def prediction_beat(classes: int, score_bits: int) -> data.StructLayout:
    """The readout's argmax (``index``, lowest on ties) and its score."""
    return data.StructLayout({"index": range(max(classes, 2)), "score": signed(score_bits)})


class NeuronLanes(wiring.Component):
    """``P_Co`` neuron lanes: accumulate each lane's effectual weights into the ``T`` currents
    of a window, run the ``T`` neuron updates, and emit one beat per (output pixel, group) with
    every lane's spikes at every step.

    Per lane (``c = group * p_co + lane``) and window, for ``t = 0 .. T-1``::

        I[t] = B[c] + sum of the weights of the pairs that spike at step t
                                                # T accumulators, each starting at B[c]
        H = V + ((I[t] - V) >> leak_shift)   (LIF)  or  H = V + I[t]   (IF)  # charge
        s[t] = H >= TH[c]                                                  # fire
        V = 0 if s[t] else H                                               # reset
        V = 0 before t = 0 of every window (every output pixel starts afresh)

    A pair's weight arrives once with its spike bits at every step (``steps`` of
    :func:`~fireflys_hw.gateware.detector.effectual_event`) and is added into the accumulators of those
    steps, all in the same cycle. The readout (``neuron NONE``) instead emits ``score[c] =
    sum_t I[t]``. Bias and threshold are per-group ROMs (asynchronous read: they are small,
    distributed RAM). Register widths come from :func:`fireflys_sw.golden.layer_widths`, so no
    value can overflow. Lanes past ``Co`` (the padded last group) have bias 0 and never fire /
    score 0.

    The ``T`` updates follow the window in a chain of ``T`` register stages (the membrane
    recurrence over ``t`` is the only sequential part): stage ``t`` charges, fires and resets
    with ``I[t]`` and hands ``V`` and the currents still to come to stage ``t + 1``, so a lane
    can finish a window every cycle with one update (one subtract, shift, add, compare) per
    cycle in each stage, not ``T`` of them in series.

    The lanes' ``end`` slots arrive at different cycles (each lane has its own effectual
    pairs), so every lane writes its result into its own FIFO of ``depth`` entries; ``output``
    is valid when every lane's FIFO holds its next result (a join), and pops them together. The
    FIFOs are written without looking at their fill level: the owner admits at most ``depth``
    windows that are not yet popped from ``output`` (see
    :class:`~fireflys_hw.gateware.synapse.SynapseArray`).

    Latency from a window's ``end`` slot at ``events`` to its beat at ``output``
    (:func:`neuron_latency`): accumulator register, ``T`` updates of two stages each, the
    spikes' register in front of the FIFO, FIFO: ``2T + 2`` cycles; the readout: accumulator
    register, the sum's :func:`readout_registers` stages (1 for ``T`` = 3, 4), FIFO: 2 cycles
    more.

    Static input (``static_input=True``, a direct-encoded first layer): the input is the same
    at every time step, so is the current, and the detectors compute it once per (pixel,
    group): the events carry one step. Each lane has one accumulator, ``I[t] = I`` for every
    ``t`` in the chain above, and the readout emits ``T * I``. The beats leaving are the same
    as without it.

    Parameters
    ----------
    layer : SynapticLayer
        Bias, threshold, neuron kind and leak of the layer.
    p_co : int
        Lanes.
    T : int
        Time steps.
    weight_bits : int
        Width of the incoming weights (:attr:`PackedWeights.weight_bits`).
    input_max : int
        Largest input value (1 for spikes; ``2**input_bits - 1`` for the first layer), for the
        widths.
    depth : int
        Entries of each lane's output FIFO.
    static_input : bool
        The events carry one step, whose current is applied at every step (above).
    radix : bool
        A layer of a radix network (E3NE's radix encoding, ``docs/numeric-contract.md``):
        each lane has one accumulator, and a pair whose input digits are ``x_t`` adds
        ``sum_t x_t * (w << (T-1-t))`` (a shift-add over the digit planes, the input's
        ``T``-bit value times ``w``); with ``static_input`` (the first layer) the events carry
        the input's bit planes and the pair adds ``w`` as for LIF. At the window's end
        ``Y = min(max(round_shift(acc, s[c]), 0), 2^T - 1)`` (``s`` a per-group ROM like the
        threshold, ``round_shift`` computed as ``(((acc << 1) >> s) + 1) >> 1``), whose
        digits, most significant first, are the beat's ``T`` spikes; the result passes
        ``2T - 1`` more registers so that the latency is the LIF chain's (one cycle model for
        both). The readout emits ``acc``.

    Members
    -------
    events : ``In(stream.Signature(effectual_event(weight_bits, steps, n_groups),
    always_ready=True)).array(p_co)``
        One event stream per lane, from the sparsity detectors; ``steps`` is ``T``, or 1 with
        ``static_input``.
    output : ``Out(stream.Signature(lane_spike_beat(p_co, T, n_groups)))``
        or, for the readout, ``Out(stream.Signature(lane_score_beat(p_co, score_bits,
        n_groups)))``.
    """

    def __init__(self, layer: SynapticLayer, p_co: int, T: int, weight_bits: int,
                 input_max: int = 1, depth: int = 16, static_input: bool = False,
                 radix: bool = False):
        if not isinstance(layer, SynapticLayer):
            raise TypeError(f"layer must be a SynapticLayer, not {layer!r}")
        for name, value in (("p_co", p_co), ("T", T), ("weight_bits", weight_bits),
                            ("input_max", input_max), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if p_co > layer.out_channels:
            raise ValueError(f"p_co must be at most the layer's output channels "
                             f"({layer.out_channels}), not {p_co}")
        self.layer = layer
        self.p_co = p_co
        self.T = T
        self.weight_bits = weight_bits
        self.depth = depth
        self.static_input = bool(static_input)
        self.radix = bool(radix)
        if layer.neuron is NeuronKind.RADIX and not self.radix:
            raise ValueError("a radix layer needs radix=True")
        if self.radix and layer.neuron not in (NeuronKind.RADIX, NeuronKind.NONE):
            raise ValueError(f"radix=True needs a radix layer or the readout, not "
                             f"{layer.neuron.value!r}")
        if self.radix:
            # digit planes carry T-bit values; a static (first-layer) input its own integers
            input_max = input_max if self.static_input else (1 << T) - 1
        self.widths = layer_widths(layer, input_max, T, radix=self.radix)
        self.n_groups = -(-layer.out_channels // p_co)
        event_sig = stream.Signature(effectual_event(weight_bits, self.steps, self.n_groups),
                                     always_ready=True)
        super().__init__({
            "events": In(event_sig).array(p_co),
            "output": Out(stream.Signature(self.beat_layout)),
        })

    @property
    def readout(self) -> bool:
        return self.layer.is_readout

    @property
    def steps(self) -> int:
        """Time steps in the events: ``T``, or 1 with ``static_input``."""
        return 1 if self.static_input else self.T

    @property
    def latency(self) -> int:
        """Cycles from a window's ``end`` slot at ``events`` to its beat at ``output`` when
        the FIFOs are empty (:func:`neuron_latency`)."""
        return neuron_latency(self.T, self.readout)

    @property
    def beat_layout(self) -> data.StructLayout:
        if self.readout:
            return lane_score_beat(self.p_co, self.widths.score_bits, self.n_groups)
        return lane_spike_beat(self.p_co, self.T, self.n_groups)

    @property
    def current_bits(self) -> int:
        """Accumulator width. Every partial sum ``B + (some of the step's weights)`` lies
        between the current bounds (they sum all negative / all positive weights), so the
        current's width holds the accumulator at every cycle, not only at the window's end."""
        return self.widths.current_bits

    def _per_lane(self, values: np.ndarray, pad: int) -> list[list[int]]:
        full = np.full(self.n_groups * self.p_co, pad, np.int64)
        full[:len(values)] = values
        full = full.reshape(self.n_groups, self.p_co)
        return [[int(v) for v in full[:, lane]] for lane in range(self.p_co)]

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        T, G, S = self.T, self.n_groups, self.steps
        cbits = self.current_bits
        gbits = range(max(G, 2))
        biases = self._per_lane(layer.bias, 0)
        bias_bits = max(2, signed_bits(int(np.min(layer.bias, initial=0)),
                                       int(np.max(layer.bias, initial=0))))
        if self.readout:
            out_bits = self.widths.score_bits
        elif self.radix:
            shifts = self._per_lane(layer.shift, 0)
            sh_bits = max(1, max(max(v) for v in shifts).bit_length())
            out_bits = T
        else:
            thresholds = self._per_lane(layer.threshold, 1)
            th_bits = max(2, signed_bits(min(min(t) for t in thresholds),
                                         max(max(t) for t in thresholds)))
            vbits = max(self.widths.membrane_bits, cbits)
            out_bits = T
        tag_bits = Signal(gbits).shape().width

        fifos = []
        for lane in range(self.p_co):
            ev = self.events[lane]
            width = out_bits + (tag_bits if lane == 0 else 0)
            q = LaneQueue(width, self.depth)
            m.submodules[f"fifo{lane}"] = q
            fifos.append(q)

            m.submodules[f"bias{lane}"] = bias_mem = memory.Memory(
                shape=signed(bias_bits), depth=G, init=biases[lane])
            bias_rd = bias_mem.read_port(domain="comb")

            if self.radix:
                self._radix_lane(m, lane, ev, bias_rd, q, cbits, out_bits,
                                 None if self.readout else shifts[lane],
                                 None if self.readout else sh_bits, gbits)
                continue

            # --- accumulate: the first slot of a window starts every step from the bias -----
            accs = [Signal(signed(cbits), name=f"acc{lane}_{s}") for s in range(S)]
            fresh = Signal(init=1)
            g_valid = Signal()
            g_group = Signal(gbits)
            m.d.comb += bias_rd.addr.eq(ev.payload.group)
            m.d.sync += g_valid.eq(ev.valid & ev.payload.end)
            with m.If(ev.valid):
                m.d.sync += [
                    fresh.eq(ev.payload.end),
                    g_group.eq(ev.payload.group),
                ]
                for s, acc in enumerate(accs):
                    m.d.sync += acc.eq(
                        Mux(fresh, bias_rd.data, acc)
                        + Mux(ev.payload.pair & ev.payload.steps[s], ev.payload.weight, 0))

            # --- once per window (the cycle after its end slot): accs hold I[t] -------------
            if self.readout:
                # static: the one step stands for T equal ones, sum_t I = T * I
                terms = list(accs) if S == T else [accs[0] * T]
                valid, group = g_valid, g_group
                # a register after every level of the adder tree but the last
                for level in range(readout_registers(T)):
                    terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                             for i in range(0, len(terms), 2)]
                    regs = [Signal(signed(out_bits), name=f"sum{lane}_{level}_{k}")
                            for k in range(len(terms))]
                    n_valid = Signal(name=f"sum{lane}_{level}_valid")
                    n_group = Signal(gbits, name=f"sum{lane}_{level}_group")
                    m.d.sync += [*(r.eq(t) for r, t in zip(regs, terms)),
                                 n_valid.eq(valid), n_group.eq(group)]
                    terms, valid, group = regs, n_valid, n_group
                total = Signal(signed(out_bits))
                m.d.comb += [
                    total.eq(_tree_sum(terms)),
                    q.w_en.eq(valid),
                    q.w_data[:out_bits].eq(total),
                ]
                if lane == 0:
                    m.d.comb += q.w_data[out_bits:].eq(group)
                continue

            # the lane's threshold per group, and its negation (V - TH at t = 0, when V = 0),
            # as tables whose bits that are the same in every group are constants: Yosys
            # merged flip-flops with equal constant D across cores into one whose net
            # crossed the chip (the ULX3S build's critical path, issue 14)
            lane_th = [int(v) for v in thresholds[lane]]
            th = constant_table(m, f"threshold{lane}", lane_th, signed(th_bits), g_group)
            tbits = max(vbits, th_bits) + 1
            neg_th = constant_table(m, f"neg_threshold{lane}", [-v for v in lane_th],
                                    signed(tbits), g_group)
            th_const = th if isinstance(th, Const) else None
            # the update chain, two register stages per step: stage t holds V after step
            # t - 1, the spikes so far and the currents of steps t .. T-1 (one current for a
            # static input); its first half computes D = I[t] - V (LIF) and V - TH, its second
            # H = V + (D >> leak) and the spike as (V - TH) + (D >> leak) >= 0, the same test
            # as H >= TH with the two adds side by side: one carry chain per stage, not three
            # in series
            valid, v, spikes, currents, group = g_valid, None, [], list(accs), g_group
            lif = layer.neuron is NeuronKind.LIF
            dbits = max(vbits, cbits) + 1
            for t in range(T):
                current = currents[0]
                rest = currents[1:] if S == T else currents
                v_old = 0 if v is None else v
                # --- first half --------------------------------------------------------
                a_valid = Signal(name=f"a{lane}_{t}_valid")
                a_v = Signal(signed(vbits), name=f"a{lane}_{t}_v")
                a_d = Signal(signed(dbits), name=f"a{lane}_{t}_d")
                # registers of table values start at the table's first row, so a constant
                # bit is a flip-flop whose D is its init, which Yosys removes
                vt_const = v is None and isinstance(neg_th, Const)
                a_vt = (neg_th if vt_const
                        else Signal(signed(tbits), name=f"a{lane}_{t}_vt",
                                    init=-lane_th[0] if v is None else 0))
                a_spikes = [Signal(name=f"a{lane}_{t}_s{j}") for j in range(t)]
                a_currents = [Signal(signed(cbits), name=f"a{lane}_{t}_i{j}")
                              for j in range(len(rest) if t < T - 1 else 0)]
                a_group = Signal(gbits, name=f"a{lane}_{t}_group")
                a_th = (th_const if th_const is not None
                        else Signal(signed(th_bits), name=f"a{lane}_{t}_th", init=lane_th[0]))
                m.d.sync += [
                    a_valid.eq(valid),
                    a_v.eq(v_old),
                    a_d.eq(current - v_old if lif else current),
                    *([] if vt_const else [a_vt.eq(neg_th if v is None else v_old - th)]),
                    *([] if th_const is not None else [a_th.eq(th)]),
                    a_group.eq(group),
                    *[x.eq(y) for x, y in zip(a_spikes, spikes)],
                    *[x.eq(y) for x, y in zip(a_currents, rest)],
                ]
                # --- second half: charge and fire --------------------------------------
                step = (a_d >> layer.leak_shift) if lif else a_d
                h = Signal(signed(vbits), name=f"h{lane}_{t}")
                over = Signal(signed(tbits + 1), name=f"o{lane}_{t}")
                spike = Signal(name=f"s{lane}_{t}")
                m.d.comb += [
                    h.eq(a_v + step),
                    over.eq(a_vt + step),
                    spike.eq(over >= 0),
                ]
                spikes = a_spikes + [spike]
                valid, group = a_valid, a_group
                if t == T - 1:
                    break
                n_valid = Signal(name=f"u{lane}_{t + 1}_valid")
                n_v = Signal(signed(vbits), name=f"u{lane}_{t + 1}_v")
                n_spikes = [Signal(name=f"u{lane}_{t + 1}_s{j}") for j in range(t + 1)]
                n_currents = [Signal(signed(cbits), name=f"u{lane}_{t + 1}_i{j}")
                              for j in range(len(a_currents))]
                n_th = (th_const if th_const is not None
                        else Signal(signed(th_bits), name=f"u{lane}_{t + 1}_th",
                                    init=lane_th[0]))
                n_group = Signal(gbits, name=f"u{lane}_{t + 1}_group")
                m.d.sync += [
                    n_valid.eq(a_valid),
                    n_v.eq(Mux(spike, 0, h)),
                    *([] if th_const is not None else [n_th.eq(a_th)]),
                    n_group.eq(a_group),
                    *[x.eq(y) for x, y in zip(n_spikes, spikes)],
                    *[x.eq(y) for x, y in zip(n_currents, a_currents)],
                ]
                valid, v, spikes, currents, th, group = (n_valid, n_v, n_spikes, n_currents,
                                                         n_th, n_group)
            # the last step's spikes into a register, then the FIFO: on a full ECP5 the FIFO's
            # LUT RAM can sit across the chip from its lane, and the fire test's carry chain
            # and that crossing in one cycle were the ULX3S build's critical path (issue 14)
            w_valid = Signal(name=f"w{lane}_valid")
            w_spikes = Signal(T, name=f"w{lane}_spikes")
            w_group = Signal(gbits, name=f"w{lane}_group")
            m.d.sync += [w_valid.eq(valid), w_spikes.eq(Cat(*spikes)), w_group.eq(group)]
            m.d.comb += [
                q.w_en.eq(w_valid),
                q.w_data[:T].eq(w_spikes),
            ]
            if lane == 0:
                m.d.comb += q.w_data[out_bits:].eq(w_group)

        # --- join: a beat leaves when every lane has its result ----------------------------
        # ``all_ready`` is a register kept equal to "every FIFO holds a beat", set from what
        # each FIFO will hold after this cycle's write and pop: the lanes sit far apart on a
        # large chip, and a combinational AND over them in front of the pop broadcast crossed
        # the chip twice in one cycle (the ULX3S build's critical path, issue 14). The gather
        # is now on a register's input and the pop is the only crossing; no cycle is lost.
        all_ready = Signal()
        fire = Signal()
        written = [q.w_en & q.w_rdy for q in fifos]
        kept_if_popped = Cat((q.filled[1] if q.depth > 1 else 0) | w
                             for q, w in zip(fifos, written)).all()
        kept = Cat(q.filled[0] | w for q, w in zip(fifos, written)).all()
        m.d.sync += all_ready.eq(Mux(fire, kept_if_popped, kept))
        out = self.output.payload
        m.d.comb += [
            self.output.valid.eq(all_ready),
            out.group.eq(fifos[0].r_data[out_bits:]),
        ]
        m.d.comb += fire.eq(all_ready & self.output.ready)
        for lane, q in enumerate(fifos):
            m.d.comb += q.r_en.eq(fire)
            if self.readout:
                m.d.comb += out.scores[lane].eq(q.r_data[:out_bits])
            else:
                for t in range(T):
                    m.d.comb += out.spikes[t * self.p_co + lane].eq(q.r_data[t])
        return m

    def _radix_lane(self, m, lane, ev, bias_rd, q, cbits, out_bits, shifts, sh_bits, gbits):
        """One radix lane (see ``radix`` in :class:`NeuronLanes`)."""
        T, S, G = self.T, self.steps, self.n_groups
        acc = Signal(signed(cbits), name=f"acc{lane}")
        fresh = Signal(init=1, name=f"fresh{lane}")
        g_valid = Signal(name=f"g{lane}_valid")
        g_group = Signal(gbits, name=f"g{lane}_group")
        m.d.comb += bias_rd.addr.eq(ev.payload.group)
        m.d.sync += g_valid.eq(ev.valid & ev.payload.end)
        weight = ev.payload.weight
        if S == 1:
            contrib = Mux(ev.payload.steps[0], weight, 0)
        else:
            # digit t weighs 2^(T-1-t): a shift-add over the T digit planes
            contrib = _tree_sum([Mux(ev.payload.steps[t], weight << (T - 1 - t), 0)
                                 for t in range(T)])
        with m.If(ev.valid):
            m.d.sync += [
                fresh.eq(ev.payload.end),
                g_group.eq(ev.payload.group),
                acc.eq(Mux(fresh, bias_rd.data, acc) + Mux(ev.payload.pair, contrib, 0)),
            ]
        if self.readout:
            # as many stages as the LIF readout's adder tree, so that neuron_latency holds
            valid, score, group = g_valid, acc, g_group
            for stage in range(readout_registers(T)):
                n_valid = Signal(name=f"sum{lane}_{stage}_valid")
                n_score = Signal(signed(cbits), name=f"sum{lane}_{stage}")
                n_group = Signal(gbits, name=f"sum{lane}_{stage}_group")
                m.d.sync += [n_valid.eq(valid), n_score.eq(score), n_group.eq(group)]
                valid, score, group = n_valid, n_score, n_group
            m.d.comb += [q.w_en.eq(valid), q.w_data[:out_bits].eq(score)]
            if lane == 0:
                m.d.comb += q.w_data[out_bits:].eq(group)
            return
        m.submodules[f"shift{lane}"] = sh_mem = memory.Memory(
            shape=sh_bits, depth=G, init=shifts)
        sh_rd = sh_mem.read_port(domain="comb")
        m.d.comb += sh_rd.addr.eq(g_group)
        # round half up: floor((floor(acc / 2^(s-1)) + 1) / 2) = (acc >> s) + ((acc >> (s-1)) & 1)
        doubled = Signal(signed(cbits + 1), name=f"dbl{lane}")
        rounded = Signal(signed(cbits + 1), name=f"rnd{lane}")
        y = Signal(T, name=f"y{lane}")
        top = (1 << T) - 1
        m.d.comb += [
            doubled.eq(acc << 1),
            rounded.eq(((doubled >> sh_rd.data) + 1) >> 1),
            y.eq(Mux(rounded < 0, 0, Mux(rounded > top, top, rounded))),
        ]
        # the output digits, MSB first: step t carries bit T-1-t
        digits = Cat(*[y[T - 1 - t] for t in range(T)])
        valid, data_, group = g_valid, digits, g_group
        for stage in range(2 * T):           # match the LIF chain's latency (2T + 2)
            n_valid = Signal(name=f"r{lane}_{stage}_valid")
            n_data = Signal(T, name=f"r{lane}_{stage}_y")
            n_group = Signal(gbits, name=f"r{lane}_{stage}_group")
            m.d.sync += [n_valid.eq(valid), n_data.eq(data_), n_group.eq(group)]
            valid, data_, group = n_valid, n_data, n_group
        m.d.comb += [q.w_en.eq(valid), q.w_data[:T].eq(data_)]
        if lane == 0:
            m.d.comb += q.w_data[out_bits:].eq(group)


def _tree_sum(values):
    """A balanced adder tree (``log2(len(values))`` adders deep, not a chain)."""
    values = list(values)
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


class Argmax(wiring.Component):
    """The readout's prediction: the index of the largest score, lowest index on ties.

    Takes the readout lanes' score beats (``n_groups`` per frame, group order) and emits one
    beat per frame. Inside a group the lanes are compared by a tree whose left inputs hold the
    lower indices and win ties; across groups a later group replaces the running best only if
    strictly greater, so the lowest index wins every tie. Lanes past ``classes`` are ignored.
    The tree has a register after every level: latency ``ceil(log2 p_co) + 1`` cycles after
    the last group's beat; one beat per cycle.

    Parameters
    ----------
    classes : int
        Output channels of the readout (``Co``).
    p_co : int
        Lanes per score beat.
    score_bits : int
        Score width.

    Members
    -------
    input : ``In(stream.Signature(lane_score_beat(p_co, score_bits, n_groups)))``
    output : ``Out(stream.Signature(prediction_beat(classes, score_bits)))``
    """

    def __init__(self, classes: int, p_co: int, score_bits: int):
        for name, value in (("classes", classes), ("p_co", p_co), ("score_bits", score_bits)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if p_co > classes:
            raise ValueError(f"p_co must be at most classes ({classes}), not {p_co}")
        self.classes = classes
        self.p_co = p_co
        self.score_bits = score_bits
        self.n_groups = -(-classes // p_co)
        super().__init__({
            "input": In(stream.Signature(lane_score_beat(p_co, score_bits, self.n_groups))),
            "output": Out(stream.Signature(prediction_beat(classes, score_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        G, P = self.n_groups, self.p_co
        inp = self.input.payload
        # every stage moves when the result register is free or being taken
        advance = ~self.output.valid | self.output.ready
        m.d.comb += self.input.ready.eq(advance)

        # the tree over the lanes of this beat, a register after every level (issue 14: a
        # tree of comparators in one cycle was the small ECP5 build's critical path); lane
        # indices are group * P + lane
        last_group_lanes = self.classes - (G - 1) * P
        level = []
        for lane in range(P):
            valid = Signal(name=f"lane{lane}_valid")
            # lanes past `classes` exist only in the last group
            if lane < last_group_lanes:
                m.d.comb += valid.eq(1)
            else:
                m.d.comb += valid.eq(inp.group != G - 1)
            idx = Signal(range(max(P, 2)), name=f"idx{lane}")
            m.d.comb += idx.eq(lane)
            level.append((valid, inp.scores[lane], idx))
        def register(name, valid, score, idx):
            """The next level's entry: ``(valid, score, idx)`` into registers."""
            regs = (Signal(name=f"{name}_valid"),
                    Signal(signed(self.score_bits), name=f"{name}_score"),
                    Signal(range(max(P, 2)), name=f"{name}_idx"))
            with m.If(advance):
                m.d.sync += [r.eq(v) for r, v in zip(regs, (valid, score, idx))]
            return regs

        beat_valid, group = self.input.valid, inp.group
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for i in range(0, len(level) - 1, 2):
                (va, sa, ia), (vb, sb, ib) = level[i], level[i + 1]
                take_b = vb & (~va | (sb > sa))
                nxt.append(register(f"l{depth}_{i // 2}", va | vb, Mux(take_b, sb, sa),
                                    Mux(take_b, ib, ia)))
            if len(level) % 2:
                nxt.append(register(f"l{depth}_{len(level) // 2}", *level[-1]))
            stage_valid = Signal(name=f"l{depth}_beat_valid")
            stage_group = Signal.like(inp.group, name=f"l{depth}_group")
            with m.If(advance):
                m.d.sync += [stage_valid.eq(beat_valid), stage_group.eq(group)]
            beat_valid, group = stage_valid, stage_group
            level = nxt
        _, beat_best, beat_idx = level[0]

        best = Signal(signed(self.score_bits))
        best_idx = Signal(range(max(self.classes, 2)))
        out_valid = Signal()
        take = (group == 0) | (beat_best > best)
        m.d.comb += [
            self.output.valid.eq(out_valid),
            self.output.payload.index.eq(best_idx),
            self.output.payload.score.eq(best),
        ]
        with m.If(self.output.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(beat_valid & advance):
            with m.If(take):
                m.d.sync += [best.eq(beat_best), best_idx.eq(group * P + beat_idx)]
            with m.If(group == G - 1):
                m.d.sync += out_valid.eq(1)
        return m


def constant_table(m: Module, name: str, rows: list[int], shape, addr) -> Value:
    """Row ``addr`` of a constant table of ``shape`` values: a bit that is the same in every
    row is a constant, the others are read from a ROM (``name``, read asynchronously), and a
    table whose rows are all equal is one :class:`Const`."""
    shape = Shape.cast(shape)
    width = shape.width
    varying = [b for b in range(width) if len({(r >> b) & 1 for r in rows}) > 1]
    if not varying:
        return Const(rows[0], shape)
    m.submodules[name] = rom = memory.Memory(
        shape=len(varying), depth=len(rows),
        init=[sum(((r >> b) & 1) << i for i, b in enumerate(varying)) for r in rows])
    read = rom.read_port(domain="comb")
    m.d.comb += read.addr.eq(addr)
    column = {b: i for i, b in enumerate(varying)}
    bits = Cat(*(read.data[column[b]] if b in column else Const((rows[0] >> b) & 1, 1)
                 for b in range(width)))
    return bits.as_signed() if shape.signed else bits
