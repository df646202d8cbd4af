"""BitSerialPE alone (Amaranth simulator): group partial sums = golden.intref.group_partial_sums,
one term per weight per cycle, correct under idle inputs and a stalling consumer."""

import random

import pytest
import torch
from amaranth.sim import Simulator

from golden import intref
from hw.params import DotParams
from hw.pe import BitSerialPE
from verif.pysim import PysimIO
from verif.stimulus import pack_beats, pack_groups, random_rows
from verif.stream import StreamSink, StreamSource


def _fields(layout):
    return {name: {"offset": f.offset, "width": f.width} for name, f in layout}


@pytest.mark.parametrize("fs,idle,bp", [("bitmod4", 0.0, 0.0), ("ant3", 0.4, 0.5), ("int3", 0.2, 0.7)])
def test_pe_group_partial_sums(fs, idle, bp):
    p = DotParams.make(lanes=4, group_size=8, act_bits=8, scale_bits=8, format_set=fs, max_groups=3)
    rng = random.Random(42)
    rows = random_rows(p, rng, 5)
    pe = BitSerialPE(p)
    wl, gl, pl = (pe.signature.members[n].signature.members["payload"].shape
                  for n in ("weights", "groups", "psums"))
    want = []
    for r in rows:
        ps = intref.group_partial_sums(torch.tensor([r.codes]), torch.tensor([r.fmt_ids]),
                                       torch.tensor(r.x), p.fs, p.group_size)[0].tolist()
        want += [(s, u, int(g == len(r.u) - 1)) for g, (s, u) in enumerate(zip(ps, r.u))]
    out = {}

    async def bench(ctx):
        io = PysimIO(pe, ctx)
        w = StreamSource(io, "weights", wl.size, rng, idle)
        g = StreamSource(io, "groups", gl.size, rng, idle)
        s = StreamSink(io, "psums", pl.size, rng, bp, signed=False)
        io.set("max_terms", 0)
        for r in rows:
            for b in pack_beats(p, r, _fields(wl)):
                w.push(b)
            for d in pack_groups(p, r, _fields(gl)):
                g.push(d)
        cycle = 0
        while len(s.items) < len(want):
            for e in (w, g, s):
                e.drive(cycle)
            for e in (w, g, s):
                e.sample(cycle)
            await ctx.tick()
            cycle += 1
            assert cycle < 5000
        out["items"], out["cycles"], out["wt"] = s.items, cycle, w.transfers

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    f = _fields(pl)
    pb = p.psum_bits
    got = []
    for raw in out["items"]:
        ps = (raw >> f["psum"]["offset"]) & ((1 << pb) - 1)
        ps -= (ps >> (pb - 1)) << pb
        got.append((ps, (raw >> f["u"]["offset"]) & ((1 << p.scale_bits) - 1),
                    (raw >> f["last"]["offset"]) & 1))
    assert got == want
    if idle == 0 and bp == 0:      # one term per weight per cycle, no bubbles
        model = sum(p.group_cycles(fid) for r in rows for fid in r.fmt_ids)
        assert out["wt"][-1] + 1 == model
