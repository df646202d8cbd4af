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
from verif.pysim import run_harness
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
    async def script(h, clock):
        for rows in batches:
            await h.run(clock, rows)
        await h.idle_tail(clock, 16)

    return run_harness(DotProductUnit(p),
                       lambda io: DotHarness(p, io, random.Random(seed), idle, backpressure),
                       script, vcd=vcd)
