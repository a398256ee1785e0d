"""The host driver: send frames to a board over its UART link and read the results back.

::

    from fireflys_hw.host.board import Board
    with Board("/dev/ttyUSB1", baud=115200) as board:
        board.check(artifact)                       # the bitstream carries this model
        scores, classes = board.classify(artifact, images)

The protocol is :mod:`fireflys_hw.host.protocol`. Every wait has a deadline; a board that does not
answer raises :class:`BoardError` with one line (which port, what it waited for, what to
check). Any object with pyserial's ``read(n)`` / ``write(data)`` / ``reset_input_buffer()`` /
``close()`` can stand in for the port: :class:`fireflys_hw.sim.serial.SimulatedSerial` is the
simulated board the tests and ``fireflys run --port sim`` use.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from fireflys_sw.errors import FireflysError

from .beats import decode_readout, input_beats
from .protocol import (INFO_BYTES, INFO_REPLY, INFO_REQUEST, RESULT_SYNC, LinkInfo, beat_bytes,
                       frame_bytes, model_id, result_value)

__all__ = ["Board", "BoardError", "RunResult", "DEFAULT_BAUD", "DEFAULT_TIMEOUT"]

DEFAULT_BAUD = 115_200
#: Seconds to wait for an answer (a frame's result, an info record).
DEFAULT_TIMEOUT = 2.0


def _why(error: Exception) -> str:
    """The reason in an error from opening a port, without pyserial's repetition of the port's
    name ("could not open port X: [Errno 2] No such file or directory: 'X'")."""
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(error)


class BoardError(FireflysError, RuntimeError):
    """The board did not answer, answered nonsense, or carries another model (one line)."""


@dataclass(frozen=True)
class RunResult:
    """Results of :meth:`Board.classify` (``scores`` ``(N, classes)`` int64, ``predictions``
    ``(N,)``) and the wall time of the transfer."""

    scores: np.ndarray
    predictions: np.ndarray
    seconds: float


class Board:
    """A fireflys accelerator on a board, reached through a serial port.

    Parameters
    ----------
    port : str or serial-like object
        A pyserial port name or URL (``/dev/ttyUSB1``, ``COM3``, ``socket://host:port``), or an
        object with pyserial's ``read`` / ``write`` / ``reset_input_buffer`` / ``close``.
    baud : int
        Line speed; it must match the bitstream's (``fireflys build --baud``).
    timeout : float
        Seconds to wait for an answer before :class:`BoardError`.
    """

    def __init__(self, port, *, baud: int = DEFAULT_BAUD, timeout: float = DEFAULT_TIMEOUT):
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.timeout = float(timeout)
        self.baud = baud
        if isinstance(port, str):
            import serial
            try:
                # short reads: the deadline is kept here, across reads
                self.port = serial.serial_for_url(port, baudrate=baud,
                                                  timeout=min(0.05, self.timeout))
            except (serial.SerialException, ValueError, OSError) as error:
                raise BoardError(f"cannot open serial port {port!r}: {_why(error)}; check the "
                                 f"name (e.g. ls /dev/ttyUSB* /dev/ttyACM*), or use 'sim' for "
                                 f"the simulated board") from error
            self.name = port
        else:
            self.port = port
            self.name = getattr(port, "name", None) or getattr(port, "port", None) \
                or type(port).__name__
        self._info: LinkInfo | None = None

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- bytes ------------------------------------------------------------------------------------

    def _read(self, n: int, what: str) -> bytes:
        data = b""
        deadline = time.monotonic() + self.timeout
        while len(data) < n:
            try:
                chunk = self.port.read(n - len(data))
            except OSError as error:          # pyserial's SerialException is one
                raise BoardError(f"serial port {self.name}: {error}") from error
            if chunk:
                data += chunk
                deadline = time.monotonic() + self.timeout
            elif time.monotonic() >= deadline:
                got = f" (got {len(data)} of {n} bytes)" if data else ""
                raise BoardError(
                    f"no answer from the board on {self.name} within {self.timeout:g} s while "
                    f"waiting for {what}{got}; check the port, the baud rate ({self.baud}) and "
                    f"that the board is programmed with a fireflys bitstream")
        return data

    def _expect(self, sync: int, what: str) -> None:
        byte = self._read(1, what)[0]
        if byte != sync:
            raise BoardError(f"unexpected byte 0x{byte:02x} from the board on {self.name} "
                             f"while waiting for {what} (0x{sync:02x}); the link is out of "
                             f"step: reset the board or call resync()")

    # --- protocol ---------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except OSError as error:
            raise BoardError(f"serial port {self.name}: {error}") from error

    def info(self) -> LinkInfo:
        """Ask the board what it carries (:class:`~fireflys_hw.host.protocol.LinkInfo`)."""
        self.port.reset_input_buffer()
        self._write(bytes([INFO_REQUEST]))
        self._expect(INFO_REPLY, "its info record")
        info = LinkInfo.from_bytes(self._read(INFO_BYTES, "its info record"))
        self._info = info
        return info

    def check(self, artifact) -> LinkInfo:
        """:meth:`info`, and :class:`BoardError` unless the board runs ``artifact``'s model
        (same :func:`~fireflys_hw.host.protocol.model_id`)."""
        info = self.info()
        want = model_id(artifact)
        if info.model_id != want:
            raise BoardError(f"the board on {self.name} carries model 0x{info.model_id:08x}, "
                             f"not {artifact.name} (0x{want:08x}); build and program its "
                             f"bitstream with 'fireflys build'")
        if info.classes != artifact.classes:
            raise BoardError(f"the board on {self.name} reports {info.classes} classes, "
                             f"{artifact.name} has {artifact.classes}")
        return info

    def send_frame(self, beats: np.ndarray) -> None:
        """Send one frame: ``beats`` ``(beats_per_frame, n_words)`` as from
        :func:`fireflys_hw.host.beats.input_beats`."""
        info = self._info or self.info()
        if len(beats) != info.beats_per_frame:
            raise BoardError(f"a frame for the board on {self.name} has "
                             f"{info.beats_per_frame} beats, not {len(beats)}")
        self._write(frame_bytes(beats, info.beat_bits))

    def read_result(self) -> tuple[list[int], int]:
        """The next frame's ``(scores, class)``."""
        info = self._info or self.info()
        self._expect(RESULT_SYNC, "a result")
        value = result_value(self._read(info.result_bytes, "a result"))
        return decode_readout(value, info.classes, info.score_bits)

    def classify(self, artifact, images: np.ndarray, *, window: int = 1,
                 progress=None) -> RunResult:
        """Run ``images`` (uint8, as :func:`fireflys_sw.golden.run_golden` takes them) on the
        board; ``window`` frames are kept in flight (the link has no flow control: keep it
        small unless the accelerator is known to outpace the line)."""
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, not {window!r}")
        info = self.check(artifact)
        beats = input_beats(artifact, images)
        if beats.shape[1] != info.beats_per_frame:
            raise BoardError(f"{artifact.name} gives {beats.shape[1]} beats per frame, the "
                             f"board on {self.name} takes {info.beats_per_frame}")
        n = len(beats)
        scores = np.zeros((n, info.classes), np.int64)
        predictions = np.zeros(n, np.int64)
        start = time.perf_counter()
        sent = 0
        for k in range(n):
            while sent < n and sent < k + window:
                self.send_frame(beats[sent])
                sent += 1
            s, c = self.read_result()
            scores[k], predictions[k] = s, c
            if progress is not None:
                progress(k + 1)
        return RunResult(scores, predictions, time.perf_counter() - start)

    def resync(self) -> None:
        """Bring the link back in step after a frame was cut short: send a frame's worth of
        zero bytes (they finish a partial frame and are ignored between frames), wait a
        timeout for a stray result, and flush."""
        info = self._info
        n = info.frame_bytes + 1 if info else 1 << 16
        self._write(bytes(n))
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if not self.port.read(1 + (info.result_bytes if info else 64)):
                    break
        except OSError as error:
            raise BoardError(f"serial port {self.name}: {error}") from error
        self.port.reset_input_buffer()


def frame_wire_bytes(info: LinkInfo) -> int:
    """Bytes on the wire per frame (sync included), for throughput estimates."""
    return 1 + info.beats_per_frame * beat_bytes(info.beat_bits)
