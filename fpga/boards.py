"""The boards ``bitmix build`` and ``bitmix deploy`` know: platform, oscillator, system clock,
host link, LEDs, and how openFPGALoader programs them.

    from fpga.boards import get_board, clock_plan
    b = get_board("icebreaker")
    plan = clock_plan(b)                 # oscillator -> PLL -> system clock, UART divisor + error
    plan.sys_hz, plan.uart.divisor, plan.baud_error

The platforms come from ``amaranth-boards``; everything else a board needs is in
:data:`BOARDS`. Adding a board is one entry there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from bitmix.errors import BitmixError
from fpga.pll import pll_for

__all__ = ["Board", "BOARDS", "get_board", "ClockPlan", "clock_plan", "DEFAULT_BAUD"]

#: Host-link baud rate unless a board says otherwise (Board.baud): the FTDI bridges of
#: iCEBreaker (FT2232H) and ULX3S (FT231X) do 3 Mbaud.
DEFAULT_BAUD = 3_000_000


@dataclass(frozen=True)
class Board:
    name: str                   #: CLI name
    title: str
    platform: str               #: "module:Class" in amaranth_boards
    family: str                 #: "ice40" | "ecp5"
    device: str                 #: fpga.targets name (capacity of the device)
    osc_hz: float               #: on-board oscillator
    #: default system clock requested from the PLL and host-link baud rate: a clock with an
    #: exact UART divisor at which the device top (default parameters) meets timing post-route
    #: with margin (README, "Boards": iCE40 24 MHz, ECP5-85F 75 MHz, issue 10's targets)
    sys_hz: float
    link: str                   #: "uart" (USB-UART bridge on board) | "usb-acm" (gateware USB)
    leds: tuple                 #: (resource name, number) of each LED, in order
    #: openFPGALoader: board name (-b), whether SRAM and flash programming work, how it connects
    ofl_board: str
    sram: bool
    flash: bool
    connect: str
    sram_note: str = ""         #: why SRAM programming is not offered
    baud: int = DEFAULT_BAUD
    #: openFPGALoader takes -m/-f for this board (not for a DFU bootloader, which has one mode)
    ofl_mode_flag: bool = True
    #: design option values this board uses unless the user gives them (``bitmix build``)
    design_defaults: tuple = ()

    @property
    def led_pins(self) -> int:
        """LEDs the board top can drive (an RGB LED counts three)."""
        return sum(3 if name.startswith("rgb") else 1 for name, _ in self.leds)

    def platform_class(self):
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)


BOARDS = {
    "icebreaker": Board(
        name="icebreaker", title="1BitSquared iCEBreaker (iCE40UP5K-SG48)",
        platform="amaranth_boards.icebreaker:ICEBreakerPlatform", family="ice40",
        device="ice40-up5k", osc_hz=12e6, sys_hz=24e6, baud=2_000_000, link="uart",
        leds=(("led_g", 0), ("led_r", 0)), ofl_board="ice40_generic", sram=False, flash=True,
        connect="its FT2232H USB port",
        sram_note="openFPGALoader writes the iCE40's SPI flash only (an SRAM load needs iceprog "
                  "-S and the board's jumpers)",
        # the UP5K's 30 block RAMs cannot hold the default weights region; its 4 SPRAMs can
        design_defaults=(("weight_mem", "spram"),)),
    "ulx3s-85f": Board(
        name="ulx3s-85f", title="Radiona ULX3S (LFE5U-85F-6BG381)",
        platform="amaranth_boards.ulx3s:ULX3S_85F_Platform", family="ecp5",
        device="ecp5-85f", osc_hz=25e6, sys_hz=75e6, link="uart",
        leds=tuple(("led", i) for i in range(8)), ofl_board="ulx3s", sram=True, flash=True,
        connect="the FT231X on its US1 USB port (JTAG)"),
    "orangecrab-25f": Board(
        name="orangecrab-25f", title="Good Stuff Department OrangeCrab r0.2 (LFE5U-25F-8MG285)",
        platform="amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_25FPlatform", family="ecp5",
        device="ecp5-25f", osc_hz=48e6, sys_hz=72e6, link="usb-acm",
        leds=(("rgb_led", 0),), ofl_board="orangeCrab", sram=False, flash=True,
        connect="its USB port with the DFU bootloader running (hold the button while plugging "
                "it in)",
        sram_note="its DFU bootloader writes flash only", ofl_mode_flag=False),
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise BitmixError(f"unknown board {name!r}; choose from {', '.join(BOARDS)}") from None


@dataclass(frozen=True)
class ClockPlan:
    """Oscillator -> PLL -> system clock, and the UART divisor derived from it."""

    board: str
    osc_hz: float
    requested_hz: float
    pll: object                 #: fpga.pll.Ice40Pll | Ecp5Pll
    baud: int
    uart: object                #: hw.uart.UARTParams

    @property
    def sys_hz(self) -> float:
        return self.pll.achieved_hz

    @property
    def actual_baud(self) -> float:
        return self.sys_hz / self.uart.divisor

    @property
    def baud_error(self) -> float:
        """Relative error of the baud rate the divisor gives (signed: + is fast)."""
        return self.actual_baud / self.baud - 1

    def describe(self) -> dict:
        return {"oscillator_mhz": self.osc_hz / 1e6, "requested_mhz": self.requested_hz / 1e6,
                "sys_mhz": round(self.sys_hz / 1e6, 6), "pll": self.pll.describe(),
                "uart": {"baud": self.baud, "divisor": self.uart.divisor,
                         "actual_baud": round(self.actual_baud, 3),
                         "error_pct": round(100 * self.baud_error, 4)}}


def clock_plan(board: Board, sys_hz: float | None = None, baud: int | None = None) -> ClockPlan:
    """The PLL setting nearest ``sys_hz`` and the UART divisor for ``baud`` (defaults: the
    board's) at the clock actually achieved (``hw.uart.UARTParams`` refuses too large an
    error)."""
    baud = board.baud if baud is None else baud
    from hw.uart import UARTParams

    want = float(sys_hz if sys_hz is not None else board.sys_hz)
    secondary = ()
    if board.link == "usb-acm":           # LUNA's USB domains, from the same VCO
        from fpga.usb_serial import USB_HZ, USB_IO_HZ

        secondary = (USB_IO_HZ, USB_HZ)
    pll = pll_for(board.family, board.osc_hz, want, secondary)
    return ClockPlan(board.name, board.osc_hz, want, pll, baud,
                     UARTParams.make(clk_hz=pll.achieved_hz, baud=baud))
