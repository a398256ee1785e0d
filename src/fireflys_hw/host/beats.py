"""The accelerator's input and output beats on the host side (numpy only).

The accelerator takes the first layer's input as one beat per pixel: of one step (direct
encoding, the same image at every step: :func:`static_input`) or of every step (frames); with
``C' = C * input_bits``, bit ``t * C' + c * input_bits + b`` of a beat is bit ``b`` of the
integer input ``x[t, c, h, w]``
(:mod:`fireflys_hw.gateware.accelerator` has the full description). :func:`input_beats` turns
uint8 images into those beats, :func:`decode_readout` turns a result beat back into scores and
class. The gateware, the simulators and the board driver all use these.
"""

from __future__ import annotations

import numpy as np

from fireflys_sw.artifact import Artifact, InputEncoding
from fireflys_sw.golden import encode_input

__all__ = ["static_input", "input_beats", "beat_words", "words_to_int", "decode_readout"]


def static_input(artifact: Artifact) -> bool:
    """Whether the first layer's input is the same at every time step (direct encoding), so
    that its core takes one beat per pixel and computes the current once
    (:class:`~fireflys_hw.gateware.core.LayerCore`'s ``static_input``)."""
    return artifact.input_encoding is InputEncoding.DIRECT


def input_beats(artifact: Artifact, images: np.ndarray) -> np.ndarray:
    """The accelerator's input beats for ``images`` (uint8, ``(N, C, H, W)`` for direct
    encoding or ``(N, T, C, H, W)`` for frames, as :func:`fireflys_sw.golden.run_golden`
    takes them).

    Returns
    -------
    ndarray of uint32, ``(N, H * W, n_words)``
        Per frame and beat (one per pixel, raster order), the beat's ``steps * C *
        input_bits`` bits as little-endian 32-bit words (bit ``j`` of the beat is bit ``j %
        32`` of word ``j // 32``); bit ``t * C * input_bits + c * input_bits + b`` is bit
        ``b`` of ``x[t, c, h, w]`` (:func:`~fireflys_sw.golden.encode_input`). ``steps`` is 1
        for direct encoding (the input is the same at every step), ``T`` for frames.
    """
    x = np.asarray(encode_input(artifact, np.asarray(images)), np.int64)   # (N, T, C, H, W)
    if static_input(artifact):
        x = x[:, :1]
    n, T, c, h, w = x.shape
    ib = artifact.input_bits
    planes = (x[:, :, :, None] >> np.arange(ib).reshape(1, 1, 1, ib, 1, 1)) & 1
    planes = planes.reshape(n, T, c * ib, h, w).transpose(0, 3, 4, 1, 2)   # (N, H, W, T, C')
    bits = planes.reshape(n, h * w, T * c * ib).astype(np.uint8)
    return beat_words(bits)


def beat_words(bits: np.ndarray) -> np.ndarray:
    """``bits[..., j]`` (0/1) packed into little-endian uint32 words ``[..., j // 32]``."""
    bits = np.asarray(bits, np.uint8)
    width = bits.shape[-1]
    n_words = max(1, -(-width // 32))
    padded = np.zeros(bits.shape[:-1] + (n_words * 32,), np.uint8)
    padded[..., :width] = bits
    packed = np.packbits(padded, axis=-1, bitorder="little")         # bytes, little-endian
    return np.ascontiguousarray(packed).view("<u4").astype(np.uint32)


def words_to_int(words) -> int:
    """Little-endian 32-bit words as one Python int."""
    return sum(int(v) << (32 * i) for i, v in enumerate(words))


def decode_readout(value: int, classes: int, score_bits: int) -> tuple[list[int], int]:
    """An ``output`` payload (as an int) as ``(scores, index)``."""
    mask = (1 << score_bits) - 1
    scores = []
    for c in range(classes):
        v = (value >> (c * score_bits)) & mask
        scores.append(v - (1 << score_bits) if v >> (score_bits - 1) else v)
    index = value >> (classes * score_bits)
    index &= (1 << (max(classes, 2) - 1).bit_length()) - 1
    return scores, index
