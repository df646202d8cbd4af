"""cocotb + Verilator: the elaborated GEMV engine is bit-exact with golden.intref.

Three generator configurations (one with R = 1, two whose R does not divide the N used) at
K up to 1024 and N up to 256 (both at once in the slow job); the five cocotb tests of
verif/tb_gemv.py run in one simulator process per configuration (reset readies, bit-exact over
every set and precision with stalls, 100 % functional coverage, the exact cycle model, error
cases). Larger runs: `pytest -m slow`.
"""

import pytest

from hw.gemv_params import GemvParams
from verif.gemv import run_gemv

CONFIGS = {
    "R4-L8-bitmod4+ant3": dict(rows=4, lanes=8, group_size=64, scale_bits=8,
                               format_sets=("bitmod4", "ant3"), max_k=1024, max_n=256),
    "R1-L16-bitmod3": dict(rows=1, lanes=16, group_size=128, scale_bits=6, format_sets="bitmod3",
                           max_k=1024, max_n=256),
    "R3-L4-A6-ant4+er3": dict(rows=3, lanes=4, group_size=32, act_bits=6, scale_bits=5,
                              format_sets=("ant4", "er3"), max_k=256, max_n=100),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gemv_cocotb(name):
    # K = max K and N = max N in separate GEMVs (a 256 x 1024 GEMV on R = 1 alone is 33k cycles
    # under cocotb); GEMVs at both maxima at once run in the slow job
    res = run_gemv(GemvParams.make(**CONFIGS[name]))
    assert res.tests == 5


@pytest.mark.slow
# R1-L16 (512 single-row blocks per GEMV) is left to the default suite's K = 1024 runs: its
# full-size GEMVs are the slowest under cocotb and CI's 90 minutes hold all jobs
@pytest.mark.parametrize("name", [n for n in CONFIGS if not n.startswith("R1-")])
@pytest.mark.parametrize("seed", [1])
def test_gemv_cocotb_long(name, seed):
    """More GEMVs per precision, larger engines' maxima, a fixed seed (one seed per
    configuration keeps CI's slow job inside its time budget: ~7 min per configuration)."""
    kw = dict(CONFIGS[name], max_k=4096, max_n=1024)
    res = run_gemv(GemvParams.make(**kw), seed=seed, per_precision=2, max_k=2048, max_n=512,
                   full_size=True)
    assert res.tests == 5
