"""Export a trained quantised :class:`~fireflys_sw.models.SpikingNet` to the integer artifact.

The integers written are the ones the model computes with in ``eval()`` mode (the same
functions produce them), so the artifact is the model that was evaluated.
"""

from __future__ import annotations

import numpy as np
import torch

from .artifact import Artifact, LayerKind, PoolLayer, SynapticLayer
from .compress import remove_silent_channels
from .errors import FireflysError
from .golden import signed_bits
from .models import IntegerLIFNode, QuantConv2d, QuantLinear, SpikingNet
from .spec import NeuronKind, PoolSpec

__all__ = ["export_artifact"]


@torch.no_grad()
def export_artifact(model: SpikingNet, *, name: str, metadata: dict | None = None,
                    remove_silent: bool = True) -> tuple[Artifact, list[int]]:
    """The artifact of ``model`` (quantised) and the number of silent channels removed per
    synaptic layer (FireFly-S Algorithm 1; see :func:`fireflys_sw.compress.remove_silent_channels`)."""
    if not model.quantised:
        raise FireflysError("export needs a quantised model: the float baseline has no integer "
                            "form (train without --float)")
    was_training = model.training
    model.eval()
    spec = model.net_spec
    modules = list(model.layers)
    layers = []
    synapse_index = 0
    synapses = [m for m in modules if isinstance(m, (QuantConv2d, QuantLinear))]
    neurons = {id(n._synapse[0]): n for n in modules if isinstance(n, IntegerLIFNode)}
    for ls, shape_in, shape_out in zip(spec.layers, spec.shapes, spec.shapes[1:]):
        if isinstance(ls, PoolSpec):
            layers.append(PoolLayer(shape_in, shape_out, ls.kernel))
            continue
        syn = synapses[synapse_index]
        synapse_index += 1
        weight = syn.integer_weight().double().cpu().numpy().astype(np.int64)
        bias = syn.integer_bias().double().cpu().numpy().astype(np.int64)
        node = neurons.get(id(syn))
        if node is None:
            threshold, kind, shift = None, NeuronKind.NONE, 0
        else:
            threshold = node.integer_threshold().double().cpu().numpy().astype(np.int64)
            kind = node.kind
            shift = node.leak_shift if kind is NeuronKind.LIF else 0
        if isinstance(syn, QuantConv2d):
            layers.append(SynapticLayer(LayerKind.CONV, shape_in, shape_out, syn.kernel_size[0],
                                        syn.padding[0], weight, bias, threshold, kind, shift))
        else:
            layers.append(SynapticLayer(LayerKind.FC, shape_in, shape_out, 0, 0, weight, bias,
                                        threshold, kind, shift))
    thresholds = [int(l.threshold.max()) for l in layers
                  if isinstance(l, SynapticLayer) and l.threshold is not None]
    artifact = Artifact(
        name=name, T=model.T, input_shape=spec.input_shape, input_bits=model.input_bits,
        input_encoding=model.encoding, weight_bits=model.weight_bits, bias_bits=model.bias_bits,
        threshold_bits=max(16, signed_bits(0, max(thresholds, default=1))),
        layers=tuple(layers), metadata={"spec": spec.text, **(metadata or {})})
    artifact.validate()
    removed = [0] * len(artifact.synaptic_layers)
    if remove_silent:
        artifact, removed = remove_silent_channels(artifact)
    model.train(was_training)
    return artifact, removed


def spec_of(artifact: Artifact) -> str:
    """The spec string of the artifact's actual layers (after any channel removal)."""
    c, h, w = artifact.input_shape
    tokens = [f"{c}x{h}x{w}"]
    for layer in artifact.layers:
        if isinstance(layer, PoolLayer):
            tokens.append(f"mp{layer.kernel}")
        elif layer.kind is LayerKind.CONV:
            tokens.append(f"{layer.out_channels}c{layer.kernel}p{layer.padding}")
        else:
            tokens.append(f"{layer.out_channels}fc")
    return "-".join(tokens)


@torch.no_grad()
def model_from_artifact(artifact: Artifact) -> SpikingNet:
    """A quantised :class:`SpikingNet` that computes exactly ``artifact`` (for fine-tuning an
    artifact, and for testing the PyTorch/golden equality on arbitrary integer networks).

    Each spiking channel gets the unit ``1 / TH`` (so its integer threshold is ``TH``), the
    readout the unit 1; float weights are ``q * scale`` so that LSQ rounds them back to ``q``.
    """
    spiking = [l for l in artifact.synaptic_layers if not l.is_readout]
    kinds = {(l.neuron, l.leak_shift) for l in spiking}
    if len(kinds) > 1:
        raise FireflysError("model_from_artifact needs one neuron kind and leak shift for all "
                            f"layers, the artifact has {sorted((k.value, s) for k, s in kinds)}")
    kind, shift = kinds.pop() if kinds else (NeuronKind.LIF, 1)
    model = SpikingNet(spec_of(artifact), T=artifact.T, neuron_kind=kind, leak_shift=shift or 1,
                       quantised=True, weight_bits=artifact.weight_bits,
                       input_bits=artifact.input_bits, encoding=artifact.input_encoding,
                       bias_bits=artifact.bias_bits)
    synapses = [m for m in model.layers if isinstance(m, (QuantConv2d, QuantLinear))]
    for syn, layer in zip(synapses, artifact.synaptic_layers):
        if layer.is_readout:
            unit = torch.ones(layer.out_channels, dtype=torch.float64)
        else:
            unit = 1.0 / torch.from_numpy(layer.threshold).double()
        scale = unit / syn.input_unit
        syn.scale.copy_(scale[:syn.scale.numel()].float())
        shape = (-1,) + (1,) * (syn.weight.dim() - 1)
        weight = torch.from_numpy(layer.weight).double().reshape(syn.weight.shape)
        syn.weight.copy_((weight * scale.reshape(shape)).float())
        syn.bias.copy_((torch.from_numpy(layer.bias).double() * unit).float())
    model.eval()
    return model
