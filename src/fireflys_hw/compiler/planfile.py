"""Plans as versioned JSON: :func:`save_plan`, :func:`load_plan` (validated on load) and
:func:`check_plan` (does a plan fit an artifact)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from fireflys_sw.artifact import Artifact, InputEncoding, LayerKind, PoolLayer, SynapticLayer
from fireflys_sw.fields import FieldReader, parse_json
from fireflys_sw.limits import (MAX_DIM, MAX_FIFO_DEPTH, MAX_JSON_DEPTH, MAX_LAYERS,
                                MAX_PLAN_BYTES)

from .base import PLAN_FORMAT, PLAN_VERSION, PlanError, binary_in_channels, layer_window
from .direct import direct_conv_fits
from .plan import LayerPlan, Plan, StopReason

__all__ = ["PLAN_FORMAT", "PLAN_VERSION", "plan_to_dict", "plan_from_dict", "save_plan",
           "load_plan", "check_plan"]


_LAYER_INT_FIELDS = ("index", "pool", "in_bits", "p_co", "p_ci", "n_groups", "n_chunks", "lut",
                     "ff", "bram_bits", "lutram_bits", "fifo_depth", "fifo_width")
_LAYER_FLOAT_FIELDS = ("spike_density", "weight_density", "mean_pairs", "workload", "cycles",
                       "bram_blocks")


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (the file format of :func:`save_plan`)."""
    layers = []
    for lp in plan.layers:
        entry = {name: getattr(lp, name) for name in _LAYER_INT_FIELDS + _LAYER_FLOAT_FIELDS}
        entry.update(kind=lp.kind.value, in_shape=list(lp.in_shape),
                     out_shape=list(lp.out_shape), fixed=lp.fixed)
        if lp.dense:            # absent: detector lanes (files before the dense datapath)
            entry["dense"] = True
        layers.append(entry)
    return {
        "format": PLAN_FORMAT, "version": plan.version, "artifact": plan.artifact,
        "device": plan.device, "clock_hz": plan.clock_hz, "T": plan.T,
        "lut_budget": plan.lut_budget, "ff_budget": plan.ff_budget,
        "bram_budget": plan.bram_budget, "target_fps": plan.target_fps,
        "stop": plan.stop.value, **({"floor": plan.floor} if plan.floor else {}),
        "layers": layers,
        "summary": {"frame_cycles": plan.frame_cycles, "fps": plan.fps, "lut": plan.lut,
                    "ff": plan.ff, "bram_blocks": plan.bram_blocks,
                    "bottleneck": plan.bottleneck.index},
    }


class _Reader(FieldReader):
    """Fields of a plan file."""

    error = PlanError
    shape_max = MAX_DIM

    def float(self, obj, key: str, name: str, lo: float = 0.0, optional: bool = False):
        value = self.get(obj, key, name)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise self.fail(name, f"must be a number, not {value!r}")
        if value < lo:
            raise self.fail(name, f"is {value}, less than {lo}")
        return float(value)


#: Upper bounds of the integer fields of a plan layer (beyond them no artifact within
#: :mod:`fireflys_sw.limits` can need the value; ``None``: only the lower bound).
_INT_HI = {"index": MAX_LAYERS - 1, "pool": MAX_DIM, "in_bits": 8 * MAX_DIM, "p_co": MAX_DIM,
           "p_ci": 8 * MAX_DIM, "n_groups": MAX_DIM, "fifo_depth": MAX_FIFO_DEPTH}
_INT_LO = {"p_co": 1, "p_ci": 1, "n_groups": 1, "n_chunks": 1, "in_bits": 1, "fifo_depth": 2}


def _p_ci_max(in_bits: int) -> int:
    """The padded ``Ci'`` (least power of two holding the binary input channels): the most
    ``P_Ci`` the planner and the gateware take."""
    return 1 << (in_bits - 1).bit_length()


