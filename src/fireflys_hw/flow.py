"""The hardware flow as plain functions: artifact -> plan -> accelerator -> files / simulation.

Each step takes one typed object and returns the next, so a user can stop after any of them::

    from fireflys_sw.artifact import load_artifact
    from fireflys_hw.flow import make_plan, compile_accelerator, simulate_accelerator

    artifact = load_artifact("model.npz")
    plan = make_plan(artifact, device="xczu5ev")                  # fireflys_hw.plan.Plan
    result = compile_accelerator(artifact, "build/", plan=plan)   # top.il, top.v, plan.json, report.*
    report = simulate_accelerator(artifact, images, plan=plan)    # Verilator, bit-exact check
    print(report.as_dict())

``fireflys compile`` and ``fireflys simulate`` (:mod:`fireflys_hw.cli`) are thin layers over
:func:`compile_accelerator` and :func:`simulate_accelerator`.

Where numbers come from: simulated cycles are exact (cycle-accurate simulation of the gateware
or of its Verilog); ``predicted`` cycles, LUTs and block RAM are model estimates
(:mod:`fireflys_hw.plan`); frame rates are cycles converted at an assumed clock, not a timing
result.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fireflys_sw.artifact import Artifact, load_artifact
from fireflys_sw.errors import FireflysError
from fireflys_sw.golden import run_golden

from .plan import (Plan, check_plan, format_plan, measure_densities, plan_accelerator,
                   recurrence_cycles, save_plan)
from .verilator import SimTrace

__all__ = ["FlowError", "Backend", "make_plan", "build_accelerator", "CompileResult",
           "compile_accelerator", "StageReport", "SimulationReport", "simulate_accelerator",
           "DEFAULT_CLOCK_HZ"]

log = logging.getLogger(__name__)

#: FireFly-S's clock on the KV260 (the default for frame rates from simulated cycles).
DEFAULT_CLOCK_HZ = 333e6

BACKENDS = ("verilator", "pysim")
Backend = str

#: Images used to measure spike densities for planning when none are given.
PLAN_SAMPLE = 16


class FlowError(FireflysError, ValueError):
    """A flow argument that is the user's to fix (one line)."""


def _artifact(artifact: Artifact | str | os.PathLike) -> Artifact:
    return artifact if isinstance(artifact, Artifact) else load_artifact(artifact)


def _images_for(artifact: Artifact, images) -> np.ndarray:
    if images is None:
        from fireflys_sw.synthetic import random_images
        return random_images(artifact, PLAN_SAMPLE, seed=0)
    images = np.asarray(images)
    want = artifact.input_shape if images.ndim == 4 else (artifact.T,) + artifact.input_shape
    if images.ndim not in (4, 5) or tuple(images.shape[1:]) != tuple(want):
        raise FlowError(f"images must have shape (N, {', '.join(map(str, want))}) for "
                        f"{artifact.name}, not {tuple(images.shape)}")
    return images


def _parallelism_overrides(artifact: Artifact, parallelism) -> dict[int, tuple[int, int]]:
    """``{layer index: (p_co, p_ci)}``; a ``p_ci`` beyond the layer's binary input channels
    (rounded up to a power of two) is lowered to that: the chunks, and so the hardware's
    behaviour and cycles, are the same, and the planner only knows configurations up to it."""
    from fireflys_sw.artifact import SynapticLayer
    layers = {i: layer for i, layer in enumerate(artifact.layers)
              if isinstance(layer, SynapticLayer)}
    if isinstance(parallelism, Mapping):
        pairs = {int(k): v for k, v in parallelism.items()}
    else:
        items = list(parallelism)
        if len(items) != len(layers):
            raise FlowError(f"parallelism needs {len(layers)} (p_co, p_ci) pairs, one per "
                            f"synaptic layer of {artifact.name}, not {len(items)}")
        pairs = dict(zip(layers, items))
    out = {}
    for i, value in pairs.items():
        try:
            p_co, p_ci = (int(v) for v in value)
        except (TypeError, ValueError):
            raise FlowError(f"parallelism of layer {i} must be a (p_co, p_ci) pair, not "
                            f"{value!r}") from None
        if i in layers:
            ci = layers[i].in_channels * (artifact.input_bits if i == min(layers) else 1)
            p_ci = min(p_ci, 1 << (ci - 1).bit_length())
        out[i] = (p_co, p_ci)
    return out


