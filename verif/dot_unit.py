"""Run the dot-product unit's checks on either simulator.

* :func:`run_dot_unit`: the cocotb module :mod:`verif.tb_dot_unit` under Verilator, through the
  generic :func:`verif.runner.run_cocotb`.
* :func:`run_pysim`: :class:`verif.harness.DotHarness` under Amaranth's simulator.
"""

from __future__ import annotations

import random

from bitmix.designs import dot_unit_info
from hw.dot_unit import DotProductUnit
from hw.params import DotParams
from verif.harness import DotHarness
from verif.pysim import PysimClock, PysimIO
from verif.runner import SimResult, run_cocotb

__all__ = ["run_dot_unit", "run_pysim", "TOP", "TEST_MODULE"]

TOP = "dot_unit"
TEST_MODULE = "verif.tb_dot_unit"


def run_dot_unit(p: DotParams, *, testcase: str | list[str] | None = None, seed: int | None = None,
                 idle: float = 0.3, backpressure: float = 0.3, rows: int = 10,
                 inject_mismatch: bool = False) -> SimResult:
    """Run the cocotb tests for ``p``; raise :class:`verif.runner.SimFailure` on failure.

    ``idle``/``backpressure``: probability that a source idles / the result sink stalls in a
    cycle (the tests add bursts of their own). ``inject_mismatch`` corrupts one expected value
    (self-test of the failure path)."""
    return run_cocotb(DotProductUnit(p), name=TOP, tag=p.tag, test_module=TEST_MODULE,
                      testcase=testcase, seed=seed, info=dot_unit_info(p),
                      config={"params": p.describe(), "idle": idle, "backpressure": backpressure,
                              "rows": rows, "inject_mismatch": inject_mismatch})


def run_pysim(p: DotParams, batches, *, seed: int = 0, idle: float = 0.0,
              backpressure: float = 0.0, vcd: str | None = None) -> DotHarness:
    """Simulate ``batches`` (lists of rows sharing a precision); raise on any mismatch."""
    from amaranth.sim import Simulator

    dut = DotProductUnit(p)
    box = {}

    async def bench(ctx):
        h = DotHarness(p, PysimIO(dut, ctx), random.Random(seed), idle, backpressure)
        box["h"] = h
        h.idle_inputs()
        clock = PysimClock(ctx)
        for rows in batches:
            await h.run(clock, rows)
        await h.idle_tail(clock, 16)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return box["h"]
