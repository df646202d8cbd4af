"""The GEMV engine under Amaranth's simulator: bit-exact vs golden.intref with stalls, the
cycle model exact without stalls, and each error case (bad descriptor, bad format id, abort)
returning to idle without a reset. The Verilator/cocotb regression is tests/verif/."""

import random

import pytest

from bitmix.errors import BitmixError
from hw.gemv import GemvEngine
from hw.gemv_params import GemvParams
from verif.gemv_pysim import run_gemv_pysim
from verif.gemv_stimulus import every_code_gemv, extreme_gemv, quantized_gemv, random_gemv

P2 = dict(rows=3, lanes=4, group_size=8, scale_bits=6, format_sets=("bitmod4", "ant3"), max_k=32, max_n=16)


def _p(**kw):
    return GemvParams.make(**kw)


@pytest.mark.parametrize("kw,stress", [
    (P2, False),
    (P2, True),
    (dict(rows=1, lanes=2, group_size=4, act_bits=4, scale_bits=3, format_sets="int4", max_k=16,
          max_n=5), True),
])
def test_gemv_bit_exact(kw, stress):
    p = _p(**kw)
    rng = random.Random(1)

    async def script(h, clock):
        gs = []
        for si in range(len(p.format_sets)):
            for prec in range(p.max_terms + 1):
                n, k = rng.randint(1, p.max_n), p.group_size * rng.randint(1, p.max_groups)
                gs.append(random_gemv(p, rng, n, k, si, prec))
            gs += [every_code_gemv(p, rng, si), quantized_gemv(p, 5 + si, p.max_n, p.max_k, si)]
        await h.run(clock, gs, tail=40)
        for si in range(len(p.format_sets)):       # the accumulator bound is reached exactly
            ext = extreme_gemv(p, si)
            if ext:
                got = await h.run(clock, [ext], tail=5)
                assert got[0] == [p.set_params[si].row_max, -p.set_params[si].row_max]

    h = run_gemv_pysim(p, script, seed=3, idle=0.3 * stress, backpressure=0.3 * stress,
                       burst=0.01 * stress)
    assert h.checked > 3


def test_cycle_model_exact():
    """No stalls: every GEMV starts 1 + K/L + sum_blocks,groups T*G/L cycles after the previous
    one, and its last result is `latency` cycles after its last issued term."""
    from golden.cycle_model import gemv_rtl_cycles

    p = _p(**P2)
    rng = random.Random(2)

    async def script(h, clock):
        gs = [random_gemv(p, rng, n, k, si, prec) for n, k, si, prec in
              [(5, 16, 0, 0), (3, 32, 1, 1), (7, 8, 1, 0), (16, 32, 1, 0), (1, 8, 0, 2), (9, 24, 1, 2)]]
        await h.run(clock, gs, tail=10)
        log = h.gemv_log
        for a, b in zip(log, log[1:]):
            g = a["gemv"]
            c = gemv_rtl_cycles(p.layout, g.fmt_ids, g.fmt_set, g.precision, latency=p.latency)
            assert b["cmd"] - a["cmd"] == c["period"], (g.note, b["cmd"] - a["cmd"], c)
            assert a["last_result"] - a["cmd"] == c["to_last_result"], (a["last_result"] - a["cmd"], c)

    run_gemv_pysim(p, script, seed=4)


def _fmt_offset(p, r):
    return p.layout.weights.offset("fmt") + r * p.layout.id_bits


def test_errors_return_to_idle():
    p = _p(**P2)
    rng = random.Random(3)

    async def script(h, clock):
        # bad descriptors: consumed, flagged, engine stays idle
        for kw, flag in [(dict(k=0, n=3), "err_k"), (dict(k=12, n=3), "err_k"), (dict(k=40, n=3), "err_k"),
                         (dict(k=8, n=0), "err_n"), (dict(k=8, n=17), "err_n"),
                         (dict(k=8, n=3, path=1), "err_desc")]:
            h.send_cmd(**kw)
            await h.run_until(clock, lambda h: h.cmd.done)
            await h.step(clock)
            st = h.status()
            assert st[flag] and not st["busy"], (kw, st)
            assert sum(v for k, v in st.items() if k.startswith("err_")) == 1, (kw, st)
            await h.run(clock, [random_gemv(p, rng, 4, 16, 1)])       # clears the flags, correct
        # a format id outside the layer's set (ant3 has ids 0..1; the field holds 0..3), in block 1
        g = random_gemv(p, rng, 6, 16, 1)
        h.queue(g)
        beats = list(h.weights.queue)
        i = len(beats) // 2 + 1
        beats[i] |= 3 << _fmt_offset(p, 2)
        h.weights.queue.clear()
        h.weights.queue.extend(beats)
        await h.run_until(clock, lambda h: h.status()["err_format"])
        await h.step(clock)
        assert not h.status()["busy"]
        h.drop_inputs()
        n_before = len(h.results.items)
        for _ in range(30):
            await h.step(clock)
        assert len(h.results.items) <= n_before + 1      # at most block 0, finished before the error
        h.results.items[n_before:] = []
        h.results.transfers[n_before:] = []
        await h.run(clock, [random_gemv(p, rng, 5, 32, 0, 1)])
        # abort while computing: flushed, flagged, next GEMV correct
        h.queue(random_gemv(p, rng, 16, 32, 1))
        await h.run_until(clock, lambda h: len(h.weights.queue) < 20)
        await h.abort(clock)
        await h.step(clock)
        st = h.status()
        assert st["err_abort"] and not st["busy"], st
        h.drop_inputs()
        for _ in range(30):
            await h.step(clock)
        assert not h.status()["busy"]
        h.results.items.clear()
        h.results.transfers.clear()
        await h.run(clock, [random_gemv(p, rng, 7, 24, 1, 2), random_gemv(p, rng, 2, 8, 0)], tail=20)

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


def test_status_layout_matches_golden():
    from hw.interfaces import gemv_layouts

    p = _p(**P2)
    assert gemv_layouts(p)["status"].size == len(p.layout.status.fields)
    assert p.layout.status.unpack(0b100001) == {
        "busy": 1, "err_format": 0, "err_k": 0, "err_n": 0, "err_desc": 0, "err_abort": 1}
