"""The simulation report: per layer core and for the whole accelerator, the simulated (exact)
cycles next to the planner's prediction; data first (:meth:`SimulationReport.as_dict`),
formatting second (:meth:`SimulationReport.format`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from fireflys_sw.errors import FireflysError

from .compiler import measure_densities, recurrence_cycles
from .compiler.direct import direct_conv_frame_cycles
from .sim.trace import SimTrace

__all__ = ["StageReport", "SimulationReport", "simulation_report", "predicted_stages",
           "STEADY_MIN_FRAMES", "STEADY_TOLERANCE", "MergeError", "merge_reports",
           "part_to_dict", "part_from_dict", "merge_parts", "PART_FORMAT"]

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
    dense: bool = False


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
    first_frame : int
        Number of the first frame simulated (0 unless the report is one shard of a run,
        ``fireflys simulate --shard``); ``mismatched_frames`` count from 0 of the whole run.
    parts : int
        Pipelines the frames went through: 1 for frames back to back in one simulation, more
        for ``--jobs`` or merged shards (:func:`merge_reports`). With more than one, each part
        started empty: the per-core figures (and so ``cycles_per_frame``) are the counters
        summed over the parts, ``observed_interval`` averages every part's gaps between results
        after its first, ``latency_cycles`` is the first frame's, and ``total_cycles`` and
        ``sim_seconds`` are summed.
    counters : dict of str to int
        The profiling counters summed over the run (``core<k>_busy``, ``_windows``,
        ``_blocked``, ``_pairs``): what the per-core figures are computed from, kept so that
        reports of parts add up exactly.
    model_id : int or None
        :func:`fireflys_hw.host.protocol.model_id` of the artifact.
    plan_id : str or None
        A fingerprint of the plan (its file contents).
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
    first_frame: int = 0
    parts: int = 1
    counters: dict = field(default_factory=dict)
    model_id: int | None = None
    plan_id: str | None = None

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

    def as_dict(self, *, scores: bool = False) -> dict[str, Any]:
        """Plain JSON-able data; the scores (a list per frame) only with ``scores=True``."""
        d = {k: v for k, v in asdict(self).items() if k not in ("scores", "stages")}
        d["mismatched_frames"] = list(self.mismatched_frames)
        d["predictions"] = list(self.predictions)
        d["stages"] = [asdict(s) for s in self.stages]
        d["counters"] = dict(self.counters)
        if scores:
            d["scores"] = np.asarray(self.scores).tolist()
        d["steady_state_note"] = self.steady_state_note()
        d["note"] = ("simulated cycles are exact; predicted cycles are model estimates; fps is "
                     "cycles_per_frame at clock_hz (an assumed clock, not a timing result); "
                     "cycles_per_frame is the slowest core's busy cycles per frame, "
                     "observed_interval the mean gap between results after the first")
        if self.parts > 1:
            d["parts_note"] = self.parts_note()
        return d

    def parts_note(self) -> str:
        """One line on how the figures of a run in several pipelines were combined."""
        return (f"the frames went through {self.parts} separate pipelines (--jobs or shards), "
                f"each starting empty: per-core cycles and cycles_per_frame are the counters "
                f"summed over them (work a single pipeline overlaps at a part's edges is "
                f"counted in each part); observed_interval averages each pipeline's gaps "
                f"between results after its first; latency is frame {self.first_frame}'s; "
                f"total_cycles and sim_seconds are summed")

    def format(self) -> str:
        """A short human-readable summary."""
        ok = "all match" if not self.mismatches else f"{self.mismatches} MISMATCH"
        lines = [f"{self.artifact}: {self.frames} frames on {self.backend}, golden model: {ok}"]
        lines.append(f"  {self.cycles_per_frame:,.0f} cycles/frame at steady state "
                     f"(simulated: the slowest core's busy cycles per frame) -> "
                     f"{self.fps:,.0f} FPS at an assumed {self.clock_hz / 1e6:g} MHz clock; "
                     f"predicted {self.predicted_cycles_per_frame:,.0f}")
        lines.append("  " + self.steady_state_note())
        if self.parts > 1:
            lines.append("  " + self.parts_note())
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
        where = "" if self.parts == 1 else f" (summed over {self.parts} pipelines)"
        lines.append(f"  simulated {self.total_cycles:,} cycles in {self.sim_seconds:.2f} s"
                     f"{where} ({speed}{build})")
        return "\n".join(lines)


def _counter_values(raw: int, names: list[str], bits: int) -> dict[str, int]:
    mask = (1 << bits) - 1
    return {name: (raw >> (i * bits)) & mask for i, name in enumerate(names)}


def _intervals(frames: int) -> int:
    """Gaps between results that a run of ``frames`` frames averages (after the first result
    when there are three or more, which ends the fill)."""
    return frames - 2 if frames >= 3 else frames - 1


def _observed(outs) -> float | None:
    n = len(outs)
    if n < 2:
        return None
    first = 1 if n >= 3 else 0
    return (outs[n - 1] - outs[first]) / (n - 1 - first)


def _with_counters(stages, totals: dict[str, int], n: int) -> dict[str, Any]:
    """The fields of a :class:`SimulationReport` that come from the summed counters ``totals``
    of ``n`` frames; ``stages`` carry the static fields (layer, parallelism, prediction)."""
    per_frame = {k: v / n for k, v in totals.items()}
    stages = [replace(s, simulated_cycles=(
                          # the dense first core: its convolution (busy) and its spike beats
                          # (windows) overlap, its own cost is the larger
                          max(per_frame[f"core{k}_busy"], per_frame[f"core{k}_windows"])
                          if s.dense else per_frame[f"core{k}_busy"]),
                      window_cycles=per_frame[f"core{k}_windows"],
                      blocked_cycles=per_frame[f"core{k}_blocked"],
                      pairs=per_frame[f"core{k}_pairs"])
              for k, s in enumerate(stages)]
    # the steady state: the slowest core's own cycles per frame (exact, any frame count)
    interval = max(s.simulated_cycles for s in stages)
    stages = [replace(s, utilisation=s.pairs / (s.p_co * interval) if interval else None)
              for s in stages]
    lanes = sum(s.p_co for s in stages)
    total_pairs = sum(s.pairs for s in stages)
    return dict(stages=tuple(stages), cycles_per_frame=interval,
                utilisation=total_pairs / (lanes * interval) if interval else None,
                slowest_stage=max(stages, key=lambda s: s.simulated_cycles).index,
                predicted_cycles_per_frame=float(max(s.predicted_cycles for s in stages)))


def _reliable(observed: float | None, interval: float, frames: int) -> bool:
    return (observed is not None and frames >= STEADY_MIN_FRAMES and interval > 0
            and abs(observed / interval - 1) <= STEADY_TOLERANCE)


def predicted_stages(artifact, acc, plan, sample) -> list[StageReport]:
    """Per layer core, the static part of its :class:`StageReport`: layer, parallelism and the
    planner's cycle model on ``sample`` (the simulated figures still ``None``)."""
    stats = measure_densities(artifact, sample)
    stages = []
    for lp, st, core in zip(plan.layers, stats, acc.cores):
        if lp.dense:
            predicted = direct_conv_frame_cycles(core.layer, lp.p_co, artifact.T,
                                                 serialised=core.per_step)
        else:
            predicted = recurrence_cycles(core.layer, st, lp.p_co, lp.p_ci, artifact.T,
                                          input_bits=core.input_bits,
                                          static_input=core.static_input)
        stages.append(StageReport(
            index=lp.index, layer=lp.describe(), p_co=lp.p_co, p_ci=lp.p_ci,
            predicted_cycles=float(predicted), simulated_cycles=None, window_cycles=None,
            blocked_cycles=None, pairs=None, utilisation=None, dense=bool(lp.dense)))
    return stages


