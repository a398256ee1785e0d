"""The numpy golden model: the executable form of the numeric contract
(``docs/numeric-contract.md``). Integer-only, batched and vectorised.

For a synaptic layer, output channel ``c``, position ``p`` and time step ``t``::

    I[c, p, t] = B[c] + sum_{i,k} W[c, i, k] * x[i, p + k, t]
    H = V + ((I - V) >> leak_shift)          # LIF (arithmetic shift = floor); IF: H = V + I
    s = H >= TH[c]                           # fire
    V = 0 if s else H                        # hard reset; V = 0 at the start of every frame

The readout (last) layer does not spike: ``score[c] = sum_t I[c, t]``, prediction = argmax
(lowest index on ties). Max-pool is a logical OR of spikes.

Radix layers (E3NE's radix encoding, ``docs/numeric-contract.md``): a hidden activation is a
``T``-bit value ``X`` sent as its digits ``x_t = (X >> (T - 1 - t)) & 1``, most significant
first; a layer computes ``acc = B + sum_t 2^(T-1-t) (W . x_t) = B + W . X`` and
``Y = min(max(round_shift(acc, s[c]), 0), 2^T - 1)``; max-pool is the max of the values; the
readout's score is ``acc``. Here the activations travel as digit planes ``(N, T, C, H, W)`` (the
spikes the hardware sees), and :func:`radix_value` / :func:`radix_digits` convert.

The same three-step seam as SpikingJelly's neurons (:func:`neuronal_charge`,
:func:`neuronal_fire`, :func:`neuronal_reset`) is used so that each step can be diffed against
the quantised PyTorch model and the neuron lanes in hardware.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .artifact import Artifact, InputEncoding, LayerKind, PoolLayer, SynapticLayer
from .spec import NeuronKind

__all__ = [
    "quantise_images", "encode_input", "synaptic_currents", "neuronal_charge", "neuronal_fire",
    "neuronal_reset", "neuron_dynamics", "max_pool", "layer_forward", "GoldenResult",
    "run_golden", "LayerWidths", "layer_widths", "signed_bits", "membrane_dtype", "radix_value",
    "radix_digits", "radix_charge", "radix_fire", "rounding_shift",
]

# Integer sums below these magnitudes are exact in float32/float64 matrix products (every
# partial sum is an integer that the mantissa holds), so BLAS can do the work.
_FLOAT32_EXACT = 1 << 24
_FLOAT64_EXACT = 1 << 53
# Largest im2col matrix of a conv layer; above it the offsets are summed one by one.
_IM2COL_BYTES = 1 << 27


def quantise_images(images: np.ndarray, bits: int) -> np.ndarray:
    """Map uint8 pixels ``u`` in [0, 255] to ``bits``-bit integers:
    ``round(u * (2**bits - 1) / 255)``, halves rounded up, in exact integer arithmetic."""
    u = np.asarray(images).astype(np.int64)
    top = (1 << bits) - 1
    return (2 * u * top + 255) // 510


def encode_input(artifact: Artifact, images: np.ndarray) -> np.ndarray:
    """The first layer's input ``x[n, t, c, h, w]`` (integers in ``[0, 2**input_bits - 1]``).

    ``images`` is uint8: ``(N, C, H, W)`` for direct encoding (repeated over T; the array
    returned is a broadcast view), ``(N, T, C, H, W)`` for frame encoding (event counts clipped
    to the input range).
    """
    images = np.asarray(images)
    if artifact.input_encoding is InputEncoding.DIRECT:
        x = quantise_images(images, artifact.input_bits)
        return np.broadcast_to(x[:, None], (x.shape[0], artifact.T) + x.shape[1:])
    return np.minimum(images.astype(np.int64), artifact.input_max)


def _exact_dtype(layer: SynapticLayer, input_max: int):
    bound = int(np.abs(layer.weight).reshape(layer.out_channels, -1).sum(axis=1).max()
                * input_max + np.abs(layer.bias).max())
    if bound < _FLOAT32_EXACT:
        return np.float32
    if bound < _FLOAT64_EXACT:
        return np.float64
    return np.int64


def synaptic_currents(layer: SynapticLayer, x: np.ndarray, input_max: int = 1) -> np.ndarray:
    """``I[n, t, c, h, w]`` of a conv/fc layer for input ``x[n, t, c, h, w]``.

    ``input_max`` bounds the input (1 for spikes); it picks an arithmetic that is exact for the
    layer's bounds (BLAS on float32/float64 where every partial sum fits the mantissa). The
    result is int32 where the layer's current bound fits, else int64.
    """
    n, t = x.shape[:2]
    dtype = _exact_dtype(layer, input_max)
    flat = x.reshape((n * t,) + x.shape[2:])
    co, oh, ow = layer.out_shape
    if layer.kind is LayerKind.FC:
        out = flat.reshape(n * t, -1).astype(dtype) @ layer.weight.T.astype(dtype)
        out = out.reshape(n, t, co, 1, 1)
    else:
        k, p = layer.kernel, layer.padding
        # channels-last so that each kernel offset is one (pixels x Ci) @ (Ci x Co) product
        padded = np.pad(flat.astype(dtype).transpose(0, 2, 3, 1), ((0, 0), (p, p), (p, p), (0, 0)))
        weight = layer.weight.astype(dtype).transpose(2, 3, 1, 0)   # (K, K, Ci, Co)
        rows = n * t * oh * ow
        if rows * k * k * padded.shape[-1] * np.dtype(dtype).itemsize <= _IM2COL_BYTES:
            # all offsets side by side: one large product (fastest)
            cols = np.concatenate([padded[:, kh:kh + oh, kw:kw + ow, :]
                                   for kh in range(k) for kw in range(k)], axis=-1)
            out = cols.reshape(rows, -1) @ weight.reshape(-1, co)
        else:
            # offset by offset, so that memory stays at the size of the input and output maps
            out = np.zeros((rows, co), dtype)
            for kh in range(k):
                for kw in range(k):
                    out += padded[:, kh:kh + oh, kw:kw + ow, :].reshape(rows, -1) @ weight[kh, kw]
        out = out.reshape(n * t, oh, ow, co).transpose(0, 3, 1, 2).reshape(n, t, co, oh, ow)
    lo, hi = layer.current_bounds(input_max)
    itype = np.int32 if max(-int(lo.min()), int(hi.max())) < 1 << 30 else np.int64
    return out.astype(itype) + layer.bias.astype(itype)[None, None, :, None, None]


def neuronal_charge(v: np.ndarray, current: np.ndarray, neuron: NeuronKind,
                    leak_shift: int) -> np.ndarray:
    """``H = V + ((I - V) >> leak_shift)`` for LIF (floor), ``H = V + I`` for IF."""
    if neuron is NeuronKind.LIF:
        return v + ((current - v) >> leak_shift)
    return v + current


def neuronal_fire(h: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """``s = H >= TH``, the threshold broadcast over the channel axis (axis 1 of ``h``)."""
    return h >= threshold.reshape((1, -1) + (1,) * (h.ndim - 2))


def neuronal_reset(h: np.ndarray, spike: np.ndarray) -> np.ndarray:
    """Hard reset to 0 where the neuron fired."""
    return np.where(spike, 0, h)


def membrane_dtype(layer: SynapticLayer, input_max: int, T: int) -> type:
    """int32 where :func:`layer_widths` derives a membrane of at most 32 bits (``V``, ``H`` and
    ``I - V`` all fit), else int64."""
    return np.int32 if layer_widths(layer, input_max, T).membrane_bits <= 32 else np.int64


def neuron_dynamics(currents: np.ndarray, layer: SynapticLayer, input_max: int = 1) -> np.ndarray:
    """Spikes ``s[n, t, c, ...]`` (uint8) of ``layer``'s neurons for ``currents[n, t, c, ...]``;
    the membrane starts at 0 for every frame.

    The membrane is kept in the width the contract derives for it (:func:`membrane_dtype` for
    inputs in ``[0, input_max]`` over ``T = currents.shape[1]`` steps), never narrower than the
    currents: an IF membrane reaches ``T * min(I, 0)`` and ``TH - 1 + max(I)``, which can exceed
    int32 even where the current fits it.
    """
    dtype = np.promote_types(membrane_dtype(layer, input_max, currents.shape[1]), currents.dtype)
    if not np.issubdtype(dtype, np.signedinteger):
        dtype = np.int64
    v = np.zeros(currents.shape[:1] + currents.shape[2:], dtype)
    threshold = layer.threshold.astype(dtype)
    spikes = np.empty(currents.shape, np.uint8)
    for t in range(currents.shape[1]):
        h = neuronal_charge(v, currents[:, t].astype(dtype, copy=False), layer.neuron,
                            layer.leak_shift)
        s = neuronal_fire(h, threshold)
        v = neuronal_reset(h, s)
        spikes[:, t] = s
    return spikes


# --- radix layers -------------------------------------------------------------------------------

def radix_value(digits: np.ndarray) -> np.ndarray:
    """``X = sum_t 2^(T-1-t) x_t`` (int64) of digit planes ``x[n, t, ...]``, MSB first."""
    T = digits.shape[1]
    value = np.zeros(digits.shape[:1] + digits.shape[2:], np.int64)
    for t in range(T):
        value = (value << 1) | digits[:, t]
    return value


def radix_digits(value: np.ndarray, T: int) -> np.ndarray:
    """The digit planes ``x[n, t, ...] = (X >> (T - 1 - t)) & 1`` (uint8) of values ``X[n, ...]``
    in ``[0, 2^T - 1]``, most significant first."""
    return np.stack([(value >> (T - 1 - t)) & 1 for t in range(T)], axis=1).astype(np.uint8)


def rounding_shift(acc: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``round(acc / 2^s)``, halves up: ``(acc >> s) + ((acc >> (s - 1)) & 1)`` for ``s >= 1``,
    ``acc`` for ``s = 0``; ``shift`` per channel, broadcast over axis 1 of ``acc``."""
    s = np.asarray(shift, np.int64).reshape((1, -1) + (1,) * (acc.ndim - 2))
    acc = acc.astype(np.int64)
    half = np.where(s > 0, (acc >> np.maximum(s - 1, 0)) & 1, 0)
    return (acc >> s) + half


