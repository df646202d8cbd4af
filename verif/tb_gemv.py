"""cocotb tests of the GEMV engine (run by :func:`verif.gemv.run_gemv` under Verilator).

Parameters, seed and stall settings come from :func:`verif.tb_util.tb_config`. The scenarios
are those of :mod:`verif.gemv_scenarios` (also run under Amaranth's simulator); every result is
compared bit-exactly with ``golden.intref.row_results`` (path 0) or ``golden.bcq``'s integer
path (path 1, the ``lut_*`` tests, run only on engines with a LUT path: :data:`verif.gemv.LUT_TESTS`),
every run ends with an idle tail.
"""

from __future__ import annotations

import json
import random

import cocotb
from cocotb.triggers import FallingEdge

from hw.gemv_params import GemvParams
from verif import gemv_scenarios as sc
from verif.gemv_harness import GemvHarness
from verif.stream import CocotbIO
from verif.tb_util import CocotbClock, start_and_reset, tb_config


async def _setup(dut, test: str, *, stress: bool = True):
    cfg = tb_config()
    p = GemvParams.from_dict(cfg["params"])       # also checks the format-set hashes
    seed = f"{cfg['seed']}:{test}"
    dut._log.info("seed %s (BITMIX_SEED=%s), params %s", seed, cfg["seed"], p.tag)
    rng = random.Random(seed)
    h = GemvHarness(p, CocotbIO(dut), rng, idle=cfg["idle"] if stress else 0.0,
                    backpressure=cfg["backpressure"] if stress else 0.0,
                    burst=cfg["burst"] if stress else 0.0, log=dut._log.info)
    h.idle_inputs()
    await start_and_reset(dut)
    return p, h, rng, cfg


@cocotb.test()
async def readies_low_in_reset(dut):
    """With every input valid, no ready is high and no result valid while ``rst`` is high."""
    from cocotb.clock import Clock

    from verif.tb_util import PERIOD_NS

    for n in ("cmd", "acts", "weights"):
        getattr(dut, f"{n}__valid").value = 1
    dut.results__ready.value = 1
    dut.precision.value = 0
    dut.abort_req.value = 0
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(4):
        await FallingEdge(dut.clk)
        for n in ("cmd", "acts", "weights"):
            assert int(getattr(dut, f"{n}__ready").value) == 0, f"{n}__ready high during reset"
        assert int(dut.results__valid.value) == 0
    dut.rst.value = 0
    for n in ("cmd", "acts", "weights"):
        getattr(dut, f"{n}__valid").value = 0


@cocotb.test()
async def bit_exact(dut):
    """Every compiled set at every precision (K = max K, N = max N with N mod R != 0, every code,
    quantized, accumulator extremes), with i.i.d. and burst stalls and idle tails."""
    p, h, rng, cfg = await _setup(dut, "bit_exact")
    n = await sc.bit_exact(h, CocotbClock(dut), rng, max_k=cfg["max_k"], max_n=cfg["max_n"],
                           per_precision=cfg["per_precision"], full_size=cfg["full_size"])
    dut._log.info("checked %d GEMVs bit-exactly in %d cycles", n, h.cycle)


@cocotb.test()
async def coverage(dut):
    """Functional coverage format x precision x position in group x stall x row-block boundary:
    100 % of the cross bins, printed."""
    from verif.gemv_coverage import GemvCoverage

    p, h, rng, cfg = await _setup(dut, "coverage")
    cov = GemvCoverage(p)
    await sc.coverage_closure(h, CocotbClock(dut), rng, cov, max_n=min(cfg["max_n"], 16 * p.rows),
                              log=dut._log.info)
    cov.report(dut._log.info)
    assert cov.percent() == 100.0, f"coverage {cov.percent():.1f} %, missing e.g. {cov.missing(5)}"


@cocotb.test()
async def cycle_model(dut):
    """No stalls: each GEMV's period and last result exactly as golden.cycle_model.gemv_rtl_cycles."""
    p, h, rng, cfg = await _setup(dut, "cycle_model", stress=False)
    rec = await sc.cycle_model(h, CocotbClock(dut), rng, max_k=cfg["max_k"],
                               max_n=min(cfg["max_n"], 8 * p.rows), log=dut._log.info)
    dut._log.info("cycle model exact on %d GEMVs: %s", len(rec),
                  json.dumps([{k: r[k] for k in ("n", "k", "precision", "period")} for r in rec]))


