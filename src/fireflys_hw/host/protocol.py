"""The byte protocol of the host link (:class:`fireflys_hw.gateware.link.HostLink`) over a UART.

Pure Python and numpy (no Amaranth), shared by the gateware and the host driver
(:mod:`fireflys_hw.host`). All multi-byte fields are little-endian. Version 2 (this one) adds a
sequence number and a CRC to every frame, result and info record; ``docs/boards.md`` has the
same tables.

CRC: CRC-16/CCITT-FALSE (polynomial ``0x1021``, initial value ``0xFFFF``, most significant bit
first, no final XOR; ``binascii.crc_hqx(data, 0xFFFF)``, :func:`crc16`), sent low byte first. It
detects every error of up to 3 bits, every odd number of flipped bits and every burst of up to
16 bits in a record, and others but 1 in 65,536.

Host -> board
-------------
* ``0xA5`` (:data:`FRAME_SYNC`), ``seq`` u8, one frame: ``beats_per_frame`` input beats of
  ``beat_bytes = ceil(beat_bits / 8)`` bytes each (bit ``j`` of the beat is bit ``j % 8`` of
  byte ``j // 8``; the unused high bits of the last byte are 0), then the CRC of ``seq`` and the
  beats. The beats are the accelerator's input beats
  (:func:`fireflys_hw.host.beats.input_beats`), in their order. The board counts the bytes;
  it streams the beats into the accelerator as they arrive, checks the CRC at the end and
  reports the outcome in that frame's result (``status``).
* ``0x49`` (:data:`INFO_REQUEST`, ``'I'``): the board answers with an info record.
* Any other byte between frames is ignored. So a host that lost track (a frame cut short) gets
  the board back in step by sending ``frame_bytes + 4`` zero bytes (they finish a partial frame,
  whose result it discards, and are ignored otherwise), waiting for the line to go quiet, and
  flushing its input (:meth:`fireflys_hw.host.board.Board.resync`).

Board -> host
-------------
* ``0x5A`` (:data:`RESULT_SYNC`), ``seq`` u8 (the frame's, echoed), ``status`` u8 (bit 0,
  :data:`STATUS_BAD_FRAME`: the frame's CRC did not match, so the scores are of a damaged
  input), ``result_bytes = ceil(result_bits / 8)`` bytes: the accelerator's output payload
  (``classes`` two's complement scores of ``score_bits`` bits, class 0 in the low bits, then the
  class index, :func:`fireflys_hw.host.beats.decode_readout`), then the CRC of ``seq``,
  ``status`` and the payload. One per frame, in frame order.
* ``0x49`` (:data:`INFO_REPLY`), the :class:`LinkInfo` record (:data:`INFO_BYTES` bytes):
  ``version`` u8, ``beat_bits`` u16, ``beats_per_frame`` u32, ``result_bits`` u16,
  ``classes`` u8, ``score_bits`` u8, ``model_id`` u32 (:func:`model_id` of the artifact the
  bitstream was built from), then the CRC of the record.

The host (:class:`fireflys_hw.host.board.Board`) checks every record: CRC, ``seq`` in order,
``status`` 0, class index below ``classes`` and equal to the argmax of the scores (lowest index
on ties), and the info record's version and fields; it retries a frame whose result fails a
check and fails with one line after a few tries, so no wrong score reaches the caller.

The board never drops a received byte as long as the accelerator takes input beats at least
as fast as the line delivers them (always the case at UART speeds on real clocks); otherwise
its receive FIFO fills and the ``overrun`` flag (an LED on the boards) is set.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["FRAME_SYNC", "INFO_REQUEST", "RESULT_SYNC", "INFO_REPLY", "PROTOCOL_VERSION",
           "INFO_BYTES", "CRC_BYTES", "STATUS_BAD_FRAME", "LinkInfo", "model_id", "frame_bytes",
           "result_record", "result_value", "beat_bytes", "crc16", "crc_ok", "argmax_index",
           "encode_readout"]

FRAME_SYNC = 0xA5
INFO_REQUEST = 0x49
RESULT_SYNC = 0x5A
INFO_REPLY = 0x49
PROTOCOL_VERSION = 2
#: ``status`` bit of a result: the frame arrived with a bad CRC.
STATUS_BAD_FRAME = 0x01
#: Bytes of a CRC on the wire.
CRC_BYTES = 2
#: The most ``score_bits`` and ``classes`` a host accepts in an info record (the contract's
#: readout scores fit 64 bits; a readout has at most 255 classes in the record's u8).
_MAX_SCORE_BITS = 64

_INFO = struct.Struct("<BHIHBBI")
#: Bytes of an info record after its ``INFO_REPLY`` byte.
INFO_BYTES = _INFO.size


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (continuing from ``crc``)."""
    return binascii.crc_hqx(bytes(data), crc)


