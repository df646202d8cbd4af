"""The GEMV engine's shift-add LUT path (cmd.path = 1) under Amaranth's simulator: bit-exact
against golden.bcq's integer path for the row and block layouts at every precision with i.i.d.
and burst stalls, interleaved with bit-serial GEMVs, 100 % of its coverage bins, the cycle model
exact without stalls, its error cases; and ``lut=None`` generating no LUT logic at all. The same
scenarios run under Verilator in tests/verif/test_verif_gemv.py."""

import random
import re

import pytest
from amaranth.back import verilog

from bitmix.errors import BitmixError
from hw.gemv import GemvEngine
from hw.gemv_params import GemvParams
from verif import gemv_scenarios as sc
from verif.gemv_pysim import run_gemv_pysim

P = dict(rows=2, lanes=8, group_size=16, max_k=64, max_n=12, lut=dict(max_planes=4))


def _lut_logic(p) -> set[str]:
    v = verilog.convert(GemvEngine(p), name="gemv")
    return set(re.findall(r"\b\w*lut_new\w*|\bmodule \S*lut\S*", v))


def test_no_lut_logic_without_the_parameter():
    base = {k: v for k, v in P.items() if k != "lut"}
    assert _lut_logic(GemvParams.make(**P))              # the check can see LUT logic ...
    assert not _lut_logic(GemvParams.make(**base))       # ... and there is none without it
    p = GemvParams.make(**base)
    assert "planes" not in [f.name for f in p.layout.cmd.fields] and p.lut_layout is None
    assert "lut" not in p.describe()                     # hashes of LUT-less engines unchanged


@pytest.mark.parametrize("kw,msg", [
    (dict(P, lanes=4, group_size=16), "lanes = 4 must be a multiple of 8"),
    (dict(P, rows=2, lanes=8, format_sets="int3", scale_bits=1, lut=dict(max_planes=4)),
     "needs .* bits, the engine's weight beat has"),
    (dict(P, lut=dict(max_planes=9)), "max_planes = 9 is out of range"),
    (dict(P, lut=dict(planes=2)), "lut: expected None or a mapping"),
    (dict(P, lut=dict(max_planes=4, table_inputs=3)), "table_inputs = 3 must be one of 8, 4, 2"),
])
def test_bad_lut_parameters(kw, msg):
    with pytest.raises(BitmixError, match=msg):
        GemvParams.make(**kw)


def test_lut_path_bit_exact_mixed_and_errors():
    """Two-input tables (four per byte key, two entries each)."""
    p = GemvParams.make(**dict(P, lut=dict(max_planes=4, table_inputs=2)))

    async def script(h, clock):
        rng = random.Random(1)
        assert await sc.lut_bit_exact(h, clock, rng, max_k=p.max_k, max_n=p.max_n) >= 40
        await sc.mixed_paths(h, clock, rng, max_k=p.max_k, max_n=p.max_n)
        await sc.lut_errors(h, clock, rng)
        await sc.errors(h, clock, rng)

    h = run_gemv_pysim(p, script, seed=3, idle=0.3, backpressure=0.3, burst=0.01)
    assert h.checked >= 50


@pytest.mark.slow
# the cocotb runs (tests/verif/test_verif_gemv.py) check the same under Verilator by default
def test_lut_cycle_model_and_coverage():
    """Two 8-input chunks per word (L = 16), 4-input tables: the cycle model exact without
    stalls, then every bin."""
    from verif.gemv_coverage import LutCoverage

    p = GemvParams.make(**dict(P, lanes=16, group_size=16, lut=dict(max_planes=4, table_inputs=4)))
    box = {}

    async def model(h, clock):
        box["rec"] = await sc.lut_cycle_model(h, clock, random.Random(1), max_k=p.max_k,
                                              max_n=p.max_n, log=lambda s: None)

    run_gemv_pysim(p, model, seed=3)
    assert len(box["rec"]) == 2 * len(sc.lut_qp(p))
    cov = LutCoverage(sc.lut_qp(p), name="pysim_gemv_lut")

    async def closure(h, clock):
        await sc.lut_coverage_closure(h, clock, random.Random(1), cov, max_k=p.max_k,
                                      max_n=p.max_n, log=lambda s: None)

    run_gemv_pysim(p, closure, seed=3, idle=0.3, backpressure=0.3, burst=0.01)
    assert cov.percent() == 100.0, cov.missing()
