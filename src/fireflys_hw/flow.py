"""The hardware flow as plain functions: artifact -> plan -> accelerator -> files / simulation.

Each step takes one typed object and returns the next, so a user can stop after any of them::

    from fireflys_sw.artifact import load_artifact
    from fireflys_hw.flow import make_plan, compile_accelerator, simulate_accelerator

    artifact = load_artifact("model.npz")
    plan = make_plan(artifact, device="xczu5ev")                  # fireflys_hw.compiler.Plan
    result = compile_accelerator(artifact, "build/", plan=plan)   # top.il, top.v, plan.json,
    report.* report = simulate_accelerator(artifact, images, plan=plan)    # Verilator, bit-exact
    check print(report.as_dict())

``fireflys compile`` and ``fireflys simulate`` (:mod:`fireflys_hw.cli`) are thin layers over
:func:`compile_accelerator` and :func:`simulate_accelerator`.

Where numbers come from: simulated cycles are exact (cycle-accurate simulation of the gateware
or of its Verilog); ``predicted`` cycles, LUTs and block RAM are model estimates
(:mod:`fireflys_hw.compiler`); frame rates are cycles converted at an assumed clock, not a timing
result.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fireflys_sw.artifact import Artifact, check_artifact, load_artifact
from fireflys_sw.errors import FireflysError
from fireflys_sw.golden import run_golden
from fireflys_sw.progress import Progress

from .compiler import (Plan, check_plan, format_plan, measure_densities, plan_accelerator,
                       save_plan)
# StageReport is re-exported: it is part of this module's public results
from .report import (SimulationReport, StageReport, merge_reports,  # noqa: F401
                     predicted_stages, simulation_report)
from .sim.run import BACKENDS, run_frames

__all__ = ["FlowError", "Backend", "make_plan", "build_accelerator", "CompileResult",
           "compile_accelerator", "StageReport", "SimulationReport", "simulate_accelerator",
           "plan_fingerprint", "DEFAULT_CLOCK_HZ"]

log = logging.getLogger(__name__)

#: FireFly-S's clock on the KV260 (the default for frame rates from simulated cycles).
DEFAULT_CLOCK_HZ = 333e6

Backend = str   # one of fireflys_hw.sim.run.BACKENDS

#: Images used to measure spike densities for planning when none are given.
PLAN_SAMPLE = 16


class FlowError(FireflysError, ValueError):
    """A flow argument that is the user's to fix (one line)."""


def _artifact(artifact: Artifact | str | os.PathLike) -> Artifact:
    """``artifact`` loaded if a path; an :class:`Artifact` built in Python is held to the
    loader's rules (:func:`check_artifact`), so every stage after this can rely on them."""
    if isinstance(artifact, Artifact):
        check_artifact(artifact, f"artifact {artifact.name!r}")
        return artifact
    return load_artifact(artifact)


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
    """The plan to build: ``plan`` as given (a :class:`~fireflys_hw.compiler.Plan` or a plan file,
    checked against the artifact), else :func:`~fireflys_hw.compiler.plan_accelerator` on the spike
    densities measured on ``images`` (default: 16 synthetic images), with ``parallelism`` (per
    synaptic layer ``(p_co, p_ci)``, or ``{layer index: (p_co, p_ci)}``) fixed if given.

    With every layer's parallelism given and no ``lut_budget``, the budgets are not enforced
    (the plan then only carries the predictions). ``recurrence=False`` keeps the formula's
    cycles (no cycle recurrence, :func:`~fireflys_hw.compiler.plan_accelerator`).
    """
    from .compiler import load_plan
    artifact = _artifact(artifact)
    if plan is not None:
        if parallelism is not None:
            raise FlowError("give either a plan or a parallelism, not both")
        if not isinstance(plan, Plan):
            plan = load_plan(plan)
        check_plan(plan, artifact)
        return plan
    images = _images_for(artifact, images)
    doing = [f"measuring spike densities on {len(images)} images (golden model)"]
    with Progress("planning", status=lambda: doing[0]):
        stats = measure_densities(artifact, images)
        overrides = None if parallelism is None else _parallelism_overrides(artifact,
                                                                            parallelism)
        unbounded = overrides is not None and len(overrides) == len(stats) and lut_budget is None
        huge = 10 ** 12
        doing[0] = ("choosing each core's parallelism, then its cycles by the recurrence on "
                    "the measured frames" if recurrence else "choosing each core's parallelism")
        return plan_accelerator(artifact, stats, device=device,
                                lut_budget=huge if unbounded else lut_budget,
                                ff_budget=huge if unbounded else None,
                                bram_budget=float(huge) if unbounded else None,
                                target_fps=target_fps, clock_hz=clock_hz, overrides=overrides,
                                recurrence=recurrence)


