"""The float network that every importer produces: a chain of synaptic layers (each with its
neuron) and pools, in the source framework's own semantics, already reduced to the contract's
shape (stride-1 conv or fc, per-channel parameters, hard reset to 0).

Importers (:mod:`.nir_import`, :mod:`.spikingjelly_import`) read a source into a
:class:`FloatChain`; :func:`fireflys_sw.interop.quantize.quantise_chain` maps it onto the integer
contract; :func:`fireflys_sw.interop.reference.run_float_chain` simulates it in float (the
source's semantics) for the agreement figures.

A neuron's parameters are normalised so that its membrane is measured in the units of the
synapse's current (``u = v / r``): for NIR's ``tau dv/dt = (v_leak - v) + r I``, Euler-stepped
with ``alpha = dt / tau``, ``u' = u + alpha (I + v_leak / r - u)``; so ``v_leak / r`` is folded
into the bias and the threshold becomes ``v_threshold / r``. This is equivalent to folding
``r`` into the weights, and it leaves integer weights integer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from ..artifact import LayerKind
from ..errors import FireflysError
from ..spec import NeuronKind

__all__ = ["InteropError", "PoolMode", "FloatSynapse", "FloatNeuron", "FloatLayer", "FloatPool",
           "FloatChain"]


class InteropError(FireflysError, ValueError):
    """A source network that the contract cannot express, or a source that cannot be read. The
    message is one line naming the node (or module) and why."""


class PoolMode(enum.Enum):
    """``OR``: max-pool on spikes (exact); ``AVG`` / ``SUM``: the source's average or sum pool,
    which the artifact can only approximate by OR (``pool_as_or``)."""

    OR = "or"
    AVG = "avg"
    SUM = "sum"


@dataclass(frozen=True, eq=False)
class FloatSynapse:
    """A conv (stride 1, square kernel, zero padding) or fully connected layer in float.

    ``weight``: conv ``(Co, Ci, K, K)``, fc ``(Co, Ci*H*W)`` (input in C, H, W order);
    ``bias``: ``(Co,)``, with any neuron's ``v_leak / r`` already added.
    """

    name: str
    kind: LayerKind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int
    padding: int
    weight: np.ndarray
    bias: np.ndarray

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]


@dataclass(frozen=True, eq=False)
class FloatNeuron:
    """A layer's neurons, per output channel, membrane in units of the synapse's current.

    Attributes
    ----------
    name : str
        The source node or module.
    kind : NeuronKind
        ``LIF``, ``IF`` or ``NONE`` (the readout: summed current).
    tau_steps : ndarray ``(Co,)`` or None
        LIF time constant in time steps (``tau / dt``): ``u' = u + (I - u) / tau_steps``.
    threshold : ndarray ``(Co,)`` or None
        Firing threshold (``v_threshold / r``).
    strict : bool
        Fires on ``u > threshold`` (NIR, snnTorch, Norse) rather than ``u >= threshold``
        (SpikingJelly, fireflys).
    described : str
        The source's parameters in words, for the report.
    """

    name: str
    kind: NeuronKind
    tau_steps: np.ndarray | None
    threshold: np.ndarray | None
    strict: bool
    described: str = ""


@dataclass(frozen=True, eq=False)
class FloatLayer:
    synapse: FloatSynapse
    neuron: FloatNeuron

    @property
    def is_readout(self) -> bool:
        return self.neuron.kind is NeuronKind.NONE


@dataclass(frozen=True, eq=False)
class FloatPool:
    """A pool over ``kernel`` x ``kernel`` windows, stride ``kernel``; ``mode`` is what the
    source computes."""

    name: str
    kernel: int
    mode: PoolMode
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class FloatChain:
    """A source network as a chain the contract can take (see the module docstring).

    ``defaults`` carries settings the source itself states (from a fireflys-written NIR file:
    ``T``, ``input_bits``, ``input_range``, ``weight_bits``, ``encoding``, ``name``);
    explicit options override them. ``notes`` are what the importer wants the user to know.
    """

    name: str
    framework: str
    input_shape: tuple[int, int, int]
    layers: tuple[FloatLayer | FloatPool, ...]
    notes: list[str] = field(default_factory=list)
    defaults: dict = field(default_factory=dict)

    @property
    def synaptic_layers(self) -> list[FloatLayer]:
        return [layer for layer in self.layers if isinstance(layer, FloatLayer)]

    @property
    def classes(self) -> int:
        return self.layers[-1].synapse.out_channels
