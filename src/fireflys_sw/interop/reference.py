"""Float simulation of a :class:`~.chain.FloatChain` in the source's semantics (torch,
float64): the source side of the import report when the source framework itself is not at hand
(a NIR file).

Per step: ``I = conv(x) + b``; LIF ``u = u + (I - u) / tau_steps`` (the source's own tau, not
the power of two), IF ``u = u + I``; fire on ``u > thr`` or ``u >= thr`` as the source does;
hard reset to 0. Pools as the source computes them (OR, average, sum). The readout is the
summed current, as in the contract.
"""

from __future__ import annotations

import numpy as np

from ..spec import NeuronKind
from ..artifact import LayerKind
from .chain import FloatChain, FloatLayer, FloatPool, PoolMode

__all__ = ["run_float_chain", "float_input"]


def float_input(images: np.ndarray, input_range: float, frames: bool) -> np.ndarray:
    """What the source network sees: ``pixel / 255 * input_range`` (direct) or
    ``count * input_range`` (frames)."""
    images = np.asarray(images, np.float64)
    return images * input_range if frames else images / 255.0 * input_range


def run_float_chain(chain: FloatChain, images: np.ndarray, *, T: int, input_range: float = 1.0,
                    frames: bool = False, batch_size: int = 128) -> np.ndarray:
    """Readout scores ``(N, classes)`` (summed float current) of ``chain`` on ``images``."""
    import torch
    import torch.nn.functional as F
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(float_input(images[start:start + batch_size], input_range,
                                             frames))
            seq = [x[:, t] for t in range(T)] if frames else [x] * T
            for layer in chain.layers:
                if isinstance(layer, FloatPool):
                    k = layer.kernel
                    if layer.mode is PoolMode.OR:
                        seq = [F.max_pool2d(s, k, k) for s in seq]
                    elif layer.mode is PoolMode.AVG:
                        seq = [F.avg_pool2d(s, k, k) for s in seq]
                    else:
                        seq = [F.avg_pool2d(s, k, k) * (k * k) for s in seq]
                    continue
                seq = _synaptic(layer, seq, torch, F)
            out.append(torch.stack(seq).sum(0).reshape(len(x), -1).numpy())
    return np.concatenate(out) if out else np.zeros((0, chain.classes))


def _synaptic(layer: FloatLayer, seq, torch, F):
    syn, neu = layer.synapse, layer.neuron
    weight = torch.from_numpy(np.asarray(syn.weight, np.float64))
    bias = torch.from_numpy(np.asarray(syn.bias, np.float64))
    currents = []
    cache = {}
    for s in seq:
        key = id(s)
        if key not in cache:  # direct encoding: the same input object at every step
            if syn.kind is LayerKind.CONV:
                cache[key] = F.conv2d(s, weight, bias, padding=syn.padding)
            else:
                cache[key] = F.linear(s.reshape(len(s), -1), weight, bias)
        currents.append(cache[key])
    if neu.kind is NeuronKind.NONE:
        return currents
    view = (1, -1) + (1,) * (currents[0].dim() - 2)
    thr = torch.from_numpy(np.asarray(neu.threshold, np.float64)).reshape(view)
    tau = (torch.from_numpy(np.asarray(neu.tau_steps, np.float64)).reshape(view)
           if neu.kind is NeuronKind.LIF else None)
    v = torch.zeros_like(currents[0])
    spikes = []
    for current in currents:
        v = v + (current - v) / tau if tau is not None else v + current
        s = (v > thr) if neu.strict else (v >= thr)
        v = torch.where(s, torch.zeros_like(v), v)
        spikes.append(s.to(torch.float64))
    return spikes
