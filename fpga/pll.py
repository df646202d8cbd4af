"""PLL divider search for the board clocks, in pure Python (no tool run).

The same search as IceStorm's ``icepll`` (iCE40 ``SB_PLL40_*``, simple feedback) and Project
Trellis' ``ecppll`` (ECP5 ``EHXPLLL``, feedback from CLKOP): every legal divider combination is
tried and the one closest to the requested frequency wins, so the achieved frequency is exact
whenever the dividers allow it. The legal ranges below are the tools' (and the data sheets').
``tests/fpga/test_pll.py`` checks the results against ``yowasp-icepll`` and ``yowasp-ecppll``.

    ice40_pll(12e6, 24e6).achieved_hz  -> 24000000.0
    ecp5_pll(25e6, 75e6).params()      -> {"CLKI_DIV": 1, "CLKFB_DIV": 3, "CLKOP_DIV": 8, ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bitmix.errors import BitmixError

__all__ = ["ICE40_RANGES", "ECP5_RANGES", "Ice40Pll", "Ecp5Pll", "ice40_pll", "ecp5_pll",
           "pll_for"]

MHZ = 1e6

#: iCE40 sysCLOCK PLL (SB_PLL40, FEEDBACK_PATH="SIMPLE"), MHz: reference in, phase detector,
#: VCO, output.
ICE40_RANGES = {"in": (10.0, 133.0), "pfd": (10.0, 133.0), "vco": (533.0, 1066.0),
                "out": (16.0, 275.0)}
#: ECP5 EHXPLLL, MHz (ecppll's limits).
ECP5_RANGES = {"in": (8.0, 400.0), "pfd": (3.125, 400.0), "vco": (400.0, 800.0),
               "out": (10.0, 400.0)}


def _check(kind: str, ranges: dict, key: str, mhz: float, what: str) -> None:
    lo, hi = ranges[key]
    if not lo <= mhz <= hi:
        raise BitmixError(f"{kind} PLL: {what} {mhz:g} MHz is outside {lo:g}..{hi:g} MHz")


@dataclass(frozen=True)
class Ice40Pll:
    """``SB_PLL40_*`` dividers: f_pfd = f_in/(DIVR+1), f_vco = f_pfd*(DIVF+1),
    f_out = f_vco / 2**DIVQ."""

    in_hz: float
    divr: int
    divf: int
    divq: int

    @property
    def pfd_hz(self) -> float:
        return self.in_hz / (self.divr + 1)

    @property
    def vco_hz(self) -> float:
        return self.pfd_hz * (self.divf + 1)

    @property
    def achieved_hz(self) -> float:
        return self.vco_hz / 2 ** self.divq

    @property
    def filter_range(self) -> int:
        """Loop filter setting for this phase-detector frequency (icepll's table)."""
        pfd = self.pfd_hz / MHZ
        for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
            if pfd < limit:
                return value
        return 6

    def params(self) -> dict:
        return {"FEEDBACK_PATH": "SIMPLE", "DIVR": self.divr, "DIVF": self.divf,
                "DIVQ": self.divq, "FILTER_RANGE": self.filter_range}

    def describe(self) -> dict:
        return {"primitive": "SB_PLL40_PAD", **self.params(), "in_mhz": self.in_hz / MHZ,
                "pfd_mhz": round(self.pfd_hz / MHZ, 6), "vco_mhz": round(self.vco_hz / MHZ, 6),
                "out_mhz": round(self.achieved_hz / MHZ, 6)}


@dataclass(frozen=True)
class Ecp5Pll:
    """``EHXPLLL`` dividers with CLKOP fed back: f_out = f_in/CLKI_DIV*CLKFB_DIV,
    f_vco = f_out*CLKOP_DIV."""

    in_hz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    #: dividers of the secondary outputs CLKOS, CLKOS2, CLKOS3 in use (f = f_vco / div)
    secondary_divs: tuple = ()

    @property
    def pfd_hz(self) -> float:
        return self.in_hz / self.clki_div

    @property
    def achieved_hz(self) -> float:
        return self.pfd_hz * self.clkfb_div

    @property
    def vco_hz(self) -> float:
        return self.achieved_hz * self.clkop_div

    @property
    def secondary_hz(self) -> tuple:
        return tuple(self.vco_hz / d for d in self.secondary_divs)

    def params(self) -> dict:
        # CPHASE = DIV - 1 on every output: zero phase, as Lattice's Clarity Designer sets it
        # (ecppll shifts CLKOP by 180 degrees instead); the outputs share the VCO, so they
        # are phase-related, which LUNA's USB clock domains need.
        p = {"CLKI_DIV": self.clki_div, "CLKFB_DIV": self.clkfb_div,
             "CLKOP_DIV": self.clkop_div, "CLKOP_CPHASE": self.clkop_div - 1,
             "CLKOP_FPHASE": 0, "FEEDBK_PATH": "CLKOP"}
        for name, div in zip(("CLKOS", "CLKOS2", "CLKOS3"), self.secondary_divs):
            p.update({f"{name}_ENABLE": "ENABLED", f"{name}_DIV": div,
                      f"{name}_CPHASE": div - 1, f"{name}_FPHASE": 0})
        return p

    def describe(self) -> dict:
        return {"primitive": "EHXPLLL", **self.params(), "in_mhz": self.in_hz / MHZ,
                "pfd_mhz": round(self.pfd_hz / MHZ, 6), "vco_mhz": round(self.vco_hz / MHZ, 6),
                "out_mhz": round(self.achieved_hz / MHZ, 6),
                "secondary_mhz": [round(f / MHZ, 6) for f in self.secondary_hz]}


def ice40_pll(in_hz: float, out_hz: float) -> Ice40Pll:
    """Dividers whose output is closest to ``out_hz`` (ties: the first found, as icepll)."""
    r = ICE40_RANGES
    _check("iCE40", r, "in", in_hz / MHZ, "input")
    _check("iCE40", r, "out", out_hz / MHZ, "requested output")
    best = None
    for divr in range(16):
        pll = Ice40Pll(in_hz, divr, 0, 1)
        if not r["pfd"][0] <= pll.pfd_hz / MHZ <= r["pfd"][1]:
            continue
        for divf in range(128):
            pll = Ice40Pll(in_hz, divr, divf, 1)
            if not r["vco"][0] <= pll.vco_hz / MHZ <= r["vco"][1]:
                continue
            for divq in range(1, 7):
                pll = Ice40Pll(in_hz, divr, divf, divq)
                if not r["out"][0] <= pll.achieved_hz / MHZ <= r["out"][1]:
                    continue
                if best is None or abs(pll.achieved_hz - out_hz) < abs(best.achieved_hz - out_hz):
                    best = pll
    if best is None:
        raise BitmixError(f"iCE40 PLL: no divider setting gives {out_hz / MHZ:g} MHz from "
                          f"{in_hz / MHZ:g} MHz")
    return best


def ecp5_pll(in_hz: float, out_hz: float, secondary_hz: tuple = ()) -> Ecp5Pll:
    """Dividers whose CLKOP is closest to ``out_hz``; among equals the VCO nearest 600 MHz
    (as ecppll). ``secondary_hz`` (up to 3): frequencies CLKOS, CLKOS2, CLKOS3 must give
    exactly (only VCO frequencies they divide are considered)."""
    r = ECP5_RANGES
    _check("ECP5", r, "in", in_hz / MHZ, "input")
    _check("ECP5", r, "out", out_hz / MHZ, "requested output")
    if len(secondary_hz) > 3:
        raise BitmixError("ECP5 PLL: at most 3 secondary outputs")
    for f in secondary_hz:
        _check("ECP5", r, "out", f / MHZ, "secondary output")
    best = None
    for clki in range(1, 129):
        if not r["pfd"][0] <= in_hz / clki / MHZ <= r["pfd"][1]:
            continue
        for fb in range(1, 81):
            fout = in_hz / clki * fb
            if not r["out"][0] <= fout / MHZ <= r["out"][1]:
                continue
            # every CLKOP_DIV putting the VCO in range gives the same output frequency
            for op in range(max(1, math.ceil(r["vco"][0] * MHZ / fout)),
                            min(128, math.floor(r["vco"][1] * MHZ / fout)) + 1):
                pll = Ecp5Pll(in_hz, clki, fb, op)
                if not r["vco"][0] <= pll.vco_hz / MHZ <= r["vco"][1]:
                    continue
                if secondary_hz:
                    divs = tuple(round(pll.vco_hz / f) for f in secondary_hz)
                    if any(not 1 <= d <= 128 or abs(pll.vco_hz / d - f) > 1e-3
                           for d, f in zip(divs, secondary_hz)):
                        continue
                    pll = Ecp5Pll(in_hz, clki, fb, op, divs)
                if best is None:
                    best = pll
                    continue
                err, best_err = abs(pll.achieved_hz - out_hz), abs(best.achieved_hz - out_hz)
                if err < best_err or (err == best_err and abs(pll.vco_hz - 600 * MHZ)
                                      < abs(best.vco_hz - 600 * MHZ)):
                    best = pll
    if best is None:
        extra = (" with " + ", ".join(f"{f / MHZ:g}" for f in secondary_hz) + " MHz exact"
                 if secondary_hz else "")
        raise BitmixError(f"ECP5 PLL: no divider setting gives {out_hz / MHZ:g} MHz from "
                          f"{in_hz / MHZ:g} MHz{extra}")
    return best


def pll_for(family: str, in_hz: float, out_hz: float, secondary_hz: tuple = ()):
    """The PLL search of ``family`` ("ice40" | "ecp5"); secondary outputs on ECP5 only."""
    if family == "ice40":
        if secondary_hz:
            raise BitmixError("iCE40 PLL: secondary outputs are not modelled (SB_PLL40_PAD has one)")
        return ice40_pll(in_hz, out_hz)
    if family == "ecp5":
        return ecp5_pll(in_hz, out_hz, secondary_hz)
    raise BitmixError(f"no PLL model for FPGA family {family!r}")