@cocotb.test()
async def errors(dut):
    """Bad descriptors, a bad format id and an abort each flag status and return to idle; the
    next GEMV is correct without a reset."""
    p, h, rng, cfg = await _setup(dut, "errors")
    await sc.errors(h, CocotbClock(dut), rng)


# ------------------------------------------------------------ the LUT path (cmd.path = 1)

def _lut_bounds(p, cfg) -> tuple[int, int]:
    return min(cfg["lut_max_k"], p.max_k), min(cfg["lut_max_n"], p.max_n)


@cocotb.test()
async def lut_bit_exact(dut):
    """Path 1: row and block layouts, q = 2..4 at every precision, activation edge cases, the
    largest exponent span, K = max K; then path-0 and path-1 GEMVs interleaved; i.i.d. and
    burst stalls, idle tails."""
    p, h, rng, cfg = await _setup(dut, "lut_bit_exact")
    mk, mn = _lut_bounds(p, cfg)
    n = await sc.lut_bit_exact(h, CocotbClock(dut), rng, max_k=mk, max_n=mn)
    n += await sc.mixed_paths(h, CocotbClock(dut), rng, max_k=mk, max_n=mn)
    dut._log.info("checked %d GEMVs bit-exactly in %d cycles", n, h.cycle)


@cocotb.test()
async def lut_coverage(dut):
    """Path 1 functional coverage: layout x (q, p) x word position x stall, both table halves:
    100 %, printed."""
    from verif.gemv_coverage import LutCoverage

    p, h, rng, cfg = await _setup(dut, "lut_coverage")
    mk, mn = _lut_bounds(p, cfg)
    cov = LutCoverage(sc.lut_qp(p))
    await sc.lut_coverage_closure(h, CocotbClock(dut), rng, cov, max_k=mk, max_n=mn,
                                  log=dut._log.info)
    cov.report(dut._log.info)
    assert cov.percent() == 100.0, f"coverage {cov.percent():.1f} %, missing e.g. {cov.missing(5)}"


@cocotb.test()
async def lut_cycle_model(dut):
    """No stalls: each path-1 GEMV's period and last result exactly as
    golden.cycle_model.gemv_lut_rtl_cycles."""
    p, h, rng, cfg = await _setup(dut, "lut_cycle_model", stress=False)
    mk, mn = _lut_bounds(p, cfg)
    rec = await sc.lut_cycle_model(h, CocotbClock(dut), rng, max_k=mk, max_n=mn, log=dut._log.info)
    dut._log.info("LUT cycle model exact on %d GEMVs", len(rec))


@cocotb.test()
async def lut_errors(dut):
    """Path 1: bad plane counts and an abort flag status and return to idle without a reset."""
    p, h, rng, cfg = await _setup(dut, "lut_errors")
    await sc.lut_errors(h, CocotbClock(dut), rng)


@cocotb.test()
async def lut_checkpoint_layer(dut):
    """A layer of a `bitmix quantize --method bcq/shiftadd` checkpoint (``cfg["lut_layer"]``,
    saved by the test) at every precision through path 1, with stalls."""
    import torch

    from golden.bcq import BCQWeight
    from verif.lut_stimulus import LutGemv, act_pattern

    p, h, rng, cfg = await _setup(dut, "lut_checkpoint_layer")
    d = torch.load(cfg["lut_layer"])
    bw = BCQWeight(d["planes"], d["exps"], d["signs"], d["layout"], d["group_size"])
    gs = [LutGemv(bw, act_pattern(p.lut, rng, bw.shape[1]), prec, f"{d['name']} p={prec}")
          for prec in range(1, bw.bits + 1)]
    await h.run(CocotbClock(dut), gs, tail=40)
    dut._log.info("%s (%s, q=%d): bit-exact at every precision", d["name"], bw.layout, bw.bits)
