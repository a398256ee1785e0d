"""The integer artifact: the versioned file that carries a trained, compressed network from the
software side to the hardware side.

Format (version 1): one ``.npz`` file (numpy's zip of ``.npy`` arrays, read by the strict
:class:`~fireflys_sw.npzfile.NpzFile`: no pickle, sizes checked before allocation, only the members
the header names; limits in :mod:`fireflys_sw.limits`). The array ``header`` holds UTF-8 JSON::

    {"format": "fireflys-artifact", "version": 1, "name": str, "T": int,
     "input": {"shape": [C, H, W], "bits": int, "encoding": "direct" | "frames"},
     "weight_bits": int, "bias_bits": int, "threshold_bits": int, "classes": int,
     "readout": "sum-current",
     "layers": [{"kind": "conv", "in_shape": [C,H,W], "out_shape": [C,H,W], "kernel": k,
                 "padding": p, "neuron": "lif" | "if" | "none", "leak_shift": k},
                {"kind": "maxpool", "in_shape": ..., "out_shape": ..., "kernel": k},
                {"kind": "fc", "in_shape": ..., "out_shape": [n, 1, 1], "neuron": ..., ...}],
     "metadata": {...free-form JSON: spec, data set, training command, accuracy...}}

and, for synaptic layer ``i``, the integer arrays ``layers.i.weight`` (conv ``(Co, Ci, K, K)``, fc
``(Co, Ci*H*W)`` in C, H, W order), ``layers.i.bias`` ``(Co,)`` and, for spiking layers,
``layers.i.threshold`` ``(Co,)``. The meaning of every number is fixed by the numeric contract in
``docs/numeric-contract.md``; :mod:`fireflys_sw.golden` is its executable form.

Version 2 adds radix layers (``"neuron": "radix"``, E3NE's radix encoding): such a layer has no
threshold but an array ``layers.i.shift`` ``(Co,)``, the requantisation's right shift per output
channel. A file is written as version 1 unless it has radix layers, so older readers still read
every LIF/IF artifact.

Loading validates every field and raises :class:`ArtifactError` with one line naming the field.
"""

from __future__ import annotations

import enum
import io
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactError
from .fields import FieldReader, parse_json, shown
from .limits import (MAX_DIM, MAX_HEADER_BYTES, MAX_JSON_DEPTH, MAX_LAYERS, MAX_MACS,
                     MAX_MAP_NEURONS, MAX_NEURON_STEPS, MAX_WEIGHTS)
from .npzfile import NpzFile
from .spec import NeuronKind

__all__ = [
    "ARTIFACT_FORMAT", "ARTIFACT_VERSION", "InputEncoding", "LayerKind", "SynapticLayer",
    "PoolLayer", "Artifact", "save_artifact", "load_artifact", "shipped_artifacts",
    "resolve_artifact", "signed_range", "check_artifact", "RADIX_VERSION",
]

ARTIFACT_FORMAT = "fireflys-artifact"
ARTIFACT_VERSION = 2
#: The first version that can hold radix layers.
RADIX_VERSION = 2
#: Largest activation width (= T) of a radix network.
RADIX_MAX_T = 16
#: Largest requantisation shift of a radix layer.
RADIX_MAX_SHIFT = 31
SHIPPED_DIR = Path(__file__).parent / "shipped"


class InputEncoding(enum.Enum):
    """``DIRECT``: one static integer frame, repeated at every time step. ``FRAMES``: one integer
    frame per time step (event data integrated into T frames)."""

    DIRECT = "direct"
    FRAMES = "frames"


class LayerKind(enum.Enum):
    CONV = "conv"
    MAXPOOL = "maxpool"
    FC = "fc"


