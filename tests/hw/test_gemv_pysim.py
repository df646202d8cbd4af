"""The GEMV engine under Amaranth's simulator: bit-exact vs golden.intref with i.i.d. and burst
stalls, 100 % functional coverage, the cycle model exact without stalls, and each error case
(bad descriptor, bad format id, abort) returning to idle without a reset. The same scenarios
(verif/gemv_scenarios.py) run under Verilator in tests/verif/test_verif_gemv.py."""

import random

import pytest

from bitmix.errors import BitmixError
from hw.gemv import GemvEngine
from hw.gemv_params import GemvParams
from verif import gemv_scenarios as sc
from verif.gemv_pysim import run_gemv_pysim

P2 = dict(rows=3, lanes=4, group_size=8, scale_bits=6, format_sets=("bitmod4", "ant3"), max_k=32,
          max_n=16)
P1 = dict(rows=1, lanes=2, group_size=4, act_bits=4, scale_bits=3, format_sets="int4", max_k=16,
          max_n=5)


@pytest.mark.parametrize("kw,stress", [(P2, False), (P2, True), (P1, True),
                                       ({**P1, "registered_control": False}, True)],
                         ids=["R3", "R3-stalls", "R1-stalls", "R1-stalls-clock-enable"])
def test_gemv_bit_exact(kw, stress):
    p = GemvParams.make(**kw)

    async def script(h, clock):
        await sc.bit_exact(h, clock, random.Random(1), max_k=p.max_k, max_n=p.max_n)

    h = run_gemv_pysim(p, script, seed=3, idle=0.3 * stress, backpressure=0.3 * stress,
                       burst=0.01 * stress)
    assert h.checked >= 2 * (p.max_terms + 1) * len(p.format_sets)


def test_gemv_coverage_closure():
    """Short groups (G/L = 4), two sets, results sink stalls: every format x precision x
    position x stall x boundary bin is reached. (These stimuli caught a dropped end-of-GEMV flag:
    a row result leaving the dequantizers in the cycle the next row's last group entered them.)"""
    from verif.gemv_coverage import GemvCoverage

    p = GemvParams.make(rows=3, lanes=4, group_size=16, scale_bits=6, format_sets=("bitmod4", "ant3"),
                        max_k=32, max_n=24)
    cov = GemvCoverage(p, name="pysim_gemv")

    async def script(h, clock):
        await sc.coverage_closure(h, clock, random.Random(2), cov, max_n=p.max_n, log=lambda s: None)

    run_gemv_pysim(p, script, seed=4, idle=0.2, backpressure=0.3, burst=0.01)
    assert cov.percent() == 100.0, cov.missing()


def test_cycle_model_exact():
    p = GemvParams.make(**P2)
    box = {}

    async def script(h, clock):
        box["rec"] = await sc.cycle_model(h, clock, random.Random(2), max_k=p.max_k, max_n=p.max_n)

    run_gemv_pysim(p, script, seed=4)
    assert len(box["rec"]) == 2 * (p.max_terms + 1) + 1


@pytest.mark.parametrize("kw", [P2, P1], ids=["R3", "R1"])
def test_errors_return_to_idle(kw):
    p = GemvParams.make(**kw)

    async def script(h, clock):
        await sc.errors(h, clock, random.Random(3))

    run_gemv_pysim(p, script, seed=5, idle=0.2, backpressure=0.2)


def test_bad_parameters_are_named():
    with pytest.raises(BitmixError, match="group_size = 24 must be a power of two"):
        GemvEngine(rows=2, lanes=4, group_size=24)
    with pytest.raises(BitmixError, match="max_k = 100"):
        GemvEngine(rows=2, lanes=4, group_size=32, max_k=100)
    with pytest.raises(BitmixError, match="zero point"):
        GemvEngine(rows=2, lanes=4, group_size=32, format_sets=("int4_asym",))
    with pytest.raises(BitmixError, match="rows = 0"):
        GemvEngine(rows=0, lanes=4)
    with pytest.raises(BitmixError, match="duplicate"):
        GemvEngine(rows=1, lanes=4, group_size=32, format_sets=("ant3", "ant3"))


def test_status_layout_matches_golden():
    from hw.interfaces import gemv_layouts

    p = GemvParams.make(**P2)
    assert gemv_layouts(p)["status"].size == len(p.layout.status.fields)
    assert p.layout.status.unpack(0b100001) == {
        "busy": 1, "err_format": 0, "err_k": 0, "err_n": 0, "err_desc": 0, "err_abort": 1}