def make_plan(artifact: Artifact | str, *, plan: Plan | str | os.PathLike | None = None,
              parallelism=None, images=None, device: str = "xczu5ev",
              lut_budget: int | None = None, target_fps: float | None = None,
              clock_hz: float | None = None, recurrence: bool = True) -> Plan:
    """The plan to build: ``plan`` as given (a :class:`~fireflys_hw.plan.Plan` or a plan file,
    checked against the artifact), else :func:`~fireflys_hw.plan.plan_accelerator` on the spike
    densities measured on ``images`` (default: 16 synthetic images), with ``parallelism`` (per
    synaptic layer ``(p_co, p_ci)``, or ``{layer index: (p_co, p_ci)}``) fixed if given.

    With every layer's parallelism given and no ``lut_budget``, the budgets are not enforced
    (the plan then only carries the predictions). ``recurrence=False`` keeps the formula's
    cycles (no cycle recurrence, :func:`~fireflys_hw.plan.plan_accelerator`).
    """
    from .plan import load_plan
    artifact = _artifact(artifact)
    if plan is not None:
        if parallelism is not None:
            raise FlowError("give either a plan or a parallelism, not both")
        if not isinstance(plan, Plan):
            plan = load_plan(plan)
        check_plan(plan, artifact)
        return plan
    stats = measure_densities(artifact, _images_for(artifact, images))
    overrides = None if parallelism is None else _parallelism_overrides(artifact, parallelism)
    unbounded = overrides is not None and len(overrides) == len(stats) and lut_budget is None
    huge = 10 ** 12
    return plan_accelerator(artifact, stats, device=device,
                            lut_budget=huge if unbounded else lut_budget,
                            ff_budget=huge if unbounded else None,
                            bram_budget=float(huge) if unbounded else None,
                            target_fps=target_fps, clock_hz=clock_hz, overrides=overrides,
                            recurrence=recurrence)


def build_accelerator(artifact: Artifact, plan: Plan, *, profile: bool = True):
    """The :class:`~fireflys_hw.accelerator.Accelerator` of ``plan`` (its parallelism and FIFO
    depths)."""
    from .accelerator import Accelerator
    check_plan(plan, artifact)
    fifo_depths = [lp.fifo_depth for lp in plan.layers[:-1]]
    return Accelerator(artifact, plan.parallelism(), fifo_depths, profile=profile)


def _verilog(acc) -> str:
    from amaranth.back import verilog
    return verilog.convert(acc, name="top")


# --- compile ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompileResult:
    """What :func:`compile_accelerator` wrote.

    Attributes
    ----------
    out_dir : Path
    files : dict of str to Path
        ``rtlil`` (``top.il``), ``verilog`` (``top.v``), ``plan`` (``plan.json``), ``report``
        (``report.json``), ``report_text`` (``report.txt``).
    plan : Plan
    report : dict
        The contents of ``report.json``.
    """

    out_dir: Path
    files: dict
    plan: Plan
    report: dict


