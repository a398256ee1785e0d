"""A simulated board on a simulated serial line: the host driver's stand-in for a port.

:class:`SimulatedSerial` runs a :class:`~fireflys_hw.gateware.link.UARTBridge` (the
board-independent top of every UART board target) in Amaranth's simulator and offers the part of
pyserial's ``Serial`` interface that :class:`fireflys_hw.host.board.Board` uses (``write``,
``read``, ``reset_input_buffer``, ``close``). Bytes written are shifted into the bridge's ``rx``
pin bit by bit at ``divisor`` clocks per bit (8N1), and the ``tx`` pin is decoded the same way, so
the round trip exercises the real UART, link and accelerator gateware.

Simulation runs only inside ``read``: it advances until the bytes asked for have arrived, or
the design has gone quiet (nothing left to send to it, no frame in flight, the line idle for a
byte time), or ``max_cycles`` have passed; then it returns what it has (fewer bytes, as a
serial port does on a timeout). If the bridge's receiver loses bytes (overrun or framing
error), ``read`` raises ``OSError`` at once instead of timing out. Keep models tiny and ``divisor``
small (a few clocks per bit): pysim runs a few thousand cycles per second.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SimulatedSerial", "simulated_board"]

_PERIOD = 1e-6        # the simulated clock's period; only ratios matter


class SimulatedSerial:
    """A serial port whose other end is a simulated :class:`~fireflys_hw.gateware.link.UARTBridge`.

    Parameters
    ----------
    bridge : UARTBridge
        Not yet elaborated (a component elaborates once).
    max_cycles : int
        Most clock cycles one ``read`` simulates.
    name : str
        What :class:`~fireflys_hw.host.board.Board` calls the port in messages.

    Attributes
    ----------
    cycles : int
        Clock cycles simulated so far.
    overrun, framing_error : bool
        The bridge's error flags as last sampled.
    """

    def __init__(self, bridge, *, max_cycles: int = 500_000, name: str = "sim"):
        from amaranth.sim import Simulator
        self.bridge = bridge
        self.divisor = bridge.divisor
        self.max_cycles = int(max_cycles)
        self.name = self.port = name
        self.cycles = 0
        self.overrun = self.framing_error = False
        self._to_board: deque[int] = deque()
        self._from_board: deque[int] = deque()
        self._busy = False
        self._line_idle = 0          # cycles since the tx line last carried a bit
        self._sending = False
        self._closed = False
        self._sim = Simulator(bridge)
        self._sim.add_clock(_PERIOD)
        self._sim.add_testbench(self._line, background=True)

    # --- the line, one coroutine for both directions (cheaper than two in pysim) ----------------

    async def _line(self, ctx):
        bridge, div = self.bridge, self.divisor
        out_bits = deque()               # host -> board: line levels, one per cycle
        rx_state, rx_timer, rx_bits, rx_value = "idle", 0, 0, 0
        ctx.set(bridge.rx, 1)
        while True:
            if not out_bits and self._to_board:
                byte = self._to_board.popleft()
                for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                    out_bits.extend([level] * div)
            self._sending = bool(out_bits)
            if out_bits:
                ctx.set(bridge.rx, out_bits.popleft())
            _, _, tx, busy, overrun, framing = await ctx.tick().sample(
                bridge.tx, bridge.busy, bridge.overrun, bridge.framing_error)
            self.cycles += 1
            self._busy = bool(busy)
            self.overrun, self.framing_error = bool(overrun), bool(framing)
            # board -> host: sample each bit in its middle
            if rx_state == "idle":
                if not tx:
                    rx_state, rx_timer = "start", div // 2
                    self._line_idle = 0
                else:
                    self._line_idle += 1
            else:
                self._line_idle = 0
                rx_timer -= 1
                if rx_timer == 0:
                    if rx_state == "start":
                        rx_state, rx_timer, rx_bits, rx_value = "data", div, 0, 0
                    elif rx_state == "data":
                        rx_value |= int(tx) << rx_bits
                        rx_bits += 1
                        rx_timer = div
                        if rx_bits == 8:
                            rx_state = "stop"
                    else:
                        if tx:
                            self._from_board.append(rx_value)
                        rx_state = "idle"

    def _quiet(self) -> bool:
        return (not self._to_board and not self._sending and not self._busy
                and self._line_idle > 11 * self.divisor)

    def _run(self, cycles: int) -> None:
        self._sim.run_until((self.cycles + cycles + 0.5) * _PERIOD)

    # --- the pyserial subset ------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        if self._closed:
            raise OSError("simulated port is closed")
        self._to_board.extend(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if self._closed:
            raise OSError("simulated port is closed")
        step = 16 * self.divisor
        start = self.cycles
        while len(self._from_board) < size and self.cycles - start < self.max_cycles:
            self._run(step)
            if self.overrun or self.framing_error:
                # a real board would just go silent; the simulation can say why at once
                raise OSError(f"the simulated board lost bytes ("
                              f"{'receive overrun' if self.overrun else 'framing error'}): "
                              f"the accelerator takes beats slower than the line delivers "
                              f"them at {self.divisor} clocks per bit; use a larger divisor")
            if len(self._from_board) < size and self._quiet():
                break
        n = min(size, len(self._from_board))
        return bytes(self._from_board.popleft() for _ in range(n))

    @property
    def in_waiting(self) -> int:
        return len(self._from_board)

    def reset_input_buffer(self) -> None:
        self._from_board.clear()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._closed = True


def simulated_board(accelerator, *, divisor: int = 8, model_id: int = 0,
                    max_cycles: int = 500_000, rx_fifo_depth: int | None = None
                    ) -> SimulatedSerial:
    """A :class:`SimulatedSerial` in front of a fresh
    :class:`~fireflys_hw.gateware.link.UARTBridge`
    around ``accelerator`` (not yet elaborated)."""
    from ..gateware.link import DEFAULT_RX_FIFO_DEPTH, UARTBridge
    bridge = UARTBridge(accelerator, divisor=divisor, model_id=model_id,
                        rx_fifo_depth=rx_fifo_depth or DEFAULT_RX_FIFO_DEPTH)
    return SimulatedSerial(bridge, max_cycles=max_cycles)
