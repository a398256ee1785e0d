"""Read a SpikingJelly network (``activation_based``) into a :class:`~.chain.FloatChain`.

Accepted: an ``nn.Sequential`` (nested ``Sequential`` / ``SeqToANNContainer`` are unfolded), or
any module whose forward runs its leaf modules one after another, each on the previous one's
output (checked by running it once with hooks), of

* ``layer.Conv2d`` / ``nn.Conv2d`` (stride 1, square kernel, zero padding, groups 1),
  optionally followed by ``layer.BatchNorm2d`` (folded: ``w g / sigma``,
  ``(b - mu) g / sigma + beta``, running statistics);
* ``layer.Linear`` / ``nn.Linear``, ``layer.Flatten`` / ``nn.Flatten``;
* ``layer.MaxPool2d`` (kernel = stride, no padding): on spikes, the contract's OR pool;
  ``layer.AvgPool2d`` only with ``pool_as_or``;
* ``neuron.LIFNode`` (``v_reset = 0``; ``decay_input=True``: ``H = V + (X - V) / tau``;
  ``False``: ``H = V - V / tau + X``, i.e. the current gain ``r = tau``), ``neuron.IFNode``,
  ``neuron.ParametricLIFNode`` (``tau = 1 / sigmoid(w)``); SpikingJelly fires on ``H >= v_th``
  as the contract does;
* ``layer.Dropout`` and ``nn.Dropout`` / ``nn.Identity`` (nothing at inference).

A soft reset (``v_reset=None``), a non-zero reset, strides and anything else are refused with
one line naming the module.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..artifact import LayerKind
from ..spec import NeuronKind
from .chain import (FloatChain, FloatLayer, FloatNeuron, FloatPool, FloatSynapse, InteropError,
                    PoolMode)

__all__ = ["chain_from_spikingjelly", "load_module", "spikingjelly_scores"]


def load_module(target: str, weights: str | os.PathLike | None = None):
    """Build the module named by ``"package.module:function"`` (a function or class called with
    no arguments) and load ``weights`` (a ``state_dict`` file saved by ``torch.save``)."""
    import torch
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InteropError(f"{target!r}: give the network as module:function (e.g. "
                           f"mynets:build_net)")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InteropError(f"{target!r}: cannot import {module_name!r} ({error})") from error
    factory = getattr(module, attr, None)
    if factory is None:
        raise InteropError(f"{target!r}: {module_name!r} has no {attr!r}")
    net = factory()
    if not isinstance(net, torch.nn.Module):
        raise InteropError(f"{target!r} returned a {type(net).__name__}, not a torch module")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise InteropError(f"weights file {str(path)!r} not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - torch raises many kinds
            raise InteropError(f"{str(path)!r}: not a readable state_dict ({type(error).__name__}"
                               f": {str(error).splitlines()[0] if str(error) else ''})") from error
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"],
                                                                            dict):
            state = state["state_dict"]
        try:
            net.load_state_dict(state)
        except RuntimeError as error:
            raise InteropError(f"{str(path)!r} does not fit {target!r}: "
                               f"{str(error).splitlines()[0]}") from error
    return net


def _leaves(net) -> list[tuple[str, Any]]:
    """The chain of leaf modules of a Sequential-like network, in order."""
    import torch.nn as nn
    from spikingjelly.activation_based import layer as sj_layer
    out = []

    def walk(prefix: str, module) -> None:
        containers = (nn.Sequential, sj_layer.SeqToANNContainer)
        if isinstance(module, containers) or (prefix == "" and not _is_leaf(module)):
            for name, child in module.named_children():
                walk(f"{prefix}.{name}" if prefix else name, child)
        else:
            out.append((prefix or type(module).__name__, module))
    walk("", net)
    return out


def _is_leaf(module) -> bool:
    return len(list(module.children())) == 0


def _check_chain(net, leaves, sample) -> None:
    """Run ``net`` once and check that each leaf takes the previous leaf's output."""
    import torch
    from spikingjelly.activation_based import functional
    calls: list[tuple[str, int, int]] = []
    hooks = []
    for name, module in leaves:
        hooks.append(module.register_forward_hook(
            lambda m, args, out, name=name: calls.append(
                (name, id(args[0]) if args else 0, id(out)))))
    try:
        with torch.no_grad():
            functional.reset_net(net)
            net(sample)
            functional.reset_net(net)
    except Exception as error:  # noqa: BLE001 - the user's forward
        raise InteropError(f"running the network on a {list(sample.shape)} input failed "
                           f"({type(error).__name__}: {str(error).splitlines()[0]})") from error
    finally:
        for hook in hooks:
            hook.remove()
    names = [name for name, _ in leaves]
    if [c[0] for c in calls] != names:
        raise InteropError(f"forward does not run its modules once each, in order "
                           f"({', '.join(c[0] for c in calls[:8])}...): give an nn.Sequential or "
                           f"a module whose forward is a chain")
    for (prev, _, out), (name, inp, _) in zip(calls, calls[1:]):
        if inp != out:
            raise InteropError(f"module {name!r} does not take the output of {prev!r}: forward "
                               f"is not a chain of modules (an operation between them?)")


