"""The top of every UART board target: the accelerator behind :class:`fireflys_hw.gateware.link.
UARTBridge`, wired to the platform's ``uart`` 0 resource and, where the board has them, LEDs.

LEDs (``led`` 0, 1, 2 when present): a frame is in flight; receive overrun (the host sent
faster than the accelerator took beats: a byte was lost); framing error (wrong baud rate).
"""

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, Elaboratable, Module

from fireflys_hw.gateware.link import UARTBridge
from fireflys_hw.gateware.uart import baud_divisor

__all__ = ["UARTBoardTop"]


class UARTBoardTop(Elaboratable):
    """Parameters: ``accelerator`` (not yet elaborated), ``clock_hz`` (the ``sync`` clock),
    ``baud``, ``model_id`` (reported to the host), ``uart`` (the resource), ``system_clock``
    (an elaboratable that drives ``sync``, e.g. a PLL; default: the platform's clock)."""

    def __init__(self, accelerator, *, clock_hz: float, baud: int, model_id: int = 0,
                 uart=("uart", 0), leds: bool = True, system_clock=None):
        self.bridge = UARTBridge(accelerator, divisor=baud_divisor(clock_hz, baud),
                                 model_id=model_id)
        self.uart = uart
        self.leds = leds
        self.system_clock = system_clock

    def elaborate(self, platform):
        m = Module()
        if self.system_clock is not None:
            m.domains.sync = ClockDomain("sync", reset_less=True)   # reset by the global GSR
            m.submodules.system_clock = self.system_clock
        m.submodules.bridge = bridge = self.bridge
        uart = platform.request(*self.uart)
        m.d.comb += [bridge.rx.eq(uart.rx.i), uart.tx.o.eq(bridge.tx)]
        if self.leds:
            for i, flag in enumerate((bridge.busy, bridge.overrun, bridge.framing_error)):
                try:
                    led = platform.request("led", i)
                except ResourceError:
                    break
                m.d.comb += led.o.eq(flag)
        return m
