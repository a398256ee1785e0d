"""snnTorch networks to NIR, working around what snnTorch 1.0's exporter cannot write.

``snntorch.export_nir.export_to_nir`` writes conv nets only with ``ignore_dims=[0]`` and
per-neuron ``beta`` / ``threshold`` tensors, and turns ``nn.MaxPool2d`` into a ``None`` node
(then crashes). :func:`snntorch_to_nir` exports a copy of the network in which every
``MaxPool2d`` is an ``AvgPool2d`` of the same window (which the exporter writes) and then
rewrites each of those nodes as ``SumPool2d`` + ``Threshold`` 0 (any spike in the window): on
spikes that is exactly the max-pool, in standard NIR. It is what a user of snnTorch would do by
hand; the graph it returns is ordinary NIR.

snnTorch's ``Leaky`` must reset to zero (``reset_mechanism="zero"``) for the import to be
exact: its exporter writes ``v_reset = 0`` even for the default subtractive reset.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .chain import InteropError

__all__ = ["snntorch_to_nir", "snntorch_available"]


def snntorch_available() -> str | None:
    """``None`` when snnTorch and its NIR exporter import, else why not."""
    try:
        import snntorch  # noqa: F401
        import snntorch.export_nir  # noqa: F401
    except ImportError as error:
        return (f"snnTorch's NIR exporter is not installed ({error}); pip install "
                f"'fireflys[interop]'")
    return None


def snntorch_to_nir(net, sample) -> Any:
    """The NIR graph of an snnTorch network, max-pools written as SumPool2d + Threshold.

    ``sample``: one input with its batch dimension, e.g. ``torch.zeros(1, 1, 28, 28)``.
    """
    why = snntorch_available()
    if why:
        raise InteropError(why)
    import nir
    import torch.nn as nn
    from snntorch.export_nir import export_to_nir
    net = copy.deepcopy(net)
    pools: set[str] = set()
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool2d):
                k = child.kernel_size
                stride = child.stride if child.stride is not None else k
                if child.padding not in (0, (0, 0)) or stride != k:
                    raise InteropError(f"module {child_name!r}: max-pool with stride {stride} "
                                       f"and padding {child.padding}; the contract pools with "
                                       f"stride = kernel, no padding")
                setattr(module, child_name, nn.AvgPool2d(k, stride))
                pools.add(f"{name}.{child_name}" if name else child_name)
    graph = export_to_nir(net, sample, ignore_dims=[0])
    nodes = dict(graph.nodes)
    edges = list(graph.edges)
    for name in list(nodes):
        if name in pools or name.replace("_", ".") in pools:
            node = nodes[name]
            out = np.asarray(node.output_type["output"])
            k = np.broadcast_to(np.asarray(node.kernel_size).ravel(), (2,)).copy()
            stride = np.broadcast_to(np.asarray(node.stride).ravel(), (2,)).copy()
            nodes[name] = nir.SumPool2d(kernel_size=k, stride=stride, padding=np.array([0, 0]))
            nodes[f"{name}_or"] = nir.Threshold(threshold=np.zeros(tuple(int(v) for v in out)))
            edges = [(f"{name}_or" if a == name else a, b) for a, b in edges]
            edges.append((name, f"{name}_or"))
    result = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    result.infer_types()
    return result
