"""Max-pool on spikes: logical OR over ``k x k`` windows, stride ``k``; for a radix layer the
max of the ``T``-bit values the digit planes carry."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .streams import spike_stream
from .util import check_positive

__all__ = ["MaxPool"]


class MaxPool(wiring.Component):
    """OR the spikes of each ``kernel x kernel`` window, stride ``kernel``, per time step.

    The partial ORs of one row of output pixels live in a line buffer of
    ``(width // kernel) * T`` words of ``channels`` bits (on-chip RAM), not a whole map: input
    row ``h`` ORs into output row ``h // kernel``; the first beat of a window (its top-left pixel)
    overwrites the word, the last one (bottom-right) leaves as an output beat instead of being
    written back. Input rows and columns past ``(height // kernel) * kernel`` and
    ``(width // kernel) * kernel`` (the ragged edge) are accepted and dropped.

    Throughput: one input beat per cycle; the output beats come out in raster order
    ``(oh, ow, t)`` as the bottom-right pixel of each window passes. Latency: one cycle (RAM
    read; the read port is transparent so back-to-back updates of one word, ``T = 1``, see each
    other).

    Parameters
    ----------
    channels : int
        Bits per beat.
    height, width : int
        The map entering; at least ``kernel`` each.
    T : int
        Time steps.
    kernel : int
        Window size and stride ``k``.
    planes : int
        0: OR the bits. ``T > 0`` (a radix layer): a beat is ``T`` digit planes of
        ``channels // T`` channels (bit ``t * C + c``: channel ``c``'s digit of weight
        ``2^(T-1-t)``), and the window's output per channel is the maximum of the values
        (``docs/numeric-contract.md``), by a comparator per channel on the merged word.

    Members
    -------
    input : ``In(spike_stream(channels))``
        ``height * width * T`` beats per frame.
    output : ``Out(spike_stream(channels))``
        ``(height // kernel) * (width // kernel) * T`` beats per frame.
    """

    def __init__(self, channels: int, height: int, width: int, T: int, kernel: int,
                 planes: int = 0):
        self.channels = check_positive("channels", channels)
        self.height = check_positive("height", height)
        self.width = check_positive("width", width)
        self.T = check_positive("T", T)
        self.kernel = check_positive("kernel", kernel)
        if kernel > height or kernel > width:
            raise ValueError(f"kernel {kernel} is larger than the {height}x{width} map")
        if isinstance(planes, bool) or not isinstance(planes, int) or planes < 0 \
                or (planes and channels % planes):
            raise ValueError(f"planes must be 0 or a divisor of channels ({channels}), not "
                             f"{planes!r}")
        self.planes = planes
        super().__init__({
            "input": In(spike_stream(channels)),
            "output": Out(spike_stream(channels)),
        })

    @property
    def out_height(self) -> int:
        return self.height // self.kernel

    @property
    def out_width(self) -> int:
        return self.width // self.kernel

    @property
    def buffer_bits(self) -> int:
        return self.out_width * self.T * self.channels

    def elaborate(self, platform):
        m = Module()
        k, T = self.kernel, self.T
        words = self.out_width * T
        m.submodules.line = line = memory.Memory(shape=self.channels, depth=words, init=[])
        wr = line.write_port()
        rd = line.read_port(transparent_for=(wr,))

        # where the beat on the input is; ``addr`` = (w // k) * T + t inside the line buffer
        h = Signal(range(self.height))
        w = Signal(range(self.width))
        t = Signal(range(T))
        dh = Signal(range(k))
        dw = Signal(range(k))
        addr = Signal(range(words))
        # ``ow_base`` = (w // k) * T, kept as a register so no multiplier is needed
        ow_base = Signal(range(words))
        drop_h = Signal()     # in the ragged bottom rows
        drop_w = Signal()     # in the ragged right columns
        m.d.comb += addr.eq(ow_base + t)

        # stage 1: the beat whose line-buffer word is being read
        s_valid = Signal()
        s_beat = Signal(self.channels)
        s_addr = Signal(range(words))
        s_first = Signal()
        s_last = Signal()
        s_drop = Signal()

        merged = Signal(self.channels)
        if self.planes:
            P = self.planes
            C = self.channels // P
            old = Mux(s_first, 0, rd.data)
            for c in range(C):
                # value = sum_t bit(t * C + c) << (P-1-t): Cat is LSB first
                a = Cat(*[old[t * C + c] for t in reversed(range(P))])
                b = Cat(*[s_beat[t * C + c] for t in reversed(range(P))])
                mx = Signal(P, name=f"max{c}")
                m.d.comb += mx.eq(Mux(a > b, a, b))
                m.d.comb += [merged[t * C + c].eq(mx[P - 1 - t]) for t in range(P)]
        else:
            m.d.comb += merged.eq(Mux(s_first, 0, rd.data) | s_beat)
        done = Signal()       # stage 1 finishes this cycle (or is empty)
        m.d.comb += [
            done.eq(~s_valid | s_drop | ~s_last | self.output.ready),
            self.input.ready.eq(done),
            rd.addr.eq(addr),
            rd.en.eq(done),
            self.output.valid.eq(s_valid & ~s_drop & s_last),
            self.output.payload.spikes.eq(merged),
            wr.addr.eq(s_addr),
            wr.data.eq(merged),
            wr.en.eq(s_valid & ~s_drop & ~s_last),
        ]

        with m.If(done):
            m.d.sync += [
                s_valid.eq(self.input.valid),
                s_beat.eq(self.input.payload.spikes),
                s_addr.eq(addr),
                s_first.eq((dh == 0) & (dw == 0)),
                s_last.eq((dh == k - 1) & (dw == k - 1)),
                s_drop.eq(drop_h | drop_w),
            ]

        with m.If(self.input.valid & self.input.ready):
            with m.If(t == T - 1):
                m.d.sync += t.eq(0)
                with m.If(w == self.width - 1):
                    m.d.sync += [w.eq(0), dw.eq(0), ow_base.eq(0), drop_w.eq(0)]
                    with m.If(h == self.height - 1):
                        m.d.sync += [h.eq(0), dh.eq(0), drop_h.eq(0)]
                    with m.Else():
                        m.d.sync += h.eq(h + 1)
                        with m.If(dh == k - 1):
                            m.d.sync += dh.eq(0)
                        with m.Else():
                            m.d.sync += dh.eq(dh + 1)
                        with m.If(h == self.out_height * k - 1):
                            m.d.sync += drop_h.eq(1)
                with m.Else():
                    m.d.sync += w.eq(w + 1)
                    with m.If(dw == k - 1):
                        m.d.sync += dw.eq(0)
                        with m.If(w == self.out_width * k - 1):
                            m.d.sync += drop_w.eq(1)
                        with m.Else():
                            m.d.sync += ow_base.eq(ow_base + T)
                    with m.Else():
                        m.d.sync += dw.eq(dw + 1)
            with m.Else():
                m.d.sync += t.eq(t + 1)
        return m