def _copy(net):
    """An eval-mode, multi-step copy of ``net`` (its neurons' state cleared first: a state left
    from training is part of an autograd graph, which cannot be copied)."""
    from spikingjelly.activation_based import functional
    functional.reset_net(net)
    model = copy.deepcopy(net).eval()
    functional.set_step_mode(model, "m")
    return model


def _neuron(name: str, module, co: int, readout: bool) -> FloatNeuron:
    from spikingjelly.activation_based import neuron
    kind = type(module).__name__
    if readout:
        return FloatNeuron(name, NeuronKind.NONE, None, None, False,
                           f"{kind} read as the readout (summed current)")
    v_reset = getattr(module, "v_reset", 0.0)
    if v_reset is None:
        raise InteropError(f"module {name!r} ({kind}): soft reset (v_reset=None, subtract the "
                           f"threshold); the contract resets to 0: train with v_reset=0.")
    if float(v_reset) != 0.0:
        raise InteropError(f"module {name!r} ({kind}): v_reset = {float(v_reset)}; the contract "
                           f"resets to 0")
    thr = float(module.v_threshold)
    if isinstance(module, neuron.ParametricLIFNode):
        import torch
        tau = 1.0 / float(torch.sigmoid(module.w.detach()))
        gain = 1.0 if module.decay_input else tau
        return FloatNeuron(name, NeuronKind.LIF, np.full(co, tau), np.full(co, thr / gain), False,
                           f"ParametricLIFNode tau {tau:.4g}, decay_input {module.decay_input}")
    if isinstance(module, neuron.LIFNode):
        tau = float(module.tau)
        gain = 1.0 if module.decay_input else tau
        return FloatNeuron(name, NeuronKind.LIF, np.full(co, tau), np.full(co, thr / gain), False,
                           f"LIFNode tau {tau:.4g}, decay_input {module.decay_input}")
    if isinstance(module, neuron.IFNode):
        return FloatNeuron(name, NeuronKind.IF, None, np.full(co, thr), False, "IFNode")
    raise AssertionError(kind)


