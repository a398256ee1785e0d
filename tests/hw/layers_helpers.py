"""Random small synaptic layers and spike maps for the synapse-array tests (shared)."""

import numpy as np

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.spec import NeuronKind


def random_layer(rng, *, kind=None, ci=None, co=None, k=None, hw=None, neuron=None,
                 weight_bits=4, sparsity=None, padding=None):
    """A random conv/fc layer with ``Ci, Co <= 12``, ``K`` in {1, 3}, sparse int weights."""
    kind = kind or (LayerKind.FC if rng.random() < 0.25 else LayerKind.CONV)
    ci = ci or int(rng.integers(1, 13))
    co = co or int(rng.integers(1, 13))
    neuron = neuron or NeuronKind(rng.choice(["lif", "if", "none"]))
    sparsity = rng.uniform(0.3, 0.9) if sparsity is None else sparsity
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    if kind is LayerKind.CONV:
        k = k or int(rng.choice([1, 3]))
        h, w = hw or (int(rng.integers(k, k + 3)), int(rng.integers(k, k + 3)))
        pad = (k // 2 if rng.random() < 0.5 else 0) if padding is None else padding
        in_shape, out_shape = (ci, h, w), (co, h + 2 * pad - k + 1, w + 2 * pad - k + 1)
        wshape = (co, ci, k, k)
    else:
        h, w = hw or (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        ci = min(ci, 4)
        k, pad = 0, 0
        in_shape, out_shape = (ci, h, w), (co, 1, 1)
        wshape = (co, ci * h * w)
    weight = rng.integers(lo, hi + 1, wshape)
    weight[rng.random(wshape) < sparsity] = 0
    bias = rng.integers(-4, 5, co)
    threshold = None if neuron is NeuronKind.NONE else rng.integers(1, 9, co)
    leak = int(rng.integers(0, 4)) if neuron is NeuronKind.LIF else 0
    return SynapticLayer(kind, in_shape, out_shape, k, pad, weight.astype(np.int64),
                         bias.astype(np.int64),
                         None if threshold is None else threshold.astype(np.int64),
                         neuron, leak)


def random_spikes(rng, layer, T, density=None, input_bits=None):
    """``x[t, c, h, w]``: spikes of density ``density``, or integers of ``input_bits`` bits
    (direct encoding: the same at every step)."""
    density = rng.uniform(0.1, 0.6) if density is None else density
    shape = layer.in_shape
    if input_bits:
        x = rng.integers(0, 1 << input_bits, shape)
        x[rng.random(shape) > density] = 0
        return np.broadcast_to(x, (T,) + shape).copy()
    return (rng.random((T,) + shape) < density).astype(np.int64)