def plan_from_dict(data: Any, where: str = "plan") -> Plan:
    """Rebuild and validate a plan from :func:`plan_to_dict` data; :class:`PlanError` names
    the first bad field.

    Besides types, each field is held to what the gateware can build: ``fifo_depth`` in
    ``[2, MAX_FIFO_DEPTH]``, ``cycles`` at least 1, ``p_co`` within the layer's output channels
    and ``n_groups = ceil(Co / P_Co)``, ``p_ci`` within the padded ``Ci'`` of ``in_bits``, a pool
    kernel 0 or at least 2, at most ``MAX_LAYERS`` layers in increasing order;
    :func:`check_plan` then holds it to an artifact's layers."""
    r = _Reader(where)
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise r.fail("format", f"must be {PLAN_FORMAT!r} (not a fireflys plan)")
    version = r.int(data, "version", "version", 1)
    if version > PLAN_VERSION:
        raise r.fail("version", f"is {version}, newer than this fireflys reads "
                                f"({PLAN_VERSION}): upgrade fireflys")
    entries = r.get(data, "layers", "layers")
    if not isinstance(entries, list) or not entries:
        raise r.fail("layers", "must be a non-empty list")
    if len(entries) > MAX_LAYERS:
        raise r.fail("layers", f"has {len(entries)} entries, more than the limit of {MAX_LAYERS}")
    layers = []
    for k, e in enumerate(entries):
        name = f"layers[{k}]"
        if not isinstance(e, dict):
            raise r.fail(name, f"must be an object, not {type(e).__name__}")
        ints = {f: r.int(e, f, f"{name}.{f}", _INT_LO.get(f, 0), _INT_HI.get(f))
                for f in _LAYER_INT_FIELDS}
        floats = {f: r.float(e, f, f"{name}.{f}", 1.0 if f == "cycles" else 0.0)
                  for f in _LAYER_FLOAT_FIELDS}
        if ints["pool"] == 1:
            raise r.fail(f"{name}.pool", "is 1: a pool kernel is 0 (none) or at least 2")
        if ints["p_ci"] > _p_ci_max(ints["in_bits"]):
            raise r.fail(f"{name}.p_ci", f"is {ints['p_ci']}, more than the "
                                         f"{_p_ci_max(ints['in_bits'])} bits a chunk can take "
                                         f"({ints['in_bits']} binary input channels)")
        fixed = r.get(e, "fixed", f"{name}.fixed")
        if not isinstance(fixed, bool):
            raise r.fail(f"{name}.fixed", f"must be true or false, not {fixed!r}")
        dense = e.get("dense", False) if isinstance(e, dict) else False
        if not isinstance(dense, bool):
            raise r.fail(f"{name}.dense", f"must be true or false, not {dense!r}")
        if dense and k:
            raise r.fail(f"{name}.dense", "is true, but only the first core can be dense")
        lp = LayerPlan(kind=r.enum(e, "kind", f"{name}.kind", LayerKind),
                       in_shape=r.shape(e, "in_shape", f"{name}.in_shape"),
                       out_shape=r.shape(e, "out_shape", f"{name}.out_shape"),
                       fixed=fixed, dense=dense, **ints, **floats)
        if lp.kind is LayerKind.MAXPOOL:
            raise r.fail(f"{name}.kind", "must be 'conv' or 'fc'")
        co = lp.out_shape[0]
        if lp.p_co > co:
            raise r.fail(f"{name}.p_co", f"is {lp.p_co}, more than the layer's {co} output "
                                         f"channels")
        if lp.n_groups != -(-co // lp.p_co):
            raise r.fail(f"{name}.n_groups", f"is {lp.n_groups}, but ceil({co} / {lp.p_co}) "
                                             f"= {-(-co // lp.p_co)}")
        if k and lp.index <= layers[-1].index:
            raise r.fail(f"{name}.index", f"is {lp.index}, not after {layers[-1].index}")
        layers.append(lp)
    return Plan(
        artifact=r.str(data, "artifact", "artifact"), device=r.str(data, "device", "device"),
        clock_hz=r.float(data, "clock_hz", "clock_hz", 1e-9), T=r.int(data, "T", "T", 1, 256),
        lut_budget=r.int(data, "lut_budget", "lut_budget"),
        ff_budget=r.int(data, "ff_budget", "ff_budget"),
        bram_budget=r.float(data, "bram_budget", "bram_budget"),
        target_fps=r.float(data, "target_fps", "target_fps", 1e-9, optional=True),
        stop=r.enum(data, "stop", "stop", StopReason), layers=tuple(layers), version=version,
        floor=r.str(data, "floor", "floor") if "floor" in data else "")


def save_plan(plan: Plan, path: str | os.PathLike) -> Path:
    """Write ``plan`` as JSON to ``path``; return the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan_to_dict(plan), indent=1) + "\n")
    except OSError as error:
        raise PlanError(f"cannot write plan {str(path)!r}: {error.strerror}") from error
    return path


def load_plan(path: str | os.PathLike) -> Plan:
    """Read and validate a plan file (:class:`PlanError` with one line on any problem)."""
    path = Path(path)
    where = f"plan {str(path)!r}"
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PLAN_BYTES + 1)
    except OSError as error:
        raise PlanError(f"{where}: cannot read ({error.strerror})") from error
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(f"{where}: is larger than the limit of {MAX_PLAN_BYTES} bytes")
    data = parse_json(raw, lambda problem: PlanError(f"{where}: {problem}"), "file",
                      MAX_JSON_DEPTH)
    return plan_from_dict(data, where)


def check_plan(plan: Plan, artifact: Artifact) -> None:
    """Raise :class:`PlanError` if ``plan`` was not made for ``artifact``'s layers (layer
    positions, kinds, shapes, fused pools, binary input channels, ``P_Co`` within ``Co``,
    ``P_Ci`` within the padded ``Ci'``, the chunk count) or is not a valid plan
    (:func:`plan_from_dict`'s rules, for a :class:`Plan` built in Python)."""
    plan_from_dict(plan_to_dict(plan), f"plan for {plan.artifact!r}")
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    if [lp.index for lp in plan.layers] != [i for i, _ in synaptic]:
        raise PlanError(f"plan for {plan.artifact!r} has layers "
                        f"{[lp.index for lp in plan.layers]}, artifact {artifact.name!r} has "
                        f"synaptic layers {[i for i, _ in synaptic]}")
    if plan.T != artifact.T:
        raise PlanError(f"plan has T = {plan.T}, artifact {artifact.name!r} T = {artifact.T}")
    for lp, (i, layer) in zip(plan.layers, synaptic):
        if lp.in_shape != tuple(layer.in_shape) or lp.out_shape != tuple(layer.out_shape) \
                or lp.kind is not layer.kind:
            raise PlanError(f"plan layer {i} is {lp.describe()}, artifact layer {i} is "
                            f"{layer.kind.value} {list(layer.in_shape)} > "
                            f"{list(layer.out_shape)}")
        pool = artifact.layers[i + 1] if i + 1 < len(artifact.layers) else None
        kernel = pool.kernel if isinstance(pool, PoolLayer) else 0
        if lp.pool != kernel:
            after = f"a {kernel}x{kernel} max-pool" if kernel else "no pool"
            raise PlanError(f"plan layer {i} has pool {lp.pool}, artifact layer {i} is followed "
                            f"by {after}")
        in_bits = binary_in_channels(layer, artifact.input_bits if i == synaptic[0][0] else 1)
        if lp.in_bits != in_bits:
            raise PlanError(f"plan layer {i} has in_bits {lp.in_bits}, artifact layer {i} has "
                            f"{in_bits} binary input channels")
        kh, kw = layer_window(layer)
        chunks = kh * kw * -(-in_bits // lp.p_ci)
        if lp.n_chunks != chunks:
            raise PlanError(f"plan layer {i} has n_chunks {lp.n_chunks}, but Kh * Kw * "
                            f"ceil({in_bits} / {lp.p_ci}) = {chunks}")
    if plan.dense_first and not (artifact.input_encoding is InputEncoding.DIRECT
                                 and direct_conv_fits(synaptic[0][1])):
        raise PlanError(f"plan has a dense first core, but artifact {artifact.name!r}'s first "
                        f"layer is not a direct-encoded spiking conv layer")
