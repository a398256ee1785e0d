"""What a clock relies on: the logic depth of a design, remembered from its synthesis.

Every frame rate is quoted at a clock (FireFly-S's 333 MHz by default), and a clock is only
reachable if the logic between registers is shallow enough. ``fireflys synth`` measures the
deepest register-to-register path in logic levels (:mod:`fireflys_hw.depth`) and
:func:`record_depth` keeps the result under the design's key: the model, the plan and the
gateware's source, so any change to one of them is a different design. ``compile`` and
``simulate``, which do not synthesise, print beside their frame rate what the clock needs
(:func:`levels_for`, an estimate) and what was measured for the same design, or that it was not
measured yet (:func:`clock_note`).

The levels a clock allows are an estimate: a period divided by the delay of one LUT level with
its share of routing (:data:`NS_PER_LEVEL`). On UltraScale+ 333 MHz leaves 3 ns, about 6
levels. Only place and route gives a real figure (``fireflys build``, nextpnr's Fmax).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fireflys_sw.outdir import cache_root

__all__ = ["NS_PER_LEVEL", "levels_for", "gateware_fingerprint", "design_key", "record_depth",
           "recorded_depth", "clock_note", "depth_dir"]

#: Nanoseconds per logic level with routing, per synthesis family (estimates: a LUT's delay and
#: the routing to the next one; carry cells are cheaper, so a carry-heavy path is faster).
NS_PER_LEVEL = {"xcup": 0.5, "xc7": 0.8, "ecp5": 1.6}

#: The family whose depth compile and simulate quote (the KV260's UltraScale+).
DEFAULT_FAMILY = "xcup"


def levels_for(clock_hz: float, family: str = DEFAULT_FAMILY) -> int:
    """Logic levels between registers that ``clock_hz`` allows on ``family`` (an estimate)."""
    period_ns = 1e9 / clock_hz
    return max(1, int(period_ns / NS_PER_LEVEL[family] + 1e-6))


def gateware_fingerprint() -> str:
    """A hash of the gateware's Python source (:mod:`fireflys_hw.gateware`): a change to any
    component is a different design."""
    h = hashlib.sha256()
    root = Path(__file__).parent / "gateware"
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def design_key(model_id: int, plan, family: str) -> str:
    """The key a design's depth is kept under: the model, what the plan builds (per core its
    parallelism, datapath and FIFO depth; not its clock or budgets), the gateware source and
    the family."""
    cores = [(lp.index, lp.p_co, lp.p_ci, lp.fifo_depth, lp.dense) for lp in plan.layers]
    text = json.dumps([model_id, cores, gateware_fingerprint(), family])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def depth_dir() -> Path:
    """``$FIREFLYS_CACHE/depth``, default ``~/.cache/fireflys/depth``."""
    return cache_root() / "depth"


def record_depth(model_id: int, plan, report) -> Path | None:
    """Keep ``report``'s depth (a :class:`~fireflys_hw.synth.SynthReport`) for its design;
    returns the file, or ``None`` when the report has no depth or the cache is not writable
    (a record only saves a later synthesis)."""
    if report.depth is None:
        return None
    cores = {str(c.index): c.depth.levels for c in report.cores if c.depth is not None}
    # the netlist's modules are top.core<k>, k counting cores; the reports name layers
    where = report.depth_module.removeprefix("top.") or "top"
    if where.startswith("core") and where[4:].isdigit() and int(where[4:]) < len(report.cores):
        where = f"layer {report.cores[int(where[4:])].index}'s core"
    elif where == "top":
        where = "between the cores"
    record = {"family": report.family, "levels": report.depth.levels,
              "where": f"{where}: {report.depth.start} -> {report.depth.end}",
              "cores": cores, "artifact": report.artifact}
    path = depth_dir() / f"{design_key(model_id, plan, report.family)}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record) + "\n")
    except OSError:
        return None
    return path


def recorded_depth(model_id: int, plan, family: str = DEFAULT_FAMILY) -> dict | None:
    """The depth :func:`record_depth` kept for this design, or ``None``."""
    path = depth_dir() / f"{design_key(model_id, plan, family)}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("levels"), int) \
        and isinstance(record.get("where"), str)
    return record if ok else None


def clock_note(model_id: int, plan, clock_hz: float, artifact: str,
               family: str = DEFAULT_FAMILY) -> dict:
    """What ``clock_hz`` relies on for this design: ``{"clock_hz", "family", "levels_allowed",
    "levels_measured" (or None), "where", "note"}``, the note one line for the reports."""
    allowed = levels_for(clock_hz, family)
    record = recorded_depth(model_id, plan, family)
    mhz = f"{clock_hz / 1e6:g} MHz"
    need = (f"{mhz} needs at most about {allowed} logic levels between registers on {family} "
            f"(estimate, {NS_PER_LEVEL[family]:g} ns per level with routing)")
    if record is None:
        note = (f"{need}; this design's depth is not measured: `fireflys synth {artifact} "
                f"--family {family}` measures it")
        measured, where = None, None
    else:
        measured, where = record["levels"], record["where"]
        verdict = "within it" if measured <= allowed else \
            f"so {mhz} is out of reach (about {1e3 / (measured * NS_PER_LEVEL[family]):.0f} MHz)"
        note = f"{need}; this design measures {measured} ({where}), {verdict}"
    return {"clock_hz": clock_hz, "family": family, "levels_allowed": allowed,
            "levels_measured": measured, "where": where, "note": note}