def simulation_report(artifact, acc, plan, sample, trace: SimTrace, scores, predictions, bad,
                      backend, clock_hz, build_seconds, convert_seconds, stall_in,
                      stall_out, *, first_frame: int = 0, model_id: int | None = None,
                      plan_id: str | None = None, stages=None) -> SimulationReport:
    """The :class:`SimulationReport` of a run: ``trace`` from a backend, the decoded ``scores``
    and ``predictions``, the frames ``bad`` that differ from the golden model (counted from
    0 of the run); ``sample``: the images the planner's cycle model is evaluated on, unless
    ``stages`` (:func:`predicted_stages`) carries it already; ``first_frame``: the number of
    the run's first frame when it is a shard of a larger one."""
    n = len(trace.out_cycles)
    outs = trace.out_cycles
    # Per-core figures: the counters at the last result over all frames. Each frame's work in a
    # core is counted once whenever it happens, so this is the core's own cost per frame even
    # when few frames leave some cores idle at the start or the end of the run.
    totals = {name: v for name, v in _counter_values(trace.out_counters[-1], acc.counter_names,
                                                     acc.counter_bits).items()
              if name.startswith("core")}
    if stages is None:
        stages = predicted_stages(artifact, acc, plan, sample)
    figures = _with_counters(stages, totals, n)
    observed = _observed(outs)
    return SimulationReport(
        artifact=artifact.name, backend=backend, frames=n, mismatches=len(bad),
        mismatched_frames=tuple(first_frame + f for f in bad),
        predictions=tuple(int(p) for p in predictions),
        latency_cycles=int(outs[0] - trace.frame_starts[0]) if trace.frame_starts else outs[0],
        clock_hz=float(clock_hz),
        fps=clock_hz / figures["cycles_per_frame"] if figures["cycles_per_frame"] else None,
        total_cycles=trace.cycles, sim_seconds=trace.seconds,
        sim_cycles_per_second=trace.cycles / trace.seconds if trace.seconds else 0.0,
        build_seconds=build_seconds, convert_seconds=convert_seconds, stall_in=stall_in,
        stall_out=stall_out, sample_frames=len(sample), observed_interval=observed,
        steady_state_reliable=_reliable(observed, figures["cycles_per_frame"], n),
        scores=np.asarray(scores), first_frame=first_frame, counters=totals,
        model_id=model_id, plan_id=plan_id, **figures)


