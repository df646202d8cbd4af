"""cocotb + Verilator: the elaborated shift-add LUT unit is bit-exact with golden.bcq's integer
path for q = 2, 3, 4, the row and block layouts, every precision, random and bursty stalls,
activation edge cases, the largest exponent span and K = max K, with 100 % functional coverage
(layout x (q, p) x key position x stall). One Verilator build per parameter set; seeds printed,
``BITMIX_SEED`` reproduces."""

import pytest

from hw.lut_params import LutParams
from verif.lut_unit import run_lut_unit

#: (LutParams.make keywords, row-layout group sizes)
MATRIX = [
    (dict(rows=4, max_planes=4, apot_terms=3, shift_bits=5, act_bits=8, max_k=128, max_n=64), (16, 32)),
    (dict(rows=3, max_planes=4, apot_terms=2, shift_bits=5, act_bits=4, max_k=96, max_n=32), (8, 32)),
]


def _id(c):
    kw = c[0]
    return f"R{kw['rows']}-T{kw['apot_terms']}-A{kw['act_bits']}-K{kw['max_k']}"


@pytest.mark.parametrize("cfg", MATRIX, ids=_id)
def test_lut_unit_cocotb(cfg):
    kw, groups = cfg
    res = run_lut_unit(LutParams.make(**kw), groups=groups)
    assert res.tests == 5


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
@pytest.mark.parametrize("cfg", MATRIX, ids=_id)
def test_lut_unit_cocotb_seeds(cfg, seed):
    kw, groups = cfg
    res = run_lut_unit(LutParams.make(**kw), groups=groups, seed=seed, blocks=6)
    assert res.tests == 5
