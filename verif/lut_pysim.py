"""Run :class:`verif.lut_harness.LutHarness` under Amaranth's Python simulator (fast unit tests)."""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from hw.lut_params import LutParams
from hw.lut_unit import LutUnit
from verif.lut_harness import LutHarness
from verif.pysim import PysimClock, PysimIO

__all__ = ["run_lut_pysim"]


def run_lut_pysim(p: LutParams, script, *, seed: int = 0, idle: float = 0.0,
                  backpressure: float = 0.0, burst: float = 0.0) -> LutHarness:
    """Simulate; ``script(h, clock)`` is an async function driving the harness."""
    dut = LutUnit(p)
    box = {}

    async def bench(ctx):
        h = LutHarness(p, PysimIO(dut, ctx), random.Random(seed), idle, backpressure, burst)
        box["h"] = h
        h.idle_inputs()
        await script(h, PysimClock(ctx))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return box["h"]
