"""FPGA device profiles: the resources that the planner (:mod:`fireflys_hw.compiler`) budgets
against.

Pure data, no Amaranth. Figures are the vendors' product-table numbers:

* ``xczu5ev`` (Zynq UltraScale+ ZU5EV, the KV260 board's SoM): 117,120 CLB LUTs, 234,240 CLB
  flip-flops, 144 block RAM36 tiles (36 Kb each), 1,248 DSP48E2 (plus 64 UltraRAM blocks that
  the planner does not use). FireFly-S ran it at 333 MHz.
* ``xc7a35t`` / ``xc7a100t`` (Artix-7): 5,200 / 15,850 slices of 4 LUT6 and 8 flip-flops, i.e.
  20,800 / 63,400 LUTs and 41,600 / 126,800 flip-flops; 50 / 135 RAMB36; 90 / 240 DSP48E1.
* ``LFE5U-85F`` (ECP5, e.g. on the ULX3S): 83,640 LUT4 and as many flip-flops (2 of each per
  slice), 208 EBR of 18 Kb, 156 18x18 multipliers (78 sysDSP slices). ``LFE5U-45F``:
  43,848 LUT4, 108 EBR, 72 multipliers; ``LFE5U-25F``: 24,288 LUT4, 56 EBR, 28 multipliers.

The default clocks of the parts other than the KV260 are conservative figures for this kind of
logic (no published FireFly-S numbers), to be replaced by the timing reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from fireflys_sw.errors import FireflysError

__all__ = ["DeviceProfile", "DeviceError", "DEVICES", "device_profile", "FAMILIES"]

#: ``xcup``: Xilinx UltraScale+ (LUT6, RAMB36/18); ``xc7``: Xilinx 7 series (LUT6,
#: RAMB36/18); ``ecp5``: Lattice ECP5 (LUT4, 18 Kb EBR).
FAMILIES = ("xcup", "xc7", "ecp5")


class DeviceError(FireflysError, ValueError):
    """An unknown device name or an inconsistent device profile."""


@dataclass(frozen=True)
class DeviceProfile:
    """The resources of one FPGA part.

    Attributes
    ----------
    name : str
        Part name as users type it (``"xczu5ev"``), case-insensitive in :func:`device_profile`.
    family : str
        One of :data:`FAMILIES`; it selects LUT size and block RAM shapes in the resource model.
    luts, ffs : int
        Logic LUTs (LUT6 for Xilinx, LUT4 for ECP5) and flip-flops.
    bram_blocks : int
        Block RAM tiles (RAMB36 for Xilinx, EBR for ECP5).
    bram_bits_per_block : int
        Bits of one tile (36,864 for RAMB36, 18,432 for an ECP5 EBR).
    dsps : int
        DSP slices (Xilinx) or 18x18 multipliers (ECP5); FireFly-S uses none.
    default_clock_hz : float
        Clock the planner predicts frame rates at unless told otherwise.
    """

    name: str
    family: str
    luts: int
    ffs: int
    bram_blocks: int
    bram_bits_per_block: int
    dsps: int
    default_clock_hz: float

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise DeviceError(f"family must be one of {', '.join(FAMILIES)}, not "
                              f"{self.family!r}")
        for name in ("luts", "ffs", "bram_blocks", "bram_bits_per_block", "dsps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DeviceError(f"{name} must be a non-negative integer, not {value!r}")
        if not self.default_clock_hz > 0:
            raise DeviceError(f"default_clock_hz must be positive, not "
                              f"{self.default_clock_hz!r}")

    @property
    def bram_bits(self) -> int:
        """All block RAM bits."""
        return self.bram_blocks * self.bram_bits_per_block


_BRAM36 = 36 * 1024
_EBR = 18 * 1024

DEVICES: dict[str, DeviceProfile] = {d.name.lower(): d for d in (
    DeviceProfile("xczu5ev", "xcup", 117_120, 234_240, 144, _BRAM36, 1_248, 333e6),
    DeviceProfile("xc7a35t", "xc7", 20_800, 41_600, 50, _BRAM36, 90, 100e6),
    DeviceProfile("xc7a100t", "xc7", 63_400, 126_800, 135, _BRAM36, 240, 100e6),
    DeviceProfile("LFE5U-25F", "ecp5", 24_288, 24_288, 56, _EBR, 28, 50e6),
    DeviceProfile("LFE5U-45F", "ecp5", 43_848, 43_848, 108, _EBR, 72, 50e6),
    DeviceProfile("LFE5U-85F", "ecp5", 83_640, 83_640, 208, _EBR, 156, 50e6),
)}


def device_profile(name: str | DeviceProfile) -> DeviceProfile:
    """The profile of ``name`` (case-insensitive; a :class:`DeviceProfile` passes through).

    Raises :class:`DeviceError` with one line listing the known names."""
    if isinstance(name, DeviceProfile):
        return name
    if isinstance(name, str) and name.strip().lower() in DEVICES:
        return DEVICES[name.strip().lower()]
    known = ", ".join(d.name for d in DEVICES.values())
    raise DeviceError(f"unknown device {name!r}: known devices are {known}")