def compile_accelerator(artifact: Artifact | str, out_dir: str | os.PathLike, *,
                        plan: Plan | str | None = None, parallelism=None, images=None,
                        device: str = "xczu5ev", lut_budget: int | None = None,
                        target_fps: float | None = None, clock_hz: float | None = None,
                        profile: bool = True) -> CompileResult:
    """Plan (unless ``plan`` is given, see :func:`make_plan`), build the accelerator and write
    ``top.il`` (RTLIL), ``top.v`` (Verilog, module ``top``), ``plan.json``, ``report.json`` and
    ``report.txt`` into ``out_dir``.

    ``profile`` keeps the profiling counters (:mod:`fireflys_hw.accelerator`) in the design, so
    that the Verilog is the one :func:`simulate_accelerator` checks; drop them for a leaner
    synthesis.
    """
    from amaranth.back import rtlil
    artifact = _artifact(artifact)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FlowError(f"cannot create output directory {str(out)!r}: "
                        f"{error.strerror}") from error
    plan = make_plan(artifact, plan=plan, parallelism=parallelism, images=images, device=device,
                     lut_budget=lut_budget, target_fps=target_fps, clock_hz=clock_hz)
    acc = build_accelerator(artifact, plan, profile=profile)
    seconds = {}
    start = time.perf_counter()
    il_text = rtlil.convert(acc, name="top")
    seconds["rtlil"] = time.perf_counter() - start
    acc = build_accelerator(artifact, plan, profile=profile)   # a component elaborates once
    start = time.perf_counter()
    v_text = _verilog(acc)
    seconds["verilog"] = time.perf_counter() - start
    files = {"rtlil": out / "top.il", "verilog": out / "top.v", "plan": out / "plan.json",
             "report": out / "report.json", "report_text": out / "report.txt"}
    files["rtlil"].write_text(il_text)
    files["verilog"].write_text(v_text)
    save_plan(plan, files["plan"])
    report = {
        "artifact": artifact.name,
        "device": plan.device,
        "clock_hz": plan.clock_hz,
        "predicted": {"frame_cycles": plan.frame_cycles, "fps": plan.fps, "lut": plan.lut,
                      "ff": plan.ff, "bram_blocks": plan.bram_blocks,
                      "bottleneck_layer": plan.bottleneck.index},
        "layers": [{"index": lp.index, "layer": lp.describe(), "p_co": lp.p_co,
                    "p_ci": lp.p_ci, "predicted_cycles": lp.cycles, "lut": lp.lut,
                    "bram_blocks": lp.bram_blocks, "fifo_depth": lp.fifo_depth,
                    "buffer_bits": core.buffer_bits}
                   for lp, core in zip(plan.layers, acc.cores)],
        "ports": {"input_bits": acc.beat_bits, "beats_per_frame": acc.beats_per_frame,
                  "classes": acc.classes, "score_bits": acc.score_bits,
                  "counters": list(acc.counter_names) if acc.profile else [],
                  "counter_bits": acc.counter_bits},
        "files": {k: p.name for k, p in files.items()},
        "verilog_bytes": len(v_text),
        "seconds": seconds,
        "note": "cycles, LUT, FF and BRAM are model estimates (fireflys_hw.plan); "
                "run 'fireflys simulate' for exact cycles",
    }
    files["report"].write_text(json.dumps(report, indent=1) + "\n")
    order = "one per pixel, raster order" + (
        "" if acc.cores[0].static_input else ", every step in a beat")
    files["report_text"].write_text(
        format_plan(plan) + "\n\n"
        f"input: {acc.beat_bits}-bit beats, {acc.beats_per_frame} per frame "
        f"({order}); output: {acc.classes} scores of {acc.score_bits} bits "
        f"+ class index\n"
        f"wrote {', '.join(p.name for p in files.values())} "
        f"(RTLIL {seconds['rtlil']:.1f} s, Verilog {seconds['verilog']:.1f} s)\n")
    return CompileResult(out, files, plan, report)


# --- simulate -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageReport:
    """One layer core in a simulation.

    ``predicted_cycles``: the planner's model (:func:`fireflys_hw.plan.recurrence_cycles`,
    the synapse array's cycle recurrence plus the window fill) on the simulated images (the
    first 16; estimate). The rest are exact, from the profiling
    counters (:mod:`fireflys_hw.accelerator`) over the whole run divided by the frames:
    ``simulated_cycles``, the core's ``busy`` cycles per frame (its own cost: window beats
    sent or detectors working); ``window_cycles``, window beats per frame; ``blocked_cycles``,
    cycles per frame it was held back by the downstream; ``pairs``, effectual pairs per frame;
    ``utilisation``, ``pairs / (p_co * cycles_per_frame)`` with the accelerator's frame
    interval.
    """

    index: int
    layer: str
    p_co: int
    p_ci: int
    predicted_cycles: float
    simulated_cycles: float | None
    window_cycles: float | None
    blocked_cycles: float | None
    pairs: float | None
    utilisation: float | None


