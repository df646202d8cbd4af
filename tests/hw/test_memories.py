"""hw.memories.BeatMemory (block RAM and the SPRAM model) against a Python model, in Amaranth's
simulator: byte-masked writes, beat reads one cycle later, rdata held between reads."""

import random

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from bitmix.errors import BitmixError
from hw.memories import SPRAM_DEPTH, BeatMemory


@pytest.mark.parametrize("kind, nbytes", [("bram", 7), ("spram", 7), ("spram", 8), ("spram", 1)])
def test_beat_memory_matches_model(kind, nbytes):
    depth = 40
    dut = BeatMemory(depth, nbytes, kind)
    rng = random.Random(f"{kind}{nbytes}")
    model = [0] * depth
    checked = []

    async def bench(ctx):
        last = None                              # beat of the last read
        for _ in range(600):
            op = rng.random()
            addr = rng.randrange(depth)
            mask = rng.getrandbits(nbytes) if op < 0.4 else 0
            re = int(0.4 <= op < 0.8)
            wdata = rng.getrandbits(8 * nbytes)
            ctx.set(dut.addr, addr)
            ctx.set(dut.re, re)
            ctx.set(dut.we, mask)
            ctx.set(dut.wdata, wdata)
            await ctx.tick()
            if re:
                last = model[addr]
                assert ctx.get(dut.rdata) == last
                checked.append(addr)
            elif last is not None:
                assert ctx.get(dut.rdata) == last, "rdata changed without a read"
            for b in range(nbytes):
                if mask >> b & 1:
                    sel = 0xFF << 8 * b
                    model[addr] = (model[addr] & ~sel) | (wdata & sel)
        ctx.set(dut.re, 0)
        ctx.set(dut.we, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) > 150


def test_spram_primitive_instances():
    text = rtlil.convert(BeatMemory(1024, 7, "spram", primitive=True))
    assert text.count("SB_SPRAM256KA") == 4                   # 56 bits -> 4 x 16-bit columns


def test_bad_memory_parameters():
    with pytest.raises(BitmixError, match="kind"):
        BeatMemory(16, 4, "dram")
    with pytest.raises(BitmixError, match="exceeds"):
        BeatMemory(SPRAM_DEPTH + 1, 4, "spram")
    with pytest.raises(BitmixError, match="primitive"):
        BeatMemory(16, 4, "bram", primitive=True)


def test_external_region_is_an_instance_without_initialiser():
    """``external=True``: the virtual board's model-sized region is an instance of the Verilog
    model (verif/sim_board/beat_memory.v; tests/verif/test_sim_board.py runs it), with no memory
    and so no initialiser to elaborate, whatever its depth."""
    text = rtlil.convert(BeatMemory(1 << 21, 42, external=True))
    assert "cell \\bitmix_beat_memory" in text and "meminit" not in text and "memwr" not in text
    assert "parameter \\DEPTH 2097152" in text and "parameter \\NBYTES 42" in text
    with pytest.raises(BitmixError, match="external=True needs kind='bram'"):
        BeatMemory(16, 4, "spram", external=True)