def signed_range(bits: int) -> tuple[int, int]:
    """The range of a two's complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True, eq=False)
class SynapticLayer:
    """A conv or fully connected layer with its neurons.

    Attributes
    ----------
    kind : LayerKind
        ``CONV`` (stride 1) or ``FC``.
    in_shape, out_shape : tuple of int
        ``(C, H, W)`` entering and leaving the layer; fc layers leave ``(Co, 1, 1)``.
    kernel, padding : int
        Conv kernel size and zero padding; 0 for fc.
    weight : ndarray of int
        Conv ``(Co, Ci, K, K)``, fc ``(Co, Ci*H*W)``.
    bias : ndarray of int64, ``(Co,)``
        Added to the current at every time step.
    threshold : ndarray of int64 ``(Co,)`` or None
        Firing threshold; ``None`` for the readout layer.
    neuron : NeuronKind
        ``LIF``, ``IF`` or ``NONE`` (the readout, which does not spike).
    leak_shift : int
        LIF time constant ``tau = 2**leak_shift``; 0 for IF, radix and the readout.
    shift : ndarray of int64 ``(Co,)`` or None
        Radix layers only: the requantisation's rounding right shift per output channel
        (``docs/numeric-contract.md``); ``None`` otherwise.
    """

    kind: LayerKind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int
    padding: int
    weight: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray | None
    neuron: NeuronKind
    leak_shift: int
    shift: np.ndarray | None = None

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    @property
    def in_channels(self) -> int:
        return self.in_shape[0]

    @property
    def is_readout(self) -> bool:
        return self.neuron is NeuronKind.NONE

    @property
    def macs(self) -> int:
        """Multiply-accumulates per time step if every input and weight were non-zero."""
        _, h, w = self.out_shape
        return int(self.weight.size) * h * w

    def current_bounds(self, input_max: int) -> tuple[np.ndarray, np.ndarray]:
        """Per output channel, the least and greatest current ``I`` for inputs in
        ``[0, input_max]`` (spikes: ``input_max = 1``)."""
        w = self.weight.reshape(self.out_channels, -1).astype(np.int64)
        lo = self.bias + input_max * np.minimum(w, 0).sum(axis=1)
        hi = self.bias + input_max * np.maximum(w, 0).sum(axis=1)
        return lo, hi


@dataclass(frozen=True, eq=False)
class PoolLayer:
    """Max-pool on spikes (logical OR) over ``kernel`` x ``kernel`` windows, stride ``kernel``."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int
    kind: LayerKind = field(default=LayerKind.MAXPOOL, init=False)


Layer = SynapticLayer | PoolLayer