@dataclass(frozen=True, eq=False)
class SimulationReport:
    """The outcome of :func:`simulate_accelerator` (cycles are exact, simulated).

    Attributes
    ----------
    frames, mismatches : int
        Frames simulated; frames whose scores or class differ from the golden model.
    mismatched_frames : tuple of int
    predictions : tuple of int
        The accelerator's class per frame.
    cycles_per_frame : float or None
        Steady-state frame interval: mean cycles between consecutive results once the
        pipeline is full (from the second result on; ``None`` for one frame).
    latency_cycles : int
        Cycles from the first input beat of frame 0 to its result.
    clock_hz, fps : float
        The assumed clock and ``clock_hz / cycles_per_frame``.
    utilisation : float or None
        All cores' effectual pairs / (all lanes x cycles), steady state.
    stages : tuple of StageReport
    slowest_stage : int or None
        Layer index of the core with the most busy cycles per frame.
    predicted_cycles_per_frame : float
        The planner's frame interval for these images (model estimate).
    total_cycles : int
    backend : str
    sim_seconds, sim_cycles_per_second : float
        Wall time of the simulation loop and its speed.
    build_seconds : float or None
        Verilator build time (0 when cached; ``None`` for pysim).
    convert_seconds : float
        Verilog generation time (0 for pysim).
    stall_in, stall_out : float
        Random gap / stall probabilities used.
    """

    artifact: str
    backend: str
    frames: int
    mismatches: int
    mismatched_frames: tuple
    predictions: tuple
    cycles_per_frame: float | None
    latency_cycles: int
    clock_hz: float
    fps: float | None
    utilisation: float | None
    stages: tuple
    slowest_stage: int | None
    predicted_cycles_per_frame: float
    total_cycles: int
    sim_seconds: float
    sim_cycles_per_second: float
    build_seconds: float | None
    convert_seconds: float
    stall_in: float
    stall_out: float
    scores: np.ndarray = field(repr=False, default=None)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the scores are left out)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("scores", "stages")}
        d["mismatched_frames"] = list(self.mismatched_frames)
        d["predictions"] = list(self.predictions)
        d["stages"] = [asdict(s) for s in self.stages]
        d["note"] = ("simulated cycles are exact; predicted cycles are model estimates; fps is "
                     "cycles_per_frame at clock_hz (an assumed clock, not a timing result)")
        return d

    def format(self) -> str:
        """A short human-readable summary."""
        ok = "all match" if not self.mismatches else f"{self.mismatches} MISMATCH"
        lines = [f"{self.artifact}: {self.frames} frames on {self.backend}, golden model: {ok}"]
        if self.cycles_per_frame is not None:
            lines.append(f"  {self.cycles_per_frame:,.0f} cycles/frame at steady state "
                         f"(simulated), {self.fps:,.0f} FPS at {self.clock_hz / 1e6:g} MHz; "
                         f"predicted {self.predicted_cycles_per_frame:,.0f}")
        lines.append(f"  latency {self.latency_cycles:,} cycles; utilisation "
                     + (f"{self.utilisation:.3f}" if self.utilisation is not None else "n/a"))
        lines.append("  layer                            P_Co P_Ci  predicted  simulated  model  "
                     "blocked   util")
        for s in self.stages:
            mark = " <" if s.index == self.slowest_stage else ""
            if s.simulated_cycles:
                sim = (f"{s.simulated_cycles:10,.0f} "
                       f"{s.predicted_cycles / s.simulated_cycles - 1:+6.1%}")
            else:
                sim = f"{'n/a':>10} {'':>6}"
            blocked = f"{s.blocked_cycles:8,.0f}" if s.blocked_cycles is not None else \
                f"{'n/a':>8}"
            util = f"{s.utilisation:6.3f}" if s.utilisation is not None else "   n/a"
            lines.append(f"  {s.index:2d} {s.layer:30s} {s.p_co:4d} {s.p_ci:4d} "
                         f"{s.predicted_cycles:10,.0f} {sim} {blocked} {util}{mark}")
        lines.append("  (predicted: the planner's cycle recurrence on these images, an estimate; "
                     "simulated: each core's busy cycles per frame, exact)")
        speed = f"{self.sim_cycles_per_second:,.0f} cycles/s"
        build = "" if self.build_seconds is None else (
            f", build {self.build_seconds:.1f} s" if self.build_seconds else ", build cached")
        lines.append(f"  simulated {self.total_cycles:,} cycles in {self.sim_seconds:.2f} s "
                     f"({speed}{build})")
        return "\n".join(lines)


