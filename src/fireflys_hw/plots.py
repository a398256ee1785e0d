"""Pictures of an accelerator, for a user who would rather look than read: the pipeline's balance,
the resources per layer core and the sparsity per layer.

The figures are drawn from plain data (a report dict, :meth:`SimulationReport.as_dict`, and a
:class:`~fireflys_hw.compiler.Plan`), so they can be redrawn from the JSON files a run wrote.
Matplotlib is used through its object API with the Agg canvas (no pyplot, no display, no global
backend switch), imported only when a figure is drawn.

``fireflys demo`` writes all three into its output folder; ``fireflys simulate --plot DIR``
too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["plot_pipeline_balance", "plot_resources", "plot_sparsity", "write_plots",
           "FIREFLY_S_CYCLES", "firefly_s_cycles"]

#: FireFly-S's published frame interval for its SCNN5 on MNIST (10,047 FPS at 333 MHz, TCAS-I
#: 2024), the line the pipeline chart compares against for SCNN5 models.
FIREFLY_S_CYCLES = {"scnn5": 33_100}

_BLUE, _ORANGE, _GREY, _RED, _GREEN = "#4477aa", "#ee7733", "#bbbbbb", "#cc3311", "#228833"


def firefly_s_cycles(artifact) -> float | None:
    """FireFly-S's cycles/frame for the same network (SCNN5 only), else ``None``."""
    name = str(getattr(artifact, "name", artifact) or "")
    meta = getattr(artifact, "metadata", {}) or {}
    for preset, cycles in FIREFLY_S_CYCLES.items():
        if name.startswith(preset) or meta.get("model") == preset:
            return float(cycles)
    return None


def _figure(width: float, height: float):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: str | os.PathLike) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    path = Path(path)
    fig.savefig(path)
    return path


def _stage_labels(stages) -> list[str]:
    return [f"{s['index']}: {s['layer'].split()[0]}\nP {s['p_co']}x{s['p_ci']}" for s in stages]


