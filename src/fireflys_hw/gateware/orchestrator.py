"""The FireFly-S dataflow orchestrator: implicit im2col from a spike stream to a window stream."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..compiler.base import BUFFER_LUTRAM_BITS
from .streams import spike_stream, window_stream
from .util import add_const, at_least, check_positive

__all__ = ["DataflowOrchestrator"]


class DataflowOrchestrator(wiring.Component):
    """Replay every receptive field of a (padded) spike map as a window stream.

    The incoming spike stream is pushed into a circular buffer in on-chip RAM, one word of
    ``T * channels`` bits per pixel (all its time steps, :mod:`.streams`). The pop address is
    ``base + offset`` (mod the buffer size), where ``base`` is the window's top-left pixel and
    ``offset`` walks the window: ``+1`` per kernel column, ``+(width - kernel_w + 1)`` per kernel
    row; ``base`` moves ``+1`` per window, ``+kernel_w`` at a row's end and ``+span`` at a
    frame's end (DESIGN.md Sec. 4 with whole pixels as words: there is no loop over ``t``, each
    chunk carries every step). This is the im2col and the ``n_groups``-fold window reuse, with
    no copy of the data. Each word read is cut into ``ceil(channels / p_ci)`` chunks of ``p_ci``
    channels at every step (``T * p_ci`` bits, bit ``t * p_ci + i``; channels past
    ``channels`` are 0), one beat each.

    Output order (:func:`.streams.window_chunk`), per output pixel in raster order::

        for group in range(n_groups):
            for kh in range(kernel_h):
                for kw in range(kernel_w):
                    for ci_chunk in range(n_ci_chunks):
                        chunk = (kh * kernel_w + kw) * n_ci_chunks + ci_chunk

    ``last_chunk`` is set on the last chunk of a window (per group).

    **No empty beats** (``drop_empty``, the default): a chunk whose spikes are 0 at every step
    is not sent, unless it is a window's last (it carries the end mark; one beat per window at
    least). The drop costs the walk no cycle of its own beyond the chunk's read: the output
    register holding an empty chunk is overwritten by the next read in the same cycle. So the
    walk reads one chunk per cycle, ``n_chunks`` per (pixel, group), and sends only the
    non-empty ones (and each window's last).

    Buffer sizing: a window needs ``span = (kernel_h - 1) * width + kernel_w`` pixels in the
    buffer (FireFly-S' ``((Kh - 1) * Fw + Kw) * T * Ci`` bits). The default ``depth`` adds a
    holding area of ``kernel_w`` pixels, so while a window is replayed the writer can fetch
    everything the *next* window needs, including the ``kernel_w`` new pixels at a row's end:
    the output never waits for the input inside a frame if the upstream keeps pace, and the
    upstream is only held back when the buffer really is full. At a frame boundary the next
    frame's first window needs ``span`` new pixels, of which the holding area prefetches
    ``kernel_w``; the rest (``(kernel_h - 1) * width`` pixels) is the pipeline fill.
    Total: ``(span + kernel_w) * T * channels`` bits.

    Throughput: one chunk read per cycle whenever the buffer holds the window and the output
    is ready (or the chunk is dropped), i.e. ``out_height * out_width * n_groups * n_chunks``
    cycles per frame plus the fill. Latency: one cycle (synchronous RAM read).

    Parameters
    ----------
    channels : int
        Input channels ``Ci`` (bits per pixel and step).
    height, width : int
        The (already padded) map entering; the convolution is "valid", stride 1.
    T : int
        Time steps per beat (``S``: ``T``, or 1 for a static input).
    kernel : int or (int, int)
        ``K`` or ``(kernel_h, kernel_w)``. A fully connected layer is the window that covers the
        whole map: ``kernel = (height, width)``, one output position.
    p_ci : int
        Channels per window chunk.
    n_groups : int
        Times each window is replayed (``ceil(Co / P_Co)``, one per output channel group).
    depth : int or None
        Buffer depth in pixels, at least ``span``; ``None`` = ``span + kernel_w`` (see above).
    drop_empty : bool
        Leave out chunks that are 0 at every step (see above).

    Members
    -------
    input : ``In(spike_stream(T * channels))``
        ``height * width`` beats per frame.
    output : ``Out(window_stream(p_ci, n_chunks, T, n_groups))``
        At most :attr:`beats_per_frame` beats per frame (exactly that without ``drop_empty``).

    Attributes
    ----------
    walking : Signal
        High while the output register holds a chunk, sent (``output.valid``) or being
        dropped: the walk has work (the accelerator's profiling counters read it).
    """

    def __init__(self, channels: int, height: int, width: int, T: int, kernel, p_ci: int,
                 n_groups: int = 1, depth: int | None = None, drop_empty: bool = True):
        self.channels = check_positive("channels", channels)
        self.height = check_positive("height", height)
        self.width = check_positive("width", width)
        self.T = check_positive("T", T)
        if isinstance(kernel, tuple):
            if len(kernel) != 2:
                raise ValueError(f"kernel must be an int or a pair (kernel_h, kernel_w), "
                                 f"not {kernel!r}")
            kh, kw = kernel
        else:
            kh = kw = kernel
        self.kernel_h = check_positive("kernel_h", kh)
        self.kernel_w = check_positive("kernel_w", kw)
        if self.kernel_h > height or self.kernel_w > width:
            raise ValueError(f"kernel {self.kernel_h}x{self.kernel_w} does not fit the "
                             f"{height}x{width} map")
        self.p_ci = check_positive("p_ci", p_ci)
        self.n_groups = check_positive("n_groups", n_groups)
        self.drop_empty = bool(drop_empty)
        span = self.span
        if depth is None:
            depth = span + self.kernel_w
        check_positive("depth", depth)
        if depth < span:
            raise ValueError(f"depth must be at least the window span {span} pixels, "
                             f"not {depth}")
        self.depth = depth
        self.walking = Signal()
        super().__init__({
            "input": In(spike_stream(self.T * channels)),
            "output": Out(window_stream(self.p_ci, self.n_chunks, self.T, self.n_groups)),
        })

    @property
    def n_ci_chunks(self) -> int:
        return -(-self.channels // self.p_ci)

    @property
    def n_chunks(self) -> int:
        return self.kernel_h * self.kernel_w * self.n_ci_chunks

    @property
    def out_height(self) -> int:
        return self.height - self.kernel_h + 1

    @property
    def out_width(self) -> int:
        return self.width - self.kernel_w + 1

    @property
    def span(self) -> int:
        """Pixels from a window's top-left to its bottom-right, in raster order."""
        return (self.kernel_h - 1) * self.width + self.kernel_w

    @property
    def buffer_bits(self) -> int:
        return self.depth * self.T * self.channels

    @property
    def beats_per_frame(self) -> int:
        """Chunks walked per frame (= cycles per frame at full rate; the window-stream beats
        without ``drop_empty``)."""
        return self.out_height * self.out_width * self.n_groups * self.n_chunks

    def elaborate(self, platform):
        m = Module()
        T, D, C, P = self.T, self.depth, self.channels, self.p_ci
        kh_n, kw_n, nci = self.kernel_h, self.kernel_w, self.n_ci_chunks

        # a word: the pixel's T * C spike bits; beside it, in a memory of its own, per channel
        # chunk a flag "some spike in this chunk at some step", computed on the way in so that
        # the read side's drop decision is a look-up, not an OR over T * P_Ci bits on the
        # ready/valid path. The flags are narrow, so they map to LUT RAM, read into a register
        # of their own when a pixel's first chunk is issued and shifted by one per chunk
        # after it: the drop decision is bit 0 of a register, not a block RAM's output (5.8
        # ns clock-to-out on the ECP5) nor an n_ci_chunks-way multiplexer (issue 14)
        nz_flags = self.drop_empty
        small = T * C * D <= BUFFER_LUTRAM_BITS
        m.submodules.buffer = buffer = memory.Memory(
            shape=T * C, depth=D, init=[], attrs={"ram_style": "distributed"} if small else {})
        wr = buffer.write_port()
        # a distributed RAM is read asynchronously and only the chunk being issued goes into
        # the output register: the beat leaves from flip-flops to every lane's FIFO (the
        # port's own register would have put the RAM read and the chunk multiplexer in front
        # of that broadcast: core 1's critical path alone on the ECP5, 9.5 ns, 6.9 of it
        # routing, issue 14); a block RAM keeps its synchronous read
        rd = buffer.read_port(domain="comb") if small else buffer.read_port()
        if nz_flags:
            m.submodules.flags = flags = memory.Memory(shape=nci, depth=D, init=[],
                                                       attrs={"ram_style": "distributed"})
            flags_wr = flags.write_port()
            flags_rd = flags.read_port(domain="comb")

        # --- push side ------------------------------------------------------------------
        # ``level``: complete pixels in the buffer from the current window's top-left on. The
        # slot being written is base + level (mod D), free while level < D.
        level = Signal(range(D + 1))
        # ``level < D`` and ``level >= span`` as registers, always equal to those compares of
        # ``level`` (set from compares of the register beside its sums, picked like it)
        has_room = Signal(init=1)
        has_window = Signal(init=self.span <= 0)
        wptr = Signal(range(D))
        inc = Signal()
        m.d.comb += [
            self.input.ready.eq(has_room),
            wr.addr.eq(wptr),
            wr.data.eq(self.input.payload.spikes),
            wr.en.eq(self.input.valid & self.input.ready),
            inc.eq(wr.en),
        ]
        if nz_flags:
            spikes_in = self.input.payload.spikes
            for j in range(nci):
                bits = [spikes_in[t * C + j * P:t * C + min(C, (j + 1) * P)] for t in range(T)]
                m.d.comb += flags_wr.data[j].eq(Cat(*bits).any())
            m.d.comb += [flags_wr.addr.eq(wr.addr), flags_wr.en.eq(wr.en)]
        with m.If(wr.en):
            m.d.sync += wptr.eq(_wrap_inc(wptr, D))

        # --- pop side: stride counters ------------------------------------------------------
        base = Signal(range(D))        # pixel address of the window's top-left
        # the pixel read: (base + offset of (kh, kw) in the window) mod D, a register moved by
        # constants beside the counters, so that the RAM read starts at a flip-flop (an add, a
        # wrap and the read in one cycle: core 1's critical path alone on the ECP5, 9.2 ns)
        addr = Signal(range(D))
        kw = Signal(range(kw_n))
        cic = Signal(range(max(nci, 2)))
        chunk = Signal(range(max(self.n_chunks, 2)))
        group = Signal(range(max(self.n_groups, 2)))
        ow = Signal(range(self.out_width))
        oh = Signal(range(self.out_height))

        # "at its last value" of each counter, registers set with the counter (the control
        # that picks the next pop address and level is a few flags, not compares)
        cic_last = Signal(init=nci == 1)
        kw_last = Signal(init=kw_n == 1)
        group_last = Signal(init=self.n_groups == 1)
        ow_last = Signal(init=self.out_width == 1)
        oh_last = Signal(init=self.out_height == 1)
        # the window's last chunk: a register too (the chunk counter walks 0 .. n_chunks - 1)
        chunk_last = Signal(init=self.n_chunks == 1)

        # the stage after the RAM read: its beat is on the output unless it is dropped
        advance = Signal()
        issue = Signal()
        out_valid = Signal()
        o_last = Signal()
        o_cic = Signal.like(cic)
        payload = self.output.payload
        # channels past Ci read as 0; chunk j is, for t = 0..T-1, channels j*P .. j*P+P-1 of
        # step t (wiring: the word keeps the stream's t-major order); the read port holds its
        # data while ``advance`` is low, so the payload is stable during a stall
        chunks = []
        for j in range(nci):
            parts = []
            for t in range(T):
                lo = t * C + j * P
                hi = t * C + min(C, (j + 1) * P)
                parts.append(rd.data[lo:hi])
                if hi - lo < P:
                    parts.append(Const(0, P - (hi - lo)))
            chunks.append(Cat(*parts))
        if small:
            o_spikes = Signal.like(payload.spikes)
            m.d.comb += payload.spikes.eq(o_spikes)
            with m.If(advance):
                m.d.sync += o_spikes.eq(chunks[0] if nci == 1 else Array(chunks)[cic])
        elif nci == 1:
            m.d.comb += payload.spikes.eq(chunks[0])
        else:
            m.d.comb += payload.spikes.eq(Array(chunks)[o_cic])
        empty = Signal()
        if nz_flags:
            o_flags = Signal(nci)           # bit 0: the output beat's chunk has a spike
            cic_first = Signal(init=1)      # the chunk being issued is its pixel's first
            m.d.comb += empty.eq(~o_flags[0] & ~o_last)

        m.d.comb += [
            self.walking.eq(out_valid),
            advance.eq(~out_valid | self.output.ready | empty),
            issue.eq(has_window),
        ]
        if nz_flags:
            # ``valid`` itself a register (out_valid & ~empty, set from their next values), so
            # that the array's take is one gate behind flip-flops, not three flags' logic: the
            # take goes on across the array to its results-in-flight count (a big core's
            # critical path on the ECP5, issue 14)
            o_valid = Signal()
            m.d.comb += self.output.valid.eq(o_valid)
            with m.If(advance):
                first_flag = Mux(cic_first, flags_rd.data[0], o_flags[1]) if nci > 1 \
                    else flags_rd.data[0]
                m.d.sync += o_valid.eq(issue & (first_flag | chunk_last))
        else:
            m.d.comb += self.output.valid.eq(out_valid)

        m.d.comb += rd.addr.eq(addr)
        if not small:
            m.d.comb += rd.en.eq(advance)
        if nz_flags:
            m.d.comb += flags_rd.addr.eq(rd.addr)
            with m.If(advance & issue):
                m.d.sync += cic_first.eq(cic_last)
                with m.If(cic_first):
                    m.d.sync += o_flags.eq(flags_rd.data)
                with m.Else():
                    m.d.sync += o_flags.eq(o_flags[1:])

        # pixels freed when a window is done (constants, no multiplier): base and level move
        # by one of three constants, whose sums are computed from the registers alone in
        # parallel with the control that picks one (no add after the ready/valid decision)
        moves = (1, kw_n, self.span)
        level_next = {k: Signal(range(D + 2), name=f"level_minus_{k}") for k in (0,) + moves}

        def plus(value, k, name):
            """(value + k) mod D for value < D: the compare on the register, beside the two
            sums (all plain logic: adders would be merged into one behind the control,
            util.add_const)."""
            k %= D
            sig = Signal(range(D), name=name)
            wb = len(value)
            m.d.comb += sig.eq(Mux(at_least(value, D - k), add_const(value, k - D, wb),
                                   add_const(value, k, wb)) if k else value)
            return sig

        def pick(values, name):
            """The value of the move the window's end makes (1, kw or span pixels), picked by
            the row and column flags alone: registers, so that the pick is done before the
            hand-shake is known and the hand-shake steers one multiplexer at the end (a
            priority chain of hand-shake-qualified moves put it three deep, issue 14)."""
            sig = Signal(len(Value.cast(values[1])), name=name)
            m.d.comb += sig.eq(Mux(ow_last, Mux(oh_last, values[self.span], values[kw_n]),
                                   values[1]))
            return sig

        base_next = {k: plus(base, k, f"base_plus_{k}") for k in moves}
        base_moved = pick(base_next, "base_moved")
        next_column = plus(addr, 1, "addr_next_column")
        next_row = plus(addr, self.width - kw_n + 1, "addr_next_row")
        room_next, window_next = {}, {}

        for k, sig in level_next.items():
            # level + inc - k: both sums from the register, inc picks; so for the flags
            wl = len(sig)
            m.d.comb += sig.eq(Mux(inc, add_const(level, 1 - k, wl), add_const(level, -k, wl)))
            room_next[k] = ~Mux(inc, at_least(level, D + k - 1), at_least(level, D + k))
            window_next[k] = Mux(inc, at_least(level, self.span + k - 1),
                                 at_least(level, self.span + k))
        # Every counter's "at its last value" flag is a register set from its next value (a
        # combinational ``*_next``, the flag unless the counter moves), and so are the ANDs
        # of flags that enable the counters further out: "the chunk issued is its window's
        # last of its last group" (window_last), "that window is its output row's last"
        # (row_end). Each counter is then enabled by the hand-shake and one flip-flop, not
        # by a chain of the flags before it (the nested enables were five LUTs behind the
        # hand-shake, core 4's critical path in a whole ULX3S build, issue 14). The kernel
        # row needs no counter: the chunk counter's flag marks the window's end.
        window_last = Signal(init=self.n_chunks == 1 and self.n_groups == 1)
        row_end = Signal(init=self.n_chunks == 1 and self.n_groups == 1 and self.out_width == 1)
        step = Signal()
        window_end = Signal()
        m.d.comb += [step.eq(advance & issue), window_end.eq(step & window_last)]
        counters = {}       # name: (counter, its last flag, the flag's next value, length)
        last_next = {}      # name: the last flag's next value
        for counter, flag, n in ((cic, cic_last, nci), (kw, kw_last, kw_n),
                                 (chunk, chunk_last, self.n_chunks),
                                 (group, group_last, self.n_groups),
                                 (ow, ow_last, self.out_width), (oh, oh_last, self.out_height)):
            flag_next = Signal(name=f"{flag.name}_next")
            m.d.comb += flag_next.eq(flag)
            m.d.sync += flag.eq(flag_next)
            counters[counter.name] = (counter, flag, flag_next, n)
            last_next[counter.name] = flag_next
        m.d.sync += [window_last.eq(last_next["chunk"] & last_next["group"]),
                     row_end.eq(last_next["chunk"] & last_next["group"] & last_next["ow"])]

        def wrap(name, enable):
            """The counter ``name`` moves when ``enable``: to 0 at its last value, else + 1."""
            counter, flag, flag_next, n = counters[name]
            with m.If(enable):
                with m.If(flag):
                    m.d.sync += counter.eq(0)
                    m.d.comb += flag_next.eq(n == 1)
                with m.Else():
                    m.d.sync += counter.eq(counter + 1)
                    m.d.comb += flag_next.eq(counter == n - 2)

        with m.If(advance):
            m.d.sync += out_valid.eq(issue)
        wrap("cic", step)
        wrap("kw", step & cic_last)
        wrap("chunk", step)
        wrap("group", step & chunk_last)
        wrap("ow", window_end)
        wrap("oh", step & row_end)
        # the next pixel read: the next channel chunk's is the same pixel; the next kernel
        # column's, the next kernel row's, the window's again (next group), or the next
        # window's first (which moves base and frees the pixels behind it); the pick is made
        # from the flags alone, before the hand-shake is known
        with m.If(step & cic_last):
            with m.If(window_last):
                m.d.sync += addr.eq(base_moved)
            with m.Elif(chunk_last):
                m.d.sync += addr.eq(base)
            with m.Elif(kw_last):
                m.d.sync += addr.eq(next_row)
            with m.Else():
                m.d.sync += addr.eq(next_column)
        with m.If(window_end):
            m.d.sync += base.eq(base_moved)
        m.d.sync += [
            level.eq(Mux(window_end, pick(level_next, "level_moved"), level_next[0])),
            has_room.eq(Mux(window_end, pick(room_next, "room_moved"), room_next[0])),
            has_window.eq(Mux(window_end, pick(window_next, "window_moved"), window_next[0])),
        ]

        # --- output stage: what was issued with the read, one cycle later -----------------
        with m.If(advance):
            m.d.sync += [
                o_cic.eq(cic),
                o_last.eq(chunk_last),
                payload.chunk.eq(chunk),
                payload.group.eq(group),
                payload.last_chunk.eq(chunk_last),
            ]
        return m


def _wrap_inc(value, modulus: int):
    """``(value + 1) % modulus`` for ``value < modulus``."""
    return Mux(value == modulus - 1, 0, value + 1)
