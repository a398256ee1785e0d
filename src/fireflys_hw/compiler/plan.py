"""The plan: per layer core, the chosen parallelism and its predicted cycles and resources, as
frozen data (:class:`Plan`, :class:`LayerPlan`), and its table (:func:`format_plan`)."""

from __future__ import annotations

import enum
import textwrap
from dataclasses import dataclass

from fireflys_sw.artifact import LayerKind

from .base import PLAN_VERSION

__all__ = ["StopReason", "LayerPlan", "Plan", "format_plan", "fmt_blocks"]


class StopReason(enum.Enum):
    """Why the planner stopped raising parallelism."""

    TARGET = "target"        # the target frame rate is met
    BUDGET = "budget"        # the next step for the slowest core would exceed a budget
    SATURATED = "saturated"  # the slowest core cannot go faster (at its maximum or fixed)


@dataclass(frozen=True)
class LayerPlan:
    """The plan for one synaptic layer's core (and the max-pool fused after it).

    Attributes
    ----------
    index : int
        Position of the layer in ``artifact.layers``.
    kind : LayerKind
        ``CONV`` or ``FC``.
    in_shape, out_shape : tuple of int
        The layer's shapes (``out_shape`` before the pool).
    pool : int
        Kernel of the max-pool fused after the core, 0 for none.
    in_bits : int
        ``Ci'``: binary input channels (``Ci * input_bits`` for the first layer).
    p_co, p_ci : int
        Output-channel lanes and bits per window chunk.
    n_groups, n_chunks : int
        ``ceil(Co / P_Co)`` and ``Kh * Kw * ceil(Ci' / P_Ci)``.
    spike_density, weight_density, mean_pairs : float
        ``s1``, ``s2`` and effectual pairs per (pixel, channel, step) (:class:`LayerStats`).
    workload : float
        Effectual MACs per frame, ``MACs * T * s1 * s2`` (FireFly-S's per-layer workload).
    cycles : float
        Predicted cycles per frame (:func:`predicted_cycles`, model estimate).
    lut, ff : int
        Predicted LUTs and flip-flops (:func:`predicted_resources`, model estimate).
    bram_blocks : float
        Predicted block RAM tiles of the device (halves for Xilinx RAMB18).
    bram_bits, lutram_bits : int
        Memory bits predicted in block RAM and in LUTs.
    fifo_depth, fifo_width : int
        The FIFO from this core to the next (beats of ``fifo_width`` bits: ``Co`` spikes; the
        readout's scores, ``Co * score_bits``).
    fixed : bool
        The parallelism was given (``overrides``), not chosen.
    dense : bool
        The core is the dense first-layer datapath (a direct-encoded conv layer:
        :class:`~fireflys_hw.gateware.direct_conv.DirectCore`, ``P_Co`` lanes that each take a
        whole window per cycle; ``p_ci`` is then ``Ci'``, the whole pixel, and ``n_chunks`` the
        window positions), not detector lanes.
    """

    index: int
    kind: LayerKind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    pool: int
    in_bits: int
    p_co: int
    p_ci: int
    n_groups: int
    n_chunks: int
    spike_density: float
    weight_density: float
    mean_pairs: float
    workload: float
    cycles: float
    lut: int
    ff: int
    bram_blocks: float
    bram_bits: int
    lutram_bits: int
    fifo_depth: int
    fifo_width: int
    fixed: bool = False
    dense: bool = False

    def describe(self) -> str:
        """``conv 16x28x28 > 32x28x28`` (``+mp2`` with a pool)."""
        shape = "x".join(map(str, self.in_shape)) + " > " + "x".join(map(str, self.out_shape))
        return f"{self.kind.value} {shape}" + (f" +mp{self.pool}" if self.pool else "")


@dataclass(frozen=True)
class Plan:
    """Parallelism and predicted cost of every layer core of one accelerator.

    Attributes
    ----------
    artifact : str
        The artifact's name.
    device : str
        Device profile name (:func:`fireflys_hw.compiler.devices.device_profile`).
    clock_hz : float
        Clock the frame rate is predicted at.
    T : int
        Time steps.
    lut_budget, ff_budget : int
        Budgets the plan was made within.
    bram_budget : float
        Block RAM tiles budget.
    target_fps : float or None
        The frame rate asked for, if any.
    stop : StopReason
        Why raising parallelism stopped.
    layers : tuple of LayerPlan
        One per synaptic layer, in order.
    version : int
        Plan file format version.
    floor : str
        With ``stop`` saturated: what holds the bottleneck core at its cycles (the floor that
        more parallelism cannot lower), one line; else empty.
    """

    artifact: str
    device: str
    clock_hz: float
    T: int
    lut_budget: int
    ff_budget: int
    bram_budget: float
    target_fps: float | None
    stop: StopReason
    layers: tuple[LayerPlan, ...]
    version: int = PLAN_VERSION
    floor: str = ""

    @property
    def frame_cycles(self) -> float:
        """The frame interval: the slowest core's cycles per frame (model estimate)."""
        return max(lp.cycles for lp in self.layers)

    @property
    def bottleneck(self) -> LayerPlan:
        return max(self.layers, key=lambda lp: lp.cycles)

    @property
    def fps(self) -> float:
        """Predicted frames per second at :attr:`clock_hz`, frames back to back."""
        return self.clock_hz / self.frame_cycles

    @property
    def lut(self) -> int:
        return sum(lp.lut for lp in self.layers)

    @property
    def ff(self) -> int:
        return sum(lp.ff for lp in self.layers)

    @property
    def bram_blocks(self) -> float:
        return sum(lp.bram_blocks for lp in self.layers)

    @property
    def bram_bits(self) -> int:
        return sum(lp.bram_bits for lp in self.layers)

    @property
    def meets_target(self) -> bool | None:
        return None if self.target_fps is None else self.fps >= self.target_fps

    def layer(self, index: int) -> LayerPlan:
        """The plan of ``artifact.layers[index]``."""
        for lp in self.layers:
            if lp.index == index:
                return lp
        raise KeyError(f"no synaptic layer at index {index} in this plan")

    def parallelism(self) -> dict[int, tuple[int, int]]:
        """``{layer index: (p_co, p_ci)}`` (usable as ``overrides``, which describe detector
        lanes: a :attr:`dense_first` core's ``p_ci`` is nominal)."""
        return {lp.index: (lp.p_co, lp.p_ci) for lp in self.layers}

    @property
    def dense_first(self) -> bool:
        """The first core is the dense first-layer datapath (:attr:`LayerPlan.dense`)."""
        return self.layers[0].dense