def simulate_accelerator(artifact: Artifact | str, images, *, plan: Plan | str | None = None,
                         parallelism=None, backend: Backend = "verilator",
                         vcd: str | os.PathLike | None = None,
                         clock_hz: float = DEFAULT_CLOCK_HZ, stall_in: float = 0.0,
                         stall_out: float = 0.0, seed: int = 0,
                         device: str = "xczu5ev", lut_budget: int | None = None,
                         target_fps: float | None = None,
                         cache_dir: str | os.PathLike | None = None,
                         max_idle: int | None = None) -> SimulationReport:
    """Stream ``images`` through the accelerator, frames back to back, and check every result
    against :func:`fireflys_sw.golden.run_golden` bit for bit.

    Parameters
    ----------
    artifact : Artifact or str
    images : array of uint8
        ``(N, C, H, W)`` (direct encoding) or ``(N, T, C, H, W)`` (frames).
    plan, parallelism, device, lut_budget, target_fps
        What to build (:func:`make_plan`; without a plan or parallelism the planner chooses,
        on densities measured on ``images``).
    backend : ``"verilator"`` or ``"pysim"``
        Verilator (compiled Verilog, fast) or Amaranth's Python simulator (slow: small
        networks and few frames only).
    vcd : path or None
        Write a waveform.
    clock_hz : float
        Clock for the frame rate.
    stall_in, stall_out : float
        Probability of a gap before an input beat / of ``ready`` low at the output in a cycle
        (0: inputs as fast as accepted, output always ready).
    seed : int
        For the random gaps and stalls.
    cache_dir : path or None
        Verilator build cache (:func:`fireflys_hw.verilator.default_cache_dir`).
    max_idle : int or None
        Fail after this many cycles without a result (default: generous, from the plan).
    """
    from .accelerator import decode_readout, input_beats
    artifact = _artifact(artifact)
    if backend not in BACKENDS:
        raise FlowError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if not clock_hz > 0:
        raise FlowError(f"clock_hz must be positive, not {clock_hz!r}")
    for name, p in (("stall_in", stall_in), ("stall_out", stall_out)):
        if not 0.0 <= p < 1.0:
            raise FlowError(f"{name} must be in [0, 1), not {p!r}")
    images = _images_for(artifact, images)
    if len(images) == 0:
        raise FlowError("simulate needs at least one image")
    n = len(images)
    plan = make_plan(artifact, plan=plan, parallelism=parallelism,
                     images=images[:max(PLAN_SAMPLE, 1)], device=device, lut_budget=lut_budget,
                     target_fps=target_fps, clock_hz=clock_hz)
    acc = build_accelerator(artifact, plan, profile=True)
    beats = input_beats(artifact, images)
    if max_idle is None:
        slack = 1.0 / (1.0 - stall_out) / (1.0 - stall_in)
        max_idle = int(20 * (plan.frame_cycles + acc.beats_per_frame) * slack) + 100_000

    build_seconds, convert_seconds = None, 0.0
    if backend == "verilator":
        from .verilator import build_simulator, run_simulator
        start = time.perf_counter()
        v_text = _verilog(acc)
        convert_seconds = time.perf_counter() - start
        build = build_simulator(v_text, profile=True, cache_dir=cache_dir, trace=vcd is not None)
        build_seconds = build.build_seconds
        trace = run_simulator(build, beats.reshape(-1, beats.shape[-1]),
                              beats_per_frame=acc.beats_per_frame, n_frames=n,
                              stall_in=stall_in, stall_out=stall_out, seed=seed,
                              max_idle=max_idle, vcd=vcd)
    else:
        trace = _run_pysim(acc, beats, n, stall_in=stall_in, stall_out=stall_out, seed=seed,
                           max_idle=max_idle, vcd=vcd)
    if len(trace.out_cycles) != n:
        raise FlowError(f"simulation returned {len(trace.out_cycles)} results for {n} frames")

    golden = run_golden(artifact, images)
    scores = np.zeros((n, artifact.classes), np.int64)
    predictions = []
    for f, value in enumerate(trace.out_payloads):
        s, index = decode_readout(value, artifact.classes, acc.score_bits)
        scores[f] = s
        predictions.append(index)
    bad = [f for f in range(n)
           if not np.array_equal(scores[f], golden.scores[f])
           or predictions[f] != int(golden.prediction[f])]
    return _report(artifact, acc, plan, images, trace, scores, predictions, bad, backend,
                   clock_hz, build_seconds, convert_seconds, stall_in, stall_out)


def _counter_values(raw: int, names: list[str], bits: int) -> dict[str, int]:
    mask = (1 << bits) - 1
    return {name: (raw >> (i * bits)) & mask for i, name in enumerate(names)}


