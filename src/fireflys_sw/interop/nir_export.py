"""Write an integer artifact as a standard NIR graph (readable by nir 1.0.8).

The integers are written exactly (as float64, which holds them), in the conventions that
:mod:`.nir_import` (and snnTorch's importer) read back:

* ``Input`` ``(C, H, W)``: the graph's input is the first layer's integer input (pixels
  quantised to ``input_bits``; with 8 bits the pixel values themselves);
* ``Conv2d`` (stride 1) / ``Flatten`` + ``Affine`` with the integer ``W`` and ``B``;
* ``LIF`` with ``tau = 2**k * dt``, ``r = tau / dt = 2**k``, ``v_leak = 0``, ``v_reset = 0``,
  ``v_threshold = r * (TH - 1/2)``. Euler-stepped, ``v' = v + 2^-k (r I - v)``: in units of
  ``v / r`` this is the contract's ``H = V + (I - V) / 2^k`` without the floor, which NIR cannot
  state (so a float NIR simulator differs from the contract by that rounding); NIR fires on
  ``v > v_threshold``, and on integer membranes ``H > TH - 1/2`` is the contract's
  ``H >= TH``;
* ``IF`` with ``r = 1``, ``v_threshold = TH - 1/2``, ``v_reset = 0``;
* max-pool as ``SumPool2d`` (stride = kernel) + ``Threshold`` 1/2 (any spike in the window);
* the readout as an integrator ``I`` (``r = 1``): after T steps it holds ``sum_t I``, the
  contract's score.

The graph's metadata (``fireflys_T``, ``fireflys_input_bits``, ``fireflys_input_range``,
``fireflys_weight_bits``, ...) carries what NIR has no field for, so importing the file back
gives an artifact whose golden outputs are identical.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..artifact import Artifact, InputEncoding, LayerKind, PoolLayer
from ..spec import NeuronKind
from .chain import InteropError
from .nir_import import METADATA_PREFIX, nir_available

__all__ = ["artifact_to_nir", "export_nir", "DEFAULT_DT"]

#: The time step written into LIF nodes (snnTorch's and SpikingJelly's convention).
DEFAULT_DT = 1e-4


def artifact_to_nir(artifact: Artifact, *, dt: float = DEFAULT_DT) -> Any:
    """The ``nir.NIRGraph`` of ``artifact`` (see the module docstring)."""
    why = nir_available()
    if why:
        raise InteropError(why)
    radix = [i for i, layer in enumerate(artifact.layers)
             if getattr(layer, "neuron", None) is NeuronKind.RADIX]
    if radix:
        raise InteropError(f"artifact {artifact.name!r} is a radix network (layer {radix[0]}): NIR "
                           f"has no neuron that doubles its membrane each step, so it cannot be "
                           f"written as NIR; export a LIF or IF model instead")
    import nir
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(artifact.input_shape))}
    order = ["input"]

    def add(name: str, node: Any) -> None:
        nodes[name] = node
        order.append(name)

    flat = False
    for i, layer in enumerate(artifact.layers):
        if isinstance(layer, PoolLayer):
            k = layer.kernel
            add(f"pool{i}", nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]),
                                          padding=np.array([0, 0])))
            add(f"pool{i}_or", nir.Threshold(threshold=np.full(layer.out_shape, 0.5)))
            continue
        weight = layer.weight.astype(np.float64)
        bias = layer.bias.astype(np.float64)
        if layer.kind is LayerKind.CONV:
            _, h, w = layer.in_shape
            add(f"conv{i}", nir.Conv2d(input_shape=(h, w), weight=weight, stride=1,
                                       padding=layer.padding, dilation=1, groups=1, bias=bias))
            shape = layer.out_shape
        else:
            if not flat:
                add(f"flatten{i}", nir.Flatten(input_type={"input": np.array(layer.in_shape)},
                                               start_dim=0, end_dim=-1))
                flat = True
            add(f"fc{i}", nir.Affine(weight=weight, bias=bias))
            shape = (layer.out_channels,)
        co = layer.out_channels
        per_neuron = lambda values: np.broadcast_to(  # noqa: E731
            np.asarray(values, np.float64).reshape((co,) + (1,) * (len(shape) - 1)),
            shape).copy()
        if layer.neuron is NeuronKind.NONE:
            add("readout", nir.I(r=np.ones(shape)))
        elif layer.neuron is NeuronKind.LIF:
            gain = float(1 << layer.leak_shift)
            add(f"lif{i}", nir.LIF(tau=np.full(shape, gain * dt), r=np.full(shape, gain),
                                   v_leak=np.zeros(shape),
                                   v_threshold=per_neuron(gain * (layer.threshold - 0.5)),
                                   v_reset=np.zeros(shape)))
        else:
            add(f"if{i}", nir.IF(r=np.ones(shape), v_threshold=per_neuron(layer.threshold - 0.5),
                                 v_reset=np.zeros(shape)))
    add("output", nir.Output(output_type=np.array(shape)))
    p = METADATA_PREFIX
    metadata = {
        f"{p}name": artifact.name, f"{p}T": artifact.T, f"{p}input_bits": artifact.input_bits,
        f"{p}encoding": artifact.input_encoding.value,
        # the graph sees the integers: a full-scale input is 2**bits - 1 (one event per unit)
        f"{p}input_range": float(artifact.input_max
                                 if artifact.input_encoding is InputEncoding.DIRECT else 1),
        f"{p}weight_bits": artifact.weight_bits, f"{p}bias_bits": artifact.bias_bits,
        f"{p}threshold_bits": artifact.threshold_bits, f"{p}dt": dt,
        f"{p}artifact_version": artifact.version,
    }
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), metadata=metadata)
    return graph


def export_nir(artifact: Artifact, path: str | os.PathLike, *, dt: float = DEFAULT_DT) -> Path:
    """Write ``artifact`` as a NIR file at ``path``; return the path."""
    import nir
    graph = artifact_to_nir(artifact, dt=dt)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        nir.write(path, graph)
    except OSError as error:
        raise InteropError(f"cannot write NIR file {str(path)!r}: {error}") from error
    return path

