"""cocotb + Verilator: the elaborated dot-product unit is bit-exact with golden.intref.

One Verilator build per parameter set (``build/sim/<tag>/``); the five cocotb tests in
``verif/tb_dot_unit.py`` run in one simulator process per set. Seeds are printed; set
``BITMIX_SEED`` to reproduce. A failure re-runs with waves and names the VCD file.
"""

from pathlib import Path

import pytest

from hw.params import DotParams
from verif.dot_unit import run_dot_unit
from verif.runner import SimFailure

#: (lanes, group, act bits, scale bits, format set, max groups per row)
MATRIX = [
    (4, 32, 8, 8, "bitmod3", 4),     # dequant steps == G/L exactly (8 == 8)
    (16, 128, 8, 6, "bitmod4", 3),
    (4, 128, 6, 8, "ant4", 2),       # int4 (2 terms) vs flint4
    (16, 32, 4, 5, "ant3", 8),       # fp3 has 1 term: shortest group G/L = 2 cycles, r = 3 bits/cycle
    (8, 64, 8, 7, "int4", 2),        # single format: 1-bit format id port, id padding
]


def _params(lanes, group, a, s, fs, mg):
    return DotParams.make(lanes=lanes, group_size=group, act_bits=a, scale_bits=s,
                          format_set=fs, max_groups=mg)


@pytest.mark.parametrize("cfg", MATRIX, ids=lambda c: f"L{c[0]}-G{c[1]}-A{c[2]}-S{c[3]}-{c[4]}")
def test_dot_unit_cocotb(cfg):
    res = run_dot_unit(_params(*cfg))
    assert res.tests == 5


@pytest.mark.parametrize("idle,bp", [(0.0, 0.9), (0.9, 0.0)], ids=["stalling-sink", "sparse-sources"])
def test_dot_unit_extreme_flow_control(idle, bp):
    """Shortest groups (2 cycles) with a sink that is ready 10 % of the time, and with sources
    that are idle 90 % of the time."""
    res = run_dot_unit(_params(*MATRIX[3]), testcase=["quantized_and_random", "specials_and_extremes"],
                       idle=idle, backpressure=bp)
    assert res.tests == 2


@pytest.mark.slow
@pytest.mark.parametrize("cfg", MATRIX, ids=lambda c: f"L{c[0]}-G{c[1]}-A{c[2]}-S{c[3]}-{c[4]}")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dot_unit_cocotb_long(cfg, seed, request):
    """More rows and several fixed seeds per parameter set (`pytest -m slow`)."""
    res = run_dot_unit(_params(*cfg), seed=seed, rows=80)
    assert res.tests == 5


def test_failure_leaves_vcd_and_names_it():
    """A mismatch (injected into the expected values) fails loudly and leaves a waveform."""
    p = _params(*MATRIX[0])
    with pytest.raises(SimFailure) as exc:
        run_dot_unit(p, testcase="every_code", seed=123, inject_mismatch=True)
    msg = str(exc.value)
    assert "every_code" in msg and "BITMIX_SEED=123" in msg and "dut=" in msg
    vcd = Path(msg.split("waveform: ")[1].split()[0])
    assert vcd.name == "dump.vcd" and vcd.is_file() and vcd.stat().st_size > 1000
    assert "weights__valid" in vcd.read_text(errors="replace")[:200000]
