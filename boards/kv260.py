"""The AMD Kria KV260 Vision AI Starter Kit (K26 SOM, a Zynq UltraScale+ XCZU5EV die) as an
Amaranth platform: amaranth-boards has none.

Sources: AMD's carrier-card constraints ``Kria_KV_CarrierCard_Rev1.xdc`` (the KV260 user
guide UG1089 points to it), as quoted in several public KV260 / KR260 PMOD designs on GitHub
that agree with each other:

* PMOD connector J2, bank 45, 3.3 V (``IOSTANDARD LVCMOS33``): pin 1 H12 (HDA11,
  som240_1_a17), 2 E10 (HDA12, som240_1_d20), 3 D10 (HDA13, som240_1_d21), 4 C11 (HDA14,
  som240_1_d22); pin 7 B10 (HDA15, som240_1_b20), 8 E12 (HDA16_CC, som240_1_b21), 9 D11
  (HDA17, som240_1_b22), 10 B11 (HDA18, som240_1_c22); 5/11 GND, 6/12 3V3. (The carrier's
  own labels number the header 1..8 in two rows, odd pins on one side; Amaranth's ``Connector``
  uses Digilent's numbering 1-6 / 7-12 as here.)
* Clock: the KV260 carrier has no oscillator wired to the programmable logic; PL designs take
  their clock from the processing system (PS ``pl_clk0``, as the Vivado KV260 board preset's
  block designs do). The platform instantiates the ``PS8`` primitive and buffers ``PLCLK[0]``
  through ``BUFG_PS``. Its frequency is whatever the PS firmware set: **100 MHz is assumed**
  (:attr:`KV260Platform.pl_clk_hz`); set it when the bitstream is loaded (device-tree overlay
  ``assigned-clocks = <&zynqmp_clk 71>; assigned-clock-rates = <100000000>;`` for PL0_REF),
  or the UART's baud rate is off by the same ratio.
* Part: the brief of this project fixes ``xczu5ev-sfvc784-2-i`` (the K26's die, package and
  speed grade). Vivado also knows the SOM as ``xck26-sfvc784-2LV-c`` (commercial) /
  ``-2LV-i`` (industrial), which its KV260 board files use; :class:`KV260K26Platform` targets
  that name instead.

The UART bring-up path puts a USB-UART adapter on PMOD J2: the FPGA transmits on pin 2 (E10)
and receives on pin 3 (D10), Digilent's PMOD "type 3" UART assignment (host TXD on pin 2,
RXD on pin 3) that adapters such as the Digilent Pmod USBUART follow; cross the lines if yours
is labelled from its own side. The DMA path (``fireflys_hw.gateware.axis``) needs no pins: see
``docs/boards.md``.
"""

from amaranth.build import Attrs, Connector
from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.vendor import XilinxPlatform
from amaranth_boards.resources import UARTResource

__all__ = ["KV260Platform", "KV260K26Platform", "PMOD_J2_PINS"]

#: PMOD J2 in Amaranth's connector order (Digilent pins 1-6, 7-12; "-" power and ground).
PMOD_J2_PINS = "H12 E10 D10 C11 - - B10 E12 D11 B11 - -"


class KV260Platform(XilinxPlatform):
    """KV260: part ``xczu5ev-sfvc784-2-i``, Vivado toolchain, clock from the PS (``pl_clk0``),
    resources ``uart`` 0 on PMOD J2 (tx pin 2, rx pin 3) and the ``pmod`` 0 connector."""

    device = "xczu5ev"
    package = "sfvc784"
    speed = "2-i"
    default_clk = None
    default_rst = None
    #: The frequency of ``pl_clk0`` that the design is constrained and its UART timed for.
    pl_clk_hz = 100e6

    resources = [
        UARTResource(0, tx="2", rx="3", conn=("pmod", 0), attrs=Attrs(IOSTANDARD="LVCMOS33")),
    ]
    connectors = [
        Connector("pmod", 0, PMOD_J2_PINS),
    ]

    @property
    def default_clk_frequency(self):
        return self.pl_clk_hz

    def create_missing_domain(self, name):
        if name != "sync":
            return super().create_missing_domain(name)
        m = Module()
        pl_clk = Signal(4)
        clk = Signal(name="pl_clk0")
        ready = Signal()
        # PS8 with no other connections leaves the processing system as the firmware set it up
        m.submodules.ps = Instance("PS8", o_PLCLK=pl_clk)
        m.submodules.pl_clk0_buf = Instance("BUFG_PS", i_I=pl_clk[0], o_O=clk)
        # hold the logic in reset until configuration has ended (as Amaranth's own Xilinx
        # platforms do with the EOS signal), the clock being free-running from the PS
        m.submodules.startup = Instance("STARTUPE3", o_EOS=ready)
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.reset_sync = ResetSynchronizer(~ready, domain="sync")
        self.add_clock_constraint(clk, self.pl_clk_hz)
        return m


class KV260K26Platform(KV260Platform):
    """KV260 under Vivado's SOM part name ``xck26-sfvc784-2LV-c``."""

    device = "xck26"
    speed = "2LV-c"
