"""FPGA devices bitmix builds for: capacity, nextpnr arguments, and how Yosys names their cells."""

from __future__ import annotations

from dataclasses import dataclass

from bitmix.errors import BitmixError

__all__ = ["Target", "TARGETS", "CELL_CLASSES", "NEXTPNR_LOGIC", "get_target"]


@dataclass(frozen=True)
class Target:
    name: str
    family: str                 # "ice40" | "ecp5"
    nextpnr_args: tuple
    #: device capacity: logic cells (LUT4 sites), FFs, block RAMs, DSPs
    luts: int
    ffs: int
    bram: int
    dsp: int
    #: nextpnr --freq: the timing-driven placer's goal (Fmax is reported whatever it is)
    freq_mhz: float

    @property
    def ooc(self) -> bool:
        return "--out-of-context" in self.nextpnr_args


TARGETS = {
    "ice40-up5k": Target("ice40-up5k", "ice40", ("--up5k", "--package", "sg48"),
                         luts=5280, ffs=5280, bram=30, dsp=8, freq_mhz=48.0),
    "ecp5-85f": Target("ecp5-85f", "ecp5", ("--85k", "--package", "CABGA381", "--speed", "6",
                                            "--out-of-context"),
                       luts=83640, ffs=83640, bram=208, dsp=156, freq_mhz=100.0),
    "ecp5-25f": Target("ecp5-25f", "ecp5", ("--25k", "--package", "CABGA256", "--speed", "6",
                                            "--out-of-context"),
                       luts=24288, ffs=24288, bram=56, dsp=28, freq_mhz=100.0),
}

#: Yosys cell types counted in each column, per family.
CELL_CLASSES = {
    "ice40": {"lut": ("SB_LUT4",), "carry": ("SB_CARRY",), "bram": ("SB_RAM40_4K", "SB_SPRAM256KA"),
              "dsp": ("SB_MAC16",), "ff_prefix": "SB_DFF"},
    "ecp5": {"lut": ("LUT4",), "carry": ("CCU2C",), "bram": ("DP16KD", "PDPW16KD"),
             "dsp": ("MULT18X18D", "ALU54B"), "ff_prefix": "TRELLIS_FF"},
}

#: nextpnr utilisation entries that are the logic sites (for "% of device").
NEXTPNR_LOGIC = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise BitmixError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}") from None