def _report(artifact, acc, plan, images, trace: SimTrace, scores, predictions, bad, backend,
            clock_hz, build_seconds, convert_seconds, stall_in, stall_out) -> SimulationReport:
    n = len(trace.out_cycles)
    outs = trace.out_cycles
    snaps = [_counter_values(raw, acc.counter_names, acc.counter_bits)
             for raw in trace.out_counters]
    if n >= 3:
        first, last = 1, n - 1
    elif n == 2:
        first, last = 0, 1
    else:
        first, last = None, 0
    interval = None if first is None else (outs[last] - outs[first]) / (last - first)
    # Per-core figures: the counters at the last result over all frames. Each frame's work in a
    # core is counted once whenever it happens, so this is the core's own cost per frame even
    # when few frames leave some cores idle at the start or the end of the run.
    per_frame = {k: v / n for k, v in snaps[-1].items()}
    # the frame interval the utilisation refers to (the whole run for a single frame)
    window = interval if interval is not None else float(outs[0] + 1)

    stats = measure_densities(artifact, images[:PLAN_SAMPLE])
    stages = []
    for k, (lp, st, core) in enumerate(zip(plan.layers, stats, acc.cores)):
        predicted = recurrence_cycles(core.layer, st, lp.p_co, lp.p_ci, artifact.T,
                                      input_bits=core.input_bits,
                                      static_input=core.static_input)
        pairs = per_frame[f"core{k}_pairs"]
        stages.append(StageReport(
            index=lp.index, layer=lp.describe(), p_co=lp.p_co, p_ci=lp.p_ci,
            predicted_cycles=float(predicted),
            simulated_cycles=per_frame[f"core{k}_busy"],
            window_cycles=per_frame[f"core{k}_windows"],
            blocked_cycles=per_frame[f"core{k}_blocked"],
            pairs=pairs, utilisation=pairs / (lp.p_co * window) if window else None))
    lanes = sum(s.p_co for s in stages)
    total_pairs = sum(s.pairs for s in stages)
    slowest = max(stages, key=lambda s: s.simulated_cycles).index
    predicted_interval = max(s.predicted_cycles for s in stages)
    return SimulationReport(
        artifact=artifact.name, backend=backend, frames=n, mismatches=len(bad),
        mismatched_frames=tuple(bad), predictions=tuple(int(p) for p in predictions),
        cycles_per_frame=interval,
        latency_cycles=int(outs[0] - trace.frame_starts[0]) if trace.frame_starts else outs[0],
        clock_hz=float(clock_hz), fps=None if interval is None else clock_hz / interval,
        utilisation=total_pairs / (lanes * window) if window else None,
        stages=tuple(stages), slowest_stage=slowest,
        predicted_cycles_per_frame=float(predicted_interval), total_cycles=trace.cycles,
        sim_seconds=trace.seconds,
        sim_cycles_per_second=trace.cycles / trace.seconds if trace.seconds else 0.0,
        build_seconds=build_seconds, convert_seconds=convert_seconds, stall_in=stall_in,
        stall_out=stall_out, scores=scores)


def _run_pysim(acc, beats: np.ndarray, n_frames: int, *, stall_in: float, stall_out: float,
               seed: int, max_idle: int, vcd=None) -> SimTrace:
    """Amaranth's Python simulator with the same protocol as the Verilator testbench."""
    from amaranth.hdl import Value
    from amaranth.sim import Simulator

    from .accelerator import words_to_int
    bpf = acc.beats_per_frame
    items = [words_to_int(b) for frame in beats for b in frame]
    rng = random.Random(seed)
    in_payload = Value.cast(acc.input.payload)
    out_payload = Value.cast(acc.output.payload)
    counters = Value.cast(acc.counters)
    starts, out_cycles, payloads, snaps = [], [], [], []
    state = {"cycles": 0, "done": False}

    async def producer(ctx):
        cycle = 0
        for n, item in enumerate(items):
            while stall_in and rng.random() < stall_in:
                await ctx.tick()
                cycle += 1
            ctx.set(acc.input.valid, 1)
            ctx.set(in_payload, item)
            while True:
                _, _, ready = await ctx.tick().sample(acc.input.ready)
                cycle += 1
                if ready:
                    break
                if state["done"]:
                    return
            if n % bpf == 0:
                starts.append(cycle - 1)
            ctx.set(acc.input.valid, 0)

    async def consumer(ctx):
        cycle = idle = 0
        while len(out_cycles) < n_frames:
            ready = not stall_out or rng.random() >= stall_out
            ctx.set(acc.output.ready, ready)
            _, _, valid, payload, count = await ctx.tick().sample(
                acc.output.valid, out_payload, counters)
            if valid and ready:
                out_cycles.append(cycle)
                payloads.append(int(payload))
                snaps.append(int(count))
                idle = 0
            else:
                idle += 1
                if idle > max_idle:
                    raise FlowError(f"pysim: no result for {max_idle} cycles after "
                                    f"{len(out_cycles)} of {n_frames} frames (deadlock?)")
            cycle += 1
        state["cycles"] = cycle
        state["done"] = True

    sim = Simulator(acc)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    start = time.perf_counter()
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    seconds = time.perf_counter() - start
    return SimTrace(out_cycles, payloads, snaps, starts, state["cycles"], seconds)
