"""Read a NIR graph (a file or a ``nir.NIRGraph``) into a :class:`~.chain.FloatChain`.

Accepted, as a chain from ``Input`` to ``Output``: ``Conv2d`` (stride 1, dilation 1, groups 1,
square kernel, zero padding), ``Linear`` / ``Affine`` (after ``Flatten``), ``Flatten``, ``LIF``,
``IF``, ``SumPool2d`` followed by ``Threshold`` with a threshold in [0, 1) (any spike in the
window: exactly the contract's OR pool), and, after the last synapse, ``LIF`` / ``LI`` / ``IF``
/ ``I`` read as the contract's readout (summed current). Parameters may be 0-d scalars or
per-neuron arrays; they must be equal within each output channel (tau within a layer).

Discretisation (NIR is continuous-time and stores no dt): ``LIF`` is Euler-stepped,
``v' = v + dt/tau (v_leak - v + r I)``; ``IF`` is ``v' = v + r I``. Both fire on
``v > v_threshold`` and reset to ``v_reset``, which must be 0. ``dt`` comes from ``--dt``, or
from ``tau / r`` when every LIF in the file has the same ratio below its tau (snnTorch and
SpikingJelly write ``r = tau / dt``).

Everything else is refused with one line naming the node and why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..artifact import LayerKind
from ..spec import NeuronKind
from .chain import (FloatChain, FloatLayer, FloatNeuron, FloatPool, FloatSynapse, InteropError,
                    PoolMode)

__all__ = ["read_nir_graph", "chain_from_nir", "nir_available"]

#: Keys of a fireflys-written graph's metadata that become import defaults.
METADATA_PREFIX = "fireflys_"


def nir_available() -> str | None:
    """``None`` when the ``nir`` package imports, else why not."""
    try:
        import nir  # noqa: F401
    except ImportError as error:
        return f"the nir package is not installed ({error}); pip install 'fireflys[interop]'"
    return None


def _nir():
    why = nir_available()
    if why:
        raise InteropError(why)
    import nir
    return nir


def read_nir_graph(path: str | os.PathLike) -> tuple[Any, list[str]]:
    """Read a NIR file; a file that nir's type check rejects (some nir 1.0.4 files under nir
    1.0.8) is read again without it, and a note says so."""
    nir = _nir()
    path = Path(path)
    if not path.is_file():
        raise InteropError(f"NIR file {str(path)!r} not found")
    notes = []
    try:
        from nir.serialization import read_version
        version = read_version(path)
    except Exception:  # noqa: BLE001 - older files carry no version
        version = None
    try:
        graph = nir.read(path)
    except Exception as first:  # noqa: BLE001 - nir raises many kinds
        try:
            graph = nir.read(path, type_check=False)
        except Exception as error:  # noqa: BLE001
            raise InteropError(f"{str(path)!r}: not a readable NIR file ({type(error).__name__}: "
                               f"{str(error).splitlines()[0] if str(error) else ''})") from error
        notes.append(f"read without nir's type check, which rejected the file "
                     f"({type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''})")
    if version is not None:
        notes.append(f"NIR file written by nir {version}")
    return graph, notes


def _array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if hasattr(value, "detach"):  # a torch tensor in an in-memory graph
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _pair(value: Any, what: str, node: str) -> tuple[int, int]:
    a = np.asarray(value).ravel()
    if a.size == 1:
        return int(a[0]), int(a[0])
    if a.size == 2:
        return int(a[0]), int(a[1])
    raise InteropError(f"node {node!r}: {what} {a.tolist()} is not one or two numbers")


def _shape_of(node: Any, key: str) -> tuple[int, ...] | None:
    types = getattr(node, "input_type" if key == "input" else "output_type", None) or {}
    shape = types.get(key)
    if shape is None:
        return None
    shape = np.asarray(shape).ravel()
    if shape.size == 0 or np.any(shape == None):  # noqa: E711 - object arrays from old files
        return None
    return tuple(int(v) for v in shape)


def _metadata(graph: Any) -> dict:
    meta = getattr(graph, "metadata", None) or {}
    out = {}
    for key, value in meta.items():
        if not str(key).startswith(METADATA_PREFIX):
            continue
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.ndarray) and value.shape == ():
            value = value.item()
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bytes):
            value = value.decode()
        out[str(key)[len(METADATA_PREFIX):]] = value
    return out


def _chain_order(graph: Any, nir) -> list[str]:
    nodes, edges = graph.nodes, list(graph.edges)
    for name, node in nodes.items():
        if node is None:
            raise InteropError(f"node {name!r} is incomplete (None): the exporter could not "
                               f"convert that layer (Norse 1.1 writes Flatten and pooling layers "
                               f"this way); the graph cannot be imported")
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise InteropError(f"the graph has {len(inputs)} Input nodes "
                           f"({', '.join(map(repr, inputs)) or 'none'}); the contract takes one")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        a, b = str(a), str(b)
        # an edge into a subgraph's port ("lif.input") belongs to that subgraph node
        a, b = a.split(".")[0] if a not in nodes else a, b.split(".")[0] if b not in nodes else b
        if a not in nodes or b not in nodes:
            raise InteropError(f"edge {a!r} -> {b!r} names a node that is not in the graph")
        succ[a].append(b)
        pred[b].append(a)
    order, seen = [inputs[0]], {inputs[0]}
    current = inputs[0]
    while succ[current]:
        if len(succ[current]) > 1:
            raise InteropError(f"node {current!r} feeds {', '.join(map(repr, succ[current]))}: "
                               f"the contract takes a chain of layers, not a branching graph")
        nxt = succ[current][0]
        if nxt in seen:
            raise InteropError(f"edge {current!r} -> {nxt!r} closes a loop (recurrence); the "
                               f"contract's layers are feed-forward")
        if len(pred[nxt]) > 1:
            raise InteropError(f"node {nxt!r} has inputs from "
                               f"{', '.join(map(repr, pred[nxt]))}: the contract takes a chain "
                               f"of layers, not a graph with merges")
        order.append(nxt)
        seen.add(nxt)
        current = nxt
    if not isinstance(nodes[current], nir.Output):
        raise InteropError(f"the chain from {inputs[0]!r} ends at node {current!r} "
                           f"({type(nodes[current]).__name__}), not at an Output node")
    rest = [n for n in nodes if n not in seen]
    if rest:
        raise InteropError(f"node(s) {', '.join(map(repr, rest))} are not on the chain from "
                           f"{inputs[0]!r} to {current!r}: the contract takes a chain of layers")
    return order


def _recover_dt(graph: Any, nir, order: list[str]) -> tuple[float | None, str | None]:
    ratios, taus = [], []
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, nir.LIF):
            tau, r = _array(node.tau), _array(node.r)
            tau, r = np.broadcast_arrays(tau, r)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append((tau / r).ravel())
            taus.append(tau.ravel())
    if not ratios:
        return None, None
    ratio, tau = np.concatenate(ratios), np.concatenate(taus)
    if (np.all(np.isfinite(ratio)) and ratio.min() > 0
            and np.allclose(ratio, ratio[0], rtol=1e-6, atol=0)
            and np.all(ratio < tau * (1 - 1e-9))):
        dt = float(np.median(ratio))
        return dt, f"dt = {dt:.6g} recovered from tau / r (the r = tau / dt convention of " \
                   f"snnTorch and SpikingJelly)"
    return None, None


def _per_channel(name: str, kind: str, what: str, value: Any, shape: tuple[int, ...]
                 ) -> np.ndarray:
    """A neuron parameter (scalar or per-neuron) as one value per output channel."""
    a = _array(value)
    if a is None:
        raise InteropError(f"node {name!r} ({kind}): {what} is missing")
    try:
        full = np.broadcast_to(a.reshape(a.shape if a.size != 1 else ()), shape)
    except ValueError:
        # a flat per-neuron vector for a conv layer's (C, H, W) neurons
        if a.size == int(np.prod(shape)):
            full = a.reshape(shape)
        else:
            raise InteropError(f"node {name!r} ({kind}): {what} has shape {list(a.shape)}, "
                               f"which does not fit the layer's {list(shape)} neurons") from None
    per = full.reshape(shape[0], -1)
    if not np.allclose(per, per[:, :1], rtol=1e-6, atol=1e-12):
        raise InteropError(f"node {name!r} ({kind}): {what} differs between neurons of one "
                           f"channel; the contract has one {what} per output channel")
    return per[:, 0].astype(np.float64)


def _neuron(name: str, node: Any, nir, shape: tuple[int, int, int], dt: float | None,
            readout: bool) -> tuple[FloatNeuron, np.ndarray, np.ndarray]:
    """The neuron, the per-channel current gain ``r`` and bias offset ``v_leak / r``."""
    kind = type(node).__name__
    out_shape = shape
    if isinstance(node, (nir.LIF, nir.LI)):
        r = _per_channel(name, kind, "r", node.r, out_shape)
        tau = _per_channel(name, kind, "tau", node.tau, out_shape)
        if np.any(r <= 0):
            raise InteropError(f"node {name!r} ({kind}): r = {float(r.min()):.6g}; the current "
                               f"gain must be positive")
        leak = _per_channel(name, kind, "v_leak", node.v_leak, out_shape) / r
        if readout:
            return (FloatNeuron(name, NeuronKind.NONE, None, None, True,
                                f"{kind} read as the readout (summed current)"), r, leak)
        if dt is None:
            raise InteropError(
                f"node {name!r} (LIF): cannot tell the time step (tau / r = "
                f"{float((tau / r).min()):.6g} is not a time step below tau); give --dt "
                f"(snnTorch and SpikingJelly write 1e-4, Sinabs 1, Norse dt squared)")
        reset = _per_channel(name, kind, "v_reset", node.v_reset, out_shape)
        if np.any(reset != 0):
            raise InteropError(f"node {name!r} (LIF): v_reset = {float(reset[reset != 0][0]):.6g};"
                               f" the contract resets to 0 (a non-zero or subtractive reset "
                               f"cannot be expressed)")
        thr = _per_channel(name, kind, "v_threshold", node.v_threshold, out_shape) / r
        steps = tau / dt
        return (FloatNeuron(name, NeuronKind.LIF, steps, thr, True,
                            f"LIF tau/dt {float(steps.min()):.4g}, r {float(r.min()):.4g}, "
                            f"v_leak/r {float(np.abs(leak).max()):.3g}"), r, leak)
    if isinstance(node, (nir.IF, nir.I)):
        r = _per_channel(name, kind, "r", node.r, out_shape)
        if np.any(r <= 0):
            raise InteropError(f"node {name!r} ({kind}): r = {float(r.min()):.6g}; the current "
                               f"gain must be positive")
        zero = np.zeros_like(r)
        if readout:
            return (FloatNeuron(name, NeuronKind.NONE, None, None, True,
                                f"{kind} read as the readout (summed current)"), r, zero)
        reset = _per_channel(name, kind, "v_reset", node.v_reset, out_shape)
        if np.any(reset != 0):
            raise InteropError(f"node {name!r} (IF): v_reset = {float(reset[reset != 0][0]):.6g};"
                               f" the contract resets to 0")
        thr = _per_channel(name, kind, "v_threshold", node.v_threshold, out_shape) / r
        return FloatNeuron(name, NeuronKind.IF, None, thr, True, f"IF r {float(r.min()):.4g}"), \
            r, zero
    raise AssertionError(kind)


_REFUSED = {
    "CubaLIF": "a current-based LIF keeps a synaptic current state, which the contract has not",
    "CubaLI": "a current-based LI keeps a synaptic current state, which the contract has not",
    "Delay": "the contract has no delays",
    "Scale": "an elementwise scale between layers is not part of the contract (fold it into "
             "the weights)",
    "Conv1d": "the contract's convolutions are 2-d",
    "NIRGraph": "a nested subgraph (snnTorch writes RLeaky/RSynaptic this way): recurrence is "
                "not part of the contract",
}


def chain_from_nir(graph: Any, *, dt: float | None = None,
                   input_shape: tuple[int, int, int] | None = None, name: str = "nir",
                   framework: str = "nir") -> FloatChain:
    """The float chain of a ``nir.NIRGraph`` (see the module docstring for what is accepted)."""
    nir = _nir()
    graph_name = name
    notes: list[str] = []
    order = _chain_order(graph, nir)
    nodes = graph.nodes
    if dt is None:
        # the spiking LIFs decide (a readout's time constant does not matter)
        synapses = [i for i, n in enumerate(order)
                    if type(nodes[n]).__name__ in ("Conv2d", "Affine", "Linear")]
        dt, note = _recover_dt(graph, nir, order[:synapses[-1]] if synapses else order)
        if note:
            notes.append(note)
    elif not dt > 0:
        raise InteropError(f"--dt must be positive, not {dt}")
    # the input shape
    shape = _shape_of(nodes[order[0]], "input") or _shape_of(nodes[order[0]], "output")
    if input_shape is not None:
        shape = tuple(int(v) for v in input_shape)
    if shape is None:
        raise InteropError(f"node {order[0]!r} (Input): the input shape is unknown (Sinabs 3.1 "
                           f"leaves shapes as None); give --input-shape C,H,W")
    while len(shape) > 3 and shape[0] == 1:  # a batch dimension of 1
        shape = shape[1:]
    if len(shape) == 1:
        shape = (shape[0], 1, 1)
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3:
        raise InteropError(f"node {order[0]!r} (Input): shape {list(shape)} is not C, H, W")
    input_shape = shape
    flat = shape[1:] == (1, 1)
    flattened = False  # past a Flatten or an fc layer

    layers: list[FloatLayer | FloatPool] = []
    pending: FloatSynapse | None = None  # a synapse waiting for its neuron
    synapse_names = [n for n in order if type(nodes[n]).__name__ in ("Conv2d", "Affine", "Linear")]
    last_synapse = synapse_names[-1] if synapse_names else None
    i = 1
    while i < len(order):
        name = order[i]
        node = nodes[name]
        kind = type(node).__name__
        c, h, w = shape
        if kind in _REFUSED:
            raise InteropError(f"node {name!r} ({kind}): {_REFUSED[kind]}")
        if kind == "Output":
            if pending is not None:
                layers.append(FloatLayer(pending, FloatNeuron(
                    name, NeuronKind.NONE, None, None, True, "synapse straight to the output")))
                pending = None
            break
        if pending is not None and kind not in ("LIF", "IF", "LI", "I"):
            raise InteropError(f"node {name!r} ({kind}) follows synapse {pending.name!r} without "
                               f"a neuron in between; the contract gives every synaptic layer "
                               f"its neurons")
        if kind == "Conv2d":
            weight = _array(node.weight)
            if weight.ndim != 4:
                raise InteropError(f"node {name!r} (Conv2d): weight has shape "
                                   f"{list(weight.shape)}, expected (Co, Ci, K, K)")
            co, ci, kh, kw = weight.shape
            if flattened:
                raise InteropError(f"node {name!r} (Conv2d) follows a Flatten or a fully "
                                   f"connected layer; the contract's convolutions come first")
            if _pair(node.stride, "stride", name) != (1, 1):
                raise InteropError(f"node {name!r} (Conv2d): stride {list(_pair(node.stride, 's', name))}"
                                   f"; the contract's convolutions have stride 1 (pool instead)")
            if _pair(node.dilation, "dilation", name) != (1, 1):
                raise InteropError(f"node {name!r} (Conv2d): dilation "
                                   f"{list(_pair(node.dilation, 'd', name))}; the contract has "
                                   f"none")
            if int(node.groups) != 1:
                raise InteropError(f"node {name!r} (Conv2d): groups = {int(node.groups)}; the "
                                   f"contract's convolutions are dense (groups 1)")
            if kh != kw:
                raise InteropError(f"node {name!r} (Conv2d): a {kh}x{kw} kernel; the contract's "
                                   f"kernels are square")
            if isinstance(node.padding, str):
                if node.padding == "valid":
                    p = 0
                elif kh % 2 == 1:
                    p = (kh - 1) // 2
                else:
                    raise InteropError(f"node {name!r} (Conv2d): 'same' padding with an even "
                                       f"kernel {kh} is asymmetric")
            else:
                ph, pw = _pair(node.padding, "padding", name)
                if ph != pw:
                    raise InteropError(f"node {name!r} (Conv2d): padding {[ph, pw]} differs "
                                       f"between height and width")
                p = ph
            if p >= kh:
                raise InteropError(f"node {name!r} (Conv2d): padding {p} is not smaller than "
                                   f"the kernel {kh}")
            if ci != c:
                raise InteropError(f"node {name!r} (Conv2d): weight takes {ci} channels, its "
                                   f"input has {c}")
            oh, ow = h + 2 * p - kh + 1, w + 2 * p - kh + 1
            if oh < 1 or ow < 1:
                raise InteropError(f"node {name!r} (Conv2d): a {kh}x{kh} kernel on a {h}x{w} "
                                   f"input")
            bias = _array(node.bias)
            bias = np.zeros(co) if bias is None else np.broadcast_to(bias, (co,)).copy()
            pending = FloatSynapse(name, LayerKind.CONV, shape, (co, oh, ow), kh, p, weight, bias)
            shape = (co, oh, ow)
        elif kind in ("Affine", "Linear"):
            weight = _array(node.weight)
            if weight.ndim != 2:
                raise InteropError(f"node {name!r} ({kind}): weight has shape "
                                   f"{list(weight.shape)}, expected (out, in)")
            if not flat:
                raise InteropError(f"node {name!r} ({kind}) takes an unflattened {list(shape)} "
                                   f"input: put a Flatten before it")
            co, n = weight.shape
            if n != c * h * w:
                raise InteropError(f"node {name!r} ({kind}): weight takes {n} inputs, its input "
                                   f"has {c * h * w}")
            bias = _array(getattr(node, "bias", None))
            bias = np.zeros(co) if bias is None else np.broadcast_to(bias, (co,)).copy()
            pending = FloatSynapse(name, LayerKind.FC, shape, (co, 1, 1), 0, 0, weight, bias)
            shape = (co, 1, 1)
            flattened = True
        elif kind == "Flatten":
            out = _shape_of(node, "output")
            start = int(node.start_dim)
            whole = (out is not None and len(out) == 1 and out[0] == c * h * w) or \
                (out is None and start == 0 and int(node.end_dim) in (-1, 2))
            if not whole:
                raise InteropError(f"node {name!r} (Flatten): start_dim {start}, end_dim "
                                   f"{int(node.end_dim)} does not flatten the whole {list(shape)} "
                                   f"map into one vector (exporting with ignore_dims=[0] fixes "
                                   f"snnTorch's)")
            flat = flattened = True
        elif kind in ("LIF", "IF", "LI", "I"):
            if pending is None:
                raise InteropError(f"node {name!r} ({kind}) does not follow a synapse: the "
                                   f"contract puts neurons right after a conv or fc layer")
            readout = pending.name == last_synapse
            if not readout and kind in ("LI", "I"):
                raise InteropError(f"node {name!r} ({kind}): a non-spiking neuron before the "
                                   f"last layer; the contract's hidden layers spike (LIF or IF)")
            neuron_shape = pending.out_shape
            neuron, r, leak = _neuron(name, node, nir, neuron_shape, dt, readout)
            if readout:
                # the readout has no threshold to carry r: fold it into the weights
                shape_r = (-1,) + (1,) * (pending.weight.ndim - 1)
                pending = FloatSynapse(pending.name, pending.kind, pending.in_shape,
                                       pending.out_shape, pending.kernel, pending.padding,
                                       pending.weight * r.reshape(shape_r),
                                       (pending.bias + leak) * r)
                if kind in ("LIF", "IF"):
                    notes.append(f"node {name!r} ({kind}) after the last synapse is read as the "
                                 f"contract's readout: the prediction is the argmax of the summed "
                                 f"current of {pending.name!r}, not of {name!r}'s spikes")
            else:
                pending = FloatSynapse(pending.name, pending.kind, pending.in_shape,
                                       pending.out_shape, pending.kernel, pending.padding,
                                       pending.weight, pending.bias + leak)
            layers.append(FloatLayer(pending, neuron))
            pending = None
            if readout and i + 1 < len(order) and type(nodes[order[i + 1]]).__name__ != "Output":
                nxt = order[i + 1]
                raise InteropError(f"node {nxt!r} ({type(nodes[nxt]).__name__}) follows the "
                                   f"readout {name!r}; the last synaptic layer must be the "
                                   f"readout")
        elif kind in ("SumPool2d", "AvgPool2d"):
            if not layers or not isinstance(layers[-1], (FloatLayer, FloatPool)) or (
                    isinstance(layers[-1], FloatLayer) and layers[-1].is_readout):
                raise InteropError(f"node {name!r} ({kind}) does not follow a spiking layer")
            if flattened:
                raise InteropError(f"node {name!r} ({kind}) pools a flattened input")
            kh, kw = _pair(node.kernel_size, "kernel_size", name)
            sh, sw = _pair(node.stride, "stride", name)
            ph, pw = _pair(node.padding, "padding", name)
            if kh != kw or (sh, sw) != (kh, kw) or (ph, pw) != (0, 0):
                raise InteropError(f"node {name!r} ({kind}): kernel {[kh, kw]}, stride {[sh, sw]},"
                                   f" padding {[ph, pw]}; the contract pools square windows with "
                                   f"stride = kernel and no padding")
            if kh < 2 or kh > min(h, w):
                raise InteropError(f"node {name!r} ({kind}): a {kh}x{kh} window on a {h}x{w} map")
            mode = PoolMode.AVG if kind == "AvgPool2d" else PoolMode.SUM
            nxt = order[i + 1] if i + 1 < len(order) else None
            if kind == "SumPool2d" and nxt is not None \
                    and type(nodes[nxt]).__name__ == "Threshold":
                thr = _array(nodes[nxt].threshold)
                if thr.min() < 0 or thr.max() >= 1:
                    raise InteropError(
                        f"node {nxt!r} (Threshold) after SumPool2d {name!r}: threshold "
                        f"{float(thr.min()):.6g}..{float(thr.max()):.6g}; only a threshold in "
                        f"[0, 1) (any spike in the window) is the contract's OR pool")
                mode = PoolMode.OR
                name = f"{name}+{nxt}"
                i += 1
            out = (c, h // kh, w // kh)
            layers.append(FloatPool(name, kh, mode, shape, out))
            shape = out
        elif kind == "Threshold":
            raise InteropError(f"node {name!r} (Threshold) without a SumPool2d before it: a "
                               f"memoryless threshold is not one of the contract's neurons "
                               f"(LIF, IF)")
        elif kind == "Input":
            raise InteropError(f"node {name!r}: a second Input node")
        else:
            raise InteropError(f"node {name!r}: {kind} is not supported (accepted: Input, "
                               f"Conv2d, Linear, Affine, Flatten, LIF, IF, SumPool2d + Threshold,"
                               f" LI/I as the readout, Output)")
        i += 1
    synaptic = [l for l in layers if isinstance(l, FloatLayer)]
    if not synaptic:
        raise InteropError("the graph has no Conv2d, Linear or Affine node")
    if isinstance(layers[-1], FloatPool):
        raise InteropError(f"node {layers[-1].name!r}: the graph ends in a pool; the last layer "
                           f"must be the readout (a Linear/Affine or 1x1 conv)")
    last = layers[-1]
    if last.synapse.kind is LayerKind.CONV and last.synapse.out_shape[1:] != (1, 1):
        raise InteropError(f"node {last.synapse.name!r}: the readout is a conv with a "
                           f"{list(last.synapse.out_shape[1:])} output; it must be fully "
                           f"connected or 1x1")
    meta = _metadata(graph)
    if meta:
        notes.append("settings from the file's fireflys metadata: " +
                     ", ".join(f"{k}={v}" for k, v in sorted(meta.items())))
    return FloatChain(name=str(meta.get("name", graph_name)), framework=framework,
                      input_shape=input_shape, layers=tuple(layers), notes=notes,
                      defaults=meta)
