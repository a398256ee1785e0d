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
        def axis(name, step, inner):
            """The position along a padded axis (``inner + 2p`` places, in padded
            coordinates), moved by ``step``; returns its flags: ``last`` (at the last place),
            ``enter`` (the next place is the first inside), ``leave`` (the next place is the
            first outside)."""
            size = inner + 2 * p
            pos = Signal(range(size), name=name)
            last = Signal(init=size == 1, name=f"{name}_last")
            enter = Signal(init=p == 1, name=f"{name}_enter")
            leave = Signal(init=p + inner == 1, name=f"{name}_leave")
            with m.If(step):
                with m.If(last):
                    m.d.sync += [pos.eq(0), last.eq(size == 1), enter.eq(p == 1),
                                 leave.eq(p + inner == 1)]
                with m.Else():
                    m.d.sync += [pos.eq(pos + 1), last.eq(equals(pos, size - 2)),
                                 enter.eq(equals(pos, p - 2)),
                                 leave.eq(equals(pos, p + inner - 2))]
            return last, enter, leave

        # the step within a pixel
        t = Signal(range(T))
        t_last = Signal(init=T == 1)
        fire = Signal()
        step_w = fire & t_last                          # the pixel's last beat goes
        w_last, w_enter, w_leave = axis("w", step_w, self.width)
        step_h = step_w & w_last                        # the row's last beat goes
        h_last, h_enter, h_leave = axis("h", step_h, self.height)
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
        return m
