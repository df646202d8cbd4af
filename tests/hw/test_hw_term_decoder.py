"""Term decoder tables come from golden/ and the logic decodes them (Amaranth simulator)."""

import pytest
from amaranth.sim import Simulator

from bitmix.errors import BitmixError
from golden.formats import FORMAT_SETS, Format, FormatSet, get_format_set
from hw.term_decoder import TermDecoder, check_format_set, format_terms_table, term_table

SYMMETRIC = [n for n, fs in FORMAT_SETS.items() if not fs.zero_point]


@pytest.mark.parametrize("name", SYMMETRIC)
def test_table_sums_to_golden_values(name):
    fs = get_format_set(name)
    table = term_table(fs)
    tb = max(1, fs.max_terms.bit_length())
    for fid, f in enumerate(fs.formats):
        for code in range(1 << fs.bits):
            for nterms in range(0, fs.max_terms + 1):
                total = 0
                for t in range(nterms):
                    nz, s, e = table[(((fid << fs.bits) | code) << tb) | t]
                    total += nz * (-1) ** s * (1 << e)
                assert total == f.truncated_value(code, nterms), (f.name, code, nterms)
    assert format_terms_table(fs)[:len(fs.formats)] == [f.max_terms for f in fs.formats]


@pytest.mark.parametrize("name", ["bitmod4", "ant3"])
def test_decoder_logic_exhaustive(name):
    fs = get_format_set(name)
    dut = TermDecoder(check_format_set(fs))

    async def bench(ctx):
        for fid, f in enumerate(fs.formats):
            for code in range(1 << fs.bits):
                for t in range(fs.max_terms):
                    ctx.set(dut.fmt_id, fid)
                    ctx.set(dut.code, code)
                    ctx.set(dut.term, t)
                    terms = f.terms[code]
                    if t < len(terms):
                        got = (ctx.get(dut.nonzero), ctx.get(dut.sign), ctx.get(dut.exp))
                        assert got == (1, terms[t].sign, terms[t].exp)
                    else:
                        assert ctx.get(dut.nonzero) == 0

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def test_rejects_zero_point_sets():
    with pytest.raises(BitmixError, match="zero point"):
        check_format_set(get_format_set("int4_asym"))
    with pytest.raises(BitmixError, match="unknown format set"):
        check_format_set("int5")


def test_changing_a_grid_changes_the_table():
    fs = get_format_set("er4")
    pos = fs.formats[0]
    grid = tuple(sorted(set(pos.grid) - {10} | {5}))       # special +10 -> +5 (= 4 + 1)
    changed = FormatSet("er4_mod", (Format("fp4_er_pos_mod", 4, grid), fs.formats[1]))
    assert term_table(changed) != term_table(fs)
    assert changed.hash != fs.hash
