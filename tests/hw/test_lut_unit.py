"""The shift-add LUT unit under Amaranth's simulator: bit-exact vs golden.bcq with stalls, the
cycle model exact without stalls (table builds never stall the queries), the accumulator bound
reached exactly, bad descriptors flagged with a return to idle. The Verilator/cocotb regression
is tests/verif/test_verif_lut.py."""

import random

import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from bitmix.errors import BitmixError
from golden.cycle_model import lut_rtl_cycles
from hw.interfaces import lut_layouts
from hw.lut_params import LutParams
from hw.lut_unit import LutUnit
from verif.lut_pysim import run_lut_pysim
from verif.lut_stimulus import ACT_PATTERNS, expected, quantized_gemv, random_gemv, span_gemv

P = dict(rows=3, max_planes=4, shift_bits=5, max_k=64, max_n=16)


def test_payloads_are_the_golden_layouts():
    p = LutParams.make(**P)
    lay = p.layout
    ls = lut_layouts(p)
    for gl in (lay.cmd, lay.acts, lay.keys, lay.scales, lay.results(p.row_bits), lay.status):
        shape = ls[gl.name]
        assert shape.size == gl.size
        for f in gl.fields:
            fld = shape[f.name]
            assert fld.offset == gl.offset(f.name), (gl.name, f.name)
            elem = fld.shape.elem_shape if f.is_array else fld.shape
            assert Shape.cast(elem) == Shape(f.width, f.signed)
            assert isinstance(fld.shape, data.ArrayLayout) == f.is_array


@pytest.mark.parametrize("stress", [False, True])
def test_bit_exact_every_layout_planes_precision(stress):
    p = LutParams.make(**P)
    rng = random.Random(1)

    async def script(h, clock):
        gs = []
        for layout, g in (("row", 16), ("block", 16), ("row", 8)):
            for q in (2, 3, 4):
                for prec in range(q + 1):
                    n = 4 if layout == "block" else rng.randint(1, p.max_n)
                    gs.append(random_gemv(p, rng, q, layout, n, 16 * rng.randint(1, 4), g, prec,
                                          rng.choice(ACT_PATTERNS)))
        gs += [quantized_gemv(p, 7, 3, "row", 7, 64, 32, 0), quantized_gemv(p, 8, 4, "block", 16, 32, 32, 2),
               span_gemv(p, rng, 3, "row", 5, 32, 16), span_gemv(p, rng, 2, "block", 8, 64, 32, 1)]
        await h.run(clock, gs, tail=30)

    h = run_lut_pysim(p, script, seed=3, idle=0.3 * stress, backpressure=0.3 * stress,
                      burst=0.01 * stress)
    assert h.checked == 40


def test_cycle_model_exact_and_tables_never_stall():
    """No stalls: period = 2 + blocks * K/8 * p, the keys of a GEMV transfer on consecutive
    cycles (each table is built while the previous chunk's last query issues)."""
    p = LutParams.make(**P)
    rng = random.Random(2)

    async def script(h, clock):
        gs = [random_gemv(p, rng, q, lay, n, k, 16, prec) for q, lay, n, k, prec in
              [(3, "row", 5, 16, 0), (4, "block", 8, 64, 1), (2, "row", 1, 8 * 2, 2), (4, "row", 16, 32, 3),
               (2, "block", 4, 16, 0)]]
        await h.run(clock, gs, tail=10)
        log = h.gemv_log
        for a, b in zip(log, log[1:]):
            g = a["gemv"]
            c = lut_rtl_cycles(p.layout, g.n, g.k, g.planes, latency=p.latency)
            assert b["cmd"] - a["cmd"] == c["period"], (g.note, b["cmd"] - a["cmd"], c)
            assert a["last_result"] - a["cmd"] == c["to_last_result"], (a["last_result"] - a["cmd"], c)
        cycles = [c for c, gi, _ in h.key_log]
        gemv = [gi for _, gi, _ in h.key_log]
        for (c0, g0), (c1, g1) in zip(zip(cycles, gemv), zip(cycles[1:], gemv[1:])):
            assert g0 != g1 or c1 == c0 + 1, f"bubble between queries at cycle {c0}"

    run_lut_pysim(p, script, seed=4)


def test_accumulator_bound_reached_exactly():
    """x = -2^(A-1), every key 0xFF, every term -1 << max_shift, max K, max planes: +row_max;
    terms +1: -row_max (row 1). Raw streams: no golden layer has every shift at the maximum."""
    p = LutParams.make(rows=2, max_planes=2, apot_terms=2, shift_bits=3, act_bits=4, max_k=16, max_n=2)
    lay = p.layout

    async def script(h, clock):
        src = h.sources
        h.send_cmd(k=16, n=2, planes=2, group_chunks=1)
        h._keys_per_gemv[-1] = 4
        lo = -(1 << (p.act_bits - 1))
        for _ in range(2):
            src["acts"].push(lay.acts.pack(x=[lo] * 8))
            for _ in range(2):
                src["keys"].push(lay.keys.pack(key=[0xFF, 0xFF]))
                src["scales"].push(lay.scales.pack(sign=[-1, -1, 1, 1], shift=[p.max_shift] * 4))
        await h.run_until(clock, lambda h: len(h.results.items) == 1, 200)
        v = lay.results(p.row_bits).unpack(h.results.items[0])
        assert v["row"] == [p.row_max, -p.row_max] and v["last"] == 1
        assert p.row_max.bit_length() == p.row_bits - 1

    run_lut_pysim(p, script, seed=5)


def test_bad_descriptors_flagged_and_unit_stays_usable():
    p = LutParams.make(**P)
    rng = random.Random(3)

    async def script(h, clock):
        for kw, flag in [(dict(k=0, n=3), "err_k"), (dict(k=12, n=3), "err_k"), (dict(k=72, n=3), "err_k"),
                         (dict(k=8, n=0), "err_n"), (dict(k=8, n=17), "err_n"),
                         (dict(k=8, n=3, planes=0), "err_desc"), (dict(k=8, n=3, planes=5), "err_desc"),
                         (dict(k=8, n=3, group_chunks=0), "err_desc")]:
            h.send_cmd(**{"planes": 2, "group_chunks": 1, **kw})
            await h.run_until(clock, lambda h: h.sources["cmd"].done)
            await h.step(clock)
            st = h.status()
            assert st[flag] and not st["busy"], (kw, st)
            assert sum(v for k, v in st.items() if k.startswith("err_")) == 1, (kw, st)
            await h.run(clock, [random_gemv(p, rng, 2, "row", 4, 16, 8)])   # clears the flags
        # a precision port value above the layer's planes reads all planes
        g = random_gemv(p, rng, 2, "row", 4, 16, 8)
        h.queue(g)
        h._prec[-1] = 3
        await h.run_until(clock, lambda h: len(h.results.items) == 2 * 9)
        assert p.layout.unpack_results(h.results.items[-2:], p.row_bits, 4) == expected(p, g)

    run_lut_pysim(p, script, seed=6, idle=0.2, backpressure=0.2)


def test_bad_parameters_are_named():
    with pytest.raises(BitmixError, match="rows = 0"):
        LutUnit(rows=0)
    with pytest.raises(BitmixError, match="max_k = 100 is not a multiple of 8"):
        LutUnit(rows=2, max_k=100)
    with pytest.raises(BitmixError, match="apot_terms = 4"):
        LutUnit(rows=2, apot_terms=4)
    with pytest.raises(BitmixError, match="shift_bits = 6 .*2\\^40"):
        LutUnit(rows=2, shift_bits=6)
