"""Logic depth of a synthesised netlist: the deepest register-to-register path, counted in
logic levels, from Yosys' JSON netlist (``write_json`` after ``synth_xilinx`` or
``synth_ecp5``).

A *level* is one combinational cell of the target's library on the path: a LUT, a carry cell
(``CARRY4`` / ``CARRY8``, ECP5's ``CCU2C``) or a wide-function multiplexer (``MUXF7``,
``PFUMX``, ...), as Vivado counts "logic levels" in its timing reports and Yosys' ``ltp`` counts
cells. Every other cell breaks a path: flip-flops, LUT RAM and shift registers (their
asynchronous read is counted as the clock-to-out of a register, as vendor timing models treat
a small distributed RAM's read), block RAM, DSPs, and instances of modules kept apart
(``keep_hierarchy``), whose insides are measured on their own. A module's ports are path ends
too, so a core's depth is the depth inside it; a path that crosses two kept modules is the
sum of their port-to-port parts and is not seen here.

The figure is a *synthesis estimate* of what limits the clock: routing is not known before
placement, and a carry cell is counted like a LUT although a carry chain is faster per cell.
``luts`` gives the LUTs alone on the same path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PathDepth", "COMBINATIONAL", "module_depth", "netlist_depth"]

#: Combinational cells (path levels) per family; every other cell breaks a path.
COMBINATIONAL = {
    "xc7": re.compile(r"^(LUT\d|CARRY\d|MUXF\d|INV)$"),
    "xcup": re.compile(r"^(LUT\d|CARRY\d|MUXF\d|INV)$"),
    "ecp5": re.compile(r"^(LUT4|LUT5|CCU2C|PFUMX|L6MUX21)$"),
}
_LUT = re.compile(r"^LUT\d$")


@dataclass(frozen=True)
class PathDepth:
    """The deepest register-to-register path of one module.

    Attributes
    ----------
    levels : int
        Combinational cells on the path (LUTs, carry cells, wide multiplexers).
    luts : int
        LUTs on that path.
    start, end : str
        The signal the path starts from (a register's or a RAM's output, or an input port)
        and the one it ends in (a register's or RAM's input, or an output port), as Yosys
        names them (the nearest named net).
    cells : tuple of str
        The cell types along the path, in order.
    """

    levels: int
    luts: int
    start: str
    end: str
    cells: tuple = ()

    def as_dict(self) -> dict:
        return {"levels": self.levels, "luts": self.luts, "start": self.start,
                "end": self.end, "path": list(self.cells)}


def _bit_names(module: dict) -> dict:
    """Bit number -> the best name of a net holding it (a user name over a generated one,
    then the shorter)."""
    names = {}
    for name, net in module.get("netnames", {}).items():
        hidden = bool(net.get("hide_name")) or name.startswith("$")
        for i, bit in enumerate(net["bits"]):
            if isinstance(bit, str):
                continue
            label = name if len(net["bits"]) == 1 else f"{name}[{i}]"
            key = (hidden, len(label))
            if bit not in names or key < names[bit][0]:
                names[bit] = (key, label)
    return {bit: label for bit, (_, label) in names.items()}


def module_depth(module: dict, family: str) -> PathDepth:
    """The deepest path of one module of a Yosys JSON netlist (``{"cells": ..., "netnames":
    ...}``), combinational cells recognised by :data:`COMBINATIONAL` ``[family]``."""
    comb = COMBINATIONAL[family]
    cells = module.get("cells", {})
    driver = {}             # bit -> combinational cell name driving it
    inputs = {}             # combinational cell -> its input bits
    sinks = []              # bits of path ends
    sink_of = {}            # bit -> a name for the end: the register it feeds (its output)
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        conns = cell.get("connections", {})
        if comb.match(cell["type"]):
            ins = []
            for port, bits in conns.items():
                if dirs.get(port) == "output":
                    for bit in bits:
                        if not isinstance(bit, str):
                            driver[bit] = name
                else:
                    ins.extend(b for b in bits if not isinstance(b, str))
            inputs[name] = ins
        else:
            outs = [b for port, bits in conns.items() if dirs.get(port) == "output"
                    for b in bits if not isinstance(b, str)]
            for port, bits in conns.items():
                if dirs.get(port, "input") != "output":
                    for b in bits:
                        if not isinstance(b, str):
                            sinks.append(b)
                            sink_of.setdefault(b, (len(bits), outs))
    for port in module.get("ports", {}).values():
        if port["direction"] != "input":
            sinks.extend(b for b in port["bits"] if not isinstance(b, str))

    # longest path to each combinational cell's output, iteratively (netlists are deep)
    level: dict = {}
    via: dict = {}          # cell -> (predecessor cell or None, the input bit it came through)
    for root in inputs:
        if root in level:
            continue
        stack = [(root, False)]
        on_stack = set()
        while stack:
            name, done = stack.pop()
            if done:
                on_stack.discard(name)
                best, how = 0, None
                for bit in inputs[name]:
                    pred = driver.get(bit)
                    if pred is not None and level[pred] > best:
                        best, how = level[pred], (pred, bit)
                if how is None:
                    # the path starts here: at an input from a register, RAM or port
                    starts = [bit for bit in inputs[name] if driver.get(bit) is None]
                    how = (None, starts[0] if starts else None)
                level[name] = best + 1
                via[name] = how
                continue
            if name in level:
                continue
            if name in on_stack:
                raise ValueError(f"combinational loop through cell {name}")
            on_stack.add(name)
            stack.append((name, True))
            for bit in inputs[name]:
                pred = driver.get(bit)
                if pred is not None and pred not in level:
                    stack.append((pred, False))

    end_bit, end_cell, deepest = None, None, 0
    for bit in sinks:
        cell = driver.get(bit)
        if cell is not None and level[cell] > deepest:
            end_bit, end_cell, deepest = bit, cell, level[cell]
    if end_cell is None:
        return PathDepth(0, 0, "", "")
    names = _bit_names(module)
    path = []
    cell, start_bit = end_cell, None
    while cell is not None:
        path.append(cells[cell]["type"])
        cell, start_bit = via[cell]
    path.reverse()
    end = names.get(end_bit, f"bit {end_bit}")
    if end.startswith("$") and end_bit in sink_of:
        # a generated name: name the end by what the register (or RAM) it feeds holds
        width, outs = sink_of[end_bit]
        named = [names[b] for b in outs if b in names and not names[b].startswith("$")]
        if named:
            end = named[0] if len(outs) == 1 else f"{named[0]} (input of its cell)"
    return PathDepth(levels=deepest, luts=sum(1 for t in path if _LUT.match(t)),
                     start=names.get(start_bit, f"bit {start_bit}"), end=end,
                     cells=tuple(path))


def netlist_depth(netlist: dict, family: str, modules=None) -> dict[str, PathDepth]:
    """:func:`module_depth` of each module of a Yosys JSON netlist (of ``modules`` if given;
    library cells, which have no cells inside, are left out)."""
    if family not in COMBINATIONAL:
        raise ValueError(f"family must be one of {', '.join(COMBINATIONAL)}, not {family!r}")
    out = {}
    for name, module in netlist.get("modules", {}).items():
        if modules is not None and name not in modules:
            continue
        if module.get("attributes", {}).get("blackbox") or not module.get("cells"):
            continue
        out[name] = module_depth(module, family)
    return out
