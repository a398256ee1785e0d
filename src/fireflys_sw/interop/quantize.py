"""Map a :class:`~.chain.FloatChain` onto the numeric contract: per-channel quantisation with the
training's step rule, tau to a power-of-two leak shift, exact threshold conventions.

Per synaptic layer (``docs/interop.md`` states the same rules):

* **integer layers**: when the (folded) weights and bias are already integers within
  ``weight_bits`` (a network that was quantised before, e.g. a fireflys artifact written as
  NIR), the unit is 1 and nothing is rounded;
* otherwise **one step size per output channel** (one for the whole readout, so that its
  scores compare across classes), by the rule ``step_rule``: ``"lsq"`` is the training's LSQ
  initialisation ``2 mean|w| / sqrt(QP)`` over the channel's non-zero weights
  (:meth:`fireflys_sw.models._QuantSynapse.init_scale`), ``"max"`` is ``max|w| / QP`` (no
  clipping). ``W = round(clip(w / S, -QN, QP))``, ``B = round(b / S)``;
* the threshold, in integers: ``TH = ceil(thr / S)`` for a source that fires on ``>=``, and
  ``floor(thr / S) + 1`` for one that fires on ``>`` (NIR, snnTorch): on integer membranes both
  are exact;
* LIF: ``leak_shift = k`` with ``2**k`` the power of two nearest to ``tau / dt``, accepted
  within ``tau_tolerance`` (relative), refused with the numbers otherwise. The contract's leak
  floors ``(I - V) >> k``; for a float source the bias gets ``+ 2**(k-1)``, which makes that
  floor a round-half-up (``floor((I + 2^(k-1) - V) / 2^k)``), so the leak is unbiased;
* optional magnitude pruning of each layer to ``sparsity`` before quantisation.

This duplicates the training's per-channel LSQ rule in numpy on purpose (the training code is
torch and learns the steps); see the note in ``docs/interop.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..artifact import Artifact, InputEncoding, LayerKind, PoolLayer, SynapticLayer, signed_range
from ..compress import remove_silent_channels
from ..errors import ArtifactError
from ..golden import signed_bits
from ..spec import NeuronKind
from .chain import FloatChain, FloatLayer, FloatPool, InteropError, PoolMode

__all__ = ["QuantOptions", "quantise_chain", "leak_shift_of"]

_INTEGER_TOLERANCE = 1e-6
_POOL_WORDS = {PoolMode.AVG: "an average pool", PoolMode.SUM: "a sum pool"}


@dataclass(frozen=True)
class QuantOptions:
    """How to map a float chain onto integers.

    Attributes
    ----------
    weight_bits : int
        2..8 (default 4).
    T : int
        Time steps per frame.
    input_bits : int
        Width of the first layer's integer input.
    input_range : float
        The float value the source network sees for a full-scale input (pixel 255); default
        1.0 (images scaled to [0, 1]). For ``frames`` encoding, the float value of one event.
    encoding : InputEncoding
    step_rule : str
        ``"lsq"`` (the training's LSQ initialisation) or ``"max"`` (no clipping).
    sparsity : float or None
        Prune each layer by magnitude to this fraction of zero weights first.
    pool_as_or : bool
        Accept average/sum pools and compute them as OR (the report shows the cost).
    tau_tolerance : float
        Relative distance of ``tau / dt`` from a power of two that is accepted.
    leak_rounding : bool
        Add ``2**(k-1)`` to a float source's LIF bias (the contract's floor becomes rounding).
    remove_silent : bool
        Remove channels that can never spike (FireFly-S Algorithm 1; outputs unchanged).
    bias_bits : int
        At least this many bias bits (more when an integer source needs them).
    name : str or None
        Artifact name (default: the source's).
    """

    weight_bits: int = 4
    T: int = 4
    input_bits: int = 8
    input_range: float = 1.0
    encoding: InputEncoding = InputEncoding.DIRECT
    step_rule: str = "lsq"
    sparsity: float | None = None
    pool_as_or: bool = False
    tau_tolerance: float = 0.02
    leak_rounding: bool = True
    remove_silent: bool = True
    bias_bits: int = 16
    name: str | None = None

    def validate(self) -> None:
        if not 2 <= self.weight_bits <= 8:
            raise InteropError(f"weight bits must be 2..8, not {self.weight_bits}")
        if not 1 <= self.T <= 256:
            raise InteropError(f"T must be 1..256, not {self.T}")
        if not 1 <= self.input_bits <= 16:
            raise InteropError(f"input bits must be 1..16, not {self.input_bits}")
        if self.step_rule not in ("lsq", "max"):
            raise InteropError(f"step rule must be 'lsq' or 'max', not {self.step_rule!r}")
        if self.sparsity is not None and not 0.0 <= self.sparsity < 1.0:
            raise InteropError(f"sparsity must be in [0, 1), not {self.sparsity}")
        if not self.input_range > 0:
            raise InteropError(f"input range must be positive, not {self.input_range}")

    @property
    def input_step(self) -> float:
        """The float value of one step of the first layer's integer input."""
        if self.encoding is InputEncoding.FRAMES:
            return self.input_range
        return self.input_range / ((1 << self.input_bits) - 1)


def leak_shift_of(name: str, tau_steps: np.ndarray, tolerance: float) -> tuple[int, float]:
    """``k`` with ``2**k`` nearest to every ``tau / dt`` of a layer, and the largest relative
    distance; refuses (one line, with the numbers) when no shift in 1..16 fits them all."""
    tau_steps = np.asarray(tau_steps, np.float64)
    if not np.all(np.isfinite(tau_steps)) or tau_steps.min() <= 0:
        raise InteropError(f"{name}: tau / dt must be positive and finite, not "
                           f"{_fmt(tau_steps.min())}")
    k = int(round(math.log2(float(np.exp(np.log(tau_steps).mean())))))
    k = min(max(k, 1), 16)
    error = float(np.max(np.abs(tau_steps / (1 << k) - 1)))
    if error > tolerance:
        lo, hi = float(tau_steps.min()), float(tau_steps.max())
        span = _fmt(lo) if math.isclose(lo, hi, rel_tol=1e-9) else f"{_fmt(lo)}..{_fmt(hi)}"
        raise InteropError(
            f"{name}: tau / dt = {span} is {error:.1%} from the nearest power of two {1 << k} "
            f"(2**{k}); the contract's leak is tau = 2**k steps, k in 1..16, accepted within "
            f"{tolerance:.1%} (--tau-tolerance, or check --dt)")
    return k, error


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _prune(w: np.ndarray, sparsity: float | None) -> np.ndarray:
    if not sparsity:
        return w
    flat = np.abs(w).ravel()
    n = int(math.ceil(sparsity * flat.size - 1e-9))
    if n <= 0:
        return w
    order = np.argsort(flat, kind="stable")[:n]
    out = w.copy().ravel()
    out[order] = 0.0
    return out.reshape(w.shape)


def _is_integer(a: np.ndarray) -> bool:
    return bool(np.all(np.abs(a - np.round(a)) <= _INTEGER_TOLERANCE))


def _steps(w: np.ndarray, channels: int, rule: str, qp: int) -> np.ndarray:
    rows = np.abs(w.reshape(channels, -1))
    if rule == "max":
        step = rows.max(axis=1) / qp
    else:
        alive = np.maximum((rows != 0).sum(axis=1), 1)
        step = 2.0 * (rows.sum(axis=1) / alive) / math.sqrt(qp)
    # an all-zero channel: any positive step (its weights stay 0); take the layer's
    fallback = step[step > 0].mean() if np.any(step > 0) else 1.0
    return np.where(step > 0, step, fallback)


def _integer_threshold(thr: np.ndarray, unit: np.ndarray, strict: bool) -> np.ndarray:
    t = thr / unit
    eps = 1e-9 * np.maximum(1.0, np.abs(t))
    th = np.floor(t + eps) + 1 if strict else np.ceil(t - eps)
    return np.maximum(th, 1).astype(np.int64)


def _quantise_layer(index: int, layer: FloatLayer, first: bool, opts: QuantOptions
                    ) -> tuple[SynapticLayer, dict]:
    syn, neu = layer.synapse, layer.neuron
    name = f"layer {index} ({syn.name})"
    w = syn.weight.astype(np.float64) * (opts.input_step if first else 1.0)
    b = syn.bias.astype(np.float64)
    w = _prune(w, opts.sparsity)
    co = syn.out_channels
    qn, qp = 1 << (opts.weight_bits - 1), (1 << (opts.weight_bits - 1)) - 1
    lo, hi = signed_range(opts.weight_bits)
    integer = (_is_integer(w) and _is_integer(b) and w.min(initial=0) >= lo
               and w.max(initial=0) <= hi)
    if integer:
        unit = np.ones(co)
        rule = "integer"
        q = np.round(w)
        clipped = 0.0
    else:
        rule = opts.step_rule
        step = _steps(w, 1 if layer.is_readout else co, opts.step_rule, qp)
        unit = np.broadcast_to(step, (co,)).astype(np.float64)
        shape = (-1,) + (1,) * (w.ndim - 1)
        scaled = w / unit.reshape(shape)
        clipped = float(((scaled < -qn - 0.5) | (scaled > qp + 0.5)).mean())
        q = np.round(np.clip(scaled, -qn, qp))
    weight = q.astype(np.int64)
    bias_f = b / unit
    leak_shift, tau_error, rounding = 0, None, False
    threshold = None
    if neu.kind is NeuronKind.LIF:
        leak_shift, tau_error = leak_shift_of(f"{name}: node {neu.name!r} (LIF)", neu.tau_steps,
                                              opts.tau_tolerance)
        if opts.leak_rounding and not integer:
            bias_f = bias_f + (1 << (leak_shift - 1))
            rounding = True
    if neu.kind is not NeuronKind.NONE:
        if np.any(neu.threshold <= 0):
            raise InteropError(f"{name}: node {neu.name!r} has a threshold of "
                               f"{_fmt(float(neu.threshold.min()))}; the contract needs a "
                               f"positive threshold")
        threshold = _integer_threshold(neu.threshold.astype(np.float64), unit, neu.strict)
    bias = np.round(bias_f).astype(np.int64)
    kind = syn.kind
    sl = SynapticLayer(kind, syn.in_shape, syn.out_shape, syn.kernel if kind is LayerKind.CONV
                       else 0, syn.padding if kind is LayerKind.CONV else 0, weight, bias,
                       threshold, neu.kind, leak_shift)
    mapping = {
        "source": syn.name, "neuron_source": neu.name, "kind": kind.value,
        "neuron": neu.kind.value, "described": neu.described,
        "leak_shift": leak_shift if neu.kind is NeuronKind.LIF else None,
        "tau_steps": (None if neu.tau_steps is None
                      else [float(neu.tau_steps.min()), float(neu.tau_steps.max())]),
        "tau_error": tau_error, "leak_rounding": rounding,
        "fires_on": None if neu.kind is NeuronKind.NONE else (">" if neu.strict else ">="),
        "step_rule": rule, "step_per": "layer" if layer.is_readout else "channel",
        "unit": [float(unit.min()), float(unit.max())],
        "weight_bits": opts.weight_bits, "clipped_weights": clipped,
        "weight_sparsity": float((weight == 0).mean()),
        "threshold": None if threshold is None else [int(threshold.min()), int(threshold.max())],
    }
    return sl, mapping


def quantise_chain(chain: FloatChain, opts: QuantOptions) -> tuple[Artifact, list[dict]]:
    """The integer artifact for ``chain`` and, per layer, the mapping chosen (a dict each;
    pools too)."""
    opts.validate()
    layers, mappings = [], []
    first = True
    for i, layer in enumerate(chain.layers):
        if isinstance(layer, FloatPool):
            if layer.mode is not PoolMode.OR and not opts.pool_as_or:
                raise InteropError(
                    f"node {layer.name!r}: {_POOL_WORDS[layer.mode]} feeds the next layer "
                    f"directly; the contract pools spikes by OR (max), which changes what the "
                    f"network computes; pass --pool-as-or to accept that (the report shows the "
                    f"cost), or pool by SumPool2d + Threshold / MaxPool2d in the source")
            layers.append(PoolLayer(layer.in_shape, layer.out_shape, layer.kernel))
            mappings.append({"source": layer.name, "kind": "maxpool", "kernel": layer.kernel,
                             "source_pool": layer.mode.value,
                             "exact": layer.mode is PoolMode.OR})
            continue
        sl, mapping = _quantise_layer(i, layer, first, opts)
        first = False
        layers.append(sl)
        mappings.append(mapping)
    biases = [int(np.abs(l.bias).max()) for l in layers if isinstance(l, SynapticLayer)]
    thresholds = [int(l.threshold.max()) for l in layers
                  if isinstance(l, SynapticLayer) and l.threshold is not None]
    bias_bits = max(opts.bias_bits, signed_bits(-max(biases, default=0) - 1,
                                                max(biases, default=0)))
    if bias_bits > 32:
        raise InteropError(f"a bias of {max(biases)} integer units needs {bias_bits} bits "
                           f"(at most 32): the weights are far smaller than the bias")
    artifact = Artifact(
        name=opts.name or chain.name, T=opts.T, input_shape=chain.input_shape,
        input_bits=opts.input_bits, input_encoding=opts.encoding,
        weight_bits=opts.weight_bits, bias_bits=bias_bits,
        threshold_bits=max(16, signed_bits(0, max(thresholds, default=1))),
        layers=tuple(layers),
        metadata={"imported_from": chain.framework, "source": chain.name,
                  "import": {"weight_bits": opts.weight_bits, "step_rule": opts.step_rule,
                             "sparsity": opts.sparsity, "pool_as_or": opts.pool_as_or,
                             "input_range": opts.input_range}})
    try:
        artifact.validate()
    except ArtifactError as error:
        raise InteropError(f"the imported network does not form a valid artifact: {error}") \
            from error
    removed = [0] * len(artifact.synaptic_layers)
    if opts.remove_silent:
        artifact, removed = remove_silent_channels(artifact)
        artifact = artifact.with_metadata(silent_channels_removed=removed)
    synaptic = [m for m in mappings if "step_rule" in m]
    for m, r in zip(synaptic, removed):
        m["silent_channels_removed"] = r
    return artifact, mappings