def build_accelerator(artifact: Artifact, plan: Plan, *, profile: bool = True):
    """The :class:`~fireflys_hw.gateware.accelerator.Accelerator` of ``plan`` (its parallelism and
    FIFO
    depths)."""
    from .gateware.accelerator import Accelerator
    check_plan(plan, artifact)
    fifo_depths = [lp.fifo_depth for lp in plan.layers[:-1]]
    return Accelerator(artifact, plan.parallelism(), fifo_depths, profile=profile,
                       dense_first=plan.dense_first)


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

    ``profile`` keeps the profiling counters (:mod:`fireflys_hw.gateware.accelerator`) in the
    design, so that the Verilog is the one :func:`simulate_accelerator` checks; drop them for a
    leaner synthesis.
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
    with Progress("elaborating the accelerator and writing RTLIL"):
        il_text = rtlil.convert(acc, name="top")
    seconds["rtlil"] = time.perf_counter() - start
    acc = build_accelerator(artifact, plan, profile=profile)   # a component elaborates once
    start = time.perf_counter()
    with Progress("writing Verilog"):
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
        "note": "cycles, LUT, FF and BRAM are model estimates (fireflys_hw.compiler); "
                "run 'fireflys simulate' for exact cycles",
    }
    from .host.protocol import model_id
    from .timing import clock_note
    clock = clock_note(model_id(artifact), plan, plan.clock_hz, artifact.name)
    report["clock"] = clock
    files["report"].write_text(json.dumps(report, indent=1) + "\n")
    order = "one per pixel, raster order" + (
        "" if acc.cores[0].static_input else ", every step in a beat")
    files["report_text"].write_text(
        format_plan(plan) + "\n\n"
        f"input: {acc.beat_bits}-bit beats, {acc.beats_per_frame} per frame "
        f"({order}); output: {acc.classes} scores of {acc.score_bits} bits "
        f"+ class index\n"
        f"clock: {clock['note']}\n")
    return CompileResult(out, files, plan, report)


# --- simulate -----------------------------------------------------------------------------------

