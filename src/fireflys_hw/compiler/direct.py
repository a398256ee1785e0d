"""The numbers of the dense first-layer datapath (:class:`fireflys_hw.gateware.direct_conv.DirectConv`)
without Amaranth: its shift-add terms, pipeline depth, exact cycles and a structural count of
its logic for the planner's resource model.

Symbols as in :mod:`fireflys_hw.gateware.direct_conv`: ``K`` the kernel, ``Hp x Wp`` the padded input
map, ``Ho x Wo`` the output map, ``G = ceil(Co / P_Co)`` groups, ``T`` time steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.golden import layer_widths
from fireflys_sw.spec import NeuronKind

__all__ = ["CURRENT_STAGES", "DEFAULT_TREE_LEVELS", "csd", "neuron_stages", "direct_conv_terms", "tree_shape", "DirectLogic",
           "direct_conv_logic", "direct_conv_latency", "direct_conv_fifo_depth",
           "direct_conv_frame_cycles", "direct_conv_cycles", "direct_conv_fits"]


def csd(value: int) -> list[tuple[int, int]]:
    """``value`` in canonical signed digits: ``[(shift, +1 or -1), ...]`` with
    ``value == sum(d << s)`` and no two adjacent non-zero digits (the fewest terms)."""
    digits = []
    shift = 0
    v = int(value)
    while v:
        if v & 1:
            d = 2 - (v & 3)          # +1 if v = 1 (mod 4), -1 if v = 3 (mod 4)
            digits.append((shift, d))
            v -= d
        v >>= 1
        shift += 1
    return digits


#: Adder levels between two registers of the adder trees: one, so that no register-to-register
#: path holds two carry chains (issue 14: at most 6 logic levels).
DEFAULT_TREE_LEVELS = 1

#: Register stages of the current ``I = (P - N) + B`` after the adder trees (one adder each).
CURRENT_STAGES = 2


def neuron_stages(layer: SynapticLayer, T: int) -> int:
    """Register stages after the current ``I``: two per time step for LIF/IF (``T`` neuron
    updates of the same current, ``D = I - V`` then ``H = V + (D >> k)`` beside the threshold
    test, so that no stage chains two carry chains), less the first step's first stage (``V =
    0``); one for a radix layer (``docs/numeric-contract.md``: the first layer's ``acc = B + W .
    X`` is the current itself, requantised in one stage to the ``T``-bit value whose digits
    leave together)."""
    return 1 if layer.neuron is NeuronKind.RADIX else 2 * T - 1


def direct_conv_fits(layer: SynapticLayer) -> bool:
    """Whether the dense datapath can compute ``layer``: a spiking conv layer (not fc, not the
    readout)."""
    return isinstance(layer, SynapticLayer) and layer.kind is LayerKind.CONV \
        and not layer.is_readout


def direct_conv_terms(layer: SynapticLayer, p_co: int) -> list[list[tuple[int, int, int, int]]]:
    """The shift-add terms of every lane: per lane ``[(position, shift, sign, group_mask), ...]``
    where ``position = (kw * K + kh) * Ci + ci`` is the window position (the input value
    ``x[ci, kh, kw]``), the term is ``sign * (x << shift)``, and ``group_mask`` bit ``g`` says
    whether group ``g`` (channel ``g * p_co + lane``) uses it."""
    co, ci, k, _ = layer.weight.shape
    groups = -(-co // p_co)
    lanes = []
    for lane in range(p_co):
        terms: dict[tuple[int, int, int], int] = {}
        for g in range(groups):
            c = g * p_co + lane
            if c >= co:
                continue
            for kh in range(k):
                for kw in range(k):
                    for i in range(ci):
                        pos = (kw * k + kh) * ci + i
                        for shift, sign in csd(int(layer.weight[c, i, kh, kw])):
                            key = (pos, shift, sign)
                            terms[key] = terms.get(key, 0) | (1 << g)
        lanes.append([key + (mask,) for key, mask in sorted(terms.items())])
    return lanes


def tree_shape(maxima: list[list[int]], tree_levels: int) -> tuple[int, int, int]:
    """Pipeline stages, adder bits and register bits of adder trees summing operands of the
    given maxima (one list per tree, all trees in lockstep), pairing neighbours level by level
    with a register after every ``tree_levels`` levels (at least one register), as
    :class:`~fireflys_hw.gateware.direct_conv.DirectConv` builds them."""
    trees = [list(t) for t in maxima]
    stages = adder_bits = register_bits = 0

    def reducible():
        return any(len(t) > 1 for t in trees)

    while True:
        for _ in range(tree_levels):
            if not reducible():
                break
            for n, ops in enumerate(trees):
                nxt = []
                for i in range(0, len(ops) - 1, 2):
                    s = ops[i] + ops[i + 1]
                    adder_bits += s.bit_length()
                    nxt.append(s)
                if len(ops) % 2:
                    nxt.append(ops[-1])
                trees[n] = nxt
        stages += 1
        register_bits += sum(v.bit_length() for t in trees for v in t)
        if not reducible():
            return stages, adder_bits, register_bits


def _tree_maxima(layer: SynapticLayer, p_co: int, input_bits: int) -> list[list[int]]:
    x_max = (1 << input_bits) - 1
    out = []
    for lane in direct_conv_terms(layer, p_co):
        for sign in (1, -1):
            out.append([x_max << shift for _, shift, s, _ in lane if s == sign])
    return out


def direct_conv_latency(layer: SynapticLayer, p_co: int, T: int, input_bits: int,
                        tree_levels: int = DEFAULT_TREE_LEVELS) -> int:
    """Cycles from a (pixel, group) entering the lanes to its spikes entering the output FIFO:
    the adder trees' stages, the current ``I``, the neuron stages (:func:`neuron_stages`: one
    per time step, or one requantisation stage for a radix layer)."""
    stages, _, _ = tree_shape(_tree_maxima(layer, p_co, input_bits), tree_levels)
    return stages + CURRENT_STAGES + neuron_stages(layer, T)


def direct_conv_fifo_depth(latency: int, groups: int) -> int:
    """The output FIFO's default depth: every pixel the pipeline can hold, plus two."""
    return -(-latency // groups) + 2


@dataclass(frozen=True)
class DirectLogic:
    """A structural count of a :class:`~fireflys_hw.gateware.direct_conv.DirectConv` (all lanes), for
    the planner's resource model: ``adder_bits`` bits of two-input adders and subtracters (a
    LUT and a carry bit each on a LUT6 family), ``gated_bits`` operand bits gated by the group,
    ``neuron_bits`` bits of the ``T`` neuron steps' arithmetic (charge, fire, reset),
    ``register_bits`` pipeline flip-flops, ``window_bits`` the window registers,
    ``line_buffer`` ``(width, depth)`` of the line buffer RAM (``None`` for ``K = 1``),
    ``table_bits`` bits of the per-group bias/threshold tables, ``fifo`` ``(width, depth)``
    of the output FIFO."""

    adder_bits: int
    gated_bits: int
    neuron_bits: int
    register_bits: int
    window_bits: int
    line_buffer: tuple[int, int] | None
    table_bits: int
    fifo: tuple[int, int]
    lanes: int
    groups: int


def direct_conv_logic(layer: SynapticLayer, p_co: int, T: int, input_bits: int,
                      tree_levels: int = DEFAULT_TREE_LEVELS) -> DirectLogic:
    """:class:`DirectLogic` of the datapath for ``layer`` at ``p_co`` lanes."""
    ci, h, w = layer.in_shape
    co = layer.out_channels
    k, pad = layer.kernel, layer.padding or 0
    groups = -(-co // p_co)
    b = ci * input_bits
    maxima = _tree_maxima(layer, p_co, input_bits)
    stages, adder_bits, register_bits = tree_shape(maxima, tree_levels)
    gated = 0
    if groups > 1:
        x_max = (1 << input_bits) - 1
        for lane in direct_conv_terms(layer, p_co):
            gated += sum((x_max << shift).bit_length() for _, shift, _, mask in lane
                         if mask != (1 << groups) - 1)
    radix = layer.neuron is NeuronKind.RADIX
    widths = layer_widths(layer, (1 << input_bits) - 1, T, radix=radix)
    cur, mem = widths.current_bits, widths.membrane_bits
    side = 1 + (max(groups, 2) - 1).bit_length() + 1
    bias_bits = max(abs(int(layer.bias.min())), abs(int(layer.bias.max())), 1).bit_length() + 1
    # I = P - N + B: two adders
    adder_bits += 2 * cur * p_co
    if radix:
        # requantisation per lane: the rounding shift (a barrel shifter of log2(s_max + 1)
        # levels when the shift differs between groups, wires when it is a constant), the
        # rounding increment and the clip to [0, 2^T - 1]
        sh_bits = max(int(layer.shift.max()).bit_length(), 1)
        levels = sh_bits if groups > 1 else 0
        neuron_bits = p_co * (cur + 1) * (levels + 2)
        # P - N, the current, the requantised digits
        register_bits += 2 * (cur * p_co + side) + p_co * T + side
        table_bits = 0 if groups == 1 else p_co * groups * (sh_bits + bias_bits)
    else:
        # the neuron steps: (I - V), TH - V, V + ..., the spike test, V = s ? 0 : H
        per_step = (5 if layer.neuron is NeuronKind.LIF else 4) * mem
        neuron_bits = p_co * per_step * T
        # P - N and the current; per step: stage 2 (H, I, spike), stage 1 (V, D, U, I; not
        # at t = 0); the spikes so far carried along every stage
        register_bits += 2 * (cur * p_co + side) \
            + T * (p_co * (mem + cur + 1) + side) \
            + (T - 1) * (p_co * (3 * mem + 2 + cur) + side) \
            + p_co * T * (T - 1) + side * stages
        th_bits = int(layer.threshold.max()).bit_length() + 1
        table_bits = 0 if groups == 1 else p_co * groups * (th_bits * T + bias_bits)
    latency = stages + CURRENT_STAGES + neuron_stages(layer, T)
    return DirectLogic(
        adder_bits=adder_bits, gated_bits=gated, neuron_bits=neuron_bits,
        register_bits=register_bits + (groups - 1) * p_co * T, window_bits=k * k * b,
        line_buffer=((k - 1) * b, w + 2 * pad) if k > 1 else None, table_bits=table_bits,
        fifo=(T * co, direct_conv_fifo_depth(latency, groups)), lanes=p_co, groups=groups)


def direct_conv_frame_cycles(layer: SynapticLayer, p_co: int, T: int | None = None,
                             serialised: bool = False) -> int:
    """Steady-state cycles per frame of a :class:`~fireflys_hw.gateware.direct_conv.DirectConv` with
    frames back to back and its output always ready: ``Hp * Wp + Ho * Wo * (G - 1)`` (one cycle
    per padded pixel, ``G`` per pixel that completes a window); behind a
    :class:`~fireflys_hw.gateware.direct_conv.StepSerialiser` (``serialised``, ``T`` needed) at least
    ``Ho * Wo * T`` (the serialiser sends one step per cycle)."""
    _, h, w = layer.in_shape
    pad = layer.padding or 0
    co, oh, ow = layer.out_shape
    groups = -(-co // p_co)
    cycles = (h + 2 * pad) * (w + 2 * pad) + oh * ow * (groups - 1)
    if serialised:
        cycles = max(cycles, oh * ow * T)
    return cycles


def direct_conv_cycles(layer: SynapticLayer, p_co: int, T: int, frames: int, *,
                       latency: int, fifo_depth: int, serialised: bool = False) -> int:
    """Exact cycles from reset until the last output beat of ``frames`` frames has been taken,
    with the input always valid and the output (or the serialiser's output) always ready: a
    cycle-by-cycle model of :class:`~fireflys_hw.gateware.direct_conv.DirectConv`'s control (padded
    pixel counter, window hold for ``G`` groups, credit of ``fifo_depth`` pixels, ``latency``
    pipeline stages, the buffered FIFO's two-cycle write-to-read latency), which the tests
    check against simulation cycle for cycle."""
    _, h, w = layer.in_shape
    pad = layer.padding or 0
    k = layer.kernel
    co, oh, ow = layer.out_shape
    hp, wp = h + 2 * pad, w + 2 * pad
    G = -(-co // p_co)
    total_pixels = hp * wp * frames
    out_total = oh * ow * frames
    taken = 0                       # padded pixels taken
    pending = False
    g = 0
    count = 0
    pipe = [False] * latency        # pixel-completing groups in flight, by stage
    readable: list[int] = []        # per beat in the FIFO, the cycle it can be read
    out_done = 0
    t_ser = 0
    cycle = 0
    while out_done < out_total:
        admit = pending and count < fifo_depth
        last = g == G - 1
        ready = (not pending) or (admit and last)
        take = ready and taken < total_pixels
        pop = False
        if readable and readable[0] <= cycle:
            if serialised and T > 1:
                if t_ser == T - 1:
                    pop = True
                    t_ser = 0
                else:
                    t_ser += 1
            else:
                pop = True
        push = pipe[-1]
        # clock edge
        if pop:
            readable.pop(0)
            out_done += 1
        if push:
            readable.append(cycle + 2)
        pipe = [admit and last] + pipe[:-1]
        count += int(admit and last) - int(pop)
        if take:
            r, c = divmod(taken % (hp * wp), wp)
            pending = r >= k - 1 and c >= k - 1
            taken += 1
        elif admit and last:
            pending = False
        if admit:
            g = 0 if last else g + 1
        cycle += 1
    return cycle
