"""Model spec strings: ``1x28x28-8c3p1-16c3p1-mp2-32c3p1-mp2-64c3p1-64c3p1-mp2-10fc``.

Tokens, separated by ``-``:

* ``CxHxW`` (first token only): input channels, height, width.
* ``{co}c{k}p{p}``: conv, ``co`` output channels, ``k`` x ``k`` kernel, padding ``p`` (``p0`` when
  omitted), stride 1, followed by a spiking neuron.
* ``mp{k}``: max-pool over ``k`` x ``k`` windows, stride ``k``, on spikes (logical OR).
* ``{n}fc`` or ``{n}``: fully connected (the input is flattened in C, H, W order).

Every conv/fc layer spikes except the last, which is the readout (summed currents). The last
layer must be fully connected or a conv whose output is 1x1. A max-pool directly follows a conv or
fc layer (the accelerator fuses it into that layer's core): not first, not after another pool.

Numbers are ASCII digits, at most :data:`~fireflys_sw.limits.MAX_NUMBER_DIGITS` of them, and each
dimension at most :data:`~fireflys_sw.limits.MAX_DIM`; a spec is at most
:data:`~fireflys_sw.limits.MAX_SPEC_CHARS` characters and :data:`~fireflys_sw.limits.MAX_LAYERS`
layers, and the network at most :data:`~fireflys_sw.limits.MAX_WEIGHTS` weights,
:data:`~fireflys_sw.limits.MAX_MAP_NEURONS` neurons in any map and
:data:`~fireflys_sw.limits.MAX_MACS` multiply-accumulates per time step.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .errors import SpecError
from .limits import (MAX_DIM, MAX_LAYERS, MAX_MACS, MAX_MAP_NEURONS, MAX_NUMBER_DIGITS,
                     MAX_SPEC_CHARS, MAX_WEIGHTS)

__all__ = [
    "NeuronKind", "ConvSpec", "PoolSpec", "FCSpec", "NetworkSpec", "PRESETS", "parse_spec",
    "resolve_spec",
]


class NeuronKind(enum.Enum):
    """How a layer's neurons integrate; ``NONE`` marks the non-spiking readout layer.
    ``RADIX``: E3NE's radix encoding, a ``T``-bit activation sent as its ``T`` binary digits,
    most significant first (``docs/numeric-contract.md``)."""

    LIF = "lif"
    IF = "if"
    NONE = "none"
    RADIX = "radix"


@dataclass(frozen=True)
class ConvSpec:
    out_channels: int
    kernel: int
    padding: int

    def token(self) -> str:
        return f"{self.out_channels}c{self.kernel}p{self.padding}"


@dataclass(frozen=True)
class PoolSpec:
    kernel: int

    def token(self) -> str:
        return f"mp{self.kernel}"


@dataclass(frozen=True)
class FCSpec:
    out_features: int

    def token(self) -> str:
        return f"{self.out_features}fc"


LayerSpec = ConvSpec | PoolSpec | FCSpec


@dataclass(frozen=True)
class NetworkSpec:
    """A parsed spec: the input shape ``(C, H, W)`` and the layers in order.

    ``shapes[i]`` is the ``(C, H, W)`` shape entering layer ``i``; ``shapes[-1]`` is the
    output shape, ``(classes, 1, 1)``.
    """

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    shapes: tuple[tuple[int, int, int], ...]

    @property
    def text(self) -> str:
        c, h, w = self.input_shape
        return "-".join([f"{c}x{h}x{w}"] + [layer.token() for layer in self.layers])

    @property
    def classes(self) -> int:
        return self.shapes[-1][0]


PRESETS = {
    "scnn5": "1x28x28-8c3p1-16c3p1-mp2-32c3p1-mp2-64c3p1-64c3p1-mp2-10fc",
    "scnn7": "2x48x48-16c3p1-32c3p1-mp2-32c3p1-64c3p1-mp2-64c3p1-128c3p1-mp2-128c3p1-10fc",
    "scnn9": ("3x32x32-16c3p1-32c3p1-mp2-32c3p1-64c3p1-mp2-64c3p1-128c3p1-mp2-128c3p1-256c3p1"
              "-mp2-10fc"),
}

# ASCII digits only (``\\d`` would take any Unicode digit), and few enough that int() is cheap
_N = r"([0-9]+)"
_INPUT = re.compile(rf"^{_N}x{_N}x{_N}$")
_CONV = re.compile(rf"^{_N}c{_N}(?:p{_N})?$")
_POOL = re.compile(rf"^mp{_N}$")
_FC = re.compile(rf"^{_N}(?:fc)?$")


def resolve_spec(text: str) -> str:
    """Return the spec string for ``text``, which is a spec or a preset name (``scnn5``)."""
    return PRESETS.get(text.strip().lower(), text.strip())


def _shown(text: str) -> str:
    """``text`` for a message: at most 80 characters."""
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")


def parse_spec(text: str) -> NetworkSpec:
    """Parse a spec string or preset name; a spec that cannot be built raises :class:`SpecError`
    naming the offending token."""
    if not isinstance(text, str):
        raise SpecError(f"model spec must be a string, not {type(text).__name__}")
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(f"model spec {_shown(text)} is {len(text)} characters, more than the "
                        f"limit of {MAX_SPEC_CHARS}")
    text = resolve_spec(text)
    shown = _shown(text)
    tokens = text.split("-")
    if len(tokens) - 1 > MAX_LAYERS:
        raise SpecError(f"model spec {shown}: {len(tokens) - 1} layers, more than the limit of "
                        f"{MAX_LAYERS}")

    def numbers(token: str, match: re.Match) -> tuple[int, ...]:
        for digits in match.groups():
            if digits is not None and len(digits) > MAX_NUMBER_DIGITS:
                raise SpecError(f"model spec {shown}: {_shown(token)} has a number of "
                                f"{len(digits)} digits (at most {MAX_NUMBER_DIGITS})")
        values = tuple(int(d) if d is not None else None for d in match.groups())
        for value in values:
            if value is not None and value > MAX_DIM:
                raise SpecError(f"model spec {shown}: {_shown(token)} has the number {value}, "
                                f"more than the limit of {MAX_DIM}")
        return values

    match = _INPUT.match(tokens[0])
    if not match:
        raise SpecError(f"model spec {shown}: the first token {_shown(tokens[0])} must be the "
                        f"input shape CxHxW, e.g. 1x28x28")
    shape = numbers(tokens[0], match)
    if min(shape) < 1:
        raise SpecError(f"model spec {shown}: input shape {_shown(tokens[0])} has a zero "
                        f"dimension")
    if shape[0] * shape[1] * shape[2] > MAX_MAP_NEURONS:
        raise SpecError(f"model spec {shown}: input shape {_shown(tokens[0])} has "
                        f"{shape[0] * shape[1] * shape[2]} neurons, more than the limit of "
                        f"{MAX_MAP_NEURONS}")
    if len(tokens) < 2:
        raise SpecError(f"model spec {shown}: no layers after the input shape")
    layers: list[LayerSpec] = []
    shapes = [shape]
    weights = macs = 0
    for token in tokens[1:]:
        c, h, w = shape
        if m := _CONV.match(token):
            co, k, p = numbers(token, m)
            p = p or 0
            if co < 1 or k < 1:
                raise SpecError(f"model spec {shown}: layer {_shown(token)} needs at least one "
                                f"channel and a kernel of at least 1")
            if p >= k:
                raise SpecError(f"model spec {shown}: layer {_shown(token)} pads by {p}, which "
                                f"must be smaller than the kernel {k}")
            oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
            if oh < 1 or ow < 1:
                raise SpecError(f"model spec {shown}: layer {_shown(token)} has a {k}x{k} kernel "
                                f"but its input is only {h}x{w} (padding {p})")
            layer, shape = ConvSpec(co, k, p), (co, oh, ow)
            weights += co * c * k * k
            macs += co * c * k * k * oh * ow
        elif m := _POOL.match(token):
            (k,) = numbers(token, m)
            if k < 2:
                raise SpecError(f"model spec {shown}: layer {_shown(token)} needs a window of at "
                                f"least 2")
            if h < k or w < k:
                raise SpecError(f"model spec {shown}: layer {_shown(token)} pools {k}x{k} windows "
                                f"but its input is only {h}x{w}")
            if not layers or isinstance(layers[-1], PoolSpec):
                raise SpecError(f"model spec {shown}: layer {_shown(token)} must directly follow "
                                f"a conv or fc layer (the accelerator fuses each max-pool into "
                                f"that layer)")
            layer, shape = PoolSpec(k), (c, h // k, w // k)
        elif m := _FC.match(token):
            (n,) = numbers(token, m)
            if n < 1:
                raise SpecError(f"model spec {shown}: layer {_shown(token)} needs at least one "
                                f"output")
            layer, shape = FCSpec(n), (n, 1, 1)
            weights += n * c * h * w
            macs += n * c * h * w
        else:
            raise SpecError(f"model spec {shown}: unknown layer token {_shown(token)} (expected "
                            f"e.g. 16c3p1, mp2 or 10fc)")
        if shape[0] * shape[1] * shape[2] > MAX_MAP_NEURONS:
            raise SpecError(f"model spec {shown}: {_shown(token)} makes a map of "
                            f"{'x'.join(map(str, shape))} = {shape[0] * shape[1] * shape[2]} "
                            f"neurons, more than the limit of {MAX_MAP_NEURONS}")
        if weights > MAX_WEIGHTS:
            raise SpecError(f"model spec {shown}: {weights} weights up to {_shown(token)}, more "
                            f"than the limit of {MAX_WEIGHTS}")
        if macs > MAX_MACS:
            raise SpecError(f"model spec {shown}: {macs} multiply-accumulates per time step up "
                            f"to {_shown(token)}, more than the limit of {MAX_MACS}")
        layers.append(layer)
        shapes.append(shape)
    last = layers[-1]
    if isinstance(last, PoolSpec) or (isinstance(last, ConvSpec) and shape[1:] != (1, 1)):
        raise SpecError(f"model spec {shown}: the last layer {_shown(last.token())} must be the "
                        f"readout, a fully connected layer such as 10fc")
    return NetworkSpec(shapes[0], tuple(layers), tuple(shapes))
