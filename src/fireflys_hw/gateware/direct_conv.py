"""A first layer that fits its input: dense multi-bit convolution with constant weights.

The first layer of a direct-encoded model sees an ``input_bits``-bit image, the same at every
time step. The binary sparse machinery (bit planes through detector lanes, one effectual pair
per cycle) spends thousands of cycles per frame on an input that is dense. :class:`DirectConv`
computes it the way a dense input wants:

```
pixel stream --> Padding --> line buffers + K x K window --> P_Co lanes: window . W[c] (one
(one beat per    ('same')    (amaranth.lib.memory,          cycle, constant shift-add terms,
 pixel, T = 1)                one pixel per cycle)           pipelined adder tree) + B[c]
                                                          --> T LIF/IF steps (one register
                                                              stage each) --> pixel beat FIFO
```

* **Window.** The padded map streams in one pixel per cycle; ``K - 1`` rows of it live in a
  line buffer (one :class:`~amaranth.lib.memory.Memory` of ``(K - 1) * Ci * input_bits``-bit
  words, ``Wp`` deep, read one column ahead so that a pixel can be taken every cycle), and the
  ``K x K`` window in registers. A pixel that completes a window holds the window for the
  ``G = ceil(Co / P_Co)`` cycles its groups take; a pixel that does not (the first ``K - 1``
  rows and columns of the padded map) passes in one cycle.
* **Lanes.** Lane ``l`` of group ``g`` computes channel ``c = g * P_Co + l``:
  ``I = B[c] + sum_{ci,kh,kw} W[c,ci,kh,kw] * x[ci,kh,kw]`` in one pass. The weights are
  constants of the artifact, written in canonical signed digits (at most two non-zero digits
  for a 4-bit weight), so each product is at most two shifted copies of the input value: a
  zero weight costs nothing, ``+-2^b`` costs one term. With several groups a term is gated by
  a constant table of the group (only the digits some group uses exist). Positive and negative
  terms are summed in two unsigned adder trees with a register after every ``tree_levels``
  adder levels (one: no register-to-register path holds two carry chains), then ``P - N``
  and ``I = (P - N) + B`` in a register stage each.
* **Neurons.** The current is the same at every step (direct encoding), so the ``T`` updates
  of the numeric contract (``H = V + ((I - V) >> k)`` (LIF) or ``H = V + I`` (IF); spike if
  ``H >= TH``; hard reset to 0; ``V = 0`` before ``t = 0``) follow as ``2T - 1`` register
  stages, two per step (``D = I - V`` beside ``TH - V``, then ``H`` beside the spike test
  ``(D >> k) >= TH - V``; the first step's first stage is empty): one carry chain between
  registers, and a lane still finishes one (pixel, group) per cycle.
* **Radix** (a first layer of E3NE's radix encoding, ``docs/numeric-contract.md``): the
  current is the layer's ``acc = B + W . X`` itself (``X`` the ``input_bits``-bit frame), so
  the ``T`` neuron stages become one requantisation stage: ``Y = min(max(round_shift(acc,
  s[c]), 0), 2^T - 1)`` (``s[c]`` a constant per lane, or a table of the group), and the beat
  carries ``Y``'s digits, most significant first (step ``t``: bit ``T - 1 - t``).
* **Output.** One beat per output pixel with all ``T`` steps (:func:`pixel_steps_beat`: step
  ``t`` in bits ``[t * Co, (t + 1) * Co)``). The pipeline never stalls: a (pixel, group)
  enters only while the output FIFO has room for every pixel in flight (credit), so
  backpressure reaches the input through registers only. :class:`StepSerialiser` turns the
  beats into the per-step spike stream (one pixel at one step, ``T`` beats per pixel).

Cycles (exact, :func:`~fireflys_hw.compiler.direct.direct_conv_cycles`, a cycle model of the
control checked against simulation; its numbers and terms live in :mod:`fireflys_hw.compiler.
direct`, which imports no Amaranth, for the planner): with the output always ready and the input always
valid, a frame takes ``Hp * Wp + Ho * Wo * (G - 1)`` cycles (one per padded pixel, ``G`` per
pixel that completes a window), frames back to back; the first result leaves
:attr:`DirectConv.latency` cycles after its window is complete. Behind a
:class:`StepSerialiser` the stage needs at least ``Ho * Wo * T`` cycles per frame.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.golden import layer_widths, signed_bits
from fireflys_sw.spec import NeuronKind

from ..compiler.direct import (CURRENT_STAGES, DEFAULT_TREE_LEVELS, direct_conv_fifo_depth,
                               direct_conv_latency, direct_conv_terms, neuron_stages)
from .maxpool import MaxPool
from .padding import Padding
from .streams import spike_stream
from .util import check_positive

__all__ = ["DirectConv", "StepSerialiser", "DirectCore", "pixel_steps_beat", "pixel_steps_stream"]


def pixel_steps_beat(channels: int, T: int) -> data.StructLayout:
    """One pixel at every time step: ``T * channels`` bits, step ``t`` in bits
    ``[t * channels, (t + 1) * channels)`` (channel ``c`` of step ``t`` is bit
    ``t * channels + c``)."""
    return data.StructLayout({"spikes": T * channels})


def pixel_steps_stream(channels: int, T: int) -> stream.Signature:
    return stream.Signature(pixel_steps_beat(channels, T))


def _check_layer(layer, p_co: int, T: int, input_bits: int) -> None:
    if not isinstance(layer, SynapticLayer):
        raise TypeError(f"layer must be a SynapticLayer, not {layer!r}")
    if layer.kind is not LayerKind.CONV:
        raise ValueError(f"layer must be a conv layer, not {layer.kind.value}")
    if layer.is_readout:
        raise ValueError("layer must be a spiking layer, not the readout")
    check_positive("p_co", p_co)
    check_positive("T", T)
    check_positive("input_bits", input_bits)
    if p_co > layer.out_channels:
        raise ValueError(f"p_co must be at most the layer's output channels "
                         f"({layer.out_channels}), not {p_co}")


class DirectConv(wiring.Component):
    """A direct-encoded first conv layer: multi-bit pixels in, all ``T`` steps' spikes of a pixel
    out in one beat (module docstring).

    Parameters
    ----------
    layer : SynapticLayer
        A spiking conv layer (stride 1, ``layer.padding`` rings of zeros).
    p_co : int
        Lanes ``P_Co`` (output channels computed per cycle), ``1 <= p_co <= Co``; the ``G =
        ceil(Co / P_Co)`` groups of a pixel take ``G`` cycles.
    T : int
        Time steps.
    input_bits : int
        Bits per input value (``artifact.input_bits``).
    tree_levels : int
        Adder levels between two registers of the adder trees (default 1: one carry chain
        between registers; 2 halves the tree's registers and doubles its depth).
    fifo_depth : int or None
        Pixel beats of the output FIFO; the default holds every pixel the pipeline can have in
        flight plus two, so a ready output never waits for credit.

    Members
    -------
    input : ``In(spike_stream(Ci * input_bits))``
        One beat per pixel, ``H * W`` per frame, raster order; bit ``c * input_bits + b`` is bit
        ``b`` of the input value of channel ``c`` (the accelerator's direct-encoded input).
    output : ``Out(pixel_steps_stream(Co, T))``
        One beat per output pixel, ``Ho * Wo`` per frame (:func:`pixel_steps_beat`).

    Attributes
    ----------
    latency : int
        Cycles from a (pixel, group) entering the lanes to its spikes being written into the
        output FIFO.
    terms : list of list
        The shift-add terms per lane (:func:`direct_conv_terms`).
    """

    def __init__(self, layer: SynapticLayer, *, p_co: int, T: int, input_bits: int,
                 tree_levels: int = DEFAULT_TREE_LEVELS, fifo_depth: int | None = None):
        _check_layer(layer, p_co, T, input_bits)
        check_positive("tree_levels", tree_levels)
        self.layer = layer
        self.p_co = p_co
        self.T = T
        self.input_bits = input_bits
        self.tree_levels = tree_levels
        ci, h, w = layer.in_shape
        self.in_channels = ci * input_bits
        self.kernel = layer.kernel
        self.pad = layer.padding or 0
        self.padding = Padding(self.in_channels, h, w, 1, self.pad)
        self.terms = direct_conv_terms(layer, p_co)
        #: a radix layer: one requantisation stage instead of the T neuron steps
        self.radix = layer.neuron is NeuronKind.RADIX
        self.widths = layer_widths(layer, (1 << input_bits) - 1, T, radix=self.radix)
        self.latency = direct_conv_latency(layer, p_co, T, input_bits, tree_levels)
        #: adder-tree register stages (the rest of the latency: the current, the neuron stages)
        self.tree_stages = self.latency - CURRENT_STAGES - neuron_stages(layer, T)
        if fifo_depth is None:
            fifo_depth = direct_conv_fifo_depth(self.latency, self.n_groups)
        self.fifo_depth = check_positive("fifo_depth", fifo_depth, 2)
        super().__init__({
            "input": In(spike_stream(self.in_channels)),
            "output": Out(pixel_steps_stream(layer.out_channels, T)),
        })
        #: a complete window waits for (more of) its groups; a group is admitted this cycle
        #: (for profiling; driven inside :meth:`elaborate`)
        self.window_valid = Signal()
        self.admitting = Signal()

    @property
    def n_groups(self) -> int:
        return -(-self.layer.out_channels // self.p_co)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return tuple(self.layer.out_shape)

    @property
    def padded_shape(self) -> tuple[int, int]:
        _, h, w = self.layer.in_shape
        return h + 2 * self.pad, w + 2 * self.pad

    @property
    def beats_per_frame(self) -> int:
        _, h, w = self.layer.in_shape
        return h * w

    @property
    def buffer_bits(self) -> dict:
        """On-chip storage bits: the line buffer, the window registers, the output FIFO."""
        hp, wp = self.padded_shape
        k, b = self.kernel, self.in_channels
        return {"line_buffer": (k - 1) * b * wp, "window": k * k * b,
                "fifo": self.fifo_depth * self.T * self.layer.out_channels}

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        K, B, ib, T = self.kernel, self.in_channels, self.input_bits, self.T
        co = layer.out_channels
        P, G = self.p_co, self.n_groups
        hp, wp = self.padded_shape
        x_max = (1 << ib) - 1

        m.submodules.padding = self.padding
        wiring.connect(m, wiring.flipped(self.input), self.padding.input)
        src = self.padding.output

        # --- window ---------------------------------------------------------------------
        r = Signal(range(hp))
        c = Signal(range(wp))
        window = Signal(K * K * B)      # column kw at bits [kw * K * B, (kw + 1) * K * B)
        pending = self.window_valid     # the window waits for (more of) its groups
        g = Signal(range(max(G, 2)))
        count = Signal(range(self.fifo_depth + 1))   # pixels admitted (last group) not yet out
        admit = self.admitting
        last_group = Signal()
        g_next = Signal.like(g)
        take = Signal()
        m.d.comb += [
            last_group.eq(g == G - 1),
            g_next.eq(Mux(last_group, 0, g + 1)),
            admit.eq(pending & (count < self.fifo_depth)),
            src.ready.eq(~pending | (admit & last_group)),
            take.eq(src.valid & src.ready),
        ]
        pixel = src.payload.spikes
        if K > 1:
            m.submodules.lines = lines = memory.Memory(shape=(K - 1) * B, depth=wp, init=[])
            rd = lines.read_port()
            wr = lines.write_port()
            c_next = Signal.like(c)
            m.d.comb += c_next.eq(Mux(c == wp - 1, 0, c + 1))
            # read one column ahead: the column of the pixel being offered is always in rd.data
            column = Cat(rd.data, pixel)
            m.d.comb += [
                rd.addr.eq(Mux(take, c_next, c)),
                wr.addr.eq(c),
                wr.data.eq(column[B:]),
                wr.en.eq(take),
            ]
        else:
            column = pixel
        with m.If(take):
            m.d.sync += window.eq(Cat(window[K * B:], column))
            m.d.sync += pending.eq((r >= K - 1) & (c >= K - 1))
            with m.If(c == wp - 1):
                m.d.sync += c.eq(0)
                m.d.sync += r.eq(Mux(r == hp - 1, 0, r + 1))
            with m.Else():
                m.d.sync += c.eq(c + 1)
        with m.Elif(admit & last_group):
            m.d.sync += pending.eq(0)
        with m.If(admit):
            m.d.sync += g.eq(g_next)

        # --- lanes: shift-add terms, adder trees ----------------------------------------
        ci = layer.in_channels

        def x_at(pos):
            kw, rest = divmod(pos, K * ci)
            kh, i = divmod(rest, ci)
            base = (kw * K + kh) * B + i * ib
            return window[base:base + ib]

        # a term used by some groups only is gated by a register per distinct group mask,
        # which holds the mask's bit of the group being admitted (set from the next group on
        # admission), so the gate is no table look-up in front of the adders
        enables = {}

        def gate(mask):
            if mask == (1 << G) - 1:
                return None
            if mask not in enables:
                en = Signal(name=f"gate_{mask:x}", init=mask & 1)
                with m.If(admit):
                    m.d.sync += en.eq(Const(mask, G).bit_select(g_next, 1))
                enables[mask] = en
            return enables[mask]

        trees = []            # per lane: (positive operands, negative operands) of (value, max)
        for lane_terms in self.terms:
            pos_ops, neg_ops = [], []
            for position, shift, sign, mask in lane_terms:
                value = x_at(position) << shift
                enable = gate(mask)
                if enable is not None:
                    value = Mux(enable, value, 0)
                (pos_ops if sign > 0 else neg_ops).append((value, x_max << shift))
            trees.append([pos_ops, neg_ops])

        def reducible():
            return any(len(ops) > 1 for lane in trees for ops in lane)

        valid, grp, last = admit, g, last_group
        stage = 0
        while True:
            for _ in range(self.tree_levels):        # adder levels between two registers
                if not reducible():
                    break
                for lane in trees:
                    for s, ops in enumerate(lane):
                        nxt = [(ops[i][0] + ops[i + 1][0], ops[i][1] + ops[i + 1][1])
                               for i in range(0, len(ops) - 1, 2)]
                        if len(ops) % 2:
                            nxt.append(ops[-1])
                        lane[s] = nxt
            stage += 1
            for li, lane in enumerate(trees):
                for s, ops in enumerate(lane):
                    regs = []
                    for oi, (value, vmax) in enumerate(ops):
                        reg = Signal(range(vmax + 1), name=f"t{stage}_l{li}_{'pn'[s]}{oi}")
                        m.d.sync += reg.eq(value)
                        regs.append((reg, vmax))
                    lane[s] = regs
            valid, grp, last = self._register(m, f"t{stage}", valid, grp, last)
            if not reducible():
                break
        if stage != self.tree_stages:        # the model (compiler.direct.tree_shape) must agree
            raise RuntimeError(f"adder tree has {stage} stages, the model {self.tree_stages}")

        # --- current I = P - N + B: two stages (one carry chain each) --------------------
        cur_shape = signed(self.widths.current_bits)
        bias_bits = signed_bits(min(int(layer.bias.min()), 0), max(int(layer.bias.max()), 0))
        differences = []
        for lane, (pos_ops, neg_ops) in enumerate(trees):
            p_val, p_max = pos_ops[0] if pos_ops else (Const(0, 1), 0)
            n_val, n_max = neg_ops[0] if neg_ops else (Const(0, 1), 0)
            diff = Signal(signed(signed_bits(-n_max, p_max)), name=f"pn_{lane}")
            m.d.sync += diff.eq(p_val - n_val)
            differences.append(diff)
        valid, grp, last = self._register(m, "pn", valid, grp, last)
        currents = []
        for lane, diff in enumerate(differences):
            table = [int(layer.bias[gi * P + lane]) if gi * P + lane < co else 0
                     for gi in range(G)]
            bias = self._table(table, bias_bits, grp).as_signed()
            cur = Signal(cur_shape, name=f"current_{lane}")
            # the exact sum is a current of the layer, so it fits its width
            m.d.sync += cur.eq(diff + bias)
            currents.append(cur)
        valid, grp, last = self._register(m, "cur", valid, grp, last)

        if self.radix:
            spikes = self._requantise(m, currents, grp)
            valid, grp, last = self._register(m, "rq", valid, grp, last)
        else:
            spikes, valid, grp, last = self._neuron_steps(m, currents, valid, grp, last)

        # --- assemble a pixel's groups, output FIFO --------------------------------------
        m.submodules.fifo = out_fifo = fifo.SyncFIFOBuffered(width=T * co,
                                                              depth=self.fifo_depth)
        lane_bits = [Cat(*(spikes[lane][t] for lane in range(P))) for t in range(T)]
        if G == 1:
            step_bits = [bits[:co] for bits in lane_bits]
        else:
            acc = [Signal((G - 1) * P, name=f"acc{t}") for t in range(T)]
            with m.If(valid & ~last):
                with m.Switch(grp):
                    for gi in range(G - 1):
                        with m.Case(gi):
                            m.d.sync += [acc[t][gi * P:(gi + 1) * P].eq(lane_bits[t])
                                         for t in range(T)]
            step_bits = [Cat(acc[t], lane_bits[t])[:co] for t in range(T)]
        push = valid & last
        m.d.comb += [
            out_fifo.w_data.eq(Cat(*step_bits)),
            out_fifo.w_en.eq(push),
        ]
        wiring.connect(m, out_fifo.r_stream, wiring.flipped(self.output))
        pop = self.output.valid & self.output.ready
        admit_pixel = admit & last_group
        with m.If(admit_pixel & ~pop):
            m.d.sync += count.eq(count + 1)
        with m.Elif(~admit_pixel & pop):
            m.d.sync += count.eq(count - 1)
        return m

    def _neuron_steps(self, m, currents, valid, grp, last):
        """The ``T`` LIF/IF updates of the (static) current, two register stages each (one
        carry chain deep; the first step's first stage is empty, ``V = 0``); returns
        ``spikes[lane][t]`` and the control of the last stage.

        Step ``t``, with ``V = 0`` if the previous step fired, else its ``H``:

        * stage 1: ``D = I - V`` (LIF) and ``U = TH - V``;
        * stage 2: ``H = V + (D >> k)`` (IF: ``V + I``) and, beside it rather than after it,
          ``spike = (D >> k) >= U`` (IF: ``I >= U``), which is ``H >= TH``.
        """
        layer, T, P, G = self.layer, self.T, self.p_co, self.n_groups
        co = layer.out_channels
        lif = layer.neuron is NeuronKind.LIF
        cur_shape = signed(self.widths.current_bits)
        mem_shape = signed(self.widths.membrane_bits)
        th_max = int(layer.threshold.max())
        th_bits = th_max.bit_length() + 1
        v_lo, v_hi = self.widths.membrane
        u_shape = signed(signed_bits(min(int(layer.threshold.min()) - v_hi, 0), th_max - v_lo))
        # per lane: (H, spike) of the previous step; None before t = 0 (V = 0)
        state = [None] * P
        spikes = [[] for _ in range(P)]         # spikes[lane][t]

        def carry(lane, name):
            """Delay lane's spikes so far by one stage."""
            for tt, prev in enumerate(spikes[lane]):
                held = Signal(name=f"s{tt}_l{lane}_{name}")
                m.d.sync += held.eq(prev)
                spikes[lane][tt] = held

        for t in range(T):
            thresholds = []
            for lane in range(P):
                table = [int(layer.threshold[gi * P + lane]) if gi * P + lane < co else 0
                         for gi in range(G)]
                thresholds.append(self._table(table, th_bits, grp).as_signed())
            # stage 1: D = I - V, U = TH - V (none at t = 0: D = I, U = TH)
            stage1 = []
            for lane in range(P):
                i_ = currents[lane]
                if state[lane] is None:
                    stage1.append((Const(0, mem_shape), i_, thresholds[lane], i_))
                    continue
                h_prev, s_prev = state[lane]
                v = Mux(s_prev, 0, h_prev)
                v_reg = Signal(mem_shape, name=f"v{t}_l{lane}")
                d_reg = Signal(mem_shape, name=f"d{t}_l{lane}")
                u_reg = Signal(u_shape, name=f"u{t}_l{lane}")
                i_reg = Signal(cur_shape, name=f"i{t}_l{lane}a")
                m.d.sync += [v_reg.eq(v), d_reg.eq(i_ - v), u_reg.eq(thresholds[lane] - v),
                             i_reg.eq(i_)]
                carry(lane, f"a{t}")
                stage1.append((v_reg, d_reg, u_reg, i_reg))
            if state[0] is not None:
                valid, grp, last = self._register(m, f"n{t}a", valid, grp, last)
            # stage 2: H = V + (D >> k) and spike = (D >> k) >= U (IF: V + I, I >= U)
            new_currents = []
            for lane, (v, d, u, i_) in enumerate(stage1):
                step = (d >> layer.leak_shift) if lif else i_
                h = Signal(mem_shape, name=f"h{t}_l{lane}")
                s_reg = Signal(name=f"s{t}_l{lane}")
                m.d.sync += [h.eq(v + step), s_reg.eq(step >= u)]
                carry(lane, f"b{t}")
                spikes[lane].append(s_reg)
                state[lane] = (h, s_reg)
                if t < T - 1:
                    c_reg = Signal(cur_shape, name=f"i{t}_l{lane}")
                    m.d.sync += c_reg.eq(i_)
                    new_currents.append(c_reg)
            currents = new_currents
            valid, grp, last = self._register(m, f"n{t}", valid, grp, last)

        return spikes, valid, grp, last

    def _requantise(self, m, currents, grp):
        """A radix layer's requantisation (module docstring), one register stage: returns
        ``spikes[lane][t]``, bit ``T - 1 - t`` of ``Y``."""
        layer, T, P = self.layer, self.T, self.p_co
        co = layer.out_channels
        G = self.n_groups
        cbits = self.widths.current_bits
        sh_bits = max(int(layer.shift.max()).bit_length(), 1)
        top = (1 << T) - 1
        spikes = []
        for lane, acc in enumerate(currents):
            table = [int(layer.shift[gi * P + lane]) if gi * P + lane < co else 0
                     for gi in range(G)]
            # round half up: floor((floor(acc / 2^(s-1)) + 1) / 2) = (acc >> s) +
            # ((acc >> (s-1)) & 1), and acc for s = 0
            doubled = Signal(signed(cbits + 1), name=f"dbl_l{lane}")
            rounded = Signal(signed(cbits + 1), name=f"rnd_l{lane}")
            shift = table[0] if G == 1 else self._table(table, sh_bits, grp)
            m.d.comb += [
                doubled.eq(acc << 1),
                rounded.eq(((doubled >> shift) + 1) >> 1),
            ]
            y = Mux(rounded < 0, 0, Mux(rounded > top, top, rounded[:T]))
            regs = []
            for t in range(T):
                s_reg = Signal(name=f"s{t}_l{lane}")
                m.d.sync += s_reg.eq(y.bit_select(T - 1 - t, 1))
                regs.append(s_reg)
            spikes.append(regs)
        return spikes

    @staticmethod
    def _register(m, name, valid, grp, last):
        v = Signal(name=f"{name}_valid")
        g = Signal.like(grp, name=f"{name}_group")
        l_ = Signal(name=f"{name}_last")
        m.d.sync += [v.eq(valid), g.eq(grp), l_.eq(last)]
        return v, g, l_

    def _table(self, values, bits, index):
        """``values[index]`` from a constant table (a mux of constants; one value: a constant)."""
        if len(values) == 1:
            return Const(values[0] & ((1 << bits) - 1), bits)
        return Cat(*(Const(v & ((1 << bits) - 1), bits) for v in values)).word_select(index, bits)


class StepSerialiser(wiring.Component):
    """One beat per pixel with every time step in, one beat per (pixel, time step) out.

    Turns :func:`pixel_steps_beat` beats into the per-step spike stream
    (:func:`~fireflys_hw.gateware.streams.spike_stream`, ``T`` beats per pixel, ``t = 0 .. T-1``).
    Zero latency: the input beat is held (``ready`` low) while its steps are sent, step ``t``
    selected by a counter.

    Parameters
    ----------
    channels : int
    T : int

    Members
    -------
    input : ``In(pixel_steps_stream(channels, T))``
    output : ``Out(spike_stream(channels))``
    """

    def __init__(self, channels: int, T: int):
        self.channels = check_positive("channels", channels)
        self.T = check_positive("T", T)
        super().__init__({
            "input": In(pixel_steps_stream(channels, T)),
            "output": Out(spike_stream(channels)),
        })

    def elaborate(self, platform):
        m = Module()
        if self.T == 1:
            wiring.connect(m, wiring.flipped(self.input), wiring.flipped(self.output))
            return m
        t = Signal(range(self.T))
        last = Signal()
        m.d.comb += [
            last.eq(t == self.T - 1),
            self.output.valid.eq(self.input.valid),
            self.output.payload.spikes.eq(
                self.input.payload.spikes.word_select(t, self.channels)),
            self.input.ready.eq(self.output.ready & last),
        ]
        with m.If(self.output.valid & self.output.ready):
            m.d.sync += t.eq(Mux(last, 0, t + 1))
        return m


class DirectCore(wiring.Component):
    """A layer core for a direct-encoded first conv layer, with the ports of
    :class:`~fireflys_hw.gateware.core.LayerCore` (``static_input``): :class:`DirectConv` ->
    :class:`StepSerialiser` -> :class:`~fireflys_hw.gateware.maxpool.MaxPool` (if a pool follows).
    For a radix layer the beats carry the digits of the requantised values and a pool (which
    needs ``per_step=False``) is the max of those values.

    It takes the accelerator's direct-encoded input (one beat per pixel, bit planes) and gives
    the per-step spike stream that the next core takes today. With ``per_step=False`` there is
    no serialiser: the output is the T-vectorised beat (one pixel, all steps,
    :func:`pixel_steps_beat`), for cores that take it; a pool then ORs whole beats
    (``MaxPool(T * Co, ..., T=1)``: the OR of every step at once).

    Parameters
    ----------
    layer : SynapticLayer
        A spiking conv layer.
    p_co : int
        Lanes (:class:`DirectConv`).
    T : int
    input_bits : int
    pool : PoolLayer or None
        The max-pool that follows the layer, if any.
    tree_levels : int
        Adder levels between registers (:class:`DirectConv`).
    per_step : bool
        Serialise the output into per-step beats (today's spike stream).

    Members
    -------
    input : ``In(spike_stream(Ci * input_bits))``
        ``H * W`` beats per frame.
    output : ``Out(spike_stream(Co))``
        ``Ho' * Wo' * T`` beats per frame (after the pool if there is one); with ``per_step =
        False``, ``Out(pixel_steps_stream(Co, T))``, ``Ho' * Wo'`` beats per frame.
    """

    #: The core takes one beat per pixel (the same input at every step).
    static_input = True

    def __init__(self, layer: SynapticLayer, *, p_co: int, T: int, input_bits: int,
                 pool=None, tree_levels: int = DEFAULT_TREE_LEVELS, per_step: bool = True):
        radix = getattr(layer, "neuron", None) is NeuronKind.RADIX
        if radix and pool is not None and per_step:
            # the max of T-bit values needs all of a value's digits in one beat
            raise ValueError("a radix layer's pool needs per_step=False (the max of the T-bit "
                             "values, not a per-step OR)")
        self.conv = DirectConv(layer, p_co=p_co, T=T, input_bits=input_bits,
                               tree_levels=tree_levels)
        self.layer = layer
        self.p_co = p_co
        self.T = T
        self.input_bits = input_bits
        self.per_step = bool(per_step)
        co, oh, ow = layer.out_shape
        self.serialiser = StepSerialiser(co, T) if self.per_step else None
        if pool is None:
            self.pool = None
        elif self.per_step:
            self.pool = MaxPool(co, oh, ow, T, pool.kernel)
        else:
            # a radix layer's pool is the max of its T-bit values (the digits of a beat)
            self.pool = MaxPool(T * co, oh, ow, 1, pool.kernel, planes=T if radix else 0)
        super().__init__({
            "input": In(spike_stream(self.conv.in_channels)),
            "output": Out(spike_stream(co) if self.per_step else pixel_steps_stream(co, T)),
        })

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels

    @property
    def beat_bits(self) -> int:
        """Bits per input beat, ``Ci * input_bits`` (one step: the input is static)."""
        return self.conv.in_channels

    @property
    def n_groups(self) -> int:
        return self.conv.n_groups

    @property
    def steps(self) -> int:
        return 1

    @property
    def beats_per_frame(self) -> int:
        return self.conv.beats_per_frame

    @property
    def buffer_bits(self) -> dict:
        bits = dict(self.conv.buffer_bits)
        bits["pool"] = 0 if self.pool is None else self.pool.buffer_bits
        return bits

    def profile_flags(self) -> dict:
        """The accelerator's per-core profiling flags as signals of this core (valid after
        elaboration). The core has two processes that overlap, so it reports them apart:

        * ``busy``: cycles in which the convolution progresses (a padded pixel taken or a
          (pixel, group) admitted into the lanes): ``Hp * Wp + Ho * Wo * (G - 1)`` per frame;
        * ``windows``: spike beats sent (by the serialiser: ``Ho * Wo * T`` per frame; without
          it, ``Ho * Wo``);
        * ``blocked``: a complete window waits because the output FIFO has no room (held back
          by the downstream).

        The core's own cycles per frame are ``max(busy, windows)``
        (:func:`~fireflys_hw.compiler.direct.direct_conv_frame_cycles`)."""
        conv = self.conv
        take = conv.padding.output.valid & conv.padding.output.ready
        out = self.conv.output if self.serialiser is None else self.serialiser.output
        return {"in": self.input.valid & self.input.ready,
                "windows": out.valid & out.ready,
                "busy": take | conv.admitting,
                "blocked": conv.window_valid & ~conv.admitting}

    def elaborate(self, platform):
        m = Module()
        m.submodules.conv = self.conv
        wiring.connect(m, wiring.flipped(self.input), self.conv.input)
        spikes = self.conv.output
        if self.serialiser is not None:
            m.submodules.serialiser = self.serialiser
            wiring.connect(m, spikes, self.serialiser.input)
            spikes = self.serialiser.output
        if self.pool is None:
            wiring.connect(m, spikes, wiring.flipped(self.output))
        else:
            m.submodules.pool = self.pool
            wiring.connect(m, spikes, self.pool.input)
            wiring.connect(m, self.pool.output, wiring.flipped(self.output))
        return m
