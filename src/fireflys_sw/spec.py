"""Model spec strings: ``1x28x28-8c3p1-16c3p1-mp2-32c3p1-mp2-64c3p1-64c3p1-mp2-10fc``.

Tokens, separated by ``-``:

* ``CxHxW`` (first token only): input channels, height, width.
* ``{co}c{k}p{p}``: conv, ``co`` output channels, ``k`` x ``k`` kernel, padding ``p`` (``p0`` when
  omitted), stride 1, followed by a spiking neuron.
* ``mp{k}``: max-pool over ``k`` x ``k`` windows, stride ``k``, on spikes (logical OR).
* ``{n}fc`` or ``{n}``: fully connected (the input is flattened in C, H, W order).

Every conv/fc layer spikes except the last, which is the readout (summed currents). The last
layer must be fully connected or a conv whose output is 1x1.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .errors import SpecError

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

_INPUT = re.compile(r"^(\d+)x(\d+)x(\d+)$")
_CONV = re.compile(r"^(\d+)c(\d+)(?:p(\d+))?$")
_POOL = re.compile(r"^mp(\d+)$")
_FC = re.compile(r"^(\d+)(?:fc)?$")


def resolve_spec(text: str) -> str:
    """Return the spec string for ``text``, which is a spec or a preset name (``scnn5``)."""
    return PRESETS.get(text.strip().lower(), text.strip())


def parse_spec(text: str) -> NetworkSpec:
    """Parse a spec string or preset name; a spec that cannot be built raises :class:`SpecError`
    naming the offending token."""
    text = resolve_spec(text)
    tokens = text.split("-")
    match = _INPUT.match(tokens[0])
    if not match:
        raise SpecError(f"model spec {text!r}: the first token {tokens[0]!r} must be the input "
                        f"shape CxHxW, e.g. 1x28x28")
    shape = tuple(int(v) for v in match.groups())
    if min(shape) < 1:
        raise SpecError(f"model spec {text!r}: input shape {tokens[0]!r} has a zero dimension")
    if len(tokens) < 2:
        raise SpecError(f"model spec {text!r}: no layers after the input shape")
    layers: list[LayerSpec] = []
    shapes = [shape]
    for token in tokens[1:]:
        c, h, w = shape
        if m := _CONV.match(token):
            co, k, p = int(m[1]), int(m[2]), int(m[3] or 0)
            if co < 1 or k < 1:
                raise SpecError(f"model spec {text!r}: layer {token!r} needs at least one "
                                f"channel and a kernel of at least 1")
            if p >= k:
                raise SpecError(f"model spec {text!r}: layer {token!r} pads by {p}, which must "
                                f"be smaller than the kernel {k}")
            oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
            if oh < 1 or ow < 1:
                raise SpecError(f"model spec {text!r}: layer {token!r} has a {k}x{k} kernel but "
                                f"its input is only {h}x{w} (padding {p})")
            layer, shape = ConvSpec(co, k, p), (co, oh, ow)
        elif m := _POOL.match(token):
            k = int(m[1])
            if k < 2:
                raise SpecError(f"model spec {text!r}: layer {token!r} needs a window of at "
                                f"least 2")
            if h < k or w < k:
                raise SpecError(f"model spec {text!r}: layer {token!r} pools {k}x{k} windows "
                                f"but its input is only {h}x{w}")
            layer, shape = PoolSpec(k), (c, h // k, w // k)
        elif m := _FC.match(token):
            n = int(m[1])
            if n < 1:
                raise SpecError(f"model spec {text!r}: layer {token!r} needs at least one output")
            layer, shape = FCSpec(n), (n, 1, 1)
        else:
            raise SpecError(f"model spec {text!r}: unknown layer token {token!r} (expected "
                            f"e.g. 16c3p1, mp2 or 10fc)")
        layers.append(layer)
        shapes.append(shape)
    last = layers[-1]
    if isinstance(last, PoolSpec) or (isinstance(last, ConvSpec) and shape[1:] != (1, 1)):
        raise SpecError(f"model spec {text!r}: the last layer {last.token()!r} must be the "
                        f"readout, a fully connected layer such as 10fc")
    return NetworkSpec(shapes[0], tuple(layers), tuple(shapes))
