"""The FireFly-S dual-side sparsity detector of one output-channel lane."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..compiler.base import TABLE_BRAM_ROWS
from ..compiler.cycles import DETECTOR_TAIL
from ..compiler.weights import PackedWeights
from .bram import RegisteredRom
from .streams import effectual_event, window_chunk, window_stream
from .util import or_tree, popcount_logic

__all__ = ["SparsityDetector", "detector_cycles",
           "lockstep_cycles", "DetectorModel", "DETECTOR_LATENCY", "TABLE_BRAM_ROWS"]

#: Cycles from the input transfer of a beat to the first event it causes at ``events``
#: (R, A0, A1, B, C, D, E, F, G registers), when nothing is ahead of it.
DETECTOR_LATENCY = 9

#: Bits per partial popcount of stage A1 (16: five LUT levels; a wider chunk is counted in
#: parts that B adds when it loads the chunk).
_PART_BITS = 16


class SparsityDetector(wiring.Component):
    """Find the effectual (spike AND non-zero weight) pairs of a window stream, one per cycle.

    A window chunk carries ``P_Ci`` channels at each of ``T`` steps (:mod:`.streams`). Its
    spikes ORed over the steps are ANDed with the lane's weight bitmap vector for ``(group,
    chunk)``: the pairs effectual in *any* step. The set bits of the AND are found one per
    cycle (lowest first, ``x & (x - 1)`` clears it), and each one's weight is read **once** from
    the compressed store at ``base[group, chunk] + popcount(bitmap & below)``, ``below`` being
    the bits under the set bit; the pair's ``T`` spike bits go with it (``steps``), so the
    neuron lane adds the weight into the accumulators of the steps in which the input spikes.
    The weights leave on ``events``, together with an ``end`` mark on the last slot of each
    window; the neuron lane starts its accumulators from the bias (so the bias costs no cycle).

    Pipeline (one register stage each; stages C..E never stall, see below)::

        R   latch the beat and its OR over t; the bitmap table reads {bitmap, base} at
            (group, chunk) into a register (the table's read is all this stage does)
        A0  x = (OR over t of spikes) & bitmap, a flag per 16-bit part of x: not 0
        A1  zero = (x == 0), n = popcount(x) (in parts of 16 bits, added when B loads them)
        B   iterate over the set bits of x, one per cycle: a down-counter from n says when
            the last one goes, so the hand-shake signals all come from registers
        C   masked = bitmap & (x - 1) & ~x        (bits of the bitmap below the pair's spike)
            lowest = x & ~(x - 1)                 (the pair's spike bit)
        D   offset = popcount(masked), steps[t] = any(spikes[t] & lowest)  (the pair's spike
            at every step)
        E   store address = base + offset
        F   read the store (synchronous read)
        G   the weight into a register of its own, with the slot's flags: nothing follows a
            block RAM's output in its cycle (an ECP5 DP16KD without its output register has
            a 5.8 ns clock-to-out; the readout's store into the accumulators was 10 ns)

    Every stage is at most one carry chain or a few LUTs deep (issue 14: 6 logic levels on
    xcup).

    Empty chunks cost no B cycle: a chunk whose AND is zero is dropped in A1 (one per cycle,
    while B is busy with an earlier chunk), unless it is the last chunk of a window: then its
    ``end`` mark is handed to the chunk in B if that is a non-empty chunk of the same window
    (``absorb``: its last pair will carry the mark; ``merge`` if that pair leaves B in this very
    cycle), else it takes one B slot of its own (always for a window without any effectual
    pair; otherwise only when B has run dry, so that slot costs no time). Handing the mark over
    keeps A1 moving: the next window's empty chunks are dropped while B finishes this window's
    pairs. And while A1 holds a non-empty chunk waiting for B, an empty chunk in A0 is dropped
    there (an empty last chunk hands its end mark to A1's chunk of the same window), so the
    input
    keeps moving up to the next non-empty chunk: the look-ahead holds two non-empty chunks,
    not two beats. The paper instead spends a B cycle on every chunk, empty or not
    (``skip_empty=False``).

    Cycle count, input back to back from cycle 0 and ``events`` always taken (exact,
    :func:`detector_cycles` evaluates the recurrence; tests check it cycle for cycle)::

        paper  (skip_empty=False): cycles = sum over chunks of max(1, pairs) + DETECTOR_LATENCY
        ours   (skip_empty=True):  max(sum over windows of max(1, pairs), beats - 1)
                                   + DETECTOR_LATENCY <= cycles <= paper

    where ``cycles`` = the cycle of the last slot + 1 and ``DETECTOR_LATENCY = 9``. R is a
    plain pipeline register in front of A0 (it takes a beat when it is empty or A0 takes its
    beat), so it adds a cycle of latency and one beat of look-ahead, no cycles per beat. The
    input bound (one beat per cycle) makes ``beats`` the floor whatever the sparsity.

    ``events`` has no ``ready``: the slots leave at once, one per cycle at most. The owner must
    make sure whatever follows can always take them (the synapse array admits a window only
    when its neuron output FIFOs have room for the result).

    Parameters
    ----------
    weights : PackedWeights
        The layer's packed weights (:func:`fireflys_hw.compiler.weights.pack_weights`).
    lane : int
        Which lane of ``weights`` (``0 <= lane < weights.p_co``).
    T : int
        Time steps a chunk carries (``S``: ``T``, or 1 for a static input).
    skip_empty : bool
        ``True`` (default): drop empty chunks in A1 and merge end marks as above. ``False``:
        the paper's behaviour, every chunk takes at least one B slot (``sum over chunks of
        max(1, pairs)`` slots); kept for comparison (benchmarks/bench_detector.py).
    lookahead : bool
        The owner drives ``next_head`` and ``next_second``, the two payloads ``input`` can
        carry in the next cycle, and ``next_pick``, which of them it will (a
        :class:`~fireflys_hw.gateware.streams.LaneQueue` with ``registered_read`` has them
        under those names). A block RAM table (``TABLE_BRAM_ROWS`` rows or more) is then read
        a cycle early at both payloads' rows (its two ports) and R takes both rows into the
        ports' output registers with the beat, the pick into a register beside them: A0
        starts from flip-flops, not from the block RAM's output (5.8 ns on the ECP5 without its
        output register; the readout core's critical path alone on the ULX3S, 9.2 ns), and
        the pick, decided by the hand-shakes, no longer steers the block RAM's address (the
        readout detector's hand-shakes -> its table's address: the whole build's critical
        path at 121.6 MHz, 8.22 ns, 6.27 routing). A smaller table (a LUT ROM) is read at a
        register that takes the next payload's row. The cycles are the same.

    Members
    -------
    input : ``In(window_stream(p_ci, n_chunks, T, n_groups))``
        The window stream.
    next_head, next_second : ``In(window_chunk(p_ci, n_chunks, T, n_groups))``
        With ``lookahead``: the payloads ``input`` can carry in the next cycle.
    next_pick : ``In(1)``
        With ``lookahead``: ``input`` carries ``next_second`` in the next cycle, not
        ``next_head``.
    events : ``Out(stream.Signature(effectual_event(weight_bits, T, n_groups),
    always_ready=True))``
        One slot per effectual pair, plus an end-only slot per window whose end mark
        could not ride on a pair (see above).
    """

    def __init__(self, weights: PackedWeights, lane: int, T: int, skip_empty: bool = True,
                 lookahead: bool = False):
        if not isinstance(weights, PackedWeights):
            raise TypeError(f"weights must be a PackedWeights, not {weights!r}")
        if isinstance(lane, bool) or not isinstance(lane, int):
            raise TypeError(f"lane must be an integer, not {lane!r}")
        if not 0 <= lane < weights.p_co:
            raise ValueError(f"lane must be in [0, {weights.p_co}), not {lane}")
        if isinstance(T, bool) or not isinstance(T, int):
            raise TypeError(f"T must be an integer, not {T!r}")
        if T < 1:
            raise ValueError(f"T must be at least 1, not {T}")
        self.weights = weights
        self.lane = lane
        self.T = T
        self.skip_empty = bool(skip_empty)
        self.lookahead = bool(lookahead)
        chunk = window_chunk(weights.p_ci, weights.n_chunks, T, weights.n_groups)
        super().__init__({
            "input": In(window_stream(weights.p_ci, weights.n_chunks, T, weights.n_groups)),
            **({"next_head": In(chunk), "next_second": In(chunk), "next_pick": In(1)}
               if lookahead else {}),
            "events": Out(stream.Signature(
                effectual_event(weights.weight_bits, T, weights.n_groups), always_ready=True)),
        })

    @property
    def chunk_bits(self) -> int:
        return max(1, (self.weights.n_chunks - 1).bit_length())

    def _vector_init(self):
        w = self.weights
        words = w.bitmap_words(self.lane)
        init = []
        for g in range(w.n_groups):
            for ch in range(1 << self.chunk_bits):
                if ch < w.n_chunks:
                    init.append({"bitmap": words[g * w.n_chunks + ch],
                                 "base": int(w.bases[self.lane, g, ch])})
                else:
                    init.append({"bitmap": 0, "base": 0})
        return init

    def elaborate(self, platform):
        m = Module()
        w = self.weights
        p_ci = w.p_ci
        abits = w.address_bits
        win = self.input.payload

        # bitmap table, addressed by Cat(chunk, group): the chunk field padded to a power of
        # two so that the address is wiring, not a multiplier; read into R's register
        vec_layout = data.StructLayout({"bitmap": p_ci, "base": abits})
        rows = self._vector_init()

        def row_of(beat):
            return Cat(beat.chunk[:self.chunk_bits] if w.n_chunks > 1 else Const(0, 1),
                       beat.group[:max(1, (w.n_groups - 1).bit_length())]
                       if w.n_groups > 1 else Const(0, 0))

        early = None            # the table's row of R's beat, in a register (lookahead)
        if len(rows) >= TABLE_BRAM_ROWS and self.lookahead:
            # read every cycle at the next head's row, into the block RAM's own output
            # register as R takes the head: the row is out with the head, from a register
            # that comes out fast (RegisteredRom)
            words = [vec_layout.const(r).as_value().value for r in rows]
            m.submodules.table = table = RegisteredRom(vec_layout.size, words, second_port=True)
            m.d.comb += [table.addr.eq(row_of(self.next_head)),
                         table.addr_b.eq(row_of(self.next_second)), table.en.eq(1)]
            # the pick of the read, then of the output registers' rows (loaded with them)
            picked_read = Signal()
            picked = Signal()
            m.d.sync += picked_read.eq(self.next_pick)
            early = vec_layout(Mux(picked, table.data_b, table.data))
        elif len(rows) >= TABLE_BRAM_ROWS:
            m.submodules.table = table = memory.Memory(shape=vec_layout, depth=len(rows),
                                                       init=rows)
            vec_rd = table.read_port()
        else:
            vec_rd = _RomRead(m, vec_layout, rows)
        row = vec_rd.data if early is None else early
        # the compressed weights, read at E's address; the weight leaves from the table's
        # output register (G's register): a block RAM's own, which comes out fast
        mask = (1 << w.weight_bits) - 1
        store = [int(v) & mask for v in w.stores[self.lane]]
        m.submodules.store = store_rom = RegisteredRom(
            w.weight_bits, store + [0] * (w.store_depth - len(store)),
            block_ram=w.store_depth >= TABLE_BRAM_ROWS)

        T = self.T
        flags = data.StructLayout({"end": 1, "group": range(max(w.n_groups, 2))})

        # --- R ---------------------------------------------------------------------------
        r_valid = Signal()
        r_spikes = Signal(p_ci * T)
        r_any = Signal(p_ci)                # OR over t of r_spikes
        r = Signal(flags)
        # --- A0 --------------------------------------------------------------------------
        a0_valid = Signal()
        a0_spikes = Signal(p_ci * T)
        a0_x = Signal(p_ci)                 # (OR over t of a0_spikes) & bitmap
        a0_bitmap = Signal(p_ci)
        a0_base = Signal(abits)
        a0 = Signal(flags)
        # --- A1 --------------------------------------------------------------------------
        a1_valid = Signal()
        a1_x = Signal(p_ci)
        a1_spikes = Signal(p_ci * T)
        a1_zero = Signal()
        # popcount(x) in parts of _PART_BITS bits
        parts = [(lo, min(lo + _PART_BITS, p_ci)) for lo in range(0, p_ci, _PART_BITS)]
        # per part (A0): a0_x is not 0
        a0_nzs = [Signal(name=f"a0_nz{k}") for k in range(len(parts))]
        a0_nz = Cat(*a0_nzs).any()
        a1_n = [Signal(range(hi - lo + 1), name=f"a1_n{k}") for k, (lo, hi) in enumerate(parts)]
        a1_bitmap = Signal(p_ci)
        a1_base = Signal(abits)
        a1 = Signal(flags)
        # --- B ---------------------------------------------------------------------------
        b_valid = Signal()
        b_x = Signal(p_ci)
        b_spikes = Signal(p_ci * T)
        b_n = Signal(range(p_ci + 1))       # set bits left in b_x
        b_last = Signal()                  # b_n <= 1: this cycle emits the chunk's last slot
        b_pair = Signal()
        b_bitmap = Signal(p_ci)
        b_base = Signal(abits)
        b = Signal(flags)

        # Two registers kept equal to functions of B's state, set from their next values, so
        # that the hand-shake chain back to R starts one LUT later (issue 14: B's flags ->
        # A1, A0, R free -> R's clock enables was core 4's path alone on the ECP5, 8.8 ns):
        # ``b_take`` = B is empty or emits its last slot now (~b_valid | b_last);
        # ``b_open`` = B holds a non-empty chunk that is not its window's last (b_valid &
        # b_pair & ~b.end), to which an empty last chunk in A1 may hand its end mark.
        b_take = Signal(init=1)
        b_open = Signal()
        # an empty last chunk hands its end mark to the chunk in B (same window: B's chunk is
        # not its window's last), so that it does not hold up A1 until B is done; if B emits its
        # last slot now, that slot takes the mark at once (merge)
        if self.skip_empty:
            absorb = a1_valid & a1_zero & a1.end & b_open
            merge = absorb & b_last
            discard = a1_valid & a1_zero & (~a1.end | b_open)
        else:
            absorb = merge = discard = Const(0)
        b_load = a1_valid & ~discard & b_take
        a1_free = ~a1_valid | discard | b_take
        # while A1 waits for B, an empty chunk in A0 is dropped there (an empty last chunk
        # hands its end mark to A1's chunk of the same window), so that the input keeps moving
        # up to the next non-empty chunk
        x = Signal(p_ci)                    # R's beat against its bitmap row
        any_step = win.spikes[:p_ci]
        for t in range(1, T):
            any_step = any_step | win.spikes[t * p_ci:(t + 1) * p_ci]
        m.d.comb += x.eq(r_any & row.bitmap)
        if self.skip_empty:
            # A0's chunk may go if it is empty and not its window's last, or empty and last
            # with A1's non-empty chunk of the same window taking its end mark; a flag of
            # A0's and A1's registers alone, beside a1_free (one LUT less on the chain to R)
            a0_empty_goes = ~a0_nz & (~a0.end | (~a1_zero & ~a1.end))
            a0_drop = a0_valid & ~a1_free & a0_empty_goes
        else:
            a0_empty_goes = a0_drop = Const(0)
        a0_free = ~a0_valid | a1_free | a0_empty_goes
        r_free = ~r_valid | a0_free

        m.d.comb += self.input.ready.eq(r_free)
        if early is None and self.lookahead:
            # the input beat's row in a register, from the next payload: the table read starts
            # at flip-flops, not after the queue's pick between its head and second beat
            # (core 4 alone on the ECP5: the pending pop -> the pick -> a LUT ROM, 8.7 ns)
            in_row = Signal(len(row_of(win)))
            m.d.sync += in_row.eq(Mux(self.next_pick, row_of(self.next_second),
                                      row_of(self.next_head)))
            m.d.comb += [vec_rd.en.eq(r_free), vec_rd.addr.eq(in_row)]
        elif early is None:
            m.d.comb += [vec_rd.en.eq(r_free), vec_rd.addr.eq(row_of(win))]
        else:
            m.d.comb += table.oce.eq(r_free)
            with m.If(r_free):
                m.d.sync += picked.eq(picked_read)
        with m.If(r_free):
            m.d.sync += [
                r_valid.eq(self.input.valid),
                r_spikes.eq(win.spikes),
                r_any.eq(any_step),
                r.end.eq(win.last_chunk),
                r.group.eq(win.group),
            ]
        with m.If(a0_free):
            m.d.sync += [
                a0_valid.eq(r_valid),
                a0_spikes.eq(r_spikes),
                a0_x.eq(x),
                # registered, so that A0's drop decision is a flag
                *(nz.eq(or_tree(x[lo:hi])) for nz, (lo, hi) in zip(a0_nzs, parts)),
                a0_bitmap.eq(row.bitmap),
                a0_base.eq(row.base),
                a0.eq(r),
            ]

        with m.If(a1_free):
            m.d.sync += [
                a1_valid.eq(a0_valid),
                a1_x.eq(a0_x),
                a1_spikes.eq(a0_spikes),
                a1_zero.eq(~a0_nz),
                *(n.eq(popcount_logic(a0_x[lo:hi])) for n, (lo, hi) in zip(a1_n, parts)),
                a1_bitmap.eq(a0_bitmap),
                a1_base.eq(a0_base),
                a1.eq(a0),
            ]
        with m.Elif(a0_drop & a0.end):
            m.d.sync += a1.end.eq(1)

        # ``b_dec``: the bits below b_x's lowest set bit set, that bit cleared, the rest as in
        # b_x (``b_x - 1``, all ones for 0), as carry chains, which synthesis keeps as they are
        # (in the parts of ``parts``: ``part - 1`` each, a carry chain of 4 cells side by side;
        # a part takes its ``- 1`` only if every part below it is 0, which a flag per part
        # says, kept with a count of its set bits beside b_n)
        b_dec = Signal(p_ci)
        b_cnt = [Signal(range(hi - lo + 1), name=f"b_n{k}") for k, (lo, hi) in enumerate(parts)]
        b_empty = [Signal(name=f"b_empty{k}") for k in range(len(parts))]
        decs = []
        for k, (lo, hi) in enumerate(parts):
            dec = Signal(hi - lo, name=f"b_dec{k}")
            m.d.comb += dec.eq(b_x[lo:hi] - 1)
            lower_zero = Cat(*b_empty[:k]).all() if k else Const(1, 1)
            decs.append(Mux(lower_zero, dec, b_x[lo:hi]))
        m.d.comb += b_dec.eq(Cat(*decs))
        # n = the sum of the parts; n <= 1: one part at most 1, the others 0
        a1_sum = a1_n[0]
        for n in a1_n[1:]:
            a1_sum = a1_sum + n
        a1_le1 = Cat(*((a1_n[k] <= 1) & Cat(*(n == 0 for j, n in enumerate(a1_n) if j != k)).all()
                       for k in range(len(a1_n)))).any()
        # b_take and b_open from the next values of B's registers (see above)
        with m.If(b_take):
            m.d.sync += [b_valid.eq(b_load),
                         b_take.eq(~b_load | a1_le1),
                         b_open.eq(b_load & ~a1_zero & ~a1.end)]
        with m.Else():
            m.d.sync += [b_take.eq(b_n <= 2), b_open.eq(b_open & ~absorb)]
        with m.If(b_load):
            m.d.sync += [
                b_x.eq(a1_x),
                b_spikes.eq(a1_spikes),
                b_n.eq(a1_sum),
                b_last.eq(a1_le1),
                *(c.eq(n) for c, n in zip(b_cnt, a1_n)),
                *(e.eq(n == 0) for e, n in zip(b_empty, a1_n)),
                b_pair.eq(~a1_zero),
                b_bitmap.eq(a1_bitmap),
                b_base.eq(a1_base),
                b.eq(a1),
            ]
        with m.Elif(b_valid & ~b_last):
            for k in range(len(parts) - 1):         # the last part's flag is not needed
                active = ~b_empty[k] & (Cat(*b_empty[:k]).all() if k else Const(1, 1))
                with m.If(active):
                    m.d.sync += [b_cnt[k].eq(b_cnt[k] - 1), b_empty[k].eq(b_cnt[k] == 1)]
            m.d.sync += [
                b_x.eq(b_x & b_dec),
                b_n.eq(b_n - 1),
                b_last.eq(b_n <= 2),
            ]
            with m.If(absorb):
                m.d.sync += b.end.eq(1)

        # --- C: the bitmap bits below the lowest set bit of x ----------------------------
        c_valid = Signal()
        c_masked = Signal(p_ci)
        c_base = Signal(abits)
        c_pair = Signal()
        c_lowest = Signal(p_ci)             # the pair's spike bit, one-hot
        c_spikes = Signal(p_ci * T)
        c = Signal(flags)
        lowest = b_x & ~b_dec
        m.d.sync += [
            c_valid.eq(b_valid),
            c_masked.eq(b_bitmap & b_dec & ~b_x),
            c_base.eq(b_base),
            c_pair.eq(b_pair),
            c_lowest.eq(lowest),
            c_spikes.eq(b_spikes),
            c.end.eq((b.end & b_last) | merge),
            c.group.eq(b.group),
        ]
        # --- D: offset in the store ------------------------------------------------------
        d_valid = Signal()
        # popcount(masked) in parts, as in A1
        d_offset = [Signal(range(hi - lo + 1), name=f"d_offset{k}")
                    for k, (lo, hi) in enumerate(parts)]
        d_base = Signal(abits)
        d_pair = Signal()
        d_steps = Signal(T)
        d = Signal(flags)
        m.d.sync += [
            d_valid.eq(c_valid),
            *(n.eq(popcount_logic(c_masked[lo:hi])) for n, (lo, hi) in zip(d_offset, parts)),
            d_base.eq(c_base),
            d_pair.eq(c_pair),
            d_steps.eq(Cat(or_tree(c_spikes[t * p_ci:(t + 1) * p_ci] & c_lowest)
                           for t in range(T))),
            d.eq(c),
        ]
        # --- E: the store address ------------------------------------------------------
        e_valid = Signal()
        e_addr = Signal(abits)
        e_pair = Signal()
        e_steps = Signal(T)
        e = Signal(flags)
        m.d.sync += [
            e_valid.eq(d_valid),
            e_addr.eq(_sum3(d_base, *d_offset) if len(d_offset) == 2
                      else sum(d_offset, d_base)),
            e_pair.eq(d_pair),
            e_steps.eq(d_steps),
            e.eq(d),
        ]
        # --- F: read the weight ----------------------------------------------------------
        f_valid = Signal()
        f_pair = Signal()
        f_steps = Signal(T)
        f = Signal(flags)
        m.d.comb += [store_rom.addr.eq(e_addr), store_rom.en.eq(1), store_rom.oce.eq(1)]
        m.d.sync += [
            f_valid.eq(e_valid),
            f_pair.eq(e_pair),
            f_steps.eq(e_steps),
            f.eq(e),
        ]
        # --- G: the weight into a register -------------------------------------------
        g_valid = Signal()
        g_pair = Signal()
        g_steps = Signal(T)
        g = Signal(flags)
        g_weight = store_rom.data.as_signed()
        m.d.sync += [
            g_valid.eq(f_valid),
            g_pair.eq(f_pair),
            g_steps.eq(f_steps),
            g.eq(f),
        ]
        ev = self.events.payload
        m.d.comb += [
            self.events.valid.eq(g_valid),
            ev.weight.eq(g_weight),
            ev.pair.eq(g_pair),
            ev.steps.eq(g_steps),
            ev.end.eq(g.end),
            ev.group.eq(g.group),
        ]
        return m


def _sum3(a, b, c):
    """``a + b + c`` as one carry chain: a row of full adders (logic, which synthesis folds
    into the chain's LUTs) in front of a single adder."""
    width = max(len(a), len(b), len(c)) + 2
    a, b, c = (v.as_unsigned() if hasattr(v, "as_unsigned") else v for v in (a, b, c))
    a, b, c = (Cat(v, Const(0, width - len(v))) for v in (a, b, c))
    partial = a ^ b ^ c
    carries = (a & b) | (a & c) | (b & c)
    return partial + Cat(Const(0, 1), carries[:width - 1])


class _RomRead:
    """A synchronous read of a constant table (``addr``, ``en``, ``data`` like a memory read
    port), built as a LUT ROM: per data bit, one 6-input function of the low address bits per
    block of 64 rows (each a net of its own, one LUT), then a multiplexer of the blocks by the
    high bits (one LUT up to 4 blocks, two up to 16). Left to itself, synthesis turned the
    table into chains of address decoders (7 LUT levels for 208 rows)."""

    def __init__(self, m, layout, rows):
        depth = len(rows)
        abits = max(1, (depth - 1).bit_length())
        self.addr = Signal(abits)
        self.en = Signal()
        self.data = Signal(layout)
        #: the row at ``addr``, before the register
        self.value = Signal(layout)
        words = [layout.const(r).as_value().value for r in rows]
        lo = min(6, abits)
        block = 1 << lo
        n_blocks = -(-depth // block)
        bits = []
        for b in range(layout.size):
            subs = []
            for k in range(n_blocks):
                v = sum(((words[k * block + i] >> b) & 1) << i
                        for i in range(block) if k * block + i < depth)
                if v in (0, (1 << block) - 1):
                    subs.append(Const(v & 1, 1))
                    continue
                net = Signal(name=f"rom_b{b}_k{k}", attrs={"keep": 1})
                m.d.comb += net.eq(Const(v, block).bit_select(self.addr[:lo], 1))
                subs.append(net)
            bits.append(subs[0] if n_blocks == 1
                        else Cat(*subs).bit_select(self.addr[lo:], 1))
        m.d.comb += self.value.as_value().eq(Cat(*bits))
        with m.If(self.en):
            m.d.sync += self.data.eq(self.value)


def detector_cycles(beats: list[tuple[int, bool]], skip_empty: bool = True) -> list[int]:
    """The exact cycle of every event slot of a detector, for back-to-back input.

    ``beats`` lists the window-stream beats as ``(pairs, last_chunk)``, ``pairs`` =
    ``popcount(spikes & bitmap)`` of the lane. The input is valid in every cycle from cycle 0
    on (the first beat transfers in cycle 0). Returns, per output slot in order, the cycle in
    which it is valid at ``events``. This is the register-transfer recurrence of the pipeline
    (R/A0/A1/B, then a fixed tail of ``DETECTOR_TAIL`` cycles: C, D, E, F, G), evaluated cycle by
    cycle:

    * ``take_B = B empty or B.left <= 1``; A1's chunk is dropped if it is empty and not a
      window's last (``discard``), or empty, last, and B holds a non-empty chunk that is not
      its window's last (``absorb``: B's chunk takes the end mark, its last slot carries it;
      ``merge`` when that slot is emitted now); else B loads it when ``take_B``;
    * A1 is free if empty, dropped or taken; A0 if empty, if A1 is free, or if A1 is not
      free and A0's chunk is empty and not a window's last, or empty, last, and A1's chunk is
      non-empty and not its window's last (A1's chunk takes the end mark); R moves into A0
      when A0 is free; the input moves when R is empty or moves.

    With ``skip_empty=False`` (the paper's behaviour) it comes down to the closed form
    ``cycles = sum over chunks of max(1, pairs) + DETECTOR_LATENCY`` (``cycles`` = last slot
    + 1). With skipping, ``max(sum over windows of max(1, pairs of the window), beats - 1) +
    DETECTOR_LATENCY <= cycles <= sum over chunks of max(1, pairs) + DETECTOR_LATENCY``.
    """
    return lockstep_cycles([beats], skip_empty)[0]


class DetectorModel:
    """The register-transfer recurrence of one :class:`SparsityDetector` (R, A0, A1, B; the
    tail C, D, E, F, G is a fixed ``DETECTOR_TAIL`` cycles), advanced one clock cycle at a time,
    for the cycle models
    (:func:`detector_cycles`, :func:`lockstep_cycles`,
    :func:`fireflys_hw.gateware.synapse.array_cycles`).

    A beat is ``(pairs, last_chunk)``, ``pairs = popcount(spikes & bitmap)`` of the lane. In
    each cycle: :attr:`ready` (R is free: the input may transfer), then :meth:`clock` with
    the beat that transfers (or ``None``); it returns the ``end`` flag of the slot B emits in
    this cycle (valid at ``events`` ``DETECTOR_TAIL`` cycles later), or ``None`` if B is empty.
    """

    def __init__(self, skip_empty: bool = True):
        self.skip_empty = skip_empty
        self.r = None
        self.a0 = None
        self.a1 = None
        self.b = None              # [left, last_chunk, pair]
        self._plan()

    def _plan(self):
        a1, b = self.a1, self.b
        b_last = b is not None and b[0] <= 1
        self._b_last = b_last
        self._b_take = b is None or b_last
        self._absorb = (self.skip_empty and a1 is not None and a1[0] == 0 and a1[1]
                        and b is not None and b[2] and not b[1])
        self._merge = self._absorb and b_last
        self._discard = (self.skip_empty and a1 is not None and a1[0] == 0
                         and (not a1[1] or self._absorb))
        self._a1_free = a1 is None or self._discard or self._b_take
        a0 = self.a0
        self._a0_drop = (self.skip_empty and a0 is not None and a0[0] == 0
                         and not self._a1_free
                         and (not a0[1] or (a1[0] > 0 and not a1[1])))
        self._a0_free = a0 is None or self._a1_free or self._a0_drop
        self.ready = self.r is None or self._a0_free

    @property
    def idle(self) -> bool:
        return self.r is None and self.a0 is None and self.a1 is None and self.b is None

    def clock(self, beat=None):
        a1, b = self.a1, self.b
        end = None if b is None else bool((b[1] and self._b_last) or self._merge)
        if self._b_take:
            load = a1 is not None and not self._discard
            self.b = [a1[0], a1[1], a1[0] > 0] if load else None
        else:
            self.b = [b[0] - 1, b[1] or self._absorb, b[2]]
        if self._a1_free:
            self.a1 = self.a0
        elif self._a0_drop and self.a0[1]:
            self.a1 = (self.a1[0], True)
        if self._a0_free:
            self.a0 = self.r
        if self.ready:
            self.r = beat
        elif beat is not None:
            raise ValueError("a beat offered to a detector that is not ready")
        self._plan()
        return end


def lockstep_cycles(lanes: list[list[tuple[int, bool]]], skip_empty: bool = True,
                    with_ends: bool = False) -> list[list]:
    """:func:`detector_cycles` for several lanes fed by one broadcast stream that moves only
    when every lane's R is free (the lanes joined at the input). ``lanes[l]`` lists lane
    ``l``'s ``(pairs, last_chunk)`` for the same beats. Returns each lane's slot cycles (with
    ``with_ends``: ``(cycle, end)`` pairs, ``end`` marking the slot that closes a window)."""
    n = len(lanes[0])
    out = [[] for _ in lanes]
    dets = [DetectorModel(skip_empty) for _ in lanes]
    nxt = 0
    cycle = 0
    while nxt < n or not all(d.idle for d in dets):
        take = nxt < n and all(d.ready for d in dets)
        for lane, det in enumerate(dets):
            end = det.clock(lanes[lane][nxt] if take else None)
            if end is not None:
                out[lane].append((cycle + DETECTOR_TAIL, end) if with_ends
                                 else cycle + DETECTOR_TAIL)
        nxt += int(take)
        cycle += 1
    return out