# --- runs in parts: --jobs, --shard and merge-reports -------------------------------------------

#: ``format`` of a partial report file (``fireflys simulate --shard K/N --out FILE``).
PART_FORMAT = "fireflys-simulation-part"
PART_VERSION = 1


class MergeError(FireflysError, ValueError):
    """Reports that cannot be merged into one run's (one line)."""


def _frames_text(first: int, stop: int) -> str:
    """``frame 3 is`` / ``frames 3-5 are``."""
    return f"frame {first} is" if stop - first == 1 else f"frames {first}-{stop - 1} are"


def merge_reports(reports, *, frames_total: int | None = None,
                  names: list[str] | None = None) -> SimulationReport:
    """One :class:`SimulationReport` for the frames of ``reports``, each a run of a slice of
    the same frames through the same accelerator (``--jobs``, or ``--shard`` files).

    Predictions, mismatches and scores are those of one run over all the frames; the per-core
    figures come from the summed counters (:attr:`SimulationReport.parts` says what that
    means for the cycles). The slices must follow each other without gap or overlap, from
    frame 0 to ``frames_total`` if given; ``names`` name the reports in error messages.
    """
    reports = list(reports)
    if not reports:
        raise MergeError("nothing to merge")
    names = names or [f"part {i + 1}" for i in range(len(reports))]
    order = sorted(range(len(reports)), key=lambda i: reports[i].first_frame)
    base = reports[order[0]]

    def same(get, what):
        for i in order[1:]:
            if get(reports[i]) != get(base):
                raise MergeError(f"{names[i]} and {names[order[0]]} differ in {what} "
                                 f"({get(reports[i])!r} vs {get(base)!r}): not parts of one run")

    same(lambda r: r.artifact, "artifact")
    same(lambda r: r.model_id, "model (its weights and shapes)")
    same(lambda r: r.plan_id, "plan")
    same(lambda r: r.backend, "backend")
    same(lambda r: r.clock_hz, "clock")
    same(lambda r: (r.stall_in, r.stall_out), "stall probabilities")
    same(lambda r: sorted(r.counters), "profiling counters")
    same(lambda r: [(s.index, s.layer, s.p_co, s.p_ci, s.dense) for s in r.stages], "layer cores")
    same(lambda r: (r.sample_frames, [s.predicted_cycles for s in r.stages]),
         "predicted cycles (planned or predicted on other images)")
    expect = 0 if frames_total is not None else base.first_frame
    for i in order:
        r = reports[i]
        if r.first_frame > expect:
            raise MergeError(f"{_frames_text(expect, r.first_frame)} in no part "
                             f"(missing a slice before {names[i]})")
        if r.first_frame < expect:
            both = _frames_text(r.first_frame, min(expect, r.first_frame + r.frames))
            raise MergeError(f"{both} in {names[i]} and in another part (overlapping slices)")
        expect = r.first_frame + r.frames
    if frames_total is not None and expect != frames_total:
        raise MergeError(f"{_frames_text(expect, frames_total)} in no part (missing "
                         f"slices of {frames_total} frames)")
    parts = [reports[i] for i in order]
    n = sum(r.frames for r in parts)
    totals = {k: sum(r.counters[k] for r in parts) for k in base.counters}
    figures = _with_counters(list(base.stages), totals, n)
    weights = [_intervals(r.frames) for r in parts]
    observed = (sum(r.observed_interval * w for r, w in zip(parts, weights) if w)
                / sum(weights)) if sum(weights) else None
    total_cycles = sum(r.total_cycles for r in parts)
    seconds = sum(r.sim_seconds for r in parts)
    builds = [r.build_seconds for r in parts if r.build_seconds is not None]
    interval = figures["cycles_per_frame"]
    return SimulationReport(
        artifact=base.artifact, backend=base.backend, frames=n,
        mismatches=sum(r.mismatches for r in parts),
        mismatched_frames=tuple(f for r in parts for f in r.mismatched_frames),
        predictions=tuple(p for r in parts for p in r.predictions),
        latency_cycles=base.latency_cycles, clock_hz=base.clock_hz,
        fps=base.clock_hz / interval if interval else None,
        total_cycles=total_cycles, sim_seconds=seconds,
        sim_cycles_per_second=total_cycles / seconds if seconds else 0.0,
        build_seconds=sum(builds) if builds else None,
        convert_seconds=sum(r.convert_seconds for r in parts),
        stall_in=base.stall_in, stall_out=base.stall_out, sample_frames=base.sample_frames,
        observed_interval=observed, steady_state_reliable=_reliable(observed, interval, n),
        scores=np.concatenate([np.asarray(r.scores) for r in parts]),
        first_frame=base.first_frame, parts=sum(r.parts for r in parts), counters=totals,
        model_id=base.model_id, plan_id=base.plan_id, **figures)


