"""Mutated and hostile inputs of the hardware side, for the property tests and the fuzz benchmark
(``benchmarks/fuzz_inputs.py``); the software side's cases are in :mod:`fireflys_sw.fuzzing`,
whose :class:`~fireflys_sw.fuzzing.CaseResult` they return.

Plans: a valid plan of a small artifact (random parallelism), mutated as JSON data (hostile
values at any field, the fields the gateware takes pushed past their bounds, deleted keys,
reordered or foreign layers, deep nesting) or as text (bit flips, truncation, huge numbers,
non-UTF-8, an oversized file), written to a file and given to
:func:`fireflys_hw.flow.make_plan` and :func:`fireflys_hw.flow.build_accelerator`. An accepted
plan must build, and must hold what the gateware needs (a wrong acceptance otherwise).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

from fireflys_sw.errors import FireflysError
from fireflys_sw.fuzzing import CaseResult

__all__ = ["plan_bases", "mutate_plan", "plan_case", "link_bases", "link_case", "CASES"]

_PLAN_BASES: list | None = None

#: The integer fields the gateware takes from a plan, and values past their bounds.
_TARGETED = ("p_co", "p_ci", "fifo_depth", "n_groups", "n_chunks", "in_bits", "pool", "index")
_EXTREMES = (0, 1, 2, -1, 3, 65536, 1 << 30, 10 ** 19, (1 << 64) - 1, 1 << 24, (1 << 24) + 1)


def plan_bases() -> list[tuple[Any, dict]]:
    """``(artifact, plan data)`` pairs the mutations start from, built once per process: small
    artifacts (LIF and IF, direct and frame input, pools, a conv readout), each with the
    least and a random larger parallelism."""
    global _PLAN_BASES
    if _PLAN_BASES is not None:
        return _PLAN_BASES
    from fireflys_sw.artifact import InputEncoding, SynapticLayer
    from fireflys_sw.spec import NeuronKind
    from fireflys_sw.synthetic import random_artifact

    from .compiler import plan_to_dict
    from .flow import make_plan
    artifacts = [
        random_artifact("1x8x8-4c3p1-mp2-6c3p1-mp2-5fc", seed=2),
        random_artifact("2x6x6-3c3p0-4fc", seed=1, neuron=NeuronKind.IF, leak_shift=0, T=3,
                        encoding=InputEncoding.FRAMES, input_bits=2),
        random_artifact("1x3x3-2c3p1-3c3", seed=3, T=2, input_bits=4),
    ]
    rng = random.Random(0)
    bases = []
    for artifact in artifacts:
        for least in (True, False):
            pairs = []
            for layer in artifact.layers:
                if isinstance(layer, SynapticLayer):
                    ci = layer.in_channels * (artifact.input_bits if not pairs else 1)
                    top = 1 << (ci - 1).bit_length()
                    pairs.append((1, 1) if least else
                                 (rng.randint(1, layer.out_channels), rng.randint(1, top)))
            plan = make_plan(artifact, parallelism=pairs, images=None)
            bases.append((artifact, plan_to_dict(plan)))
    _PLAN_BASES = bases
    return bases


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, prefix + (i,))
    return out


def _set(obj: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _delete(obj: Any, path: tuple) -> None:
    for key in path[:-1]:
        obj = obj[key]
    del obj[path[-1]]


def mutate_plan(seed: int) -> tuple[bytes, str, int]:
    """``(file bytes, label, base index)`` of one mutated plan; ``random.Random(seed)`` alone
    decides it."""
    from fireflys_sw.fuzzing import _hostile_value
    r = random.Random(seed)
    bases = plan_bases()
    b = r.randrange(len(bases))
    data = json.loads(json.dumps(bases[b][1]))
    mode = r.random()
    if mode < 0.35:
        layer = r.choice(data["layers"])
        field = r.choice(_TARGETED + ("cycles",))
        value = r.choice(_EXTREMES + (0.0, 0.5, -1.0) if field == "cycles" else _EXTREMES)
        layer[field] = value
        label = f"targeted {field}"
    elif mode < 0.6:
        path = r.choice(_paths(data))
        _set(data, path, _hostile_value(r))
        label = f"value at {path[-1]}" if isinstance(path[-1], str) else "value in list"
    elif mode < 0.7:
        path = r.choice(_paths(data))
        _delete(data, path)
        label = "deleted key" if isinstance(path[-1], str) else "deleted item"
    elif mode < 0.78:
        op = r.randrange(4)
        if op == 0:
            data["layers"].reverse()
        elif op == 1 and len(data["layers"]) > 1:
            del data["layers"][r.randrange(len(data["layers"]))]
        elif op == 2:
            data["layers"].append(json.loads(json.dumps(data["layers"][-1])))
        else:
            # a plan made for another artifact
            other = bases[(b + 1 + r.randrange(len(bases) - 1)) % len(bases)][1]
            data["layers"] = json.loads(json.dumps(other["layers"]))
        label = "layers reordered or foreign"
    elif mode < 0.83:
        depth = r.choice([65, 1000, 100_000])
        data["layers"][0]["extra"] = None
        text = json.dumps(data).replace('"extra": null', '"extra": ' + "[" * depth + "]" * depth)
        return text.encode(), "deep nesting", b
    else:
        raw = bytearray(json.dumps(data).encode())
        op = r.randrange(6)
        if op == 0:
            for _ in range(r.randint(1, 8)):
                at = r.randrange(len(raw))
                raw[at] ^= 1 << r.randrange(8)
            label = "bit flips"
        elif op == 1:
            raw = raw[:r.randrange(len(raw))]
            label = "truncated"
        elif op == 2:
            text = raw.decode().replace('"p_ci": ', '"p_ci": ' + "9" * r.choice([20, 5000]), 1)
            raw = bytearray(text.encode())
            label = "huge number"
        elif op == 3:
            raw[r.randrange(len(raw))] = 0xff
            label = "not UTF-8"
        elif op == 4:
            raw = bytearray(raw.decode().replace('"cycles": ', '"cycles": NaN, "x": ', 1)
                            .encode())
            label = "NaN"
        else:
            raw += b" " * (1 << 22)
            label = "oversized file"
        return bytes(raw), label, b
    return json.dumps(data).encode(), label, b


def _violation(plan, artifact) -> str | None:
    """What an accepted plan breaks of the gateware's needs, or None."""
    from fireflys_sw.artifact import SynapticLayer
    from fireflys_sw.limits import MAX_FIFO_DEPTH
    synaptic = [(i, x) for i, x in enumerate(artifact.layers) if isinstance(x, SynapticLayer)]
    if [lp.index for lp in plan.layers] != [i for i, _ in synaptic]:
        return "layer indices differ from the artifact's"
    for k, (lp, (i, layer)) in enumerate(zip(plan.layers, synaptic)):
        ci = layer.in_channels * (artifact.input_bits if k == 0 else 1)
        if not 1 <= lp.p_co <= layer.out_channels:
            return f"layer {i}: p_co {lp.p_co} outside [1, {layer.out_channels}]"
        if not 1 <= lp.p_ci <= 1 << (ci - 1).bit_length():
            return f"layer {i}: p_ci {lp.p_ci} beyond the padded Ci' of {ci}"
        if not 2 <= lp.fifo_depth <= MAX_FIFO_DEPTH:
            return f"layer {i}: fifo_depth {lp.fifo_depth}"
        if not lp.cycles >= 1:
            return f"layer {i}: cycles {lp.cycles}"
    return None


