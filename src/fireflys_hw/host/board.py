"""The host driver: send frames to a board over its UART link and read the results back.

::

    from fireflys_hw.host.board import Board
    with Board("/dev/ttyUSB1", baud=115200) as board:
        board.check(artifact)                       # the bitstream carries this model
        scores, classes = board.classify(artifact, images)

The protocol is :mod:`fireflys_hw.host.protocol` (version 2). Every wait has a deadline; a board
that does not answer raises :class:`BoardError` with one line (which port, what it waited for,
what to check). Every record is checked before its scores are used: CRC, sequence number in
order, the board's verdict on the frame's CRC, class index below ``classes`` and equal to the
argmax of the scores (lowest index on ties); a frame whose result fails a check (or does not
come) is sent again after :meth:`Board.resync`, up to ``retries`` times, then
:class:`BoardError` says why. No wrong score reaches the caller. Any object with pyserial's ``read(n)`` / ``write(data)`` / ``reset_input_buffer()`` /
``close()`` can stand in for the port: :class:`fireflys_hw.sim.serial.SimulatedSerial` is the
simulated board the tests and ``fireflys run --port sim`` use.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from fireflys_sw.errors import FireflysError

from .beats import decode_readout, input_beats, static_input
from .protocol import (CRC_BYTES, INFO_BYTES, INFO_REPLY, INFO_REQUEST, RESULT_SYNC,
                       STATUS_BAD_FRAME, LinkInfo, argmax_index, beat_bytes, crc16, crc_ok,
                       frame_bytes, model_id, result_value)

__all__ = ["Board", "BoardError", "LinkFault", "RunResult", "DEFAULT_BAUD", "DEFAULT_TIMEOUT",
           "DEFAULT_RETRIES"]

DEFAULT_BAUD = 115_200
#: Seconds to wait for an answer (a frame's result, an info record).
DEFAULT_TIMEOUT = 2.0
#: Zero bytes per step of a resync before the frame size is known (then an info request).
PROBE_BYTES = 64
#: Times a frame (or the info request) is sent again after a failed check before giving up.
DEFAULT_RETRIES = 3


def _why(error: Exception) -> str:
    """The reason in an error from opening a port, without pyserial's repetition of the port's
    name ("could not open port X: [Errno 2] No such file or directory: 'X'")."""
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(error)


class BoardError(FireflysError, RuntimeError):
    """The board did not answer, answered nonsense, or carries another model (one line)."""


class LinkFault(BoardError):
    """A record that failed a check, or did not come: worth a retry after a resync."""


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
    retries : int
        Times a frame whose result fails a check is sent again before :class:`BoardError`.

    Attributes
    ----------
    faults : list of str
        What each retry was for (the checks that failed), for reports and tests.
    """

    def __init__(self, port, *, baud: int = DEFAULT_BAUD, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES):
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, not {retries!r}")
        self.retries = retries
        self.faults: list[str] = []
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
                raise LinkFault(
                    f"no answer from the board on {self.name} within {self.timeout:g} s while "
                    f"waiting for {what}{got}; check the port, the baud rate ({self.baud}) and "
                    f"that the board is programmed with a fireflys bitstream")
        return data

    def _expect(self, sync: int, what: str) -> None:
        byte = self._read(1, what)[0]
        if byte != sync:
            raise LinkFault(f"unexpected byte 0x{byte:02x} from the board on {self.name} "
                            f"while waiting for {what} (0x{sync:02x}); the link is out of "
                            f"step")

    # --- protocol ---------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except OSError as error:
            raise BoardError(f"serial port {self.name}: {error}") from error

    def _retrying(self, what: str, attempt):
        """``attempt()``, again after :meth:`resync` while it raises :class:`LinkFault`, at most
        :attr:`retries` more times; then one line saying what failed last."""
        for k in range(self.retries + 1):
            try:
                return attempt()
            except LinkFault as fault:
                self.faults.append(f"{what}: {fault}")
                if k == self.retries:
                    raise BoardError(f"{fault} ({what}, {self.retries + 1} tries)") from None
                self.resync()

    def info(self) -> LinkInfo:
        """Ask the board what it carries (:class:`~fireflys_hw.host.protocol.LinkInfo`): the
        record's CRC is checked (a damaged one is asked for again), then its version and
        fields (:meth:`LinkInfo.validate`)."""
        def attempt() -> LinkInfo:
            self.port.reset_input_buffer()
            self._write(bytes([INFO_REQUEST]))
            self._expect(INFO_REPLY, "its info record")
            raw = self._read(INFO_BYTES + CRC_BYTES, "its info record")
            if not crc_ok(raw):
                raise LinkFault(f"the info record from the board on {self.name} has a bad CRC")
            try:
                return LinkInfo.from_bytes(raw)
            except ValueError as error:
                raise BoardError(f"the board on {self.name}: {error}") from None
        self._info = self._retrying("the info request", attempt)
        return self._info

    def check(self, artifact) -> LinkInfo:
        """:meth:`info`, and :class:`BoardError` unless the board runs ``artifact``'s model
        (same :func:`~fireflys_hw.host.protocol.model_id`, classes and frame size)."""
        info = self.info()
        want = model_id(artifact)
        if info.model_id != want:
            raise BoardError(f"the board on {self.name} carries model 0x{info.model_id:08x}, "
                             f"not {artifact.name} (0x{want:08x}); build and program its "
                             f"bitstream with 'fireflys build'")
        if info.classes != artifact.classes:
            raise BoardError(f"the board on {self.name} reports {info.classes} classes, "
                             f"{artifact.name} has {artifact.classes}")
        want_bits = _score_bits(artifact)
        if info.score_bits != want_bits:
            raise BoardError(f"the board on {self.name} reports score_bits {info.score_bits}, "
                             f"{artifact.name}'s readout has {want_bits}")
        return info

    def send_frame(self, beats: np.ndarray, seq: int = 0) -> None:
        """Send one frame with sequence number ``seq`` (its result echoes it): ``beats``
        ``(beats_per_frame, n_words)`` as from :func:`fireflys_hw.host.beats.input_beats`."""
        info = self._info or self.info()
        if len(beats) != info.beats_per_frame:
            raise BoardError(f"a frame for the board on {self.name} has "
                             f"{info.beats_per_frame} beats, not {len(beats)}")
        if np.asarray(beats).shape[-1] * 32 < info.beat_bits:
            raise BoardError(f"the board on {self.name} takes beats of {info.beat_bits} bits, "
                             f"these carry {np.asarray(beats).shape[-1] * 32}")
        self._write(frame_bytes(beats, info.beat_bits, seq))

    def read_result(self, seq: int | None = None) -> tuple[list[int], int]:
        """The next frame's ``(scores, class)``, checked: the record's CRC, its ``seq`` (when
        given), the board's verdict on the frame, the class index (below ``classes``, the
        argmax of the scores with the lowest index on ties). :class:`LinkFault` otherwise."""
        info = self._info or self.info()
        self._expect(RESULT_SYNC, "a result")
        raw = self._read(info.record_bytes, "a result")
        body, crc = raw[:-CRC_BYTES], int.from_bytes(raw[-CRC_BYTES:], "little")
        where = f"the result from the board on {self.name}"
        if crc16(body) != crc:
            raise LinkFault(f"{where} has a bad CRC")
        if seq is not None and body[0] != seq & 0xFF:
            raise LinkFault(f"{where} is for frame {body[0]}, not {seq & 0xFF}")
        if body[1] & STATUS_BAD_FRAME:
            raise LinkFault(f"{where} says the frame arrived damaged (bad CRC)")
        if body[1]:
            raise LinkFault(f"{where} has the unknown status 0x{body[1]:02x}")
        scores, index = decode_readout(result_value(body[2:]), info.classes, info.score_bits)
        if index >= info.classes or index != argmax_index(scores):
            raise LinkFault(f"{where} gives class {index}, but the argmax of its scores is "
                            f"{argmax_index(scores)}")
        return scores, index

    def classify(self, artifact, images: np.ndarray, *, window: int = 1,
                 progress=None) -> RunResult:
        """Run ``images`` (uint8, as :func:`fireflys_sw.golden.run_golden` takes them) on the
        board; ``window`` frames are kept in flight (the link has no flow control: keep it
        small unless the accelerator is known to outpace the line). A frame whose result fails
        a check is sent again (with the frames after it in the window) after a resync."""
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, not {window!r}")
        info = self.check(artifact)
        beats = input_beats(artifact, images)
        per_frame = int(np.prod(artifact.input_shape)) * artifact.input_bits * (
            1 if static_input(artifact) else artifact.T)
        if beats.shape[1] != info.beats_per_frame or \
                info.beats_per_frame * info.beat_bits != per_frame:
            raise BoardError(f"{artifact.name} gives {beats.shape[1]} beats of "
                             f"{per_frame // beats.shape[1]} bits per frame, the board on "
                             f"{self.name} takes {info.beats_per_frame} of {info.beat_bits}")
        n = len(beats)
        scores = np.zeros((n, info.classes), np.int64)
        predictions = np.zeros(n, np.int64)
        start = time.perf_counter()
        sent = 0
        k = 0
        tries = 0
        while k < n:
            try:
                while sent < n and sent < k + window:
                    self.send_frame(beats[sent], seq=sent)
                    sent += 1
                s, c = self.read_result(seq=k)
            except LinkFault as fault:
                self.faults.append(f"frame {k}: {fault}")
                tries += 1
                if tries > self.retries:
                    raise BoardError(f"{fault} (frame {k}, {tries} tries)") from None
                self.resync()
                sent = k
                continue
            scores[k], predictions[k] = s, c
            k += 1
            tries = 0
            if progress is not None:
                progress(k)
        return RunResult(scores, predictions, time.perf_counter() - start)

    def resync(self) -> None:
        """Bring the link back in step after a frame was cut short or a record went wrong:
        send a frame's worth of zero bytes and four more (they finish a partial frame, its
        sequence number and CRC, and are ignored between frames), read until the line is quiet
        (at most a timeout), and flush.

        Before the info record is known the frame's size is not either; then zero bytes go out
        in blocks of :data:`PROBE_BYTES`, each followed by an info request, until a whole info
        record comes back (the board is between frames again) or 64 KiB have gone out. A board
        that is already between frames costs one block, not 64 KiB of zeros (about 6 s at
        115200 baud, and hours in a gate-level simulation)."""
        info = self._info
        if info is None:
            self._probe()
        else:
            self._write(bytes(info.frame_bytes + 4))
            self._drain()
        self.port.reset_input_buffer()

    def _drain(self) -> bytes:
        """What the board sends until the line is quiet (at most a timeout)."""
        got = b""
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                chunk = self.port.read(1 + INFO_BYTES + CRC_BYTES)
                if not chunk:
                    break
                got += chunk
        except OSError as error:
            raise BoardError(f"serial port {self.name}: {error}") from error
        return got

    def _probe(self) -> None:
        sent = 0
        deadline = time.monotonic() + self.timeout
        while sent < 1 << 16 and time.monotonic() < deadline:
            self._write(bytes(PROBE_BYTES) + bytes([INFO_REQUEST]))
            sent += PROBE_BYTES + 1
            if _ends_with_info_record(self._drain()):
                return


def _ends_with_info_record(data: bytes) -> bool:
    """Whether ``data`` ends with an info reply whose CRC checks."""
    n = 1 + INFO_BYTES + CRC_BYTES
    return len(data) >= n and data[-n] == INFO_REPLY and crc_ok(data[-n + 1:])


def _score_bits(artifact) -> int:
    """The readout's score width (the gateware takes it from the same function)."""
    from fireflys_sw.artifact import SynapticLayer
    from fireflys_sw.golden import layer_widths
    input_max = artifact.input_max
    synaptic = [layer for layer in artifact.layers if isinstance(layer, SynapticLayer)]
    if len(synaptic) > 1:
        input_max = 1
    return layer_widths(synaptic[-1], input_max, artifact.T).score_bits


def frame_wire_bytes(info: LinkInfo) -> int:
    """Bytes on the wire per frame (sync, sequence number and CRC included), for throughput
    estimates."""
    return 2 + info.beats_per_frame * beat_bytes(info.beat_bits) + CRC_BYTES
