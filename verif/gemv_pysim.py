"""Run :class:`verif.gemv_harness.GemvHarness` under Amaranth's Python simulator (fast unit tests)."""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from hw.gemv import GemvEngine
from hw.gemv_params import GemvParams
from verif.gemv_harness import GemvHarness
from verif.pysim import PysimClock, PysimIO

__all__ = ["run_gemv_pysim"]


def run_gemv_pysim(p: GemvParams, script, *, seed: int = 0, idle: float = 0.0,
                   backpressure: float = 0.0, burst: float = 0.0, vcd: str | None = None) -> GemvHarness:
    """Simulate; ``script(h, clock)`` is an async function driving the harness."""
    dut = GemvEngine(p)
    box = {}

    async def bench(ctx):
        h = GemvHarness(p, PysimIO(dut, ctx), random.Random(seed), idle, backpressure, burst)
        box["h"] = h
        h.idle_inputs()
        await script(h, PysimClock(ctx))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return box["h"]
