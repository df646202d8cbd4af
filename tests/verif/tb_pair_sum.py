"""cocotb test of tests/verif/pair_sum.py, using the project's generic stream drivers."""

import random

import cocotb

from verif.stream import CocotbIO, StreamSink, StreamSource
from verif.tb_util import CocotbClock, start_and_reset, tb_config


@cocotb.test()
async def pair_sums(dut):
    cfg = tb_config()
    rng = random.Random(cfg["seed"])
    width = cfg["width"]
    io = CocotbIO(dut)
    src = StreamSource(io, "inp", width, rng, idle=0.3, burst=0.05)
    sink = StreamSink(io, "out", width + 1, rng, backpressure=0.3, signed=True, burst=0.05)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    values = [rng.choice((lo, hi, rng.randint(lo, hi))) for _ in range(2 * cfg["pairs"])]
    for v in values:
        src.push(v & ((1 << width) - 1))
    io.set("inp__valid", 0)
    io.set("out__ready", 0)
    await start_and_reset(dut)
    clock = CocotbClock(dut)
    for cycle in range(100 * len(values)):
        await clock.edge()
        for e in (src, sink):
            e.drive(cycle)
        await clock.settle()
        for e in (src, sink):
            e.sample(cycle)
        if len(sink.items) == cfg["pairs"] and src.done:
            break
    assert sink.items == [a + b for a, b in zip(values[::2], values[1::2])]