def radix_charge(v: np.ndarray, current: np.ndarray) -> np.ndarray:
    """The digit-serial charge ``V = 2 V + I_t`` (``V = 0`` before the first digit)."""
    return 2 * v + current


def radix_fire(acc: np.ndarray, shift: np.ndarray, T: int) -> np.ndarray:
    """Requantisation: ``min(max(round_shift(acc, s[c]), 0), 2^T - 1)``."""
    return np.clip(rounding_shift(acc, shift), 0, (1 << T) - 1)


def _radix_forward(layer, x: np.ndarray, first: bool, T: int, input_max: int) -> np.ndarray:
    """A radix network's layer: digit planes in, digit planes out (the readout: ``acc`` as
    ``(N, 1, C, 1, 1)``). The first layer's input is the integer frame (static over ``t``)."""
    if isinstance(layer, PoolLayer):
        return radix_digits(max_pool(radix_value(x), layer.kernel), T)
    value = x[:, :1] if first else radix_value(x)[:, None]
    acc = synaptic_currents(layer, value, input_max if first else (1 << T) - 1)
    if layer.is_readout:
        return acc.astype(np.int64)
    return radix_digits(radix_fire(acc[:, 0], layer.shift, T), T)


def max_pool(spikes: np.ndarray, kernel: int) -> np.ndarray:
    """Logical OR over ``kernel`` x ``kernel`` windows, stride ``kernel``; a ragged edge is
    dropped (as in PyTorch)."""
    *lead, h, w = spikes.shape
    oh, ow = h // kernel, w // kernel
    out = spikes[..., 0:oh * kernel:kernel, 0:ow * kernel:kernel].copy()
    for dh in range(kernel):
        for dw in range(kernel):
            np.maximum(out, spikes[..., dh:oh * kernel:kernel, dw:ow * kernel:kernel], out=out)
    return out


