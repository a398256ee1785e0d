"""The measured workload of a network's synaptic layers: spike and weight densities and the
effectual pairs of every output channel, pixel and step (step 1 of the planner)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from fireflys_sw.artifact import Artifact, InputEncoding, SynapticLayer
from fireflys_sw.golden import encode_input, run_golden, synaptic_currents

from .base import PlanError, binary_in_channels, layer_window
from .reference import bit_planes

__all__ = ["LayerStats", "measure_densities", "stats_from_density"]


@dataclass(frozen=True, eq=False)
class LayerStats:
    """The measured workload of one synaptic layer.

    Attributes
    ----------
    index : int
        Position of the layer in ``artifact.layers``.
    spike_density : float
        ``s1``: fraction of ones in the layer's binary input (the first layer: in its bit
        planes), over the unpadded map, all time steps.
    weight_density : float
        ``s2``: fraction of non-zero weights.
    mean_pairs : float
        Mean effectual (spike in some step AND non-zero weight) pairs per output-pixel window,
        i.e. per (output pixel, output channel): the work of one detector lane for one window
        (every step at once, the T-vectorised dataflow).
    frames : int
        Inputs measured (0 for a density-only estimate from :func:`stats_from_density`).
    pairs : ndarray or None
        ``(frames, Co, Ho * Wo)`` effectual pairs of every window (pairs effectual in some
        step), or ``None`` (the density model of :func:`predicted_cycles` is used then). Not
        saved in a plan.
    inputs : ndarray or None
        ``(frames, S, Ci', H, W)`` the layer's binary input (bit planes for a multi-bit first
        layer; ``S = 1`` for a static input) on the measured frames, for the cycle recurrence
        (:func:`recurrence_cycles`), or ``None``. Not saved in a plan.
    """

    index: int
    spike_density: float
    weight_density: float
    mean_pairs: float
    frames: int = 0
    pairs: np.ndarray | None = field(default=None, repr=False)
    inputs: np.ndarray | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def lane_max_histogram(self, p_co: int, block: int = 1
                           ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """For ``P_Co`` lanes: a frame's windows in window-stream order (``for pixel: for
        group``) cut into blocks of ``block`` consecutive windows, and per block ``max over
        the lanes of the block's pairs`` (lane ``l`` serves channels ``group * P_Co + l``).
        Returns ``(windows, values, counts)`` per block length (a frame's last block may be
        shorter): the distinct values of that maximum and how often each occurs per frame
        (mean)."""
        if self.pairs is None:
            raise ValueError("lane_max_histogram needs measured pairs (measure_densities)")
        key = (p_co, block)
        if key not in self._cache:
            pairs = self.pairs
            f, co, p = pairs.shape
            groups = -(-co // p_co)
            if groups * p_co != co:
                padded = np.zeros((f, groups * p_co, p), pairs.dtype)
                padded[:, :co] = pairs
                pairs = padded
            # (frame, window in stream order, lane)
            steps = pairs.reshape(f, groups, p_co, p).transpose(0, 3, 1, 2)
            steps = steps.reshape(f, p * groups, p_co)
            n = steps.shape[1]
            full = n // block
            out = []
            for length, part in ((block, steps[:, :full * block]), (n % block,
                                                                    steps[:, full * block:])):
                if not length or not part.size:
                    continue
                sums = part.reshape(f, -1, length, p_co).sum(axis=2, dtype=np.int64)
                counts = np.bincount(sums.max(axis=2).ravel())
                values = np.flatnonzero(counts)
                out.append((length, values, counts[values] / f))
            self._cache[key] = out
        return self._cache[key]


def _popcount(x: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(x).astype(np.int64)
    return sum((x >> b) & 1 for b in range(bits))


def _pairs_of(layer: SynapticLayer, x: np.ndarray, input_bits: int) -> np.ndarray:
    """Effectual pairs ``(N, Co, Ho * Wo)`` for input ``x[n, t, c, h, w]``, a pair counted once
    when its input spikes in some step (the T-vectorised dataflow reads each weight once per
    window): the convolution of the set bits of ``OR over t of x`` with the layer's
    non-zero-weight mask."""
    mask = dataclasses.replace(layer, weight=(layer.weight != 0).astype(np.int64),
                               bias=np.zeros(layer.out_channels, np.int64))
    x = np.asarray(x)
    if x.strides[1] == 0:         # direct encoding: the same input at every t
        x = x[:, :1]
    x = np.bitwise_or.reduce(x.astype(np.int64), axis=1, keepdims=True)
    if input_bits > 1:
        x = _popcount(x, input_bits)
    pairs = synaptic_currents(mask, x, max(1, input_bits))
    n = pairs.shape[0]
    pairs = pairs.reshape(n, layer.out_channels, -1)
    dtype = np.uint16 if int(pairs.max(initial=0)) < 1 << 16 else np.uint32
    return pairs.astype(dtype)


def measure_densities(artifact: Artifact, images: np.ndarray, *,
                      batch_size: int = 16) -> list[LayerStats]:
    """Per synaptic layer (in order), the input spike density and the exact effectual pairs of
    every window on ``images`` (uint8, as :func:`fireflys_sw.golden.run_golden` takes them).

    A few tens of inputs are plenty: the planner needs the mean cycles per frame, and the
    ``pairs`` arrays kept for it take ``2 * sum(Co * Ho * Wo)`` bytes per input.
    """
    images = np.asarray(images)
    if len(images) == 0:
        raise PlanError("measure_densities needs at least one input image")
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    ones = {i: 0 for i, _ in synaptic}
    bits = {i: 0 for i, _ in synaptic}
    pairs: dict[int, list[np.ndarray]] = {i: [] for i, _ in synaptic}
    inputs: dict[int, list[np.ndarray]] = {i: [] for i, _ in synaptic}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        result = run_golden(artifact, batch, record=True, batch_size=batch_size)
        x = encode_input(artifact, batch)
        for i, layer in enumerate(artifact.layers):
            if isinstance(layer, SynapticLayer):
                input_bits = artifact.input_bits if i == 0 else 1
                xs = x[:, :1] if x.strides[1] == 0 else x
                plane_ones = int(_popcount(xs, input_bits).sum(dtype=np.int64)) if i == 0 \
                    else int(np.asarray(xs).sum(dtype=np.int64))
                ones[i] += plane_ones * (x.shape[1] // xs.shape[1])
                bits[i] += x.size * input_bits
                planes = bit_planes(xs, input_bits) if input_bits > 1 else np.asarray(xs)
                inputs[i].append(planes.astype(np.uint8))
                pairs[i].append(_pairs_of(layer, x, input_bits))
            x = result.spikes[i]
    stats = []
    for i, layer in synaptic:
        p = np.concatenate(pairs[i])
        stats.append(LayerStats(
            index=i, spike_density=ones[i] / bits[i],
            weight_density=float(np.count_nonzero(layer.weight)) / layer.weight.size,
            mean_pairs=float(p.mean(dtype=np.float64)), frames=len(p), pairs=p,
            inputs=np.concatenate(inputs[i])))
    return stats


def stats_from_density(artifact: Artifact, spike_density: float | Sequence[float]
                       ) -> list[LayerStats]:
    """Density-only workload (no measurement): ``spike_density`` for every synaptic layer's
    input, or one value per synaptic layer. ``mean_pairs = Kh * Kw * Ci' * s_any * s2``,
    ``s_any = 1 - (1 - s1) ** S`` the density of inputs that spike in some step (independent
    steps; ``S = 1`` for a direct-encoded first layer, else ``T``)."""
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    if isinstance(spike_density, (int, float)) and not isinstance(spike_density, bool):
        densities = [float(spike_density)] * len(synaptic)
    else:
        densities = [float(d) for d in spike_density]
        if len(densities) != len(synaptic):
            raise PlanError(f"spike densities: got {len(densities)} values for "
                            f"{len(synaptic)} synaptic layers")
    stats = []
    for (i, layer), s1 in zip(synaptic, densities):
        if not 0.0 <= s1 <= 1.0:
            raise PlanError(f"spike density of layer {i} must be in [0, 1], not {s1}")
        s2 = float(np.count_nonzero(layer.weight)) / layer.weight.size
        kh, kw = layer_window(layer)
        ci = binary_in_channels(layer, artifact.input_bits if i == 0 else 1)
        steps = 1 if i == 0 and artifact.input_encoding is InputEncoding.DIRECT else artifact.T
        s_any = 1.0 - (1.0 - s1) ** steps
        stats.append(LayerStats(i, s1, s2, kh * kw * ci * s_any * s2))
    return stats
