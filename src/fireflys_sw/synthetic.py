"""Random integer networks for tests and benchmarks: any spec, chosen weight sparsity, and
thresholds scaled to the expected current so that spike densities are realistic."""

from __future__ import annotations

import dataclasses

import numpy as np

from .artifact import Artifact, InputEncoding, LayerKind, PoolLayer, SynapticLayer, signed_range
from .spec import ConvSpec, NeuronKind, PoolSpec, parse_spec

__all__ = ["random_artifact", "random_radix_artifact", "random_images"]


def random_artifact(spec: str, *, seed: int = 0, T: int = 4, weight_bits: int = 4,
                    weight_sparsity: float = 0.9, neuron: NeuronKind = NeuronKind.LIF,
                    leak_shift: int = 1, input_bits: int = 8,
                    encoding: InputEncoding = InputEncoding.DIRECT,
                    input_density: float = 0.5, spike_density: float = 0.15,
                    name: str | None = None) -> Artifact:
    """An artifact for ``spec`` (a spec string or preset) with random integer parameters.

    Thresholds are set from the currents that a few random inputs of density
    ``input_density`` cause, layer by layer, so that each layer's output spike density comes out
    near ``spike_density`` (as in trained networks, where it is 10-30 %).
    """
    from .golden import encode_input, layer_forward, synaptic_currents
    rng = np.random.default_rng(seed)
    net = parse_spec(spec)
    lo, hi = signed_range(weight_bits)
    layers = []
    probe = Artifact(name="probe", T=T, input_shape=net.input_shape, input_bits=input_bits,
                     input_encoding=encoding, weight_bits=weight_bits, bias_bits=24,
                     threshold_bits=24, layers=())
    x = encode_input(probe, random_images(probe, 8, seed=seed, density=input_density))
    input_max = probe.input_max
    for i, (layer_spec, shape_in, shape_out) in enumerate(
            zip(net.layers, net.shapes, net.shapes[1:])):
        if isinstance(layer_spec, PoolSpec):
            layers.append(PoolLayer(shape_in, shape_out, layer_spec.kernel))
            x = layer_forward(layers[-1], x)
            continue
        c, h, w = shape_in
        co = shape_out[0]
        if isinstance(layer_spec, ConvSpec):
            k = layer_spec.kernel
            wshape, kind, pad = (co, c, k, k), LayerKind.CONV, layer_spec.padding
        else:
            wshape, kind, k, pad = (co, c * h * w), LayerKind.FC, 0, 0
        weight = rng.integers(lo, hi + 1, size=wshape)
        weight[rng.random(wshape) < weight_sparsity] = 0
        readout = i == len(net.layers) - 1
        kind_neuron = NeuronKind.NONE if readout else neuron
        layer = SynapticLayer(kind, shape_in, shape_out, k, pad, weight.astype(np.int64),
                              np.zeros(co, np.int64), None if readout else np.ones(co, np.int64),
                              kind_neuron, leak_shift if kind_neuron is NeuronKind.LIF else 0)
        current = synaptic_currents(layer, x, input_max).swapaxes(0, 2).reshape(co, -1)
        spread = current.std(axis=1) + 1.0
        bias = np.round(rng.normal(0.0, 0.1, co) * spread).astype(np.int64)
        if not readout:
            # a LIF membrane settles near the current, so the current's quantile is the target
            level = np.quantile(current + bias[:, None], 1.0 - spike_density, axis=1)
            threshold = np.maximum(1, np.round(level * (0.75 if neuron is NeuronKind.LIF
                                                        else 1.5)))
            layer = dataclasses.replace(layer, bias=bias, threshold=threshold.astype(np.int64))
            x = layer_forward(layer, x, input_max)
        else:
            layer = dataclasses.replace(layer, bias=bias)
        layers.append(layer)
        input_max = 1
    artifact = Artifact(
        name=name or f"random-{net.text}-seed{seed}", T=T, input_shape=net.input_shape,
        input_bits=input_bits, input_encoding=encoding, weight_bits=weight_bits, bias_bits=24,
        threshold_bits=24, layers=tuple(layers),
        metadata={"spec": net.text, "random": True, "seed": seed})
    artifact.validate()
    return artifact


