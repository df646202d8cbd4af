"""BitSerialPE alone (Amaranth simulator): group partial sums = golden.intref.group_partial_sums,
one term per weight per cycle, correct under idle inputs and a stalling consumer.

Streams are driven with Amaranth's async testbench helpers and struct views (no hand-written
field offsets): a source sets ``payload``/``valid`` and waits ``ctx.tick().until(ready)``; the
sink samples ``payload``/``valid``/``ready`` at each clock edge.
"""

import random

import pytest
import torch
from amaranth.sim import Simulator

from golden import intref
from hw.params import DotParams
from hw.pe import BitSerialPE
from verif.stimulus import random_rows


@pytest.mark.parametrize("fs,idle,bp", [("bitmod4", 0.0, 0.0), ("ant3", 0.4, 0.5), ("int3", 0.2, 0.7)])
def test_pe_group_partial_sums(fs, idle, bp):
    p = DotParams.make(lanes=4, group_size=8, act_bits=8, scale_bits=8, format_set=fs, max_groups=3)
    rng = random.Random(42)
    rows = random_rows(p, rng, 5)
    pe = BitSerialPE(p)
    want = []
    for r in rows:
        ps = intref.group_partial_sums(torch.tensor([r.codes]), torch.tensor([r.fmt_ids]),
                                       torch.tensor(r.x), p.fs, p.group_size)[0].tolist()
        want += [(s, u, int(g == len(r.u) - 1)) for g, (s, u) in enumerate(zip(ps, r.u))]
    beats = [{"codes": r.codes[s:s + p.lanes], "acts": r.x[s:s + p.lanes]}
             for r in rows for s in range(0, len(r.codes), p.lanes)]
    groups = [{"fmt_id": f, "u": u, "last": int(g == len(r.u) - 1)}
              for r in rows for g, (f, u) in enumerate(zip(r.fmt_ids, r.u))]
    got, weight_transfers = [], []

    async def feed(ctx, stream, payloads, log):
        """Offer each payload (after random idle cycles) until taken; log the transfer cycles."""
        src_rng = random.Random(rng.random())
        cycle = 0
        for pl in payloads:
            while idle and src_rng.random() < idle:
                ctx.set(stream.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(stream.payload, pl)
            ctx.set(stream.valid, 1)
            while True:
                _clk, _rst, ready = await ctx.tick().sample(stream.ready)
                cycle += 1
                if ready:
                    break
            log.append(cycle - 1)
        ctx.set(stream.valid, 0)

    async def weights_tb(ctx):
        await feed(ctx, pe.weights, beats, weight_transfers)

    async def groups_tb(ctx):
        await feed(ctx, pe.groups, groups, [])

    async def sink_tb(ctx):
        ctx.set(pe.precision, 0)
        sink_rng = random.Random(7)
        for _ in range(5000):
            if len(got) == len(want):
                break
            ctx.set(pe.psums.ready, not (bp and sink_rng.random() < bp))
            _clk, _rst, payload, valid, ready = await ctx.tick().sample(
                pe.psums.payload, pe.psums.valid, pe.psums.ready)
            if valid and ready:
                got.append((payload.psum, payload.u, payload.last))
        assert len(got) == len(want), f"{len(got)} of {len(want)} partial sums in 5000 cycles"
        for _ in range(20):                   # idle tail: nothing more comes out
            ctx.set(pe.psums.ready, 1)
            _clk, _rst, valid = await ctx.tick().sample(pe.psums.valid)
            assert not valid

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(weights_tb)
    sim.add_testbench(groups_tb)
    sim.add_testbench(sink_tb)
    sim.run()
    assert got == want
    if idle == 0 and bp == 0:      # one term per weight per cycle, no bubbles
        model = sum(p.group_cycles(fid) for r in rows for fid in r.fmt_ids)
        assert weight_transfers[-1] + 1 == model
