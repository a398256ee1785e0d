"""The simulation report: per layer core and for the whole accelerator, the simulated (exact)
cycles next to the planner's prediction; data first (:meth:`SimulationReport.as_dict`),
formatting second (:meth:`SimulationReport.format`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .compiler import measure_densities, recurrence_cycles
from .compiler.direct import direct_conv_frame_cycles
from .sim.trace import SimTrace

__all__ = ["StageReport", "SimulationReport", "simulation_report", "STEADY_MIN_FRAMES",
           "STEADY_TOLERANCE"]

#: Frames a run needs before its observed interval between results can confirm the
#: steady-state figure (the first result only ends the fill; two more intervals average out
#: the drain of the last).
STEADY_MIN_FRAMES = 4
#: How far the observed interval may be from the slowest core's busy cycles per frame for the
#: steady-state figure to be called reliable. The test
#: ``tests/hw/test_flow.py::test_steady_state_any_frame_count`` holds 2- and 8-frame runs of one
#: model to it.
STEADY_TOLERANCE = 0.10


@dataclass(frozen=True)
class StageReport:
    """One layer core in a simulation.

    ``predicted_cycles``: the planner's model (:func:`fireflys_hw.compiler.recurrence_cycles`,
    the synapse array's cycle recurrence plus the window fill) on the simulated images (the
    first 16; estimate). The rest are exact, from the profiling
    counters (:mod:`fireflys_hw.gateware.accelerator`) over the whole run divided by the frames:
    ``simulated_cycles``, the core's ``busy`` cycles per frame (its own cost: window beats
    sent or detectors working); ``window_cycles``, window beats per frame; ``blocked_cycles``,
    cycles per frame it was held back by the downstream; ``pairs``, effectual pairs per frame;
    ``utilisation``, ``pairs / (p_co * cycles_per_frame)`` with the accelerator's frame
    interval. A dense first core (:attr:`~fireflys_hw.compiler.LayerPlan.dense`): predicted
    :func:`~fireflys_hw.compiler.direct.direct_conv_frame_cycles` (exact model), simulated
    ``max(busy, windows)`` (its convolution's cycles, its spike beats sent), pairs 0.
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
    cycles_per_frame : float
        Steady-state frame interval: the slowest core's busy cycles per frame (exact, from its
        counter over all frames), the interval frames sent back to back settle to when that
        core never waits. Defined for any number of frames; see :data:`STEADY_TOLERANCE` for
        when it is checked against the observed interval.
    observed_interval : float or None
        Mean cycles between consecutive results after the first (``None`` for one frame):
        what this run showed, filling and draining included, and image-to-image variation.
    steady_state_reliable : bool
        ``cycles_per_frame`` agrees with ``observed_interval`` within :data:`STEADY_TOLERANCE`
        over at least :data:`STEADY_MIN_FRAMES` frames; if not, the report says so (too few
        frames, or a pipeline that waits at its slowest core).
    latency_cycles : int
        Cycles from the first input beat of frame 0 to its result.
    clock_hz, fps : float
        The assumed clock (not a timing result) and ``clock_hz / cycles_per_frame``.
    utilisation : float or None
        All cores' effectual pairs / (all lanes x cycles), steady state.
    stages : tuple of StageReport
    slowest_stage : int or None
        Layer index of the core with the most busy cycles per frame.
    predicted_cycles_per_frame : float
        The planner's frame interval for these images (model estimate).
    sample_frames : int
        Images the prediction was evaluated on (the first of the simulated ones).
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
    cycles_per_frame: float
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
    sample_frames: int = 0
    observed_interval: float | None = None
    steady_state_reliable: bool = False
    scores: np.ndarray = field(repr=False, default=None)

    def steady_state_note(self) -> str:
        """One line: whether the steady-state figure was confirmed by this run's results."""
        if self.observed_interval is None:
            return (f"one frame: no interval between results to check it against (unreliable;"
                    f" simulate at least {STEADY_MIN_FRAMES} frames)")
        diff = self.observed_interval / self.cycles_per_frame - 1
        seen = (f"observed {self.observed_interval:,.0f} cycles between results "
                f"({diff:+.1%})")
        if self.steady_state_reliable:
            return f"{seen}: agrees within {STEADY_TOLERANCE:.0%}"
        if self.frames < STEADY_MIN_FRAMES:
            return (f"{seen}; unreliable: {self.frames} frames are too few to confirm it "
                    f"(simulate at least {STEADY_MIN_FRAMES})")
        return (f"{seen}; unreliable: more than {STEADY_TOLERANCE:.0%} apart (images of "
                f"unequal cost, or a pipeline that waits at its slowest core)")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the scores are left out)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("scores", "stages")}
        d["mismatched_frames"] = list(self.mismatched_frames)
        d["predictions"] = list(self.predictions)
        d["stages"] = [asdict(s) for s in self.stages]
        d["steady_state_note"] = self.steady_state_note()
        d["note"] = ("simulated cycles are exact; predicted cycles are model estimates; fps is "
                     "cycles_per_frame at clock_hz (an assumed clock, not a timing result); "
                     "cycles_per_frame is the slowest core's busy cycles per frame, "
                     "observed_interval the mean gap between results after the first")
        return d

    def format(self) -> str:
        """A short human-readable summary."""
        ok = "all match" if not self.mismatches else f"{self.mismatches} MISMATCH"
        lines = [f"{self.artifact}: {self.frames} frames on {self.backend}, golden model: {ok}"]
        lines.append(f"  {self.cycles_per_frame:,.0f} cycles/frame at steady state "
                     f"(simulated: the slowest core's busy cycles per frame) -> "
                     f"{self.fps:,.0f} FPS at an assumed {self.clock_hz / 1e6:g} MHz clock; "
                     f"predicted {self.predicted_cycles_per_frame:,.0f}")
        lines.append("  " + self.steady_state_note())
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
        lines.append(f"  predicted: the planner's cycle recurrence on {self.sample_frames} of "
                     f"these images (an estimate; the plan's own figure, in plan.json, is on "
                     f"its planning images);")
        lines.append("  simulated: the core's busy cycles per frame (exact); model: predicted / "
                     "simulated - 1; blocked: cycles per frame the next core held it back;")
        lines.append("  util: effectual pairs / (P_Co x steady-state cycles/frame); <: the "
                     "slowest core, which sets the steady state")
        speed = f"{self.sim_cycles_per_second:,.0f} cycles/s"
        build = "" if self.build_seconds is None else (
            f", build {self.build_seconds:.1f} s" if self.build_seconds else ", build cached")
        lines.append(f"  simulated {self.total_cycles:,} cycles in {self.sim_seconds:.2f} s "
                     f"({speed}{build})")
        return "\n".join(lines)


