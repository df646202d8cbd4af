"""Test scenarios of the GEMV engine, shared by the Amaranth-simulator unit tests
(tests/hw/test_gemv_pysim.py) and the cocotb + Verilator regression (verif/tb_gemv.py).

Each is ``async def scenario(h, clock, rng, ...)`` on a :class:`verif.gemv_harness.GemvHarness`
and raises ``AssertionError`` (``GemvMismatch``) on any difference from golden.intref, from the
cycle model, or from the documented error behaviour.
"""

from __future__ import annotations

import random

from golden.cycle_model import gemv_rtl_cycles
from verif.gemv_harness import BURST_LEN, GemvHarness
from verif.gemv_stimulus import every_code_gemv, extreme_gemv, quantized_gemv, random_gemv
from verif.stream import Stalls

__all__ = ["bit_exact", "coverage_closure", "cycle_model", "errors", "lut_bit_exact",
           "lut_coverage_closure", "mixed_paths", "lut_cycle_model", "lut_errors", "lut_qp"]


def _precisions(p) -> list[int]:
    return list(range(p.max_terms + 1))


def _rand_k(p, rng: random.Random, max_k: int) -> int:
    return p.group_size * rng.randint(1, max(1, max_k // p.group_size))


async def bit_exact(h: GemvHarness, clock, rng: random.Random, *, max_k: int, max_n: int,
                    per_precision: int = 0, full_size: bool = False) -> int:
    """Every compiled set at every precision: a GEMV at K = max_k (N = 2R + 1, so N mod R != 0),
    one at N = max_n (N mod R != 0 where R allows), ``per_precision`` more of random shape,
    every code of every format; per set a quantized layer at K = max_k and the accumulator
    extremes; ``full_size`` adds one max_n x max_k GEMV per set. Back to back, idle tails
    after each batch. Returns the number of GEMVs checked."""
    p = h.p
    n0 = h.checked
    n_small = 2 * p.rows + 1 if p.rows > 1 else 3
    n_big = max_n - 1 if p.rows > 1 and max_n % p.rows == 0 else max_n
    for si in range(len(p.format_sets)):
        gs = []
        for prec in _precisions(p):
            gs.append(random_gemv(p, rng, min(n_small, max_n), max_k, si, prec, "K = max K"))
            gs.append(random_gemv(p, rng, n_big, p.group_size, si, prec, "N = max N"))
            for _ in range(per_precision):
                gs.append(random_gemv(p, rng, rng.randint(1, max_n), _rand_k(p, rng, max_k), si, prec))
            gs.append(every_code_gemv(p, rng, si, prec))
        gs.append(quantized_gemv(p, rng.randrange(1 << 30), min(max_n, n_small), max_k, si))
        if full_size:
            gs.append(random_gemv(p, rng, max_n, max_k, si, 0, "N = max N, K = max K"))
        await h.run(clock, gs, tail=40)
        ext = extreme_gemv(p, si)
        if ext is not None:
            got = await h.run(clock, [ext], tail=20)
            rm = p.set_params[si].row_max
            assert got[0] == [rm, -rm], f"extreme rows: {got[0]} != [{rm}, {-rm}]"
    return h.checked - n0


async def coverage_closure(h: GemvHarness, clock, rng: random.Random, cov, *, max_n: int,
                           max_rounds: int = 40, log=print) -> None:
    """Short GEMVs (1-2 groups, N = max_n: many block boundaries) at every set and precision,
    rotating ordinary stress, a result sink ready 10 % of the time (the engine holds beats: the
    "output" stall bins) and an always-ready sink, until every cross bin is hit."""
    p = h.p

    def batch(rnd):
        return [random_gemv(p, rng, max_n, p.group_size * rng.randint(1, 2), si, prec, "coverage")
                for si in range(len(p.format_sets)) for prec in _precisions(p)]

    await _close_coverage(h, clock, rng, cov, batch, max_rounds, log, "coverage")


async def _close_coverage(h: GemvHarness, clock, rng: random.Random, cov, batch, max_rounds: int,
                          log, label: str) -> None:
    """Run ``batch(round)`` GEMVs with ``cov`` sampling every beat until 100 %, rotating the
    result sink through ordinary stress, ready 10 % of the time (the "output" stall bins) and
    always ready."""
    h.on_beat = cov.on_beat
    base = h.results.stall
    phases = [("stress", base), ("sink 10 % ready", Stalls(rng, 0.9, 0.0, BURST_LEN)),
              ("sink always ready", Stalls(rng, 0.0, 0.0))]
    for rnd in range(max_rounds):
        if cov.percent() >= 100.0:
            break
        name, h.results.stall = phases[rnd % len(phases)]
        await h.run(clock, batch(rnd), tail=10)
        log(f"{label} round {rnd} ({name}): {cov.percent():.1f} % after {h.cycle} cycles")
    h.results.stall = base
    h.on_beat = None


async def cycle_model(h: GemvHarness, clock, rng: random.Random, *, max_k: int, max_n: int,
                      log=print) -> list[dict]:
    """No stalls (GEMVs of random shape up to ``max_n`` x ``max_k``): every GEMV's period
    (descriptor to next descriptor) and its last result are exactly
    golden.cycle_model.gemv_rtl_cycles; returns one record per GEMV."""
    p = h.p
    gs = []
    for si in range(len(p.format_sets)):
        for prec in _precisions(p):
            gs.append(random_gemv(p, rng, rng.randint(1, max_n), _rand_k(p, rng, max_k), si, prec))
    gs.append(random_gemv(p, rng, min(max_n, 2 * p.rows + 1), max_k, 0, 0, "K = max K"))
    checked = await _run_against_model(
        h, clock, gs, lambda g: gemv_rtl_cycles(p.layout, g.fmt_ids, g.fmt_set, g.precision,
                                                latency=p.latency),
        lambda g: f"N={g.n}, K={g.k}, precision {g.precision}")
    return [{"n": g.n, "k": g.k, "set": p.format_sets[g.fmt_set].name, "precision": g.precision,
             "measured_to_last_result": got, **c} for g, c, got in checked]


async def _run_against_model(h: GemvHarness, clock, gs, model, what) -> list[tuple]:
    """Run ``gs`` back to back without stalls; every GEMV's last result (cycles after its cmd)
    and period (cmd to next cmd) must equal ``model(g)``'s ``to_last_result`` / ``period``.
    Returns ``(gemv, model, measured to_last_result)`` per GEMV."""
    log0 = len(h.gemv_log)
    await h.run(clock, gs, tail=10)
    log = h.gemv_log[log0:]
    out = []
    for i, e in enumerate(log):
        g = e["gemv"]
        c = model(g)
        got_last = e["last_result"] - e["cmd"]
        assert got_last == c["to_last_result"], (
            f"GEMV {i} ({what(g)}): last result {got_last} cycles after cmd, model "
            f"{c['to_last_result']}")
        if i + 1 < len(log):
            period = log[i + 1]["cmd"] - e["cmd"]
            assert period == c["period"], (f"GEMV {i} ({what(g)}): period {period} cycles, model "
                                           f"{c['period']}")
        out.append((g, c, got_last))
    return out


async def errors(h: GemvHarness, clock, rng: random.Random) -> None:
    """Each error case flags its status bit and returns the engine to idle without a reset;
    the next GEMV is correct and clears the flags."""
    p = h.p
    k_bad = [0, p.group_size // 2 if p.group_size > 1 else 0, p.max_k + p.group_size]
    cases = [(dict(k=k, n=1), "err_k") for k in k_bad]
    cases += [(dict(k=p.group_size, n=0), "err_n"), (dict(k=p.group_size, n=p.max_n + 1), "err_n"),
              *(() if p.lut else ((dict(k=p.group_size, n=1, path=1), "err_desc"),))]
    nsets = len(p.format_sets)
    if nsets < 1 << p.layout.set_bits:
        cases.append((dict(k=p.group_size, n=1, fmt_set=nsets), "err_desc"))
    for kw, flag in cases:
        h.send_cmd(**kw)
        await h.run_until(clock, lambda h: h.cmd.done)
        await h.step(clock)
        st = h.status()
        assert st[flag] and not st["busy"], (kw, st)
        assert sum(v for k, v in st.items() if k.startswith("err_")) == 1, (kw, st)
        await h.run(clock, [random_gemv(p, rng, p.rows + 1, p.group_size, nsets - 1)])
        assert not any(v for k, v in h.status().items() if k.startswith("err_"))

    # a format id outside the layer's set, in the second row block's first group
    bad_set = next((si for si, fs in enumerate(p.format_sets)
                    if len(fs.formats) < 1 << p.layout.id_bits), None)
    if bad_set is not None:
        g = random_gemv(p, rng, 2 * p.rows, 2 * p.group_size, bad_set)
        h.queue(g)
        beats = list(h.weights.queue)
        i = len(beats) // 2 + 1
        beats[i] |= ((1 << p.layout.id_bits) - 1) << p.layout.weights.offset("fmt")
        h.weights.queue.clear()
        h.weights.queue.extend(beats)
        await h.run_until(clock, lambda h: h.status()["err_format"])
        await _flush_after_error(h, clock, max_results=1)
        await h.run(clock, [random_gemv(p, rng, 3 * p.rows, 2 * p.group_size, bad_set, 1)])

    # abort while computing
    h.queue(random_gemv(p, rng, 4 * p.rows, 2 * p.group_size, 0))
    left = 4 * p.beats_per_group        # abort with about half of the stream consumed
    await h.run_until(clock, lambda h: len(h.weights.transfers) > 0 and len(h.weights.queue) < left)
    await h.abort(clock)
    await h.step(clock)
    assert h.status()["err_abort"], h.status()
    await _flush_after_error(h, clock, max_results=4)
    await h.run(clock, [random_gemv(p, rng, 2 * p.rows + 1, 2 * p.group_size, nsets - 1, 1),
                        random_gemv(p, rng, 1, p.group_size, 0)], tail=20)
    # abort while idle: nothing to flag
    await h.abort(clock)
    await h.step(clock)
    assert not h.status()["err_abort"]


async def _flush_after_error(h: GemvHarness, clock, max_results: int) -> None:
    """The source drops the rest of the failed GEMV; the engine goes idle (``busy`` low once a
    result it had already offered is taken) and no result appears beyond those of row blocks
    finished before the error."""
    h.drop_inputs()
    n0 = len(h.results.items)
    await h.run_until(clock, lambda h: not h.status()["busy"], max_cycles=2000)
    for _ in range(40):
        await h.step(clock)
    assert len(h.results.items) - n0 <= max_results, "results after an error/abort"
    assert not h.status()["busy"]
    h.results.items.clear()
    h.results.transfers.clear()


# ---------------------------------------------------------------- the LUT path (cmd.path = 1)

LUT_LAYOUTS = ("row", "block")
#: block-layout scale groups: G/8 = 4 rows x 8 columns
BLOCK_G = 32


def lut_qp(p) -> list[tuple[int, int]]:
    """(stored planes q, precision p) pairs: q = 2, 3, 4 up to the compiled maximum; every p."""
    return [(q, pr) for q in range(2, min(4, p.lut.max_planes) + 1) for pr in range(1, q + 1)]


def _lut_shape(p, rng: random.Random, layout: str, max_k: int, max_n: int, n: int | None = None,
               k: int | None = None):
    step = max(p.group_size, p.lanes)
    k = k or step * rng.randint(1, max(1, max_k // step))
    if layout == "row":
        g = rng.choice([x for x in (8, 16, 32, 64, 128) if k % x == 0])
        n = n or rng.randint(1, max_n)
    else:
        g = BLOCK_G
        rs = g // 8
        n = max(rs, (n or rng.randint(rs, max_n)) // rs * rs)
    return n, k, g


def _lut_gemv(p, rng: random.Random, q: int, layout: str, n: int, k: int, g: int, prec: int,
              kind: str = "random"):
    from verif import lut_stimulus as ls

    if kind == "quantized":
        return ls.quantized_gemv(p.lut, rng.randrange(1 << 30), q, layout, n, k, g, prec)
    if kind == "span":
        return ls.span_gemv(p.lut, rng, q, layout, n, k, g, prec)
    return ls.random_gemv(p.lut, rng, q, layout, n, k, g, prec, kind)


async def lut_bit_exact(h: GemvHarness, clock, rng: random.Random, *, max_k: int, max_n: int) -> int:
    """Path 1 for both layouts, q = 2..4 at every precision (random, quantized, activation
    patterns), the largest exponent span, K = ``max_k`` and K = the engine's max K; back to
    back with an idle tail."""
    from verif.lut_stimulus import ACT_PATTERNS

    p = h.p
    n0 = h.checked
    for layout in LUT_LAYOUTS:
        gs = []
        for q, prec in lut_qp(p):
            n, k, g = _lut_shape(p, rng, layout, max_k, max_n)
            gs.append(_lut_gemv(p, rng, q, layout, n, k, g, prec, rng.choice(ACT_PATTERNS)))
            n, k, g = _lut_shape(p, rng, layout, max_k, max_n)
            gs.append(_lut_gemv(p, rng, q, layout, n, k, g, 0 if prec == q else prec, "quantized"))
        n, k, g = _lut_shape(p, rng, layout, max_k, max_n, k=max_k)
        gs.append(_lut_gemv(p, rng, 3, layout, n, k, g, 0, "span"))
        # K = the engine's maximum (one row block)
        n, k, g = _lut_shape(p, rng, layout, p.max_k, p.rows, n=p.rows, k=p.max_k)
        gs.append(_lut_gemv(p, rng, 2, layout, n, k, g, 0, "min"))
        for pat in ("min", "max", "alternating"):
            n, k, g = _lut_shape(p, rng, layout, max_k, max_n)
            gs.append(_lut_gemv(p, rng, 2, layout, n, k, g, 0, pat))
        await h.run(clock, gs, tail=40)
    return h.checked - n0


async def lut_coverage_closure(h: GemvHarness, clock, rng: random.Random, cov, *, max_k: int,
                               max_n: int, max_rounds: int = 30, log=print) -> None:
    """Path-1 GEMVs at every layout and (q, p), with the stall phases of
    :func:`coverage_closure`, until every cross bin is hit."""
    p = h.p

    def batch(rnd):
        gs = []
        for layout in LUT_LAYOUTS:
            for q, prec in lut_qp(p):
                if not cov.missing_for(layout, q, prec) and rnd:
                    continue
                # K = max K: the most words per row, so the most "in group" words
                n, k, g = _lut_shape(p, rng, layout, max_k, max_n, k=max_k)
                gs.append(_lut_gemv(p, rng, q, layout, n, k, g, 0 if prec == q else prec))
        return gs

    await _close_coverage(h, clock, rng, cov, batch, max_rounds, log, "LUT coverage")


async def mixed_paths(h: GemvHarness, clock, rng: random.Random, *, max_k: int, max_n: int) -> int:
    """Path-0 and path-1 GEMVs interleaved back to back (each switch waits for the drain);
    results in order and bit-exact."""
    p = h.p
    gs = []
    for i in range(6):
        if i % 2 == 0:
            gs.append(random_gemv(p, rng, rng.randint(1, max_n), _rand_k(p, rng, max_k),
                                  rng.randrange(len(p.format_sets)), rng.randint(0, p.max_terms),
                                  "mixed"))
        else:
            layout = rng.choice(LUT_LAYOUTS)
            q, prec = rng.choice(lut_qp(p))
            n, k, g = _lut_shape(p, rng, layout, max_k, max_n)
            gs.append(_lut_gemv(p, rng, q, layout, n, k, g, prec))
    # two path-1 GEMVs of one row block: the switch back waits for their single results
    n, k, g = _lut_shape(p, rng, "row", p.lanes, 1, n=1, k=max(p.group_size, p.lanes))
    gs += [_lut_gemv(p, rng, 2, "row", n, k, g, 1), random_gemv(p, rng, 1, p.group_size, 0, 1)]
    await h.run(clock, gs, tail=40)
    return len(gs)


async def lut_cycle_model(h: GemvHarness, clock, rng: random.Random, *, max_k: int, max_n: int,
                          log=print) -> list[dict]:
    """No stalls, path-1 GEMVs back to back: every period and last result exactly
    golden.cycle_model.gemv_lut_rtl_cycles."""
    from golden.cycle_model import gemv_lut_rtl_cycles

    p = h.p
    gs = []
    for layout in LUT_LAYOUTS:
        for q, prec in lut_qp(p):
            n, k, g = _lut_shape(p, rng, layout, max_k, max_n)
            gs.append(_lut_gemv(p, rng, q, layout, n, k, g, 0 if prec == q else prec))
    checked = await _run_against_model(
        h, clock, gs, lambda g: gemv_lut_rtl_cycles(p.layout, g.n, g.k, g.planes,
                                                    latency=p.lut_latency),
        lambda g: f"LUT path {g.note}, N={g.n}, K={g.k}, p={g.planes}")
    return [{"n": g.n, "k": g.k, "planes": g.planes, "measured_to_last_result": got, **c}
            for g, c, got in checked]


async def lut_errors(h: GemvHarness, clock, rng: random.Random) -> None:
    """Path 1: a plane count of 0 or above the compiled maximum sets ``err_desc``; an abort in
    the middle of a path-1 GEMV sets ``err_abort``; the engine returns to idle without a reset
    and the next GEMVs (both paths) are correct."""
    p = h.p
    step = max(p.group_size, p.lanes)
    for planes in (0, p.lut.max_planes + 1):
        if planes >= 1 << p.layout.plane_bits:
            continue
        h.send_cmd(k=step, n=1, path=1, planes=planes)
        await h.run_until(clock, lambda h: h.cmd.done)
        await h.step(clock)
        st = h.status()
        assert st["err_desc"] and not st["busy"], (planes, st)
        n, k, g = _lut_shape(p, rng, "row", step, p.rows + 1)
        await h.run(clock, [_lut_gemv(p, rng, 2, "row", n, k, g, 0)])
    n, k, g = _lut_shape(p, rng, "row", step, 4 * p.rows, n=4 * p.rows, k=step)
    h.queue(_lut_gemv(p, rng, 4 if p.lut.max_planes >= 4 else p.lut.max_planes, "row", n, k, g, 0))
    half = len(h.weights.queue) // 2
    await h.run_until(clock, lambda h: len(h.weights.transfers) > 0 and len(h.weights.queue) < half)
    await h.abort(clock)
    await h.step(clock)
    assert h.status()["err_abort"], h.status()
    await _flush_after_error(h, clock, max_results=4)
    n, k, g = _lut_shape(p, rng, "block", step, max(8, 2 * p.rows))
    await h.run(clock, [_lut_gemv(p, rng, 2, "block", n, k, g, 1),
                        random_gemv(p, rng, p.rows + 1, p.group_size, 0)], tail=20)
