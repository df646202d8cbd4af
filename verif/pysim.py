"""Run :class:`verif.harness.DotHarness` under Amaranth's Python simulator (fast unit tests)."""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from hw.dot_unit import DotProductUnit
from hw.elaborate import port_list
from hw.params import DotParams
from verif.harness import DotHarness

__all__ = ["PysimIO", "run_pysim"]


class PysimIO:
    def __init__(self, dut, ctx):
        self.ctx = ctx
        self.sigs = {}
        for path, _member, value in dut.signature.flatten(dut):
            v = value.as_value() if hasattr(value, "as_value") else value
            self.sigs["__".join(str(x) for x in path)] = v

    def set(self, name, value):
        self.ctx.set(self.sigs[name], value)

    def get(self, name):
        v = self.ctx.get(self.sigs[name])
        return v & ((1 << len(self.sigs[name])) - 1)      # raw bits, like a Verilog port


class _PysimClock:
    def __init__(self, ctx):
        self.ctx, self.started = ctx, False

    async def edge(self):
        if self.started:
            await self.ctx.tick()
        self.started = True

    async def settle(self):
        return None


def run_pysim(p: DotParams, batches, *, seed: int = 0, idle: float = 0.0,
              backpressure: float = 0.0, vcd: str | None = None) -> DotHarness:
    """Simulate ``batches`` (lists of rows sharing max_terms); raise on any mismatch."""
    dut = DotProductUnit.from_params(p)
    ports = port_list(dut)
    box = {}

    async def bench(ctx):
        h = DotHarness(p, PysimIO(dut, ctx), ports, random.Random(seed), idle, backpressure)
        box["h"] = h
        h.idle_inputs()
        clock = _PysimClock(ctx)
        for rows in batches:
            await h.run(clock, rows)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return box["h"]