def _counter_values(raw: int, names: list[str], bits: int) -> dict[str, int]:
    mask = (1 << bits) - 1
    return {name: (raw >> (i * bits)) & mask for i, name in enumerate(names)}


def simulation_report(artifact, acc, plan, sample, trace: SimTrace, scores, predictions, bad,
                      backend, clock_hz, build_seconds, convert_seconds, stall_in,
                      stall_out) -> SimulationReport:
    """The :class:`SimulationReport` of a run: ``trace`` from a backend, the decoded ``scores``
    and ``predictions``, the frames ``bad`` that differ from the golden model; ``sample``: the
    images the planner's cycle model is evaluated on."""
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
    observed = None if first is None else (outs[last] - outs[first]) / (last - first)
    # Per-core figures: the counters at the last result over all frames. Each frame's work in a
    # core is counted once whenever it happens, so this is the core's own cost per frame even
    # when few frames leave some cores idle at the start or the end of the run.
    per_frame = {k: v / n for k, v in snaps[-1].items()}

    stats = measure_densities(artifact, sample)
    stages = []
    for k, (lp, st, core) in enumerate(zip(plan.layers, stats, acc.cores)):
        busy = per_frame[f"core{k}_busy"]
        if lp.dense:
            # the dense first core: exact cycles; its convolution (busy) and its spike beats
            # (windows) overlap, its own cost is the larger
            predicted = direct_conv_frame_cycles(core.layer, lp.p_co, artifact.T,
                                                 serialised=core.per_step)
            busy = max(busy, per_frame[f"core{k}_windows"])
        else:
            predicted = recurrence_cycles(core.layer, st, lp.p_co, lp.p_ci, artifact.T,
                                          input_bits=core.input_bits,
                                          static_input=core.static_input)
        pairs = per_frame[f"core{k}_pairs"]
        stages.append(StageReport(
            index=lp.index, layer=lp.describe(), p_co=lp.p_co, p_ci=lp.p_ci,
            predicted_cycles=float(predicted),
            simulated_cycles=busy,
            window_cycles=per_frame[f"core{k}_windows"],
            blocked_cycles=per_frame[f"core{k}_blocked"],
            pairs=pairs, utilisation=None))
    # the steady state: the slowest core's own cycles per frame (exact, any frame count)
    interval = max(s.simulated_cycles for s in stages)
    reliable = (observed is not None and n >= STEADY_MIN_FRAMES
                and abs(observed / interval - 1) <= STEADY_TOLERANCE)
    stages = [replace(s, utilisation=s.pairs / (s.p_co * interval) if interval else None)
              for s in stages]
    lanes = sum(s.p_co for s in stages)
    total_pairs = sum(s.pairs for s in stages)
    slowest = max(stages, key=lambda s: s.simulated_cycles).index
    predicted_interval = max(s.predicted_cycles for s in stages)
    return SimulationReport(
        artifact=artifact.name, backend=backend, frames=n, mismatches=len(bad),
        mismatched_frames=tuple(bad), predictions=tuple(int(p) for p in predictions),
        cycles_per_frame=interval,
        latency_cycles=int(outs[0] - trace.frame_starts[0]) if trace.frame_starts else outs[0],
        clock_hz=float(clock_hz), fps=clock_hz / interval if interval else None,
        utilisation=total_pairs / (lanes * interval) if interval else None,
        stages=tuple(stages), slowest_stage=slowest,
        predicted_cycles_per_frame=float(predicted_interval), total_cycles=trace.cycles,
        sim_seconds=trace.seconds,
        sim_cycles_per_second=trace.cycles / trace.seconds if trace.seconds else 0.0,
        build_seconds=build_seconds, convert_seconds=convert_seconds, stall_in=stall_in,
        stall_out=stall_out, sample_frames=len(sample), observed_interval=observed, steady_state_reliable=reliable,
        scores=scores)