def layer_forward(layer, x: np.ndarray, input_max: int = 1) -> np.ndarray:
    """One layer's output for input ``x[n, t, c, h, w]``: spikes (uint8) for spiking and pool
    layers, currents (int64) for the readout layer (sum them over t for the scores)."""
    if isinstance(layer, PoolLayer):
        return max_pool(x, layer.kernel)
    if layer.is_readout:
        return synaptic_currents(layer, x, input_max)
    if x.strides[1] == 0:
        # direct encoding: the input is the same at every step, so is the current
        current = synaptic_currents(layer, x[:, :1], input_max)
        current = np.broadcast_to(current, (x.shape[0], x.shape[1]) + current.shape[2:])
    else:
        current = synaptic_currents(layer, x, input_max)
    return neuron_dynamics(current, layer, input_max)


@dataclass
class GoldenResult:
    """What the golden model computed for a batch.

    Attributes
    ----------
    scores : ndarray of int64, ``(N, classes)``
        ``sum_t I`` of the readout layer.
    prediction : ndarray of int64, ``(N,)``
        argmax of the scores, lowest index on ties.
    spikes : list of ndarray or None
        With ``record=True``: per layer, its output ``(N, T, C, H, W)`` (uint8 spikes; int64
        currents for the readout). Empty otherwise.
    spike_counts, neuron_steps : list of int
        Per layer, spikes emitted and neuron-time-steps (for spike density); 0/0 for the readout.
    """

    scores: np.ndarray
    prediction: np.ndarray
    spikes: list[np.ndarray] = field(default_factory=list)
    spike_counts: list[int] = field(default_factory=list)
    neuron_steps: list[int] = field(default_factory=list)

    def spike_density(self) -> list[float | None]:
        return [s / n if n else None for s, n in zip(self.spike_counts, self.neuron_steps)]