def plan_case(seed: int, directory: str | Path) -> CaseResult:
    """Write one mutated plan (:func:`mutate_plan`), give it to ``make_plan(artifact, plan=file)``
    and build the accelerator of an accepted one (which must hold :func:`_violation`'s rules)."""
    from .flow import build_accelerator, make_plan
    raw, label, b = mutate_plan(seed)
    artifact = plan_bases()[b][0]
    path = Path(directory) / f"plan-{seed}.json"
    path.write_bytes(raw)
    try:
        try:
            plan = make_plan(artifact, plan=path)
        except FireflysError as error:
            message = str(error)
            if "\n" in message or len(message) > 1000:
                return CaseResult("wrong", label, f"message of {len(message)} characters")
            return CaseResult("refused", label, message)
        problem = _violation(plan, artifact)
        if problem:
            return CaseResult("wrong", label, f"accepted a plan with {problem}")
        acc = build_accelerator(artifact, plan, profile=False)
        if acc.parallelism != [(lp.p_co, lp.p_ci) for lp in plan.layers] or \
                acc.fifo_depths != [lp.fifo_depth for lp in plan.layers[:-1]]:
            return CaseResult("wrong", label, "the accelerator differs from the plan")
        return CaseResult("accepted", label)
    finally:
        path.unlink(missing_ok=True)


# --- the serial link ------------------------------------------------------------------------------

_LINK_BASES: list | None = None

#: Info records a board with another bitstream (or a damaged one with a valid CRC) may send.
_WRONG_INFO = ("version 99", "score_bits 0", "bigger beat_bits", "fewer beats", "classes",
               "result_bits", "model_id", "score_bits + 1")


