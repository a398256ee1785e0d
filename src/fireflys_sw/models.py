"""SpikingJelly models built from spec strings, in two flavours.

* **float** (``quantised=False``): SpikingJelly's own ``layer.Conv2d`` / ``layer.Linear`` and
  ``neuron.LIFNode`` (``tau = 2**leak_shift``, ``decay_input=True``, hard reset to 0) or
  ``neuron.IFNode``: the dense float baseline.
* **quantised** (``quantised=True``): the same graph with :class:`QuantConv2d` /
  :class:`QuantLinear` (per-output-channel LSQ, 2-8 bit weights) and
  :class:`IntegerLIFNode`. It computes in *integer units*: the current of channel ``c`` is the
  integer ``I = conv(x, q_w) + q_b`` and the membrane follows the numeric contract exactly
  (floor leak, integer threshold ``TH = round(v_threshold / unit_c)``). The unit
  ``unit_c = scale_c * input_unit`` (``input_unit = 1 / (2**input_bits - 1)`` for the first layer,
  1 for spikes) is the LSQ step size shared by the channel's weights, bias and threshold, so it
  disappears from inference. Gradients flow to ``scale`` through the straight-through rounding
  and through the surrogate, whose argument ``(H - TH) * unit`` is the float-domain distance to
  threshold. In ``eval()`` mode everything runs in float64, where these integers are exact, so
  the model is bit-exact with :mod:`fireflys_sw.golden` on the exported artifact.

The model takes the integer input (``(B, C, H, W)`` pixels in ``[0, 2**input_bits - 1]`` for
direct encoding, ``(B, T, C, H, W)`` frames otherwise) and returns the readout
``score = sum_t I`` (quantised: integers; float: currents summed over time) and, for the loss,
``logits``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from spikingjelly.activation_based.neuron.base_node import SimpleBaseNode
from torch import nn

from .artifact import InputEncoding
from .spec import ConvSpec, NeuronKind, PoolSpec, parse_spec

__all__ = [
    "round_ste", "floor_ste", "lsq_quantise", "QuantConv2d", "QuantLinear", "IntegerLIFNode",
    "SpikingNet", "build_model", "mse_step", "fold_batchnorm",
]


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity backward (straight-through)."""
    return x + (x.round() - x).detach()


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (x.floor() - x).detach()


def _grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """``x`` forward, gradient times ``g`` backward (LSQ's step-size gradient scale)."""
    return (x - x * g).detach() + x * g


def lsq_quantise(w: torch.Tensor, scale: torch.Tensor, qn: int, qp: int) -> torch.Tensor:
    """LSQ (Esser et al. 2020): ``q = round(clip(w / s, -qn, qp))`` with straight-through
    gradients and the step size's gradient scaled by ``1 / sqrt(N * qp)``, ``N`` the number of
    weights sharing one scale. Returns the integer-valued ``q``."""
    shape = (-1,) + (1,) * (w.dim() - 1)
    per_scale = w.numel() // scale.numel()
    s = _grad_scale(scale, 1.0 / math.sqrt(per_scale * qp)).reshape(shape)
    return round_ste(torch.clamp(w / s, -qn, qp))


@torch.no_grad()
def mse_step(w: torch.Tensor, qn: int, qp: int, candidates: int = 200) -> torch.Tensor:
    """Per row of ``w`` ``(rows, n)``, the step ``s`` that minimises
    ``sum (w - s * round(clip(w / s, -qn, qp)))**2`` over the row's non-zero entries, searched
    on ``candidates`` steps between ``max|w| / (4 qp)`` and ``max|w| / qp`` (no clipping).

    LSQ's own initialisation ``2 mean|w| / sqrt(qp)`` is meant for 8-bit-like grids; at 4 bits
    it is too coarse (most weights round to 0 or +-1). A row of zeros gets step 1."""
    w = w.detach().double()
    top = w.abs().amax(dim=1)
    fractions = torch.linspace(0.25, 1.0, candidates, dtype=torch.float64, device=w.device)
    steps = top[:, None] / qp * fractions[None, :]                      # (rows, K)
    safe = torch.where(steps > 0, steps, torch.ones_like(steps))
    q = torch.clamp(torch.round(w[:, None, :] / safe[:, :, None]), -qn, qp)
    error = ((q * safe[:, :, None] - w[:, None, :]) ** 2).sum(dim=2)  # zeros cost nothing
    best = steps.gather(1, error.argmin(dim=1, keepdim=True)).squeeze(1)
    return torch.where(top > 0, best, torch.ones_like(best)).float()


