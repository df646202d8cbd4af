"""`fpga.pll`: PLL divider search (iCE40 SB_PLL40, ECP5 EHXPLLL) and the board clock plans.

The divider formulas are checked against the data-sheet ranges here and against the
``yowasp-icepll`` / ``yowasp-ecppll`` tools (same search, C++) for the boards' clocks.
"""

import re
import subprocess

import pytest

from bitmix.errors import BitmixError
from bitmix.tools import yowasp_tool
from fpga.boards import BOARDS, clock_plan
from fpga.pll import ECP5_RANGES, ICE40_RANGES, Ice40Pll, ecp5_pll, ice40_pll

MHZ = 1e6


def inside(ranges, key, hz):
    lo, hi = ranges[key]
    return lo <= hz / MHZ <= hi


@pytest.mark.parametrize("fin,fout", [(12e6, 24e6), (12e6, 30e6), (12e6, 48e6), (12e6, 17e6),
                                      (100e6, 33.3e6), (12e6, 275e6)])
def test_ice40_pll_is_legal_and_closest(fin, fout):
    p = ice40_pll(fin, fout)
    assert 0 <= p.divr <= 15 and 0 <= p.divf <= 127 and 1 <= p.divq <= 6
    assert inside(ICE40_RANGES, "pfd", p.pfd_hz) and inside(ICE40_RANGES, "vco", p.vco_hz)
    assert inside(ICE40_RANGES, "out", p.achieved_hz)
    assert p.achieved_hz == fin / (p.divr + 1) * (p.divf + 1) / 2 ** p.divq
    # no legal setting is closer (brute force over the same space, written independently)
    best = min(abs(fin / (r + 1) * (f + 1) / 2 ** q - fout)
               for r in range(16) for f in range(128) for q in range(1, 7)
               if 10 <= fin / (r + 1) / MHZ <= 133 and 533 <= fin / (r + 1) * (f + 1) / MHZ <= 1066
               and 16 <= fin / (r + 1) * (f + 1) / 2 ** q / MHZ <= 275)
    assert abs(p.achieved_hz - fout) == pytest.approx(best)


@pytest.mark.parametrize("pfd,expected", [(12, 1), (16.9, 1), (17, 2), (25, 2), (30, 3),
                                          (50, 4), (80, 5), (101, 6), (133, 6)])
def test_ice40_filter_range_follows_pfd(pfd, expected):
    assert Ice40Pll(pfd * MHZ, 0, 0, 1).filter_range == expected


@pytest.mark.parametrize("fin,fout", [(25e6, 75e6), (48e6, 48e6), (48e6, 60e6), (48e6, 125e6),
                                      (25e6, 33.333e6), (25e6, 400e6)])
def test_ecp5_pll_is_legal_and_exact_when_possible(fin, fout):
    p = ecp5_pll(fin, fout)
    assert 1 <= p.clki_div <= 128 and 1 <= p.clkfb_div <= 80 and 1 <= p.clkop_div <= 128
    assert inside(ECP5_RANGES, "pfd", p.pfd_hz) and inside(ECP5_RANGES, "vco", p.vco_hz)
    assert p.vco_hz == pytest.approx(p.achieved_hz * p.clkop_div)
    assert p.params()["CLKOP_CPHASE"] == p.clkop_div - 1
    if fout in (75e6, 48e6, 60e6, 400e6):                    # integer ratios reachable exactly
        assert p.achieved_hz == pytest.approx(fout)
    assert abs(p.achieved_hz - fout) / fout < 0.01


@pytest.mark.parametrize("fout", [48e6, 60e6, 72e6, 96e6])
def test_ecp5_secondary_outputs_are_exact(fout):
    """The OrangeCrab's USB link needs 48 and 12 MHz from the same VCO as the system clock."""
    p = ecp5_pll(48e6, fout, (48e6, 12e6))
    assert p.achieved_hz == pytest.approx(fout)
    assert p.secondary_hz == pytest.approx((48e6, 12e6), abs=1e-3)
    assert all(p.vco_hz / d == pytest.approx(f) for d, f in zip(p.secondary_divs, (48e6, 12e6)))
    assert inside(ECP5_RANGES, "vco", p.vco_hz)
    params = p.params()
    assert params["CLKOS_DIV"] * 48e6 == pytest.approx(p.vco_hz)
    assert params["CLKOS2_ENABLE"] == "ENABLED" and params["CLKOS2_CPHASE"] == params["CLKOS2_DIV"] - 1


def test_ecp5_secondary_outputs_that_no_vco_gives_are_refused():
    with pytest.raises(BitmixError, match="exact"):
        ecp5_pll(48e6, 48e6, (48e6, 50e6))        # lcm(48, 50) = 1200 MHz > the 800 MHz VCO


@pytest.mark.parametrize("fn,fin,fout", [(ice40_pll, 12e6, 300e6), (ice40_pll, 5e6, 24e6),
                                         (ecp5_pll, 25e6, 500e6), (ecp5_pll, 4e6, 50e6)])
def test_out_of_range_requests_are_refused(fn, fin, fout):
    with pytest.raises(BitmixError, match="outside"):
        fn(fin, fout)


def _tool(name, args):
    return subprocess.run([yowasp_tool(name), *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("fout", [24, 30, 36, 50.25])
def test_ice40_pll_matches_icepll(fout):
    text = _tool("icepll", ["-i", "12", "-o", str(fout)])
    p = ice40_pll(12e6, fout * MHZ)
    got = {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1))
           for k in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")}
    assert got == {"DIVR": p.divr, "DIVF": p.divf, "DIVQ": p.divq,
                   "FILTER_RANGE": p.filter_range}
    assert float(re.search(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", text).group(1)) == pytest.approx(
        p.achieved_hz / MHZ, abs=1e-3)


@pytest.mark.parametrize("fin,fout", [(25, 75), (48, 48), (48, 60), (48, 100)])
def test_ecp5_pll_matches_ecppll(fin, fout, tmp_path):
    text = _tool("ecppll", ["-i", str(fin), "-o", str(fout), "-f", str(tmp_path / "pll.v")])
    p = ecp5_pll(fin * MHZ, fout * MHZ)
    tool_mhz = float(re.search(r"clkout0 frequency: ([\d.]+) MHz", text).group(1))
    assert p.achieved_hz / MHZ == pytest.approx(tool_mhz, abs=1e-3)
    vco = float(re.search(r"VCO frequency: ([\d.]+)", text).group(1))
    assert p.vco_hz / MHZ == pytest.approx(vco, abs=1e-3)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_clock_plans(name):
    b = BOARDS[name]
    plan = clock_plan(b)
    assert plan.sys_hz == pytest.approx(b.sys_hz)             # every default is a PLL output
    assert plan.uart.divisor == round(plan.sys_hz / plan.baud)
    assert abs(plan.baud_error) < 0.02
    d = plan.describe()
    assert d["uart"]["error_pct"] == pytest.approx(100 * (plan.sys_hz / plan.uart.divisor
                                                          / plan.baud - 1), abs=1e-4)


def test_clock_plan_reports_baud_error_and_refuses_a_bad_one():
    plan = clock_plan(BOARDS["icebreaker"], 30e6, 115200)     # 30e6 / 260 = 115384.6 baud
    assert plan.uart.divisor == 260
    assert plan.baud_error == pytest.approx(30e6 / 260 / 115200 - 1)
    with pytest.raises(BitmixError, match="baud"):
        clock_plan(BOARDS["icebreaker"], 16e6, 3_000_000)    # divisor 5: 6.7 % error
