"""cocotb tests of the dot-product unit (run by verif.runner under Verilator).

The parameter set, seed and stream randomisation come from the JSON file named by
``BITMIX_TB_CONFIG`` (written by :func:`verif.dot_unit.run_dot_unit`). Every result is compared
bit-exactly with ``golden.intref.row_results``, and every test ends with an idle tail in which
no result may appear.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from hw.params import DotParams
from verif.harness import DotHarness
from verif.stimulus import (
    exhaustive_rows,
    extreme_rows,
    quantized_rows,
    random_rows,
    row_cycles,
    special_rows,
)
from verif.stream import CocotbIO
from verif.tb_util import PERIOD_NS, CocotbClock, tb_config


async def _setup(dut, test: str, *, stress: bool = True, burst: float = 0.0):
    cfg = tb_config()
    p = DotParams.from_dict(cfg["params"])      # also checks the format-set hash
    seed = f"{cfg['seed']}:{test}"
    dut._log.info("seed %s (BITMIX_SEED=%s), params %s", seed, cfg["seed"], p.tag)
    rng = random.Random(seed)
    h = DotHarness(p, CocotbIO(dut), rng, idle=cfg["idle"] if stress else 0.0,
                   backpressure=cfg["backpressure"] if stress else 0.0, burst=burst)
    h.corrupt_first = bool(cfg.get("inject_mismatch"))
    h.idle_inputs()
    await _no_ready_in_reset(dut, rng)
    return p, h, rng, cfg


async def _no_ready_in_reset(dut, rng):
    """Reset with both inputs valid (garbage payloads): no `ready` may be seen, so a source
    cannot believe a beat was taken while the unit was in reset."""
    dut.weights__valid.value = 1
    dut.groups__valid.value = 1
    dut.weights__payload.value = rng.getrandbits(len(dut.weights__payload))
    dut.groups__payload.value = rng.getrandbits(len(dut.groups__payload))
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(3):
        await FallingEdge(dut.clk)
        for sig in (dut.weights__ready, dut.groups__ready):
            assert int(sig.value) == 0, f"{sig._name} high during reset"
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    dut.weights__valid.value = 0
    dut.groups__valid.value = 0


def _precisions(p: DotParams) -> list[int]:
    return [0, *range(1, p.max_terms + 1)]


@cocotb.test()
async def every_code(dut):
    """Every code of every format (specials included), at every precision, acts random/min/max."""
    p, h, rng, _ = await _setup(dut, "every_code")
    clock = CocotbClock(dut)
    for mt in _precisions(p):
        await h.run(clock, exhaustive_rows(p, rng, mt))
    await h.idle_tail(clock)
    dut._log.info("checked %d rows in %d cycles", h.checked, h.cycle)


@cocotb.test()
async def specials_and_extremes(dut):
    """u = 0/1/max, all-zero groups/rows, and rows that reach +-row_max (accumulator bound)."""
    p, h, rng, _ = await _setup(dut, "specials_and_extremes")
    clock = CocotbClock(dut)
    for mt in _precisions(p):
        await h.run(clock, special_rows(p, rng, mt))
    for row in extreme_rows(p):
        got = await h.run(clock, [row])
        assert abs(got[0]) == p.row_max, f"{row.note}: {got[0]} != +-{p.row_max}"
    await h.idle_tail(clock)
    dut._log.info("checked %d rows in %d cycles", h.checked, h.cycle)


@cocotb.test()
async def quantized_and_random(dut):
    """Rows from golden.quant.quantize_rtn (1 group and max_groups) and random rows, back to back."""
    p, h, rng, cfg = await _setup(dut, "quantized_and_random")
    clock = CocotbClock(dut)
    n = cfg.get("rows", 6)
    seed = rng.randrange(1 << 30)
    await h.run(clock, quantized_rows(p, seed, n, 1))
    await h.run(clock, quantized_rows(p, seed + 1, n, p.max_groups))
    await h.run(clock, quantized_rows(p, seed + 2, max(2, n // 2), p.max_groups, precision=1))
    await h.run(clock, random_rows(p, rng, n))
    await h.idle_tail(clock)
    dut._log.info("checked %d rows in %d cycles", h.checked, h.cycle)


@cocotb.test()
async def bursty_stalls(dut):
    """Long stall bursts (8-64 cycles) on every input and the result, on top of i.i.d. stalls:
    a stage that misses the stall loses data only when a stall outlasts the pipeline."""
    p, h, rng, cfg = await _setup(dut, "bursty_stalls", burst=0.05)
    clock = CocotbClock(dut)
    for mt in _precisions(p):
        await h.run(clock, random_rows(p, rng, max(2, cfg.get("rows", 6) // 2), mt))
    await h.idle_tail(clock)
    dut._log.info("checked %d rows in %d cycles", h.checked, h.cycle)


@cocotb.test()
async def cycle_accounting(dut):
    """No idle/backpressure: group = T_f * G/L cycles, no bubbles, dequant adds no cycles."""
    p, h, rng, _ = await _setup(dut, "cycle_accounting", stress=False)
    clock = CocotbClock(dut)
    for mt in _precisions(p):
        rows = []
        for ng in sorted({1, 2, p.max_groups}):
            rows += random_rows(p, rng, 2, mt, ngroups=ng)
        # every format as the row's only group, so each format's cost is measured on its own
        for f in range(p.n_formats):
            r = random_rows(p, rng, 1, mt, ngroups=1)[0]
            r.fmt_ids = [f]
            rows.append(r)
        w0 = len(h.weights.first_valid)
        r0 = len(h.result.first_valid)
        await h.run(clock, rows)
        start = h.weights.first_valid[w0]
        res = h.result.first_valid[r0:]
        model = [row_cycles(p, r) for r in rows]
        assert res[0] - start == model[0] + p.latency_constant, (
            f"precision {mt}: first result after {res[0] - start} cycles, model "
            f"{model[0]} + {p.latency_constant}")
        gaps = [b - a for a, b in zip(res, res[1:])]
        assert gaps == model[1:], f"precision {mt}: result spacing {gaps} != model {model[1:]}"
        busy = h.weights.transfers[-1] - start + 1
        assert busy == sum(model), f"precision {mt}: {busy} compute cycles != model {sum(model)}"
        dut._log.info("precision %d: %d rows, %d cycles = model, latency constant %d",
                      mt, len(rows), busy, p.latency_constant)