def fmt_blocks(blocks: float) -> str:
    """A count of block RAM tiles as the tables print it."""
    return f"{blocks:g}"


def format_plan(plan: Plan) -> str:
    """A table of the plan (one row per layer core), totals, bottleneck and predicted FPS.

    Every figure is a model estimate (:func:`recurrence_cycles` or :func:`predicted_cycles`,
    :func:`predicted_resources`)."""
    interval = plan.frame_cycles
    head = (f"{'layer':>5}  {'kind / shape':<30} {'P_Co':>4} {'P_Ci':>4} {'G':>4} "
            f"{'cycles/frame':>12} {'share':>6} {'LUT':>7} {'FF':>7} {'BRAM':>5} {'FIFO':>5}")
    lines = [f"plan for {plan.artifact} on {plan.device} at {plan.clock_hz / 1e6:g} MHz, "
             f"T = {plan.T} (model estimates: cycles from the synapse arrays' cycle recurrence on "
             f"the measured frames, resources from the synthesis-calibrated model)", head,
             "-" * len(head)]
    for lp in plan.layers:
        mark = "*" if lp.fixed else "d" if lp.dense else " "
        lines.append(
            f"{lp.index:>5}{mark} {lp.describe():<30} {lp.p_co:>4} {lp.p_ci:>4} "
            f"{lp.n_groups:>4} {lp.cycles:>12,.0f} {100 * lp.cycles / interval:>5.1f}% "
            f"{lp.lut:>7,} {lp.ff:>7,} {fmt_blocks(lp.bram_blocks):>5} {lp.fifo_depth:>5}")
    lines.append("-" * len(head))
    lines.append(f"{'total':>5}  {'':<30} {sum(lp.p_co for lp in plan.layers):>4} {'':>4} "
                 f"{'':>4} {'':>12} {'':>6} {plan.lut:>7,} {plan.ff:>7,} "
                 f"{fmt_blocks(plan.bram_blocks):>5}")
    lines.append(f"budget: {plan.lut_budget:,} LUT, {plan.ff_budget:,} FF, "
                 f"{fmt_blocks(plan.bram_budget)} BRAM; block RAM bits "
                 f"{plan.bram_bits:,}")
    b = plan.bottleneck
    target = ""
    if plan.target_fps is not None:
        target = (f"; target {plan.target_fps:,.0f} FPS "
                  f"{'met' if plan.meets_target else 'NOT met'}")
    lines.append(f"frame interval {interval:,.0f} cycles (bottleneck: layer {b.index}, "
                 f"{b.describe()}) -> {plan.fps:,.0f} FPS at {plan.clock_hz / 1e6:g} MHz; "
                 f"stopped: {plan.stop.value}{target}")
    if plan.floor:
        lines.append(f"floor: {plan.floor}")
    if any(lp.fixed for lp in plan.layers):
        lines.append("* parallelism fixed by an override")
    if any(lp.dense for lp in plan.layers):
        lines.append("d dense first-layer datapath (P_Co lanes, a whole window per cycle)")
    lines += PLAN_LEGEND
    return "\n".join(lines)


#: What the columns and words of :func:`format_plan`'s table mean, printed under it.
PLAN_LEGEND = textwrap.wrap(
    "legend: P_Co, P_Ci: output channels computed in parallel, input channels per chunk; "
    "G: groups of output channels (ceil(Co / P_Co)), each a pass over the input; "
    "cycles/frame: the core's predicted cycles per frame; share: of the frame interval "
    "(100 %: the bottleneck); BRAM: 36 Kb blocks; FIFO: depth of the FIFO after the core, in "
    "beats; *: fixed by an override; stopped: why the planner stopped adding parallelism "
    "(target: the --fps target is met; budget: the slowest core's next step would exceed a "
    "budget; saturated: the slowest core cannot go faster, at its most parallel or fixed; floor: "
    "what holds it there)",
    width=100, subsequent_indent="  ")