def part_to_dict(report: SimulationReport, shard: tuple[int, int], frames_total: int,
                 **extra) -> dict[str, Any]:
    """A partial report (shard ``K`` of ``N``, 1-based, of a run of ``frames_total`` frames)
    as plain data for a file that :func:`load_parts` reads back: the report with its scores."""
    d = {"format": PART_FORMAT, "version": PART_VERSION,
         "shard": {"index": shard[0], "count": shard[1], "frames_total": frames_total}}
    d.update(report.as_dict(scores=True))
    d.update(extra)
    return d


_STAGE_FIELDS = ("index", "layer", "p_co", "p_ci", "predicted_cycles", "simulated_cycles",
                 "window_cycles", "blocked_cycles", "pairs", "utilisation", "dense")
_REPORT_FIELDS = ("artifact", "backend", "frames", "mismatches", "mismatched_frames",
                  "predictions", "cycles_per_frame", "latency_cycles", "clock_hz", "fps",
                  "utilisation", "slowest_stage", "predicted_cycles_per_frame", "total_cycles",
                  "sim_seconds", "sim_cycles_per_second", "build_seconds", "convert_seconds",
                  "stall_in", "stall_out", "sample_frames", "observed_interval",
                  "steady_state_reliable", "first_frame", "parts", "counters", "model_id",
                  "plan_id")