def crc_ok(record: bytes) -> bool:
    """Whether a record's body matches its trailing CRC-16 (little-endian)."""
    return crc16(record[:-CRC_BYTES]) == int.from_bytes(record[-CRC_BYTES:], "little")


def _with_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(CRC_BYTES, "little")


def beat_bytes(bits: int) -> int:
    """Bytes that carry ``bits`` bits."""
    return max(1, -(-bits // 8))


@dataclass(frozen=True)
class LinkInfo:
    """What a board's link reports about the design behind it (see the module docstring)."""

    beat_bits: int
    beats_per_frame: int
    result_bits: int
    classes: int
    score_bits: int
    model_id: int
    version: int = PROTOCOL_VERSION

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame after its sync byte."""
        return self.beats_per_frame * beat_bytes(self.beat_bits)

    @property
    def result_bytes(self) -> int:
        """Bytes of a result's payload (after ``seq`` and ``status``, before the CRC)."""
        return beat_bytes(self.result_bits)

    @property
    def record_bytes(self) -> int:
        """Bytes of a whole result record after its sync byte: ``seq``, ``status``, payload,
        CRC."""
        return 2 + self.result_bytes + CRC_BYTES

    def to_bytes(self) -> bytes:
        """The record and its CRC (what follows ``INFO_REPLY`` on the wire)."""
        return _with_crc(_INFO.pack(self.version, self.beat_bits, self.beats_per_frame,
                                    self.result_bits, self.classes, self.score_bits,
                                    self.model_id & 0xFFFFFFFF))

    @classmethod
    def from_bytes(cls, data: bytes) -> "LinkInfo":
        """Parse and check a record and its CRC; ``ValueError`` (one line) names what is
        wrong: the CRC, a protocol version other than :data:`PROTOCOL_VERSION`, or a field no
        design can have."""
        if len(data) != INFO_BYTES + CRC_BYTES:
            raise ValueError(f"an info record has {INFO_BYTES + CRC_BYTES} bytes, not "
                             f"{len(data)}")
        body, crc = data[:INFO_BYTES], int.from_bytes(data[INFO_BYTES:], "little")
        if crc16(body) != crc:
            raise ValueError(f"the info record's CRC is 0x{crc:04x}, its bytes give "
                             f"0x{crc16(body):04x}")
        version, beat_bits, bpf, result_bits, classes, score_bits, mid = _INFO.unpack(body)
        info = cls(beat_bits, bpf, result_bits, classes, score_bits, mid, version)
        info.validate()
        return info

    def validate(self) -> None:
        """``ValueError`` unless this host can read the link: its protocol version, at least
        one beat of at least one bit per frame, 2..255 classes, 2..64-bit scores and a result of
        ``classes * score_bits`` bits and the class index."""
        if self.version != PROTOCOL_VERSION:
            raise ValueError(f"the board speaks link protocol version {self.version}, this host "
                             f"version {PROTOCOL_VERSION}: build the bitstream and run the host "
                             f"with the same fireflys")
        if self.beat_bits < 1 or self.beats_per_frame < 1:
            raise ValueError(f"the board reports {self.beats_per_frame} beats of "
                             f"{self.beat_bits} bits per frame")
        if not 2 <= self.classes <= 255:
            raise ValueError(f"the board reports {self.classes} classes (2..255 are readable)")
        if not 2 <= self.score_bits <= _MAX_SCORE_BITS:
            raise ValueError(f"the board reports score_bits {self.score_bits} (2.."
                             f"{_MAX_SCORE_BITS} are readable)")
        want = self.classes * self.score_bits + (self.classes - 1).bit_length()
        if self.result_bits != want:
            raise ValueError(f"the board reports result_bits {self.result_bits}, but "
                             f"{self.classes} scores of {self.score_bits} bits and the index "
                             f"take {want}")


def model_id(artifact) -> int:
    """A 32-bit fingerprint (CRC-32) of what an artifact computes: time steps, input format and
    every layer's shapes and integer parameters (not its name or metadata). The board reports
    it, so the host can tell whether the bitstream carries the model it means to run."""
    crc = zlib.crc32(repr((artifact.T, tuple(artifact.input_shape), artifact.input_bits,
                           artifact.input_encoding.value)).encode())
    for layer in artifact.layers:
        crc = zlib.crc32(repr((type(layer).__name__, tuple(layer.in_shape),
                               tuple(layer.out_shape))).encode(), crc)
        for name in ("weight", "bias", "threshold", "shift"):   # shift: radix layers only
            value = getattr(layer, name, None)
            if value is not None:
                crc = zlib.crc32(np.ascontiguousarray(value, dtype="<i8").tobytes(), crc)
        for name in ("kernel", "padding", "leak_shift"):
            crc = zlib.crc32(repr(getattr(layer, name, None)).encode(), crc)
        neuron = getattr(layer, "neuron", None)
        crc = zlib.crc32(repr(getattr(neuron, "value", neuron)).encode(), crc)
    return crc & 0xFFFFFFFF


def frame_bytes(beats: np.ndarray, beat_bits: int, seq: int = 0) -> bytes:
    """One frame on the wire: ``FRAME_SYNC``, ``seq``, the beats of ``beats`` (``(n_beats,
    n_words)`` little-endian uint32 words, as :func:`fireflys_hw.host.beats.input_beats`
    gives them per frame), ``beat_bytes(beat_bits)`` bytes per beat, and the CRC."""
    words = np.ascontiguousarray(np.asarray(beats, dtype="<u4"))
    if words.ndim != 2:
        raise ValueError(f"beats must be (n_beats, n_words), not shape {words.shape}")
    n = beat_bytes(beat_bits)
    raw = words.view(np.uint8).reshape(len(words), -1)
    if raw.shape[1] < n:
        raise ValueError(f"beats carry {raw.shape[1] * 8} bits, fewer than {beat_bits}")
    return bytes([FRAME_SYNC]) + _with_crc(bytes([seq & 0xFF]) + raw[:, :n].tobytes())


def result_record(seq: int, status: int, value: int, result_bits: int) -> bytes:
    """A result on the wire (what the board sends): ``RESULT_SYNC``, ``seq``, ``status``, the
    output payload ``value`` in ``beat_bytes(result_bits)`` bytes, and the CRC."""
    body = bytes([seq & 0xFF, status & 0xFF]) + value.to_bytes(beat_bytes(result_bits),
                                                               "little")
    return bytes([RESULT_SYNC]) + _with_crc(body)


def result_value(payload: bytes) -> int:
    """A result's payload bytes (after ``seq`` and ``status``) as the output payload int."""
    return int.from_bytes(payload, "little")


def argmax_index(scores) -> int:
    """The contract's class: the index of the highest score, the lowest index on ties."""
    scores = list(scores)
    return scores.index(max(scores))


def encode_readout(scores, index: int, classes: int, score_bits: int) -> int:
    """The output payload of ``scores`` and ``index`` (the inverse of
    :func:`fireflys_hw.host.beats.decode_readout`)."""
    mask = (1 << score_bits) - 1
    value = 0
    for c, v in enumerate(scores):
        value |= (int(v) & mask) << (c * score_bits)
    return value | (int(index) << (classes * score_bits))
