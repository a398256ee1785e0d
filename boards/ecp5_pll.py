"""The system clock of an ECP5 board from its oscillator through an ``EHXPLLL``.

The ULX3S has a 25 MHz oscillator; the accelerator runs faster than that, so the board top
derives ``sync`` from a PLL and constrains it at the frequency it asks for, which is also what
nextpnr places and routes for (a design constrained at 25 MHz is placed for 25 MHz).

:func:`pll_settings` picks the dividers (exact where the ranges allow, else the nearest
frequency), :class:`ECP5SystemClock` instantiates the PLL and holds ``sync`` in reset until the
PLL has locked.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Const, Elaboratable, Instance, Module, Signal

__all__ = ["PLLSettings", "pll_settings", "ECP5SystemClock"]

# EHXPLLL's operating ranges (Lattice FPGA-TN-02200, ECP5 sysCLOCK PLL/DLL design guide)
CLKI_HZ = (8e6, 400e6)
PFD_HZ = (3.125e6, 400e6)
VCO_HZ = (400e6, 800e6)
CLKOP_HZ = (3.125e6, 400e6)
CLKI_DIVS = range(1, 129)
CLKFB_DIVS = range(1, 81)
CLKOP_DIVS = range(1, 129)


@dataclass(frozen=True)
class PLLSettings:
    """Dividers of an ``EHXPLLL`` fed back from ``CLKOP``: ``out = in / clki_div * clkfb_div``,
    the VCO at ``out * clkop_div``."""

    in_hz: float
    out_hz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def vco_hz(self) -> float:
        return self.out_hz * self.clkop_div


def pll_settings(in_hz: float, out_hz: float) -> PLLSettings:
    """The dividers that bring ``in_hz`` nearest to ``out_hz`` (then: the smallest input
    divider, the fastest VCO); ``ValueError`` with the allowed range when either frequency is
    outside what the PLL takes or gives."""
    if not CLKI_HZ[0] <= in_hz <= CLKI_HZ[1]:
        raise ValueError(f"the ECP5 PLL takes {CLKI_HZ[0] / 1e6:g}-{CLKI_HZ[1] / 1e6:g} MHz "
                         f"in, not {in_hz / 1e6:g} MHz")
    if not CLKOP_HZ[0] <= out_hz <= CLKOP_HZ[1]:
        raise ValueError(f"the ECP5 PLL gives {CLKOP_HZ[0] / 1e6:g}-{CLKOP_HZ[1] / 1e6:g} MHz, "
                         f"not {out_hz / 1e6:g} MHz")
    best = None
    for clki_div in CLKI_DIVS:
        pfd = in_hz / clki_div
        if pfd < PFD_HZ[0]:
            break
        if pfd > PFD_HZ[1]:
            continue
        for clkfb_div in CLKFB_DIVS:
            out = pfd * clkfb_div
            if out > CLKOP_HZ[1]:
                break
            # the VCO as fast as it goes: less jitter
            ops = [d for d in CLKOP_DIVS if VCO_HZ[0] <= out * d <= VCO_HZ[1]]
            if out < CLKOP_HZ[0] or not ops:
                continue
            key = (abs(out - out_hz), clki_div, -out * ops[-1])
            if best is None or key < best[0]:
                best = (key, PLLSettings(in_hz, out, clki_div, clkfb_div, ops[-1]))
    if best is None:
        raise ValueError(f"no ECP5 PLL setting gives {out_hz / 1e6:g} MHz from "
                         f"{in_hz / 1e6:g} MHz")
    return best[1]


class ECP5SystemClock(Elaboratable):
    """Drives the clock of the ``sync`` domain (which the parent defines) from ``settings``'
    PLL output, the input being the clock resource ``clock`` (the board's oscillator), and
    constrains it at that frequency; ``sync`` is reset-less (the parent defines it so) and the
    global set/reset holds every register at its initial value until the PLL reports lock."""

    def __init__(self, settings: PLLSettings, clock=("clk25", 0)):
        self.settings = settings
        self.clock = clock

    def elaborate(self, platform):
        s = self.settings
        m = Module()
        clk = Signal(name="pll_clk")    # Amaranth constrains signals, not ClockSignal
        clk_in = platform.request(*self.clock).i
        locked = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{s.in_hz / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{s.out_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKI_DIV=s.clki_div, p_CLKFB_DIV=s.clkfb_div,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=s.clkop_div,
            p_CLKOP_CPHASE=s.clkop_div - 1, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            i_CLKI=clk_in, i_CLKFB=clk,
            i_RST=Const(0), i_STDBY=Const(0), i_PHASESEL0=Const(0), i_PHASESEL1=Const(0),
            i_PHASEDIR=Const(0), i_PHASESTEP=Const(0), i_PHASELOADREG=Const(0),
            i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0),
            o_CLKOP=clk, o_LOCK=locked,
        )
        m.d.comb += ClockSignal("sync").eq(clk)
        # Reset as Amaranth's ECP5 platform does it for its own clock: the global set/reset,
        # released two clocks after lock, sets every register to its initial value; a reset
        # net of its own would fan out to every flip-flop's LSR and be timed like data.
        released, release = Signal(), Signal()
        m.submodules.lock_sync0 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=clk,
                                           i_D=locked, o_Q=released)
        m.submodules.lock_sync1 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=clk,
                                           i_D=released, o_Q=release)
        m.submodules.sgsr = Instance("SGSR", i_CLK=clk, i_GSR=release)
        platform.add_clock_constraint(clk, s.out_hz)
        return m