def part_from_dict(d: Any, where: str) -> tuple[SimulationReport, tuple[int, int], int]:
    """``(report, (K, N), frames_total)`` from :func:`part_to_dict`'s data; ``where`` names
    the source in errors."""
    if not isinstance(d, dict) or d.get("format") != PART_FORMAT:
        raise MergeError(f"{where}: not a partial simulation report (written by 'fireflys "
                         f"simulate --shard K/N --out FILE')")
    if d.get("version") != PART_VERSION:
        raise MergeError(f"{where}: partial report version {d.get('version')!r}, this "
                         f"fireflys reads version {PART_VERSION}")
    try:
        shard = d["shard"]
        k, count, total = (int(shard[key]) for key in ("index", "count", "frames_total"))
        fields = {key: d[key] for key in _REPORT_FIELDS}
        stages = tuple(StageReport(**{key: s[key] for key in _STAGE_FIELDS})
                       for s in d["stages"])
        scores = np.asarray(d["scores"], dtype=np.int64)
        fields["mismatched_frames"] = tuple(int(f) for f in fields["mismatched_frames"])
        fields["predictions"] = tuple(int(p) for p in fields["predictions"])
        fields["counters"] = {str(key): int(v) for key, v in fields["counters"].items()}
        for key in ("frames", "first_frame", "parts", "mismatches"):
            fields[key] = int(fields[key])
        report = SimulationReport(stages=stages, scores=scores, **fields)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MergeError(f"{where}: a partial simulation report with a missing or bad field "
                         f"({type(error).__name__}: {str(error)[:80]})") from None
    if not (1 <= k <= count and 0 <= report.first_frame
            and report.first_frame + report.frames <= total
            and len(report.predictions) == report.frames
            and scores.shape[:1] == (report.frames,) and report.frames >= 1):
        raise MergeError(f"{where}: shard {k}/{count} of {total} frames with "
                         f"{report.frames} frames from frame {report.first_frame} does not "
                         f"add up")
    return report, (k, count), total


def merge_parts(parts: list[tuple[Any, str]]) -> SimulationReport:
    """Merge partial reports ``[(data, where), ...]`` (:func:`part_to_dict`'s data, ``where``
    naming each) into the report of the whole run: every shard ``1..N`` of the same run once."""
    read = [part_from_dict(d, where) for d, where in parts]
    names = [where for _, where in parts]
    counts = {(count, total) for _, (_, count), total in read}
    if len(counts) != 1:
        raise MergeError("the parts come from different splits (shard counts or frame totals "
                         f"{sorted(counts)}): not parts of one run")
    count, total = counts.pop()
    seen: dict[int, str] = {}
    for (_, (k, _), _), name in zip(read, names):
        if k in seen:
            raise MergeError(f"{name} and {seen[k]} are both shard {k}/{count}")
        seen[k] = name
    missing = [k for k in range(1, count + 1) if k not in seen]
    if missing:
        raise MergeError(f"shard{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(f'{k}/{count}' for k in missing[:10])} "
                         f"{'are' if len(missing) > 1 else 'is'} missing")
    return merge_reports([r for r, _, _ in read], frames_total=total, names=names)
