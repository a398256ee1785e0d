"""Artifact-level compression passes (numpy only).

:func:`remove_silent_channels` is FireFly-S Algorithm 1: an output channel whose kernel is all
zero receives only its bias, the same at every step; if that bias alone never reaches the
threshold within T steps, the channel never spikes and is removed, together with the weights
that read it in the next synaptic layer. The network's output is unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .artifact import Artifact, LayerKind, PoolLayer, SynapticLayer
from .golden import neuron_dynamics

__all__ = ["silent_channels", "remove_silent_channels"]


def silent_channels(layer: SynapticLayer, T: int) -> np.ndarray:
    """Boolean mask of the channels of a spiking layer that can never spike."""
    if layer.is_readout:
        return np.zeros(layer.out_channels, bool)
    empty = ~layer.weight.reshape(layer.out_channels, -1).any(axis=1)
    # a constant current equal to the bias, for T steps
    current = np.broadcast_to(layer.bias[None, None, :], (1, T, layer.out_channels)).copy()
    fires = neuron_dynamics(current, layer).any(axis=(0, 1))
    return empty & ~fires


def remove_silent_channels(artifact: Artifact) -> tuple[Artifact, list[int]]:
    """Drop silent channels; return the new artifact and the count removed per synaptic layer.
    A layer keeps at least one channel."""
    layers = list(artifact.layers)
    removed: list[int] = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, SynapticLayer):
            continue
        mask = silent_channels(layer, artifact.T)
        if mask.all():
            mask[np.argmax(mask)] = False
        removed.append(int(mask.sum()))
        if not mask.any():
            continue
        keep = ~mask
        co = int(keep.sum())
        layers[i] = dataclasses.replace(
            layer, weight=layer.weight[keep], bias=layer.bias[keep],
            threshold=layer.threshold[keep], out_shape=(co,) + layer.out_shape[1:])
        # carry the new channel count through pools to the next synaptic layer
        for j in range(i + 1, len(layers)):
            nxt = layers[j]
            if isinstance(nxt, PoolLayer):
                layers[j] = dataclasses.replace(nxt, in_shape=(co,) + nxt.in_shape[1:],
                                                out_shape=(co,) + nxt.out_shape[1:])
                continue
            if nxt.kind is LayerKind.CONV:
                weight = nxt.weight[:, keep]
            else:
                c, h, w = nxt.in_shape
                weight = nxt.weight.reshape(nxt.out_channels, c, h, w)[:, keep]
                weight = weight.reshape(nxt.out_channels, -1)
            layers[j] = dataclasses.replace(nxt, weight=weight,
                                            in_shape=(co,) + nxt.in_shape[1:])
            break
    result = dataclasses.replace(artifact, layers=tuple(layers))
    result.validate()
    return result, removed