def run_golden(artifact: Artifact, images: np.ndarray, *, record: bool = False,
               batch_size: int = 64,
               on_batch: Callable[[int], None] | None = None) -> GoldenResult:
    """Run the integer network on ``images`` (uint8, see :func:`encode_input`);
    ``on_batch(n)`` is called after each batch of ``n`` images (for progress)."""
    images = np.asarray(images)
    n_layers = len(artifact.layers)
    scores, spikes = [], [[] for _ in range(n_layers)] if record else []
    counts, steps = [0] * n_layers, [0] * n_layers
    for start in range(0, len(images), batch_size):
        x = encode_input(artifact, images[start:start + batch_size])
        input_max = artifact.input_max
        for i, layer in enumerate(artifact.layers):
            if artifact.radix:
                x = _radix_forward(layer, x, i == 0, artifact.T, input_max)
            else:
                x = layer_forward(layer, x, input_max)
            input_max = 1
            if record:
                spikes[i].append(x)
            if not (isinstance(layer, SynapticLayer) and layer.is_readout):
                counts[i] += int(x.sum(dtype=np.int64))
                steps[i] += x.size
        scores.append(x.sum(axis=1, dtype=np.int64).reshape(x.shape[0], -1))
        if on_batch is not None:
            on_batch(x.shape[0])
    score = (np.concatenate(scores) if scores
             else np.zeros((0, artifact.classes), np.int64))
    return GoldenResult(score, score.argmax(axis=1) if len(score) else np.zeros(0, np.int64),
                        [np.concatenate(s) for s in spikes] if record else [], counts, steps)


# --- widths -------------------------------------------------------------------------------------

def signed_bits(lo: int, hi: int) -> int:
    """The fewest bits of a two's complement integer that holds every value in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass(frozen=True)
class LayerWidths:
    """Value ranges of one synaptic layer, derived from its weights and bias (never guessed).

    ``current``: the current ``I``; ``membrane``: every value that ``V``, ``H`` and ``I - V``
    take; ``score``: the readout's ``sum_t I``. Each is ``(lo, hi)``; ``*_bits`` are the signed
    widths that hold them, so overflow is impossible by construction.
    """

    current: tuple[int, int]
    membrane: tuple[int, int]
    score: tuple[int, int]

    @property
    def current_bits(self) -> int:
        return signed_bits(*self.current)

    @property
    def membrane_bits(self) -> int:
        return signed_bits(*self.membrane)

    @property
    def score_bits(self) -> int:
        return signed_bits(*self.score)


def layer_widths(layer: SynapticLayer, input_max: int, T: int, *,
                 radix: bool = False) -> LayerWidths:
    """Bounds of a layer's current, membrane and score for inputs in ``[0, input_max]``.

    Radix (``radix=True`` for every layer of a radix network, ``input_max`` then the input
    value's maximum, :meth:`Artifact.value_max`): ``acc = B + W . X`` lies in the current bounds;
    the digit-serial partial sums ``V_t = sum_{t' <= t} 2^(t-t') (W . x_t')`` are the current of
    the input ``X >> (T-1-t)`` without the bias, so they lie in ``[min(I_lo - B, 0) ..]``: the
    membrane range is the current range widened by the bias and 0; the readout's score is
    ``acc``.

    LIF: ``H = (1 - 2^-k) V + 2^-k I`` rounded down stays within ``[min(I_lo, 0), max(I_hi, 0)]``
    once ``V`` does (and ``V`` starts at 0). IF: ``V`` is below the threshold after a step
    without a spike, so ``H <= TH - 1 + I_hi``, and ``H >= T * min(I_lo, 0)``.
    """
    lo, hi = layer.current_bounds(input_max)
    i_lo, i_hi = int(lo.min()), int(hi.max())
    if radix:
        bias = layer.bias.astype(np.int64)
        m_lo = min(int((lo - bias).min()), i_lo, 0)
        m_hi = max(int((hi - bias).max()), i_hi, 0)
        if layer.is_readout:
            return LayerWidths((i_lo, i_hi), (m_lo, m_hi), (i_lo, i_hi))
        return LayerWidths((i_lo, i_hi), (m_lo, m_hi), (0, 0))
    if layer.is_readout:
        return LayerWidths((i_lo, i_hi), (0, 0), (T * min(i_lo, 0), T * max(i_hi, 0)))
    if layer.neuron is NeuronKind.LIF:
        v_lo, v_hi = min(i_lo, 0), max(i_hi, 0)
    else:
        v_lo = T * min(i_lo, 0)
        v_hi = max(int(layer.threshold.max()) - 1 + max(i_hi, 0), 0)
    # I - V for the leak, and the values of H and V themselves
    m_lo, m_hi = min(v_lo, i_lo - v_hi), max(v_hi, i_hi - v_lo)
    return LayerWidths((i_lo, i_hi), (m_lo, m_hi), (0, 0))