def simulate_accelerator(artifact: Artifact | str, images, *, plan: Plan | str | None = None,
                         parallelism=None, backend: Backend = "verilator",
                         vcd: str | os.PathLike | None = None,
                         clock_hz: float = DEFAULT_CLOCK_HZ, stall_in: float = 0.0,
                         stall_out: float = 0.0, seed: int = 0,
                         device: str = "xczu5ev", lut_budget: int | None = None,
                         target_fps: float | None = None,
                         cache_dir: str | os.PathLike | None = None,
                         max_idle: int | None = None,
                         verilog_text: str | None = None, jobs: int = 1,
                         sample=None, first_frame: int = 0) -> SimulationReport:
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
        Verilator build cache (:func:`fireflys_hw.sim.verilator.default_cache_dir`).
    max_idle : int or None
        Fail after this many cycles without a result (default: generous, from the plan).
    verilog_text : str or None
        The Verilog of this plan's accelerator with its profiling counters, if
        :func:`compile_accelerator` already wrote it (``top.v``): Verilator builds it
        instead of converting the design again.
    jobs : int
        Split the frames into this many contiguous parts (at most one per frame) and simulate
        them at once, each in a Verilator process of its own (one build); the report is
        :func:`~fireflys_hw.report.merge_reports` of the parts' (see
        :attr:`SimulationReport.parts` for how their cycles combine). Verilator only.
    sample : array or None
        The images the planner's cycle model is evaluated on for the report's "predicted"
        figures, and planned on when no plan is given (default: the first 16 of ``images``).
        A shard of a larger run passes the whole run's first 16, so that every shard predicts
        and plans alike.
    first_frame : int
        The number of ``images[0]`` in a larger run (a shard's first frame), for the report.
    """
    from .host.beats import decode_readout, input_beats
    from .host.protocol import model_id
    if vcd is not None:
        # refused before the build, not after minutes of simulation; no folder is made for it
        vcd_path = Path(vcd)
        if vcd_path.is_dir():
            raise FlowError(f"vcd {str(vcd_path)!r} is a directory, not a file to write")
        if not vcd_path.parent.is_dir():
            raise FlowError(f"vcd {str(vcd_path)!r}: the folder {str(vcd_path.parent)!r} does "
                            f"not exist")
        if not os.access(vcd_path.parent, os.W_OK):
            raise FlowError(f"vcd {str(vcd_path)!r}: the folder {str(vcd_path.parent)!r} is not "
                            f"writable")
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
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise FlowError(f"jobs must be a positive integer, not {jobs!r}")
    if jobs > 1 and backend != "verilator":
        raise FlowError(f"jobs > 1 runs several Verilator processes; the {backend} backend "
                        f"runs in this process (use jobs=1)")
    if jobs > 1 and vcd is not None:
        raise FlowError("a waveform (vcd) needs one job, not several")
    if isinstance(first_frame, bool) or not isinstance(first_frame, int) or first_frame < 0:
        raise FlowError(f"first_frame must be a non-negative integer, not {first_frame!r}")
    n = len(images)
    sample = images[:PLAN_SAMPLE] if sample is None else _images_for(artifact, sample)
    plan = make_plan(artifact, plan=plan, parallelism=parallelism,
                     images=sample[:max(PLAN_SAMPLE, 1)], device=device, lut_budget=lut_budget,
                     target_fps=target_fps, clock_hz=clock_hz)
    acc = build_accelerator(artifact, plan, profile=True)
    beats = input_beats(artifact, images)
    if max_idle is None:
        slack = 1.0 / (1.0 - stall_out) / (1.0 - stall_in)
        max_idle = int(20 * (plan.frame_cycles + acc.beats_per_frame) * slack) + 100_000

    run = run_frames(acc, beats, backend=backend, stall_in=stall_in, stall_out=stall_out,
                     seed=seed, max_idle=max_idle, vcd=vcd, cache_dir=cache_dir,
                     verilog_text=verilog_text, jobs=jobs)
    golden = run_golden(artifact, images)
    ids = {"model_id": model_id(artifact), "plan_id": plan_fingerprint(plan),
           "stages": predicted_stages(artifact, acc, plan, sample[:PLAN_SAMPLE])}
    reports = []
    for k, (trace, (start, stop)) in enumerate(zip(run.traces, run.parts)):
        if len(trace.out_cycles) != stop - start:
            raise FlowError(f"simulation returned {len(trace.out_cycles)} results for "
                            f"{stop - start} frames")
        scores = np.zeros((stop - start, artifact.classes), np.int64)
        predictions = []
        for f, value in enumerate(trace.out_payloads):
            s, index = decode_readout(value, artifact.classes, acc.score_bits)
            scores[f] = s
            predictions.append(index)
        bad = [f for f in range(stop - start)
               if not np.array_equal(scores[f], golden.scores[start + f])
               or predictions[f] != int(golden.prediction[start + f])]
        # the parts share one build and one Verilog: its times are counted in the first part
        reports.append(simulation_report(
            artifact, acc, plan, sample[:PLAN_SAMPLE], trace, scores, predictions, bad,
            backend, clock_hz, run.build_seconds if k == 0 else (
                None if run.build_seconds is None else 0.0),
            run.convert_seconds if k == 0 else 0.0, stall_in, stall_out,
            first_frame=first_frame + start, **ids))
    return reports[0] if len(reports) == 1 else merge_reports(reports)


def plan_fingerprint(plan: Plan) -> str:
    """A short fingerprint of ``plan`` (its file contents), to tell whether reports come from
    the same plan."""
    import hashlib
    from .compiler.planfile import plan_to_dict
    text = json.dumps(plan_to_dict(plan), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
