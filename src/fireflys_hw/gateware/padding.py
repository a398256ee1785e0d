"""Zero padding of a spike stream (the first stage of a layer core)."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .streams import spike_stream
from .util import check_positive

__all__ = ["Padding"]


class Padding(wiring.Component):
    """Surround a spike map with ``padding`` rings of all-zero pixels.

    A frame entering is ``height * width`` pixels of ``T`` beats each (raster order, time steps
    innermost, see :mod:`.streams`); a frame leaving is ``(height + 2 * padding) *
    (width + 2 * padding)`` pixels, the border pixels being ``T`` all-zero beats each that the
    component makes up itself (the input is not stalled for them). With ``padding = 0`` the
    component is a wire. Latency is zero (the payload passes through combinationally), so a
    padding stage costs no cycles beyond the border beats.

    Parameters
    ----------
    channels : int
        Bits per beat (channels ``C``).
    height, width : int
        The map entering, ``H x W``.
    T : int
        Beats per pixel (a layer core uses 1: its beats carry every time step).
    padding : int
        Rings of zeros ``p`` (stride-1 "same" padding for a ``2p+1`` kernel; ``0`` = "valid").

    Members
    -------
    input : ``In(spike_stream(channels))``
        ``H * W * T`` beats per frame.
    output : ``Out(spike_stream(channels))``
        ``(H + 2p) * (W + 2p) * T`` beats per frame.
    """

    def __init__(self, channels: int, height: int, width: int, T: int, padding: int):
        self.channels = check_positive("channels", channels)
        self.height = check_positive("height", height)
        self.width = check_positive("width", width)
        self.T = check_positive("T", T)
        self.padding = check_positive("padding", padding, 0)
        super().__init__({
            "input": In(spike_stream(channels)),
            "output": Out(spike_stream(channels)),
        })

    @property
    def out_height(self) -> int:
        return self.height + 2 * self.padding

    @property
    def out_width(self) -> int:
        return self.width + 2 * self.padding

    def elaborate(self, platform):
        m = Module()
        if self.padding == 0:
            wiring.connect(m, wiring.flipped(self.input), wiring.flipped(self.output))
            return m

        p, T = self.padding, self.T
        hp, wp = self.out_height, self.out_width
        # position of the beat being offered downstream, in padded coordinates
        h = Signal(range(hp))
        w = Signal(range(wp))
        t = Signal(range(T))
        # row/column flags kept in registers, and their AND too, so that the pass-through
        # decision is a flip-flop, not four comparators (nor an AND) on the ready/valid path
        # and in front of the orchestrator's chunk flags (an ECP5 core's critical path, issue
        # 14)
        row_in = Signal(init=p == 0)
        col_in = Signal(init=p == 0)
        inside = Signal(init=p == 0)

        def equals(counter, value):
            """``counter == value`` (a negative ``value`` is never reached)."""
            return counter == value if value >= 0 else Const(0)

        # where the counters stand, as flags set from the counters' next values, so that a
        # step's decisions are one LUT of flip-flops after the hand-shake, not comparators
        # (the padding's flags were core 4's critical path alone on the ECP5, 9.0 ns)
        t_last = Signal(init=T == 1)
        w_last = Signal(init=wp == 1)
        w_enter = Signal(init=p == 1)                  # the next column is the first inside
        w_leave = Signal(init=p + self.width == 1)     # the next column is the first outside
        h_last = Signal(init=hp == 1)
        h_enter = Signal(init=p == 1)
        h_leave = Signal(init=p + self.height == 1)
        fire = Signal()
        step_w = fire & t_last                          # the pixel's last beat goes
        step_h = step_w & w_last                        # the row's last beat goes
        # the flag after the column (row) steps: 0 at the end, set entering, cleared leaving
        col_step = ~w_last & (w_enter | (col_in & ~w_leave))
        row_step = ~h_last & (h_enter | (row_in & ~h_leave))
        col_next = Mux(step_w, col_step, col_in)
        row_next = Mux(step_h, row_step, row_in)
        m.d.sync += [row_in.eq(row_next), col_in.eq(col_next), inside.eq(row_next & col_next)]

        with m.If(inside):
            m.d.comb += [
                self.output.valid.eq(self.input.valid),
                self.output.payload.eq(self.input.payload),
                self.input.ready.eq(self.output.ready),
            ]
        with m.Else():
            # the payload stays 0 (its reset value): a border beat
            m.d.comb += self.output.valid.eq(1)
        m.d.comb += fire.eq(self.output.valid & self.output.ready)

        with m.If(fire):
            with m.If(t_last):
                m.d.sync += [t.eq(0), t_last.eq(T == 1)]
            with m.Else():
                m.d.sync += [t.eq(t + 1), t_last.eq(equals(t, T - 2))]
        with m.If(step_w):
            with m.If(w_last):
                m.d.sync += [w.eq(0), w_last.eq(wp == 1), w_enter.eq(p == 1),
                             w_leave.eq(p + self.width == 1)]
            with m.Else():
                m.d.sync += [w.eq(w + 1), w_last.eq(equals(w, wp - 2)),
                             w_enter.eq(equals(w, p - 2)),
                             w_leave.eq(equals(w, p + self.width - 2))]
        with m.If(step_h):
            with m.If(h_last):
                m.d.sync += [h.eq(0), h_last.eq(hp == 1), h_enter.eq(p == 1),
                             h_leave.eq(p + self.height == 1)]
            with m.Else():
                m.d.sync += [h.eq(h + 1), h_last.eq(equals(h, hp - 2)),
                             h_enter.eq(equals(h, p - 2)),
                             h_leave.eq(equals(h, p + self.height - 2))]
        return m
