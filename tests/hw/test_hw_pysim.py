"""The dot-product unit under Amaranth's simulator: bit-exact vs golden.intref, with stalls.

Small parameter sets keep these fast; the Verilator/cocotb matrix is in tests/verif/test_verif_dot_unit.py.
"""

import random

import pytest

from golden.formats import Format, FormatSet, get_format_set
from hw.params import DotParams
from verif.dot_unit import run_pysim
from verif.stimulus import exhaustive_rows, extreme_rows, quantized_rows, random_rows, special_rows


@pytest.mark.parametrize("fs,lanes,group,a,s", [("bitmod4", 4, 8, 8, 8), ("ant3", 2, 8, 4, 5)])
def test_dot_unit_pysim(fs, lanes, group, a, s):
    p = DotParams.make(lanes=lanes, group_size=group, act_bits=a, scale_bits=s, format_set=fs,
                       max_groups=3)
    rng = random.Random(7)
    batches = [exhaustive_rows(p, rng), special_rows(p, rng, 1), random_rows(p, rng, 4),
               quantized_rows(p, 3, 2, 3), *([r] for r in extreme_rows(p))]
    h = run_pysim(p, batches, seed=11, idle=0.3, backpressure=0.3)
    assert h.checked == sum(len(b) for b in batches)


def test_changing_a_grid_changes_hardware_and_it_still_matches():
    """A grid edit in golden/ flows into the decoder; the same tests pass against the new grid."""
    from amaranth.back import verilog

    from hw.dot_unit import DotProductUnit

    base = get_format_set("er4")
    grid = tuple(sorted(set(base.formats[0].grid) - {10} | {5}))
    mod = FormatSet("er4_mod", (Format("fp4_er_pos_mod", 4, grid), base.formats[1]))
    kw = dict(lanes=2, group_size=8, act_bits=8, scale_bits=4, max_groups=2)
    p0, p = DotParams.make(format_set=base, **kw), DotParams.make(format_set=mod, **kw)
    v0 = verilog.convert(DotProductUnit(p0), name="dot_unit", emit_src=False)
    v1 = verilog.convert(DotProductUnit(p), name="dot_unit", emit_src=False)
    assert v0 != v1
    rng = random.Random(3)
    run_pysim(p, [exhaustive_rows(p, rng), random_rows(p, rng, 3)], seed=5, idle=0.2,
              backpressure=0.2)
