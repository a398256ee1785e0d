"""A plain 8N1 UART: one start bit, 8 data bits (least significant first), one stop bit, no
parity, no flow control.

amaranth-stdio (which has a UART) is not published on PyPI (the name is a placeholder), so the
host link carries its own two small components with :mod:`amaranth.lib.stream` interfaces.

The bit time is ``divisor`` clock cycles (``round(clock_hz / baud)``, :func:`baud_divisor`).
The receiver samples each bit once, in its middle (half a bit after the falling edge of the
start bit), which tolerates a baud mismatch of a few per cent; the simulation tests run it at
a handful of clocks per bit.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTReceiver", "UARTTransmitter", "baud_divisor", "MIN_DIVISOR"]

#: The fewest clocks per bit the components accept (the receiver needs a middle to sample).
MIN_DIVISOR = 4


def _check_divisor(divisor) -> int:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR} (clocks per "
                         f"bit), not {divisor!r}")
    return divisor


def baud_divisor(clock_hz: float, baud: int) -> int:
    """Clocks per bit for ``baud`` at ``clock_hz``; ``ValueError`` when the rounding error
    exceeds 2 % (the receiver would drift out of the stop bit) or the result is below
    :data:`MIN_DIVISOR`."""
    if not clock_hz > 0 or isinstance(baud, bool) or not isinstance(baud, int) or baud < 1:
        raise ValueError(f"need a positive clock and an integer baud rate, not clock_hz="
                         f"{clock_hz!r}, baud={baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud {baud} is too fast for a {clock_hz / 1e6:g} MHz clock "
                         f"({clock_hz / baud:.2f} clocks per bit, at least {MIN_DIVISOR} needed)")
    error = abs(clock_hz / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"baud {baud} is {100 * error:.1f} % off at {clock_hz / 1e6:g} MHz "
                         f"({divisor} clocks per bit); choose a baud rate that divides the "
                         f"clock more closely")
    return divisor


class UARTReceiver(wiring.Component):
    """Receive 8N1 bytes from a serial line.

    A line cannot be paused, so a byte that completes while the previous one has not been
    taken is dropped and ``overrun`` is set; put a FIFO after the receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least :data:`MIN_DIVISOR`).

    Members
    -------
    rx : ``In(1)``
        The line (idle high); it is synchronised here (two flip-flops).
    data : ``Out(stream.Signature(8))``
        One beat per received byte; ``valid`` stays up until the byte is taken.
    overrun : ``Out(1)``
        Sticky (until reset): a byte was dropped because ``data`` was not taken in time.
    framing_error : ``Out(1)``
        Sticky: a stop bit was low (wrong baud rate, or a break); that byte is dropped.
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "overrun": Out(1),
            "framing_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(self.divisor))
        bit = Signal(range(8))
        shift = Signal(8)

        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                with m.If(timer == 0):
                    with m.If(line):       # a glitch, not a start bit
                        m.next = "idle"
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                        m.next = "data"
            with m.State("data"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "stop"
            with m.State("stop"):
                with m.If(timer == 0):
                    with m.If(line):
                        with m.If(self.data.valid & ~self.data.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        m.next = "idle"
                    with m.Else():
                        m.d.sync += self.framing_error.eq(1)
                        m.next = "break"
            with m.State("break"):         # wait for the line to go idle again
                with m.If(line):
                    m.next = "idle"
        return m


class UARTTransmitter(wiring.Component):
    """Send 8N1 bytes on a serial line.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.

    Members
    -------
    data : ``In(stream.Signature(8))``
        Bytes to send; one is taken when the previous one's stop bit has been sent.
    tx : ``Out(1)``
        The line (idle high, registered).
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(11))           # bits of the frame still to send
        frame = Signal(10)                 # start, 8 data bits, stop; sent from bit 0

        # the stop bit runs its whole bit time before the next byte is taken
        m.d.comb += self.data.ready.eq((bits == 0) & (timer == 0))
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(bits != 0):
            m.d.sync += [self.tx.eq(frame[0]), frame.eq(frame >> 1), bits.eq(bits - 1),
                         timer.eq(self.divisor - 1)]
        with m.Elif(self.data.valid):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                         bits.eq(10)]
        return m