def random_radix_artifact(spec: str, *, seed: int = 0, T: int = 4, weight_bits: int = 4,
                          weight_sparsity: float = 0.7, input_bits: int | None = None,
                          input_density: float = 0.5, zero_fraction: float = 0.5,
                          name: str | None = None) -> Artifact:
    """A radix network (``docs/numeric-contract.md``) for ``spec`` with random integers.

    Each channel's shift is set from the accumulators that a few random inputs cause, so that
    about ``zero_fraction`` of its outputs are 0 (ReLU) and the rest spread over the ``T``-bit
    range, some clipped at the top, as in a trained network. ``input_bits`` defaults to ``T``.
    """
    from .golden import _radix_forward, encode_input, synaptic_currents
    rng = np.random.default_rng(seed)
    net = parse_spec(spec)
    input_bits = T if input_bits is None else input_bits
    lo, hi = signed_range(weight_bits)
    probe = Artifact(name="probe", T=T, input_shape=net.input_shape, input_bits=input_bits,
                     input_encoding=InputEncoding.DIRECT, weight_bits=weight_bits,
                     bias_bits=24, threshold_bits=24, layers=())
    x = encode_input(probe, random_images(probe, 8, seed=seed, density=input_density))
    layers = []
    for i, (layer_spec, shape_in, shape_out) in enumerate(
            zip(net.layers, net.shapes, net.shapes[1:])):
        first = i == 0
        if isinstance(layer_spec, PoolSpec):
            layers.append(PoolLayer(shape_in, shape_out, layer_spec.kernel))
            x = _radix_forward(layers[-1], x, first, T, 1)
            continue
        c, h, w = shape_in
        co = shape_out[0]
        if isinstance(layer_spec, ConvSpec):
            k = layer_spec.kernel
            wshape, kind, pad = (co, c, k, k), LayerKind.CONV, layer_spec.padding
        else:
            wshape, kind, k, pad = (co, c * h * w), LayerKind.FC, 0, 0
        weight = rng.integers(lo, hi + 1, size=wshape)
        weight[rng.random(wshape) < weight_sparsity] = 0
        readout = i == len(net.layers) - 1
        input_max = probe.input_max if first else (1 << T) - 1
        layer = SynapticLayer(kind, shape_in, shape_out, k, pad, weight.astype(np.int64),
                              np.zeros(co, np.int64), None,
                              NeuronKind.NONE if readout else NeuronKind.RADIX, 0,
                              None if readout else np.zeros(co, np.int64))
        value = x[:, :1] if first else None
        if value is None:
            from .golden import radix_value
            value = radix_value(x)[:, None]
        acc = synaptic_currents(layer, value, input_max).swapaxes(0, 2).reshape(co, -1)
        spread = acc.std(axis=1) + 1.0
        bias = np.round(rng.normal(0.0, 0.3, co) * spread).astype(np.int64)
        if readout:
            layers.append(dataclasses.replace(layer, bias=bias))
            break
        # the shift that maps the upper quantile of the positive accumulators near 2^T - 1
        top = np.quantile(acc + bias[:, None], 1.0 - (1.0 - zero_fraction) / 4, axis=1)
        shift = np.clip(np.ceil(np.log2(np.maximum(top, 1.0) / ((1 << T) - 1))), 0, 31)
        layer = dataclasses.replace(layer, bias=bias, shift=shift.astype(np.int64))
        layers.append(layer)
        x = _radix_forward(layer, x, first, T, input_max)
    artifact = Artifact(
        name=name or f"random-radix-{net.text}-seed{seed}", T=T, input_shape=net.input_shape,
        input_bits=input_bits, input_encoding=InputEncoding.DIRECT, weight_bits=weight_bits,
        bias_bits=24, threshold_bits=24, layers=tuple(layers),
        metadata={"spec": net.text, "random": True, "seed": seed, "encoding": "radix"})
    artifact.validate()
    return artifact


def random_images(artifact: Artifact, n: int, *, seed: int = 0, density: float = 0.5):
    """``n`` random uint8 inputs for ``artifact`` (images, or event-count frames)."""
    rng = np.random.default_rng(seed)
    if artifact.input_encoding is InputEncoding.DIRECT:
        shape = (n,) + artifact.input_shape
        images = rng.integers(0, 256, size=shape)
        images[rng.random(shape) > density] = 0
        return images.astype(np.uint8)
    shape = (n, artifact.T) + artifact.input_shape
    frames = rng.integers(1, artifact.input_max + 1, size=shape)
    frames[rng.random(shape) > density] = 0
    return frames.astype(np.uint8)