class _QuantSynapse:
    """What :class:`QuantConv2d` and :class:`QuantLinear` share: an LSQ step size per output
    channel (one for the whole readout layer, so that its integer scores compare across
    classes), quantised integer weights and bias."""

    def _setup_quant(self, weight_bits: int, bias_bits: int, input_unit: float,
                     per_channel: bool) -> None:
        self.weight_bits, self.bias_bits, self.input_unit = weight_bits, bias_bits, input_unit
        self.qn, self.qp = 1 << (weight_bits - 1), (1 << (weight_bits - 1)) - 1
        channels = self.weight.shape[0] if per_channel else 1
        self.scale = nn.Parameter(torch.ones(channels))
        self.init_scale()

    @torch.no_grad()
    def init_scale(self) -> None:
        """Step size per scale that minimises the squared quantisation error of the surviving
        (non-zero) weights (:func:`mse_step`); a pruned weight is 0 at any step size."""
        w = self.weight.detach().reshape(self.scale.numel(), -1)
        self.scale.copy_(mse_step(w, self.qn, self.qp).clamp_min(1e-6))

    def unit(self) -> torch.Tensor:
        """The float value of one integer unit of current, per output channel ``(Co,)``.

        Its gradient to ``scale`` carries LSQ's gradient scale too: in LSQ the two paths from
        the step size to the output (through the integer ``q`` and through the dequantisation
        ``q * s``) largely cancel; scaling only one of them would leave the other, a pure
        "temperature" gradient, to blow the readout's step size up."""
        per_scale = self.weight.numel() // self.scale.numel()
        scale = _grad_scale(self.scale, 1.0 / math.sqrt(per_scale * self.qp))
        return scale.abs().expand(self.weight.shape[0]) * self.input_unit

    def integer_weight(self) -> torch.Tensor:
        return lsq_quantise(self.weight, self.scale.abs(), self.qn, self.qp)

    def integer_bias(self) -> torch.Tensor:
        if self.bias is None:
            return torch.zeros(self.weight.shape[0], device=self.weight.device)
        limit = (1 << (self.bias_bits - 1))
        return round_ste(torch.clamp(self.bias / self.unit(), -limit, limit - 1))

    def _exact(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input, integer weight and bias, in float64 in eval mode (exact integer sums)."""
        w, b = self.integer_weight(), self.integer_bias()
        if not self.training:
            return x.double(), w.double(), b.double()
        return x, w, b


class QuantConv2d(layer.Conv2d, _QuantSynapse):
    """A SpikingJelly multi-step conv whose output is the integer current
    ``I = conv(x, q_w) + q_b`` (see the module docstring)."""

    def __init__(self, in_channels, out_channels, kernel_size, padding=0, *, weight_bits=4,
                 bias_bits=16, input_unit=1.0, per_channel=True, step_mode="m"):
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=True,
                         step_mode=step_mode)
        self._setup_quant(weight_bits, bias_bits, input_unit, per_channel)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        x, w, b = self._exact(x_seq.flatten(0, 1))
        y = F.conv2d(x, w, b, padding=self.padding)
        return y.reshape(x_seq.shape[:2] + y.shape[1:])


class QuantLinear(layer.Linear, _QuantSynapse):
    """A SpikingJelly multi-step linear layer with integer current output."""

    def __init__(self, in_features, out_features, *, weight_bits=4, bias_bits=16,
                 input_unit=1.0, per_channel=True, step_mode="m"):
        super().__init__(in_features, out_features, bias=True, step_mode=step_mode)
        self._setup_quant(weight_bits, bias_bits, input_unit, per_channel)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        x, w, b = self._exact(x_seq)
        return F.linear(x, w, b)


class IntegerLIFNode(SimpleBaseNode):
    """LIF (or IF) neuron on integer currents, exactly the numeric contract::

        H = V + floor((I - V) / 2**leak_shift)     # LIF;  IF: H = V + I
        s = H >= TH,  TH = max(1, round(v_threshold / unit))  per channel
        V = 0 if s else H                          # hard reset

    ``synapse`` is the :class:`QuantConv2d`/:class:`QuantLinear` feeding it, whose ``unit()``
    sets the integer threshold; the surrogate gradient sees ``(H - TH) * unit``, the distance to
    threshold in float units.
    """

    def __init__(self, synapse: _QuantSynapse, *, kind: NeuronKind = NeuronKind.LIF,
                 leak_shift: int = 1, v_threshold: float = 1.0,
                 surrogate_function=None, step_mode: str = "m"):
        super().__init__(v_threshold=v_threshold, v_reset=0.0,
                         surrogate_function=surrogate_function or surrogate.Sigmoid(alpha=4.0),
                         detach_reset=True, step_mode=step_mode)
        self.kind, self.leak_shift = kind, leak_shift
        # a list keeps the synapse out of this module's children (it is registered once)
        self._synapse = [synapse]

    def _channel_view(self, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return value.reshape((1, -1) + (1,) * (like.dim() - 2))

    def integer_threshold(self) -> torch.Tensor:
        unit = self._synapse[0].unit()
        return torch.clamp(round_ste(self.v_threshold / unit), min=1.0)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        # the threshold and unit depend only on the parameters: compute them once per sequence
        self._th = self._channel_view(self.integer_threshold().to(x_seq.dtype), x_seq[0])
        self._unit = self._channel_view(self._synapse[0].unit().to(x_seq.dtype), x_seq[0])
        try:
            return torch.stack([self.single_step_forward(x) for x in x_seq])
        finally:
            self._th = self._unit = None

    def neuronal_charge(self, x: torch.Tensor) -> None:
        if not isinstance(self.v, torch.Tensor):
            self.v = torch.zeros_like(x)
        if self.kind is NeuronKind.LIF:
            self.v = self.v + floor_ste((x - self.v) / (1 << self.leak_shift))
        else:
            self.v = self.v + x

    def neuronal_fire(self) -> torch.Tensor:
        th, unit = getattr(self, "_th", None), getattr(self, "_unit", None)
        if th is None:
            th = self._channel_view(self.integer_threshold().to(self.v.dtype), self.v)
            unit = self._channel_view(self._synapse[0].unit().to(self.v.dtype), self.v)
        return self.surrogate_function((self.v - th) * unit / self.v_threshold)

    def extra_repr(self) -> str:
        return f"kind={self.kind.value}, leak_shift={self.leak_shift}"


class SpikingNet(nn.Module):
    """A spiking network from a spec; see the module docstring for the two flavours.

    ``forward(x)`` returns the readout ``score`` ``(B, classes)``; :meth:`logits` gives the
    float logits for the loss (the mean readout current in float units).
    """

    def __init__(self, spec: str, *, T: int = 4, neuron_kind: NeuronKind = NeuronKind.LIF,
                 leak_shift: int = 1, quantised: bool = True, weight_bits: int = 4,
                 input_bits: int = 8, encoding: InputEncoding = InputEncoding.DIRECT,
                 bias_bits: int = 16, batch_norm: bool = False):
        super().__init__()
        if batch_norm and quantised:
            raise ValueError("batch_norm needs the float model (quantised=False): the quantised "
                             "model trains with batch norm folded into its synapses "
                             "(fold_batchnorm)")
        self.batch_norm = batch_norm
        self.net_spec = parse_spec(spec)
        self.T, self.neuron_kind, self.leak_shift = T, neuron_kind, leak_shift
        self.quantised, self.weight_bits, self.input_bits = quantised, weight_bits, input_bits
        self.encoding, self.bias_bits = encoding, bias_bits
        modules: list[nn.Module] = []
        input_unit = 1.0 / ((1 << input_bits) - 1)
        flat = False
        n_layers = len(self.net_spec.layers)
        for i, (ls, shape) in enumerate(zip(self.net_spec.layers, self.net_spec.shapes)):
            readout = i == n_layers - 1
            if isinstance(ls, PoolSpec):
                modules.append(layer.MaxPool2d(ls.kernel, ls.kernel, step_mode="m"))
                continue
            if isinstance(ls, ConvSpec):
                if quantised:
                    syn = QuantConv2d(shape[0], ls.out_channels, ls.kernel, ls.padding,
                                      weight_bits=weight_bits, bias_bits=bias_bits,
                                      input_unit=input_unit, per_channel=not readout)
                else:
                    syn = layer.Conv2d(shape[0], ls.out_channels, ls.kernel, padding=ls.padding,
                                       step_mode="m")
            else:
                if not flat:
                    modules.append(layer.Flatten(step_mode="m"))
                    flat = True
                fan_in = shape[0] * shape[1] * shape[2]
                if quantised:
                    syn = QuantLinear(fan_in, ls.out_features, weight_bits=weight_bits,
                                      bias_bits=bias_bits, input_unit=input_unit,
                                      per_channel=not readout)
                else:
                    syn = layer.Linear(fan_in, ls.out_features, step_mode="m")
            modules.append(syn)
            input_unit = 1.0
            if readout:
                continue
            if batch_norm:
                modules.append(layer.BatchNorm2d(ls.out_channels, step_mode="m")
                               if isinstance(ls, ConvSpec)
                               else layer.BatchNorm1d(ls.out_features, step_mode="m"))
            if quantised:
                modules.append(IntegerLIFNode(syn, kind=neuron_kind, leak_shift=leak_shift))
            elif neuron_kind is NeuronKind.LIF:
                modules.append(neuron.LIFNode(tau=float(1 << leak_shift), decay_input=True,
                                              v_reset=0.0, detach_reset=True,
                                              surrogate_function=surrogate.Sigmoid(alpha=4.0),
                                              step_mode="m"))
            else:
                modules.append(neuron.IFNode(v_reset=0.0, detach_reset=True,
                                             surrogate_function=surrogate.Sigmoid(alpha=4.0),
                                             step_mode="m"))
        self.layers = nn.Sequential(*modules)

    @property
    def readout(self) -> nn.Module:
        """The last (non-spiking) synaptic layer."""
        return self.layers[-1]

    @property
    def synapses(self) -> list[nn.Module]:
        return [m for m in self.layers if isinstance(m, (nn.Conv2d, nn.Linear))]

    def _input_sequence(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64 if (self.quantised and not self.training) else torch.float32)
        if not self.quantised:
            x = x / ((1 << self.input_bits) - 1)
        if self.encoding is InputEncoding.DIRECT:
            return x.unsqueeze(0).expand((self.T,) + x.shape)
        return x.transpose(0, 1)  # (B, T, ...) -> (T, B, ...)

    def currents(self, x: torch.Tensor) -> torch.Tensor:
        """The readout currents ``(T, B, classes)``."""
        functional.reset_net(self)
        seq = self._input_sequence(x)
        first = self.layers[0]
        if self.encoding is InputEncoding.DIRECT and isinstance(first, nn.Conv2d):
            # the input repeats at every step, so the first layer's current does too
            head = first(seq[:1])
            seq = head.expand((self.T,) + head.shape[1:])
            rest = self.layers[1:]
        else:
            rest = self.layers
        out = rest(seq)
        functional.reset_net(self)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.currents(x).sum(0).flatten(1)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, spike_density: float = 0.15, steps: int = 14) -> list[float]:
        """Data-driven initialisation: scale each spiking layer's weights and bias, in order,
        so that its output spike density on the sample ``x`` is near ``spike_density``.

        A freshly initialised SNN barely spikes (currents far below threshold), so no gradient
        reaches the early layers; without batch norm (which integer-only inference rules out)
        this plays the role of LSUV initialisation. The LSQ step sizes are re-initialised from
        the scaled weights. Returns the densities reached.
        """
        was = self.training
        self.eval()
        reached = []
        layers = list(self.layers)
        for index, module in enumerate(layers):
            if not isinstance(module, (nn.Conv2d, nn.Linear)) or module is self.readout:
                continue
            node = layers[index + 1]
            original_w, original_b = module.weight.detach().clone(), module.bias.detach().clone()
            seen: list[float] = []
            hook = node.register_forward_hook(lambda _m, _i, out: seen.append(float(out.mean())))

            def density(log_gain: float) -> float:
                module.weight.copy_(original_w * math.exp(log_gain))
                module.bias.copy_(original_b * math.exp(log_gain))
                if isinstance(module, _QuantSynapse):
                    module.init_scale()
                seen.clear()
                self(x)
                return seen[0]

            lo, hi = math.log(1e-2), math.log(1e4)
            for _ in range(steps):
                mid = (lo + hi) / 2
                if density(mid) < spike_density:
                    lo = mid
                else:
                    hi = mid
            reached.append(density((lo + hi) / 2))
            hook.remove()
        self.train(was)
        return reached

    def logits(self, score: torch.Tensor) -> torch.Tensor:
        """Float logits from :meth:`forward`'s score (mean current in float units)."""
        if self.quantised:
            return score.float() * self.readout.unit().float() / self.T
        return score / self.T


@torch.no_grad()
def fold_batchnorm(model: SpikingNet) -> SpikingNet:
    """A float :class:`SpikingNet` without batch norm that computes what ``model`` computes in
    ``eval()`` mode: each ``conv -> BN`` pair becomes one conv with ``w * g / sigma`` and bias
    ``(b - mu) * g / sigma + beta`` (``sigma = sqrt(running_var + eps)``), exactly (up to float
    rounding). A model without batch norm comes back as a copy."""
    folded = SpikingNet(model.net_spec.text, T=model.T, neuron_kind=model.neuron_kind,
                        leak_shift=model.leak_shift, quantised=model.quantised,
                        weight_bits=model.weight_bits, input_bits=model.input_bits,
                        encoding=model.encoding, bias_bits=model.bias_bits)
    modules = list(model.layers)
    targets = iter(folded.synapses)
    for index, module in enumerate(modules):
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        target = next(targets)
        weight = module.weight.detach().double()
        bias = (module.bias.detach().double() if module.bias is not None
                else torch.zeros(weight.shape[0], dtype=torch.float64))
        following = modules[index + 1] if index + 1 < len(modules) else None
        if isinstance(following, nn.modules.batchnorm._BatchNorm):
            sigma = (following.running_var.double() + following.eps).sqrt()
            gain = following.weight.double() / sigma
            weight = weight * gain.reshape((-1,) + (1,) * (weight.dim() - 1))
            bias = (bias - following.running_mean.double()) * gain + following.bias.double()
        target.weight.copy_(weight.to(target.weight.dtype))
        target.bias.copy_(bias.to(target.bias.dtype))
        if hasattr(module, "scale") and hasattr(target, "scale"):
            target.scale.copy_(module.scale)
    folded.train(model.training)
    return folded


def build_model(spec: str, **options) -> SpikingNet:
    """Build a :class:`SpikingNet` from a spec string or preset name (``scnn5``)."""
    return SpikingNet(spec, **options)
