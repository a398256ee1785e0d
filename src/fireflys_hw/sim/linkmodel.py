"""A byte-level model of the board's link (:class:`~fireflys_hw.gateware.link.HostLink` and the
accelerator behind it), and a port that injects faults on the line: what the link fuzz section
and the host driver's fault tests run thousands of times, where the simulated gateware
(:mod:`fireflys_hw.sim.serial`) runs a few frames a second.

:class:`LinkModel` follows the gateware's receive and send state machines byte for byte (a test
holds the two to the same bytes on the same input, damaged input included): ``FRAME_SYNC``,
``seq``, the frame's beats, its CRC; the result record with the echoed ``seq``, the CRC
verdict as ``status`` and the record's CRC; the info record on ``INFO_REQUEST``. Results come
from a function of the frame's beat bytes (the golden model for frames the host sent, another
image's valid result for a damaged frame, as the accelerator would compute something
plausible from damaged input).

:class:`FaultyPort` sits between the host driver and a port and damages the bytes in either
direction: bit flips, dropped, duplicated and inserted bytes, truncated writes, a duplicated or
dropped result record.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from ..host.protocol import (FRAME_SYNC, INFO_REPLY, INFO_REQUEST, STATUS_BAD_FRAME,
                             LinkInfo, crc16, result_record)

__all__ = ["LinkModel", "FaultyPort", "FAULTS"]


class LinkModel:
    """The board's link as a serial-like object (``write``, ``read``, ``reset_input_buffer``,
    ``close``).

    Parameters
    ----------
    info : LinkInfo
        What the board is.
    results : callable
        ``results(beat_bytes) -> output payload int`` for a frame's beat bytes.
    info_bytes : bytes or None
        The info record (with its CRC) to send instead of ``info``'s: a board with another
        bitstream.
    """

    name = "model"

    def __init__(self, info: LinkInfo, results: Callable[[bytes], int], *,
                 info_bytes: bytes | None = None):
        self.info = info
        self.results = results
        self.info_bytes = info.to_bytes() if info_bytes is None else info_bytes
        self._out: deque[int] = deque()
        self._state = "idle"
        self._frame = bytearray()
        self._seq = 0
        self._crc_low = 0
        self._frame_len = info.frame_bytes

    def write(self, data: bytes) -> int:
        for byte in bytes(data):
            self._take(byte)
        return len(data)

    def _take(self, byte: int) -> None:
        state = self._state
        if state == "idle":
            if byte == FRAME_SYNC:
                self._state, self._frame = "seq", bytearray()
            elif byte == INFO_REQUEST:
                self._out.extend(bytes([INFO_REPLY]) + self.info_bytes)
        elif state == "seq":
            self._seq, self._state = byte, "frame"
        elif state == "frame":
            self._frame.append(byte)
            if len(self._frame) == self._frame_len:
                self._state = "crc_low"
        elif state == "crc_low":
            self._crc_low, self._state = byte, "crc_high"
        else:
            crc = self._crc_low | byte << 8
            bad = crc != crc16(bytes([self._seq]) + bytes(self._frame))
            value = self.results(bytes(self._frame))
            self._out.extend(result_record(self._seq, STATUS_BAD_FRAME if bad else 0, value,
                                           self.info.result_bits))
            self._state = "idle"

    def read(self, size: int = 1) -> bytes:
        n = min(size, len(self._out))
        return bytes(self._out.popleft() for _ in range(n))

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def close(self) -> None:
        pass


#: Fault kinds :class:`FaultyPort` injects.
FAULTS = ("flip_in", "flip_out", "drop_in", "drop_out", "duplicate_out", "insert_out",
          "truncate_in", "truncate_out", "duplicate_record", "drop_record", "mixed")


class FaultyPort:
    """A port that damages bytes on their way: ``kind`` (one of :data:`FAULTS`) at ``rate`` per
    byte (per record for the record faults), up to ``budget`` faults, drawn from ``rng``.

    Attributes
    ----------
    injected : int
        Faults injected so far.
    """

    def __init__(self, port, kind: str, rng: random.Random, *, rate: float = 0.01,
                 budget: int = 4, record_bytes: int = 0):
        if kind not in FAULTS:
            raise ValueError(f"kind must be one of {', '.join(FAULTS)}, not {kind!r}")
        self.port, self.kind, self.rng, self.rate, self.budget = port, kind, rng, rate, budget
        self.record_bytes = record_bytes
        self.name = getattr(port, "name", "faulty")
        self.injected = 0
        self._in: deque[int] = deque()

    def _fault(self, kind: str) -> bool:
        want = self.kind == kind or (self.kind == "mixed" and kind in FAULTS)
        if want and self.injected < self.budget and self.rng.random() < self.rate:
            self.injected += 1
            return True
        return False

    def _damage(self, data: bytes, side: str) -> bytes:
        out = bytearray()
        for byte in data:
            if self._fault(f"drop_{side}"):
                continue
            if self._fault(f"flip_{side}"):
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
            if side == "out" and self._fault("duplicate_out"):
                out.append(byte)
            if side == "out" and self._fault("insert_out"):
                out.append(self.rng.randrange(256))
        if out and self._fault(f"truncate_{side}"):
            del out[self.rng.randrange(len(out)):]
        return bytes(out)

    def write(self, data: bytes) -> int:
        self.port.write(self._damage(bytes(data), "in"))
        return len(data)

    def _pull(self) -> None:
        chunk = self.port.read(1 << 16)
        if not chunk:
            return
        n = self.record_bytes
        if n and len(chunk) >= n and self._fault("duplicate_record"):
            at = self.rng.randrange(0, len(chunk) - n + 1)
            chunk = chunk[:at + n] + chunk[at:]
        if n and len(chunk) >= n and self._fault("drop_record"):
            at = self.rng.randrange(0, len(chunk) - n + 1)
            chunk = chunk[:at] + chunk[at + n:]
        self._in.extend(self._damage(chunk, "out"))

    def read(self, size: int = 1) -> bytes:
        if len(self._in) < size:
            self._pull()
        n = min(size, len(self._in))
        return bytes(self._in.popleft() for _ in range(n))

    def reset_input_buffer(self) -> None:
        self._pull()
        self._in.clear()
        self.port.reset_input_buffer()

    def close(self) -> None:
        self.port.close()