def link_bases() -> list[dict]:
    """Small artifacts with their link info (from the accelerator the board would carry), 4
    images, their frames' beat bytes and golden results, built once per process."""
    global _LINK_BASES
    if _LINK_BASES is not None:
        return _LINK_BASES
    from fireflys_sw.artifact import InputEncoding
    from fireflys_sw.golden import run_golden
    from fireflys_sw.synthetic import random_artifact, random_images

    from .flow import build_accelerator, make_plan
    from .gateware.link import link_info
    from .host.beats import input_beats
    from .host.protocol import encode_readout, frame_bytes, model_id
    artifacts = [
        random_artifact("1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2, weight_sparsity=0.5,
                        spike_density=0.3),
        random_artifact("3x4x4-2c3p1-mp2-4fc", seed=2, T=2, input_bits=4, weight_sparsity=0.5,
                        spike_density=0.3, encoding=InputEncoding.FRAMES),
        random_artifact("1x6x6-3c3p1-mp2-10fc", seed=5, T=3, weight_bits=8),
    ]
    bases = []
    for i, artifact in enumerate(artifacts):
        plan = make_plan(artifact, parallelism=[(1, 1)] * sum(
            1 for layer in artifact.layers if hasattr(layer, "weight")))
        info = link_info(build_accelerator(artifact, plan, profile=False), model_id(artifact))
        images = random_images(artifact, 4, seed=i)
        golden = run_golden(artifact, images)
        beats = input_beats(artifact, images)
        values = [encode_readout(golden.scores[k], golden.prediction[k], info.classes,
                                 info.score_bits) for k in range(len(images))]
        payloads = [frame_bytes(beats[k], info.beat_bits)[2:-2] for k in range(len(images))]
        bases.append({"artifact": artifact, "info": info, "images": images, "golden": golden,
                      "values": values, "payloads": payloads})
    _LINK_BASES = bases
    return bases


def _wrong_info(info, which: str) -> bytes:
    import dataclasses
    change = {"version 99": {"version": 99}, "score_bits 0": {"score_bits": 0},
              "bigger beat_bits": {"beat_bits": info.beat_bits + 8},
              "fewer beats": {"beats_per_frame": max(1, info.beats_per_frame - 1)},
              "classes": {"classes": info.classes + 1},
              "result_bits": {"result_bits": info.result_bits + 1},
              "model_id": {"model_id": info.model_id ^ 1},
              "score_bits + 1": {"score_bits": info.score_bits + 1,
                                 "result_bits": info.result_bits + info.classes}}[which]
    return dataclasses.replace(info, **change).to_bytes()


def link_case(seed: int) -> CaseResult:
    """Run 4 images through the host driver (:class:`~fireflys_hw.host.board.Board`) against
    the link model (:class:`~fireflys_hw.sim.linkmodel.LinkModel`) behind a
    :class:`~fireflys_hw.sim.linkmodel.FaultyPort` (or a board sending a wrong info record):
    the driver must return the golden scores, or refuse with one line; scores that differ
    from the golden model are a wrong result."""
    import numpy as np

    from .host.board import Board, BoardError
    from .sim.linkmodel import FAULTS, FaultyPort, LinkModel
    r = random.Random(seed)
    base = r.choice(link_bases())
    info, values, payloads = base["info"], base["values"], base["payloads"]
    lookup = dict(zip(payloads, values))

    def results(frame: bytes) -> int:
        # a damaged frame: the accelerator computes a plausible result of another input
        if frame in lookup:
            return lookup[frame]
        return values[(sum(frame) + 1) % len(values)] if frame not in payloads else 0

    if r.random() < 0.1:
        which = r.choice(_WRONG_INFO)
        port = LinkModel(info, results, info_bytes=_wrong_info(info, which))
        label = f"info {which}"
    else:
        kind = r.choice(FAULTS)
        rate = r.choice([0.002, 0.01, 0.05, 0.2, 1.0])
        budget = r.choice([1, 1, 2, 4, 8, 1000])
        port = FaultyPort(LinkModel(info, results), kind, r, rate=rate, budget=budget,
                          record_bytes=1 + info.record_bytes)
        label = f"fault {kind}"
    board = Board(port, timeout=0.003, retries=3)
    try:
        out = board.classify(base["artifact"], base["images"], window=r.choice([1, 2, 3]))
    except BoardError as error:
        message = str(error)
        if "\n" in message or len(message) > 1000:
            return CaseResult("wrong", label, f"message of {len(message)} characters")
        return CaseResult("refused", label, message)
    golden = base["golden"]
    if not (np.array_equal(out.scores, golden.scores)
            and np.array_equal(out.predictions, golden.prediction)):
        return CaseResult("wrong", label, "scores differ from the golden model")
    return CaseResult("accepted", label)


#: The hardware-side input kinds of the fuzz benchmark: name -> case function.
CASES: dict[str, Callable[..., CaseResult]] = {"plans": plan_case, "link": link_case}
