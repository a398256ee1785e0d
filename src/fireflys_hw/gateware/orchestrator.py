"""The FireFly-S dataflow orchestrator: implicit im2col from a spike stream to a window stream."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .streams import spike_stream, window_stream
from .util import check_positive

__all__ = ["DataflowOrchestrator"]


class DataflowOrchestrator(wiring.Component):
    """Replay every receptive field of a (padded) spike map as a window stream.

    The incoming spike stream is pushed into a circular buffer in on-chip RAM, one word of
    ``channels`` bits per (pixel, time step). The pop address is ``base + offset`` (mod the
    buffer size), where ``base`` is the window's top-left pixel and ``offset`` walks the window:
    ``+T`` per kernel column, ``+(width - kernel_w + 1) * T`` per kernel row, and restarts at
    ``t`` for each time step; ``base`` moves ``+T`` per window, ``+kernel_w * T`` at a row's end
    and ``+span * T`` at a frame's end (DESIGN.md Sec. 4, in words of ``Ci`` bits). This is the
    im2col, the time/channel permutation and the ``n_groups``-fold window reuse, with no copy of
    the data. Each word read is cut into ``ceil(channels / p_ci)`` chunks of ``p_ci`` bits
    (channels past ``channels`` are 0), one beat each.

    Output order (:func:`.streams.window_chunk`), per output pixel in raster order::

        for group in range(n_groups):
            for t in range(T):
                for kh in range(kernel_h):
                    for kw in range(kernel_w):
                        for ci_chunk in range(n_ci_chunks):
                            chunk = (kh * kernel_w + kw) * n_ci_chunks + ci_chunk

    ``last_chunk`` is set on the last chunk of a time step, ``last_step`` on every chunk of the
    last time step (``t == T - 1``) of a group.

    Buffer sizing: a window needs ``span = (kernel_h - 1) * width + kernel_w`` pixels in the
    buffer (FireFly-S' ``((Kh - 1) * Fw + Kw) * T * Ci`` bits). The default ``depth`` adds a
    holding area of ``kernel_w`` pixels, so while a window is replayed the writer can fetch
    everything the *next* window needs, including the ``kernel_w`` new pixels at a row's end:
    the output never waits for the input inside a frame if the upstream keeps pace, and the
    upstream is only held back when the buffer really is full. At a frame boundary the next
    frame's first window needs ``span`` new pixels, of which the holding area prefetches
    ``kernel_w``; the rest (``(kernel_h - 1) * width`` pixels) is the pipeline fill.
    Total: ``(span + kernel_w) * T * channels`` bits.

    Throughput: one beat per cycle whenever the buffer holds the window and the output is ready,
    i.e. ``out_height * out_width * n_groups * T * n_chunks`` cycles per frame plus the fill.
    Latency: one cycle (synchronous RAM read).

    Parameters
    ----------
    channels : int
        Input channels ``Ci`` (bits per incoming beat).
    height, width : int
        The (already padded) map entering; the convolution is "valid", stride 1.
    T : int
        Time steps.
    kernel : int or (int, int)
        ``K`` or ``(kernel_h, kernel_w)``. A fully connected layer is the window that covers the
        whole map: ``kernel = (height, width)``, one output position.
    p_ci : int
        Bits per window chunk.
    n_groups : int
        Times each window is replayed (``ceil(Co / P_Co)``, one per output channel group).
    depth : int or None
        Buffer depth in pixels, at least ``span``; ``None`` = ``span + kernel_w`` (see above).

    Members
    -------
    input : ``In(spike_stream(channels))``
        ``height * width * T`` beats per frame.
    output : ``Out(window_stream(p_ci, n_chunks, T, n_groups))``
        ``out_height * out_width * n_groups * T * n_chunks`` beats per frame.
    """

    def __init__(self, channels: int, height: int, width: int, T: int, kernel, p_ci: int,
                 n_groups: int = 1, depth: int | None = None):
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
        span = self.span
        if depth is None:
            depth = span + self.kernel_w
        check_positive("depth", depth)
        if depth < span:
            raise ValueError(f"depth must be at least the window span {span} pixels, "
                             f"not {depth}")
        self.depth = depth
        super().__init__({
            "input": In(spike_stream(channels)),
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
        """Window-stream beats per frame (= cycles per frame at full rate)."""
        return self.out_height * self.out_width * self.n_groups * self.T * self.n_chunks

    def elaborate(self, platform):
        m = Module()
        T, D = self.T, self.depth
        kh_n, kw_n, nci = self.kernel_h, self.kernel_w, self.n_ci_chunks
        words = D * T

        m.submodules.buffer = buffer = memory.Memory(shape=self.channels, depth=words, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port()

        # --- push side ------------------------------------------------------------------
        # ``level``: complete pixels in the buffer from the current window's top-left on. The
        # slot being written is base + level (mod D), free while level < D.
        level = Signal(range(D + 1))
        wptr = Signal(range(words))
        wt = Signal(range(T))
        inc = Signal()
        m.d.comb += [
            self.input.ready.eq(level < D),
            wr.addr.eq(wptr),
            wr.data.eq(self.input.payload.spikes),
            wr.en.eq(self.input.valid & self.input.ready),
        ]
        with m.If(wr.en):
            m.d.sync += wptr.eq(_wrap_inc(wptr, words))
            with m.If(wt == T - 1):
                m.d.sync += wt.eq(0)
                m.d.comb += inc.eq(1)
            with m.Else():
                m.d.sync += wt.eq(wt + 1)

        # --- pop side: stride counters ------------------------------------------------------
        base = Signal(range(words))    # word address of the window's (pixel 0, t 0)
        off = Signal(range(words))     # word offset of (kh, kw, t) inside the window
        kh = Signal(range(kh_n))
        kw = Signal(range(kw_n))
        cic = Signal(range(max(nci, 2)))
        chunk = Signal(range(max(self.n_chunks, 2)))
        t = Signal(range(max(T, 2)))
        group = Signal(range(max(self.n_groups, 2)))
        ow = Signal(range(self.out_width))
        oh = Signal(range(self.out_height))

        cic_last = cic == nci - 1
        kw_last = kw == kw_n - 1
        kh_last = kh == kh_n - 1
        chunk_last = Signal()
        t_last = t == T - 1
        group_last = group == self.n_groups - 1
        m.d.comb += chunk_last.eq(cic_last & kw_last & kh_last)

        # the stage after the RAM read: its beat is on the output
        out_valid = Signal()
        advance = Signal()
        issue = Signal()
        m.d.comb += [
            advance.eq(~out_valid | self.output.ready),
            issue.eq(level >= self.span),
        ]

        # pop address = base + off (mod words); base < words and off < span * T <= words, so a
        # single conditional subtraction wraps it
        total = Signal(range(2 * words))
        m.d.comb += total.eq(base + off)
        m.d.comb += [
            rd.addr.eq(_wrap_sum(total, words)),
            rd.en.eq(advance),
        ]

        # pixels freed when a window is done (and the same in words: constants, no multiplier)
        dec = Signal(range(D + 1))
        dec_words = Signal(range(words + 1))
        with m.If(advance):
            m.d.sync += out_valid.eq(issue)
        with m.If(advance & issue):
            with m.If(cic_last):
                m.d.sync += cic.eq(0)
                with m.If(kw_last):
                    m.d.sync += kw.eq(0)
                    with m.If(kh_last):
                        m.d.sync += [kh.eq(0), chunk.eq(0)]
                        with m.If(t_last):
                            m.d.sync += [t.eq(0), off.eq(0)]
                            with m.If(group_last):
                                m.d.sync += group.eq(0)
                                # the window is done: move base, free the pixels behind it
                                with m.If(ow == self.out_width - 1):
                                    m.d.sync += ow.eq(0)
                                    with m.If(oh == self.out_height - 1):
                                        m.d.sync += oh.eq(0)
                                        m.d.comb += [dec.eq(self.span),
                                                     dec_words.eq(self.span * T)]
                                    with m.Else():
                                        m.d.sync += oh.eq(oh + 1)
                                        m.d.comb += [dec.eq(kw_n), dec_words.eq(kw_n * T)]
                                with m.Else():
                                    m.d.sync += ow.eq(ow + 1)
                                    m.d.comb += [dec.eq(1), dec_words.eq(T)]
                                m.d.sync += base.eq(_wrap_sum(base + dec_words, words))
                            with m.Else():
                                m.d.sync += group.eq(group + 1)
                        with m.Else():
                            m.d.sync += [t.eq(t + 1), off.eq(t + 1)]
                    with m.Else():
                        m.d.sync += [
                            kh.eq(kh + 1), chunk.eq(chunk + 1),
                            off.eq(off + (self.width - kw_n + 1) * T),
                        ]
                with m.Else():
                    m.d.sync += [kw.eq(kw + 1), chunk.eq(chunk + 1), off.eq(off + T)]
            with m.Else():
                m.d.sync += [cic.eq(cic + 1), chunk.eq(chunk + 1)]
        m.d.sync += level.eq(level + inc - dec)

        # --- output stage: what was issued with the read, one cycle later -----------------
        o_cic = Signal.like(cic)
        payload = self.output.payload
        with m.If(advance):
            m.d.sync += [
                o_cic.eq(cic),
                payload.chunk.eq(chunk),
                payload.t.eq(t),
                payload.group.eq(group),
                payload.last_chunk.eq(chunk_last),
                payload.last_step.eq(t_last),
            ]
        # channels past Ci read as 0; the read port holds its data while ``advance`` is low, so
        # the payload is stable during a stall
        padded = Cat(rd.data, Const(0, nci * self.p_ci - self.channels))
        if nci == 1:
            m.d.comb += payload.spikes.eq(padded)
        else:
            m.d.comb += payload.spikes.eq(padded.word_select(o_cic, self.p_ci))
        m.d.comb += self.output.valid.eq(out_valid)
        return m


def _wrap_inc(value, modulus: int):
    """``(value + 1) % modulus`` for ``value < modulus``."""
    return Mux(value == modulus - 1, 0, value + 1)


def _wrap_sum(total, modulus: int):
    """``total % modulus`` for ``total < 2 * modulus``."""
    return Mux(total >= modulus, total - modulus, total)