def chain_from_spikingjelly(net, input_shape: tuple[int, int, int], *, name: str | None = None,
                            check: bool = True) -> FloatChain:
    """The float chain of a SpikingJelly network taking ``(C, H, W)`` inputs."""
    import torch
    import torch.nn as nn
    from spikingjelly.activation_based import functional, layer as sj_layer, neuron
    net = _copy(net)
    leaves = _leaves(net)
    if check and not isinstance(net, nn.Sequential):
        _check_chain(net, leaves, torch.zeros((1, 1) + tuple(input_shape)))
    neurons = (neuron.LIFNode, neuron.IFNode, neuron.ParametricLIFNode)
    skip = (nn.Dropout, nn.Identity, sj_layer.Dropout)
    chain = [(n, m) for n, m in leaves if not isinstance(m, skip)]
    synapse_idx = [i for i, (_, m) in enumerate(chain) if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not synapse_idx:
        raise InteropError("the network has no Conv2d or Linear layer")
    last_synapse = synapse_idx[-1]
    shape = tuple(int(v) for v in input_shape)
    layers: list[FloatLayer | FloatPool] = []
    pending: FloatSynapse | None = None
    flattened = False
    notes: list[str] = []
    i = 0
    while i < len(chain):
        mname, m = chain[i]
        kind = type(m).__name__
        c, h, w = shape
        if pending is not None and not isinstance(m, neurons + (nn.BatchNorm2d,)):
            if i > last_synapse:
                break
            raise InteropError(f"module {mname!r} ({kind}) follows {pending.name!r} without a "
                               f"neuron in between")
        if isinstance(m, nn.Conv2d):
            if flattened:
                raise InteropError(f"module {mname!r} ({kind}) follows a Flatten or Linear")
            k = m.kernel_size
            if tuple(m.stride) != (1, 1):
                raise InteropError(f"module {mname!r} ({kind}): stride {list(m.stride)}; the "
                                   f"contract's convolutions have stride 1 (pool instead)")
            if tuple(m.dilation) != (1, 1) or m.groups != 1:
                raise InteropError(f"module {mname!r} ({kind}): dilation {list(m.dilation)}, "
                                   f"groups {m.groups}; the contract has neither")
            if k[0] != k[1] or isinstance(m.padding, str) or m.padding[0] != m.padding[1]:
                raise InteropError(f"module {mname!r} ({kind}): kernel {list(k)}, padding "
                                   f"{m.padding}; the contract needs a square kernel and equal "
                                   f"padding")
            if m.padding_mode != "zeros":
                raise InteropError(f"module {mname!r} ({kind}): padding_mode "
                                   f"{m.padding_mode!r}; the contract pads with zeros")
            p = int(m.padding[0])
            if m.in_channels != c:
                raise InteropError(f"module {mname!r} ({kind}) takes {m.in_channels} channels, "
                                   f"its input has {c}")
            weight = m.weight.detach().double().numpy()
            bias = (m.bias.detach().double().numpy() if m.bias is not None
                    else np.zeros(m.out_channels))
            out = (m.out_channels, h + 2 * p - k[0] + 1, w + 2 * p - k[0] + 1)
            pending = FloatSynapse(mname, LayerKind.CONV, shape, out, k[0], p, weight, bias)
            shape = out
        elif isinstance(m, nn.BatchNorm2d):
            if pending is None or pending.kind is not LayerKind.CONV:
                raise InteropError(f"module {mname!r} ({kind}) does not follow a convolution "
                                   f"(only conv-BN folds into integers)")
            g = (m.weight.detach().double().numpy() if m.affine else np.ones(m.num_features))
            beta = (m.bias.detach().double().numpy() if m.affine else np.zeros(m.num_features))
            if m.running_mean is None:
                raise InteropError(f"module {mname!r} ({kind}) keeps no running statistics "
                                   f"(track_running_stats=False): it cannot be folded")
            mu = m.running_mean.double().numpy()
            sigma = np.sqrt(m.running_var.double().numpy() + m.eps)
            factor = g / sigma
            pending = FloatSynapse(pending.name + "+" + mname, pending.kind, pending.in_shape,
                                   pending.out_shape, pending.kernel, pending.padding,
                                   pending.weight * factor[:, None, None, None],
                                   (pending.bias - mu) * factor + beta)
            notes.append(f"{mname!r} (BatchNorm2d) folded into {pending.name.split('+')[0]!r}")
        elif isinstance(m, nn.Linear):
            if m.in_features != c * h * w:
                raise InteropError(f"module {mname!r} ({kind}) takes {m.in_features} inputs, "
                                   f"its input has {c * h * w}")
            if (h, w) != (1, 1) and not flattened:
                raise InteropError(f"module {mname!r} ({kind}) takes an unflattened "
                                   f"{list(shape)} input: put a Flatten before it")
            weight = m.weight.detach().double().numpy()
            bias = (m.bias.detach().double().numpy() if m.bias is not None
                    else np.zeros(m.out_features))
            pending = FloatSynapse(mname, LayerKind.FC, shape, (m.out_features, 1, 1), 0, 0,
                                   weight, bias)
            shape = (m.out_features, 1, 1)
            flattened = True
        elif isinstance(m, nn.Flatten):
            if m.start_dim not in (1, -3) or m.end_dim != -1:
                raise InteropError(f"module {mname!r} ({kind}): start_dim {m.start_dim}, end_dim "
                                   f"{m.end_dim} does not flatten the whole map")
            flattened = True
        elif isinstance(m, neurons):
            if pending is None:
                raise InteropError(f"module {mname!r} ({kind}) does not follow a synapse")
            readout = i > last_synapse
            layers.append(FloatLayer(pending, _neuron(mname, m, pending.out_channels, readout)))
            pending = None
            if readout:
                notes.append(f"{mname!r} ({kind}) after the last synapse is read as the "
                             f"contract's readout (summed current of "
                             f"{layers[-1].synapse.name!r})")
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            ks = m.kernel_size if not isinstance(m.kernel_size, int) else (k, k)
            stride = m.stride if not isinstance(m.stride, int) else (m.stride, m.stride)
            pad = m.padding if not isinstance(m.padding, int) else (m.padding, m.padding)
            if (tuple(ks) != (k, k) or tuple(stride) != (k, k) or tuple(pad) != (0, 0)
                    or getattr(m, "ceil_mode", False)
                    or getattr(m, "dilation", 1) not in (1, (1, 1))):
                raise InteropError(f"module {mname!r} ({kind}): kernel {ks}, stride {stride}, "
                                   f"padding {pad}; the contract pools square windows with "
                                   f"stride = kernel, no padding, floor mode")
            if not layers or (isinstance(layers[-1], FloatLayer) and layers[-1].is_readout) \
                    or flattened:
                raise InteropError(f"module {mname!r} ({kind}) does not follow a spiking layer")
            mode = PoolMode.OR if isinstance(m, nn.MaxPool2d) else PoolMode.AVG
            out = (c, h // k, w // k)
            layers.append(FloatPool(mname, k, mode, shape, out))
            shape = out
        else:
            raise InteropError(f"module {mname!r} ({kind}) is not supported (accepted: Conv2d, "
                               f"BatchNorm2d after a conv, Linear, Flatten, MaxPool2d, LIFNode, "
                               f"IFNode, ParametricLIFNode, Dropout)")
        i += 1
    if pending is not None:
        layers.append(FloatLayer(pending, FloatNeuron(pending.name, NeuronKind.NONE, None, None,
                                                      False, "the last synapse's current")))
    rest = [n for n, _ in chain[i:]]
    if rest:
        notes.append(f"modules after the readout ignored: {', '.join(rest)}")
    last = layers[-1]
    if isinstance(last, FloatPool) or not last.is_readout:
        raise InteropError("the network must end in a Linear layer (the readout)")
    if last.synapse.kind is LayerKind.CONV and last.synapse.out_shape[1:] != (1, 1):
        raise InteropError(f"module {last.synapse.name!r}: the readout must be fully connected")
    return FloatChain(name=name or type(net).__name__.lower(), framework="spikingjelly",
                      input_shape=tuple(input_shape), layers=tuple(layers), notes=notes)


def spikingjelly_scores(net, *, T: int, input_range: float = 1.0,
                        frames: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """A function from images to the SpikingJelly network's own scores (its output summed
    over T), run in multi-step mode on a copy of ``net``."""
    import torch
    from spikingjelly.activation_based import functional
    from .reference import float_input
    model = _copy(net).double()

    def scores(images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(float_input(images[start:start + batch_size], input_range,
                                                 frames))
                seq = x.transpose(0, 1) if frames else x.unsqueeze(0).repeat(
                    (T,) + (1,) * x.dim())
                functional.reset_net(model)
                y = model(seq)
                functional.reset_net(model)
                out.append(y.sum(0).reshape(len(x), -1).numpy())
        return np.concatenate(out)
    return scores