def plot_pipeline_balance(report: Mapping, path: str | os.PathLike, *,
                          firefly_s: float | None = None) -> Path:
    """Per layer core: the planner's predicted cycles, the simulated busy cycles and the
    cycles it was blocked by the next core (all per frame), with the accelerator's simulated
    frame interval and, if given, FireFly-S's as horizontal lines. ``report``:
    :meth:`~fireflys_hw.report.SimulationReport.as_dict`."""
    import numpy as np
    stages = list(report["stages"])
    x = np.arange(len(stages))
    width = 0.27
    predicted = [s["predicted_cycles"] for s in stages]
    busy = [s["simulated_cycles"] or 0 for s in stages]
    blocked = [s["blocked_cycles"] or 0 for s in stages]
    fig = _figure(max(7.0, 1.0 * len(stages) + 2.5), 5.0)
    ax = fig.add_subplot()
    ax.bar(x - width, predicted, width, label="predicted (planner's model)", color=_GREY)
    ax.bar(x, busy, width, label="simulated busy (exact)", color=_BLUE)
    ax.bar(x + width, blocked, width, label="simulated blocked by next core", color=_ORANGE)
    interval = report.get("cycles_per_frame")
    if interval:
        clock = report.get("clock_hz")
        fps = f", {clock / interval:,.0f} FPS at {clock / 1e6:g} MHz" if clock else ""
        ax.axhline(interval, color=_GREEN, lw=1.5,
                   label=f"frame interval, simulated: {interval:,.0f} cycles{fps}")
    if firefly_s:
        ax.axhline(firefly_s, color=_RED, lw=1.5, ls="--",
                   label=f"FireFly-S SCNN5: ~{firefly_s:,.0f} cycles/frame")
    slowest = report.get("slowest_stage")
    ax.set_xticks(x, _stage_labels(stages), fontsize=8)
    for k, s in enumerate(stages):
        if s["index"] == slowest:
            ax.get_xticklabels()[k].set_fontweight("bold")
    ax.set_ylabel("cycles per frame")
    ax.yaxis.set_major_formatter(_thousands())
    top = max(predicted + busy + [interval or 0, firefly_s or 0]) * 1.1
    ax.set_ylim(0, top)
    fig.legend(loc="outside lower center", fontsize=8, ncols=2, frameon=False)
    ax.set_title(f"{report['artifact']}\npipeline balance over {report['frames']} simulated "
                 f"frames (bold: the slowest core)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_resources(plan, path: str | os.PathLike, *, synth: Mapping | None = None) -> Path:
    """LUT, FF and block RAM per layer core: the planner's resource model, and beside it the
    synthesis estimate (``synth``: :meth:`~fireflys_hw.synth.SynthReport.as_dict`) when one is
    known."""
    import numpy as np
    layers = list(plan.layers)
    by_core = {c["index"]: c["synth"] for c in (synth or {}).get("cores", [])}
    x = np.arange(len(layers))
    kinds = (("lut", "lut", "LUT"), ("ff", "ff", "FF"), ("bram_blocks", "bram", "BRAM (36 Kb)"))
    fig = _figure(max(9.0, 1.1 * len(layers) + 4), 4.2)
    axes = fig.subplots(1, 3)
    labels = [f"{lp.index}: {lp.kind.value}" for lp in layers]
    for ax, (attr, key, title) in zip(axes, kinds):
        model = [getattr(lp, attr) for lp in layers]
        synth_values = []
        digits = 1 if attr == "bram_blocks" else 0
        total = f"model {sum(model):,.{digits}f}"
        if by_core:
            width = 0.4
            synth_values = [by_core.get(lp.index, {}).get(key, 0) for lp in layers]
            ax.bar(x - width / 2, model, width, color=_GREY, label="planner's model")
            ax.bar(x + width / 2, synth_values, width, color=_BLUE,
                   label=f"synthesis ({synth.get('tool', 'yosys')}, no place and route)")
            total += f"\nsynthesis {sum(synth_values):,.{digits}f}"
        else:
            ax.bar(x, model, 0.6, color=_GREY, label="planner's model")
        if attr == "bram_blocks" and not sum(model):
            total += " (LUT RAM)"
        ax.set_title(f"{title}\n{total}", fontsize=8)
        ax.set_xticks(x, labels, fontsize=8, rotation=45, ha="right")
        if attr != "bram_blocks":
            ax.yaxis.set_major_formatter(_thousands())
        elif not any(model + synth_values):
            ax.set_ylim(0, 1.0)         # an empty axis, not a collapsed one
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", fontsize=8, ncols=2, frameon=False)
    note = "" if by_core else "; 'fireflys synth --plot' adds synthesis"
    fig.suptitle(f"{plan.artifact} on {plan.device}: resources per layer core\n(the cores "
                 f"only, not the FIFOs between them{note})", fontsize=9)
    return _save(fig, path)


def plot_sparsity(plan, path: str | os.PathLike) -> Path:
    """Per layer core: the weight sparsity and the density of the spikes coming in (measured
    on the planning images), the two sides the sparsity detectors skip."""
    import numpy as np
    layers = list(plan.layers)
    x = np.arange(len(layers))
    width = 0.38
    fig = _figure(max(7.0, 0.9 * len(layers) + 3), 3.8)
    ax = fig.add_subplot()
    ws = [1 - lp.weight_density for lp in layers]
    sd = [lp.spike_density for lp in layers]
    b1 = ax.bar(x - width / 2, ws, width, color=_BLUE, label="weight sparsity (zeros skipped)")
    b2 = ax.bar(x + width / 2, sd, width, color=_ORANGE,
                label="input spike density (ones processed)")
    for bars in (b1, b2):
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, [f"{lp.index}: {lp.kind.value}" for lp in layers], fontsize=8)
    ax.set_ylim(0, 1.18)
    ax.set_ylabel("fraction")
    ax.legend(loc="upper center", fontsize=8, ncols=2, frameon=False)
    ax.set_title(f"{plan.artifact}: sparsity per layer core\n(numbers as in 'fireflys info'; "
                 f"spikes measured on the planning images; the first core's input is the "
                 f"image's bits)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def write_plots(out_dir: str | os.PathLike, plan, report: Mapping | None = None, *,
                synth: Mapping | None = None, firefly_s: float | None = None) -> list[Path]:
    """Write ``pipeline.png`` (when a simulation ``report`` is given), ``resources.png`` and
    ``sparsity.png`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if report is not None:
        paths.append(plot_pipeline_balance(report, out / "pipeline.png", firefly_s=firefly_s))
    paths.append(plot_resources(plan, out / "resources.png", synth=synth))
    paths.append(plot_sparsity(plan, out / "sparsity.png"))
    return paths


def _thousands():
    from matplotlib.ticker import FuncFormatter
    return FuncFormatter(lambda v, _: f"{v:,.0f}")