@dataclass(frozen=True, eq=False)
class Artifact:
    """A trained integer network. See the module docstring for the file format and
    ``docs/numeric-contract.md`` for what it computes."""

    name: str
    T: int
    input_shape: tuple[int, int, int]
    input_bits: int
    input_encoding: InputEncoding
    weight_bits: int
    bias_bits: int
    threshold_bits: int
    layers: tuple[Layer, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = ARTIFACT_VERSION

    @property
    def classes(self) -> int:
        return self.layers[-1].out_shape[0]

    @property
    def synaptic_layers(self) -> list[SynapticLayer]:
        return [layer for layer in self.layers if isinstance(layer, SynapticLayer)]

    @property
    def input_max(self) -> int:
        return (1 << self.input_bits) - 1

    @property
    def radix(self) -> bool:
        """Whether the network's spiking layers use E3NE's radix encoding."""
        return any(isinstance(layer, SynapticLayer) and layer.neuron is NeuronKind.RADIX
                   for layer in self.layers)

    @property
    def activation_max(self) -> int:
        """Largest value a hidden layer passes on: ``2**T - 1`` (radix), 1 (a spike)."""
        return (1 << self.T) - 1 if self.radix else 1

    def value_max(self, index: int) -> int:
        """Largest input value of layer ``index``: the input's for the first layer, else
        :attr:`activation_max`."""
        return self.input_max if index == 0 else self.activation_max

    @property
    def format_version(self) -> int:
        """The file version this artifact is written as: 1 unless it has radix layers."""
        return RADIX_VERSION if self.radix else 1

    def weight_sparsity(self) -> float:
        """Fraction of conv/fc weights that are zero."""
        total = sum(layer.weight.size for layer in self.synaptic_layers)
        zeros = sum(int((layer.weight == 0).sum()) for layer in self.synaptic_layers)
        return zeros / total

    def with_metadata(self, **items: Any) -> "Artifact":
        return replace(self, metadata={**self.metadata, **items})

    def validate(self) -> None:
        """Check every field; raise :class:`ArtifactError` naming the first bad one
        (:func:`check_artifact`)."""
        check_artifact(self, "artifact")


# --- saving -------------------------------------------------------------------------------------

def _header(artifact: Artifact) -> dict[str, Any]:
    layers = []
    for layer in artifact.layers:
        entry: dict[str, Any] = {"kind": layer.kind.value, "in_shape": list(layer.in_shape),
                                 "out_shape": list(layer.out_shape), "kernel": layer.kernel}
        if isinstance(layer, SynapticLayer):
            entry.update(padding=layer.padding, neuron=layer.neuron.value,
                         leak_shift=layer.leak_shift)
        layers.append(entry)
    return {
        "format": ARTIFACT_FORMAT, "version": artifact.format_version, "name": artifact.name,
        "T": artifact.T,
        "input": {"shape": list(artifact.input_shape), "bits": artifact.input_bits,
                  "encoding": artifact.input_encoding.value},
        "weight_bits": artifact.weight_bits, "bias_bits": artifact.bias_bits,
        "threshold_bits": artifact.threshold_bits, "classes": artifact.classes,
        "readout": "radix-accumulator" if artifact.radix else "sum-current", "layers": layers, "metadata": artifact.metadata,
    }


def save_artifact(artifact: Artifact, path: str | os.PathLike) -> Path:
    """Validate ``artifact`` and write it to ``path`` (an ``.npz`` file); return the path."""
    artifact.validate()
    path = Path(path)
    arrays = {"header": np.frombuffer(json.dumps(_header(artifact), indent=1).encode(), np.uint8)}
    for i, layer in enumerate(artifact.layers):
        if isinstance(layer, SynapticLayer):
            arrays[f"layers.{i}.weight"] = layer.weight.astype(np.int8 if artifact.weight_bits <= 8
                                                               else np.int16)
            arrays[f"layers.{i}.bias"] = layer.bias.astype(np.int64)
            if layer.threshold is not None:
                arrays[f"layers.{i}.threshold"] = layer.threshold.astype(np.int64)
            if layer.shift is not None:
                arrays[f"layers.{i}.shift"] = layer.shift.astype(np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
    except OSError as error:
        raise ArtifactError(f"cannot write artifact {str(path)!r}: {error.strerror}") from error
    return path


# --- loading ------------------------------------------------------------------------------------

def shipped_artifacts() -> dict[str, Path]:
    """The trained artifacts shipped inside the package, by name (``scnn5-fashion-mnist``)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.npz"))}


def resolve_artifact(name_or_path: str | os.PathLike) -> Path:
    """A path to an artifact file, or the name of a shipped artifact."""
    shipped = shipped_artifacts()
    try:
        path = Path(name_or_path)
        exists = path.exists()
    except (OSError, ValueError) as error:   # a name too long, a NUL byte
        raise ArtifactError(f"artifact {str(name_or_path)[:200]!r} cannot be opened: "
                            f"{error}") from None
    if not exists and str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    if not exists:
        names = ", ".join(shipped) or "none"
        raise ArtifactError(f"artifact {str(name_or_path)!r} not found: give a path to an .npz "
                            f"artifact or a shipped name ({names})")
    return path


class _Reader(FieldReader):
    """Fields of the JSON header."""

    error = ArtifactError
    shape_max = MAX_DIM


_MEMBER = re.compile(r"^layers\.(0|[1-9][0-9]{0,3})\.(weight|bias|threshold|shift)$")


def load_artifact(name_or_path: str | os.PathLike) -> Artifact:
    """Load and validate an artifact file (or a shipped artifact by name).

    Raises :class:`ArtifactError` with one line naming the problem for a missing, truncated,
    malformed, inconsistent, oversized or newer-version file, or one the hardware flow cannot
    map (:func:`check_artifact`). The container is read by :class:`~fireflys_sw.npzfile.NpzFile`:
    no pickle, only the members the header names, sizes checked before allocation.
    """
    path = resolve_artifact(name_or_path)
    where = f"artifact {str(path)!r}"
    with NpzFile(path, ArtifactError, where, "fireflys artifact (.npz)") as npz:
        if "header" not in npz.names:
            raise ArtifactError(f"{where}: header is missing (not a fireflys artifact)")
        header = _parse_json(npz.read_bytes("header", "header", MAX_HEADER_BYTES), where)
        artifact = _from_header(header, npz, _Reader(where))
    check_artifact(artifact, where)
    return artifact


def _parse_json(raw: bytes, where: str) -> Any:
    return parse_json(raw, lambda problem: ArtifactError(f"{where}: {problem}"), "header",
                      MAX_JSON_DEPTH)


def _from_header(header: Any, npz: NpzFile, r: _Reader) -> Artifact:
    if not isinstance(header, dict) or header.get("format") != ARTIFACT_FORMAT:
        raise r.fail("format", f"must be {ARTIFACT_FORMAT!r} (not a fireflys artifact)")
    version = r.get(header, "version", "version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise r.fail("version", f"must be a positive integer, not {shown(version)}")
    if version > ARTIFACT_VERSION:
        raise r.fail("version", f"is {version}, newer than this fireflys reads "
                                f"({ARTIFACT_VERSION}): upgrade fireflys")
    inp = r.get(header, "input", "input")
    weight_bits = r.int(header, "weight_bits", "weight_bits", 2, 8)
    readout = r.str(header, "readout", "readout")
    if readout not in ("sum-current", "radix-accumulator"):
        raise r.fail("readout", f"is {readout[:40]!r}, not 'sum-current' (or "
                                f"'radix-accumulator' for a radix network)")
    layers_json = r.get(header, "layers", "layers")
    if not isinstance(layers_json, list) or not layers_json:
        raise r.fail("layers", "must be a non-empty list")
    if len(layers_json) > MAX_LAYERS:
        raise r.fail("layers", f"has {len(layers_json)} layers, more than the limit of "
                               f"{MAX_LAYERS}")
    # the header's own fields first, so that the members can be matched before any is read
    fields: list[tuple] = []
    for i, entry in enumerate(layers_json):
        name = f"layers[{i}]"
        kind = r.enum(entry, "kind", f"{name}.kind", LayerKind)
        in_shape = r.shape(entry, "in_shape", f"{name}.in_shape")
        out_shape = r.shape(entry, "out_shape", f"{name}.out_shape")
        kernel = r.int(entry, "kernel", f"{name}.kernel", 0, 64)
        if kind is LayerKind.MAXPOOL:
            fields.append((kind, in_shape, out_shape, kernel))
            continue
        padding = r.int(entry, "padding", f"{name}.padding", 0, 63)
        neuron = r.enum(entry, "neuron", f"{name}.neuron", NeuronKind)
        leak_shift = r.int(entry, "leak_shift", f"{name}.leak_shift", 0, 16)
        fields.append((kind, in_shape, out_shape, kernel, padding, neuron, leak_shift))
    # every member must be one the header uses: an extra one is refused unread
    for member in npz.unexpected + [n + ".npy" for n in npz.names if n != "header"]:
        m = _MEMBER.match(member[:-4]) if member.endswith(".npy") else None
        if not m or int(m[1]) >= len(fields) or fields[int(m[1])][0] is LayerKind.MAXPOOL:
            raise ArtifactError(f"{r.where}: member {member[:80]!r} is not part of the format "
                                f"(only header.npy and layers.<i>.weight/bias/threshold/shift.npy of "
                                f"the conv/fc layers the header lists)")
    layers: list[Layer] = []
    for i, entry in enumerate(fields):
        name = f"layers[{i}]"
        if entry[0] is LayerKind.MAXPOOL:
            layers.append(PoolLayer(*entry[1:]))
            continue
        kind, in_shape, out_shape, kernel, padding, neuron, leak_shift = entry

        def array(part: str, limit: int, required: bool = True) -> np.ndarray | None:
            key = f"layers.{i}.{part}"
            if key not in npz.names and not required:
                return None
            return npz.read_integers(key, f"{name}.{part}", limit)

        if neuron is NeuronKind.RADIX and version < RADIX_VERSION:
            raise r.fail(f"{name}.neuron", f"is 'radix', which needs version {RADIX_VERSION}, "
                                           f"but the file is version {version}")
        layers.append(SynapticLayer(
            kind, in_shape, out_shape, kernel, padding, array("weight", MAX_WEIGHTS),
            array("bias", MAX_DIM),
            array("threshold", MAX_DIM,
                  required=neuron in (NeuronKind.LIF, NeuronKind.IF)),
            neuron, leak_shift,
            array("shift", MAX_DIM, required=neuron is NeuronKind.RADIX)))
    radix = any(isinstance(x, SynapticLayer) and x.neuron is NeuronKind.RADIX for x in layers)
    if (readout == "radix-accumulator") != radix:
        raise r.fail("readout", f"is {readout!r}, but the network "
                                f"{'has' if radix else 'has no'} radix layers")
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise r.fail("metadata", "must be a JSON object")
    classes = r.int(header, "classes", "classes", 1, MAX_DIM)
    if classes != layers[-1].out_shape[0]:
        raise r.fail("classes", f"is {classes}, but the readout layers[{len(layers) - 1}] has "
                                f"{layers[-1].out_shape[0]} outputs")
    return Artifact(
        name=r.str(header, "name", "name"),
        T=r.int(header, "T", "T", 1, 256),
        input_shape=r.shape(inp, "shape", "input.shape"),
        input_bits=r.int(inp, "bits", "input.bits", 1, 16),
        input_encoding=r.enum(inp, "encoding", "input.encoding", InputEncoding),
        weight_bits=weight_bits,
        bias_bits=r.int(header, "bias_bits", "bias_bits", 2, 32),
        threshold_bits=r.int(header, "threshold_bits", "threshold_bits", 2, 32),
        layers=tuple(layers), metadata=metadata, version=version)


def check_artifact(artifact: Artifact, where: str = "artifact") -> None:
    """Check that ``artifact`` is well formed and that the whole flow can run it; raise
    :class:`ArtifactError` with one line ``"<where>: <field> <problem>"`` otherwise.

    The one semantic check that the loader, :func:`save_artifact`, :meth:`Artifact.validate` and
    the hardware flow share: field ranges, the shape chain, array shapes, dtypes and value
    ranges, the size limits of :mod:`fireflys_sw.limits`, and what the accelerator maps (each
    max-pool directly after a spiking conv/fc layer, whose core it joins; the last layer the
    summed-current readout leaving one pixel, ``leak_shift`` 0). Imports nothing from the
    hardware side.
    """
    _validate(artifact, where)


def _validate(a: Artifact, where: str) -> None:
    def fail(name: str, problem: str) -> ArtifactError:
        return ArtifactError(f"{where}: {name} {problem}")

    if not 1 <= a.T <= 256:
        raise fail("T", f"is {a.T}, outside [1, 256]")
    if not 2 <= a.weight_bits <= 8:
        raise fail("weight_bits", f"is {a.weight_bits}, outside [2, 8]")
    if not 2 <= a.bias_bits <= 32 or not 2 <= a.threshold_bits <= 32:
        raise fail("bias_bits", f"and threshold_bits are {a.bias_bits} and {a.threshold_bits}, "
                                f"each must be in [2, 32]")
    if not a.layers:
        raise fail("layers", "must be a non-empty list")
    if len(a.layers) > MAX_LAYERS:
        raise fail("layers", f"has {len(a.layers)} layers, more than the limit of {MAX_LAYERS}")
    _check_map(a.input_shape, "input.shape", a.T, fail)
    shape = a.input_shape
    previous = None
    weights = macs = 0
    for i, layer in enumerate(a.layers):
        name = f"layers[{i}]"
        if tuple(layer.in_shape) != tuple(shape):
            raise fail(f"{name}.in_shape", f"is {list(layer.in_shape)} but the previous layer "
                                           f"gives {list(shape)}")
        c, h, w = shape
        if isinstance(layer, PoolLayer):
            # the accelerator fuses a pool into the core of the spiking layer before it
            if not isinstance(previous, SynapticLayer):
                where_ = "first" if previous is None else "after another maxpool"
                raise fail(f"{name}.kind", f"maxpool must directly follow a spiking conv or fc "
                                           f"layer, not come {where_} (the accelerator fuses "
                                           f"each pool into that layer's core)")
            k = layer.kernel
            if k < 2 or k > min(h, w):
                raise fail(f"{name}.kernel", f"is {k}: a pool window must be 2..{min(h, w)}")
            expected = (c, h // k, w // k)
        elif isinstance(layer, SynapticLayer):
            expected = _check_synaptic(layer, a, name, fail, i == len(a.layers) - 1)
            weights += int(layer.weight.size)
            macs += int(layer.weight.size) * expected[1] * expected[2]
        else:
            raise fail(name, f"must be a SynapticLayer or PoolLayer, not {type(layer).__name__}")
        if tuple(layer.out_shape) != expected:
            raise fail(f"{name}.out_shape", f"is {list(layer.out_shape)}, expected "
                                            f"{list(expected)}")
        _check_map(expected, f"{name}.out_shape", a.T, fail)
        shape = layer.out_shape
        previous = layer
    last = a.layers[-1]
    if not isinstance(last, SynapticLayer) or not last.is_readout:
        raise fail(f"layers[{len(a.layers) - 1}].neuron",
                   "must be 'none': the last layer is the summed-current readout")
    if tuple(last.out_shape[1:]) != (1, 1):
        raise fail(f"layers[{len(a.layers) - 1}].out_shape",
                   f"is {list(last.out_shape)}: the readout must leave one pixel (one score per "
                   f"class), e.g. an fc layer")
    if weights > MAX_WEIGHTS:
        raise fail("layers", f"have {weights} weights, more than the limit of {MAX_WEIGHTS}")
    if macs > MAX_MACS:
        raise fail("layers", f"need {macs} multiply-accumulates per time step, more than the "
                             f"limit of {MAX_MACS}")
    if a.radix:
        _check_radix(a, fail)


def _check_radix(a: Artifact, fail) -> None:
    """A radix network: every spiking layer radix, a static input, ``T`` bits per value."""
    if a.input_encoding is not InputEncoding.DIRECT:
        raise fail("input.encoding", f"is {a.input_encoding.value!r}, but a radix network takes "
                                     f"a static ('direct') input")
    if a.T > RADIX_MAX_T:
        raise fail("T", f"is {a.T}: a radix network's activations have T bits, at most "
                        f"{RADIX_MAX_T}")
    for i, layer in enumerate(a.layers):
        if isinstance(layer, SynapticLayer) and layer.neuron in (NeuronKind.LIF, NeuronKind.IF):
            raise fail(f"layers[{i}].neuron", f"is {layer.neuron.value!r}, but a network with "
                                              f"radix layers must be radix throughout")


def _check_map(shape, name: str, T: int, fail) -> None:
    neurons = shape[0] * shape[1] * shape[2]
    if neurons > MAX_MAP_NEURONS:
        raise fail(name, f"is {list(shape)}, {neurons} neurons, more than the limit of "
                         f"{MAX_MAP_NEURONS}")
    if T * neurons > MAX_NEURON_STEPS:
        raise fail(name, f"is {list(shape)}: T * {neurons} neurons = {T * neurons} neuron steps "
                         f"per frame, more than the limit of {MAX_NEURON_STEPS}")


def _check_synaptic(layer: SynapticLayer, a: Artifact, name: str, fail, is_last: bool):
    c, h, w = layer.in_shape
    co = layer.out_shape[0]
    if layer.kind is LayerKind.CONV:
        k, p = layer.kernel, layer.padding
        if k < 1 or p >= k:
            raise fail(f"{name}.padding", f"is {p} with kernel {k}: need kernel >= 1 and "
                                          f"padding < kernel")
        oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
        if oh < 1 or ow < 1:
            raise fail(f"{name}.kernel", f"is {k}, larger than the padded input {h}x{w}")
        expected, weight_shape = (co, oh, ow), (co, c, k, k)
    else:
        if layer.kernel != 0 or layer.padding != 0:
            raise fail(f"{name}.kernel", "must be 0 for a fully connected layer")
        expected, weight_shape = (co, 1, 1), (co, c * h * w)
    for part in ("weight", "bias", "threshold"):
        value = getattr(layer, part)
        if value is not None and (not isinstance(value, np.ndarray)
                                  or not np.issubdtype(value.dtype, np.integer)
                                  or value.dtype == np.uint64):
            what = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise fail(f"{name}.{part}", f"must be an array of integers (int64 at most), not "
                                         f"{what}")
    if layer.weight.shape != weight_shape:
        raise fail(f"{name}.weight", f"has shape {list(layer.weight.shape)}, expected "
                                     f"{list(weight_shape)}")
    lo, hi = signed_range(a.weight_bits)
    if layer.weight.size and (layer.weight.min() < lo or layer.weight.max() > hi):
        raise fail(f"{name}.weight", f"has values in [{layer.weight.min()}, "
                                     f"{layer.weight.max()}], outside the {a.weight_bits}-bit "
                                     f"range [{lo}, {hi}]")
    if layer.bias.shape != (co,):
        raise fail(f"{name}.bias", f"has shape {list(layer.bias.shape)}, expected [{co}]")
    lo, hi = signed_range(a.bias_bits)
    if layer.bias.min() < lo or layer.bias.max() > hi:
        raise fail(f"{name}.bias", f"has values in [{layer.bias.min()}, {layer.bias.max()}], "
                                   f"outside the {a.bias_bits}-bit range [{lo}, {hi}]")
    if layer.neuron is NeuronKind.NONE:
        if not is_last:
            raise fail(f"{name}.neuron", "is 'none' (readout) but only the last layer may be "
                                         "the readout")
        if layer.threshold is not None:
            raise fail(f"{name}.threshold", "must be absent for the readout layer")
        if layer.shift is not None:
            raise fail(f"{name}.shift", "must be absent for the readout layer")
        if layer.leak_shift != 0:
            raise fail(f"{name}.leak_shift", f"is {layer.leak_shift}, must be 0 for the readout "
                                             f"(it does not integrate)")
        return expected
    if is_last:
        raise fail(f"{name}.neuron", f"is {layer.neuron.value!r}, but the last layer must be "
                                     f"the readout ('none')")
    if layer.neuron is NeuronKind.RADIX:
        if layer.threshold is not None:
            raise fail(f"{name}.threshold", "must be absent for a radix layer")
        if layer.leak_shift != 0:
            raise fail(f"{name}.leak_shift", f"is {layer.leak_shift}, must be 0 for a radix layer")
        if layer.shift is None or layer.shift.shape != (co,):
            got = None if layer.shift is None else list(layer.shift.shape)
            raise fail(f"{name}.shift", f"has shape {got}, expected [{co}]")
        if layer.shift.min() < 0 or layer.shift.max() > RADIX_MAX_SHIFT:
            raise fail(f"{name}.shift", f"has values in [{layer.shift.min()}, "
                                        f"{layer.shift.max()}], outside [0, {RADIX_MAX_SHIFT}]")
        return expected
    if layer.shift is not None:
        raise fail(f"{name}.shift", "must be absent except for a radix layer")
    if layer.neuron is NeuronKind.LIF and not 1 <= layer.leak_shift <= 16:
        raise fail(f"{name}.leak_shift", f"is {layer.leak_shift}: a LIF layer needs tau = "
                                         f"2**leak_shift with leak_shift in [1, 16]")
    if layer.neuron is NeuronKind.IF and layer.leak_shift != 0:
        raise fail(f"{name}.leak_shift", f"is {layer.leak_shift}, must be 0 for IF neurons")
    if layer.threshold is None or layer.threshold.shape != (co,):
        got = None if layer.threshold is None else list(layer.threshold.shape)
        raise fail(f"{name}.threshold", f"has shape {got}, expected [{co}]")
    hi = (1 << (a.threshold_bits - 1)) - 1
    if layer.threshold.min() < 1 or layer.threshold.max() > hi:
        raise fail(f"{name}.threshold", f"has values in [{layer.threshold.min()}, "
                                        f"{layer.threshold.max()}], outside [1, {hi}] "
                                        f"({a.threshold_bits}-bit, positive)")
    return expected
