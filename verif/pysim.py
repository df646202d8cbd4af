"""Amaranth's Python simulator behind the same I/O and clock protocol as cocotb (fast unit tests).

:class:`PysimIO` reads and writes a component's ports by their Verilog names
(``weights__payload``), so :mod:`verif.stream` drivers and the harnesses run unchanged on
either simulator.
"""

from __future__ import annotations

from bitmix.elaborate import port_name

__all__ = ["PysimIO", "PysimClock", "run_harness"]


class PysimIO:
    def __init__(self, dut, ctx):
        self.ctx = ctx
        self.sigs = {}
        for path, _member, value in dut.signature.flatten(dut):
            v = value.as_value() if hasattr(value, "as_value") else value
            self.sigs[port_name(path)] = v

    def set(self, name, value):
        self.ctx.set(self.sigs[name], value)

    def get(self, name):
        v = self.ctx.get(self.sigs[name])
        return v & ((1 << len(self.sigs[name])) - 1)      # raw bits, like a Verilog port


class PysimClock:
    """``edge()`` advances one clock (not before the first cycle); ``settle()`` is a no-op
    because Amaranth's testbench ``ctx.get`` already sees settled combinational values."""

    def __init__(self, ctx):
        self.ctx, self.started = ctx, False

    async def edge(self):
        if self.started:
            await self.ctx.tick()
        self.started = True

    async def settle(self):
        return None


def run_harness(dut, make_harness, script, *, vcd: str | None = None):
    """Simulate ``dut`` with one testbench: ``make_harness(io)`` builds the harness on a
    :class:`PysimIO`, its inputs are idled, then ``await script(h, clock)`` drives it.
    Returns the harness (its counters and received items)."""
    from amaranth.sim import Simulator

    box = {}

    async def bench(ctx):
        h = box["h"] = make_harness(PysimIO(dut, ctx))
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
