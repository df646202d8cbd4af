"""Drive rows through the dot-product unit and check every result bit-exactly.

Simulator-independent: a *clock* object supplies ``await clock.edge()`` (move to the next
cycle, where inputs may change) and ``await clock.settle()`` (combinational logic has settled;
the values now seen decide the next rising edge's handshakes). cocotb
(:class:`verif.tb_util.CocotbClock`) and Amaranth's simulator (:class:`verif.pysim.PysimClock`)
each provide one. Payloads are packed with :mod:`golden.pack`, the layouts the RTL is built from.
"""

from __future__ import annotations

import random

from golden import pack
from hw.params import DotParams
from verif.stimulus import Row, expected
from verif.stream import Stalls, StreamSink, StreamSource, step

__all__ = ["DotHarness", "MismatchError"]


class MismatchError(AssertionError):
    pass


class DotHarness:
    def __init__(self, p: DotParams, io, rng: random.Random, idle: float = 0.0,
                 backpressure: float = 0.0, burst: float = 0.0):
        self.p, self.io = p, io
        self.wlayout = pack.weight_beat_layout(p.lanes, p.fs, p.act_bits)
        self.glayout = pack.group_layout(p.fs, p.scale_bits)
        self.weights = StreamSource(io, "weights", self.wlayout.size, rng, idle, burst)
        self.groups = StreamSource(io, "groups", self.glayout.size, rng, idle, burst)
        self.result = StreamSink(io, "result", p.row_bits, rng, backpressure, signed=True,
                                 burst=burst)
        self.endpoints = (self.weights, self.groups, self.result)
        self.cycle = 0
        self.checked = 0
        #: self-test of the failure path only: corrupt the first expected value
        self.corrupt_first = False

    def idle_inputs(self) -> None:
        for n in ("weights", "groups"):
            self.io.set(f"{n}__valid", 0)
        self.io.set("result__ready", 0)
        self.io.set("precision", 0)

    async def step(self, clock) -> None:
        """One cycle: drive every endpoint, let the logic settle, sample the handshakes."""
        await step(clock, self.endpoints, self.cycle)
        self.cycle += 1

    async def run(self, clock, rows: list[Row], *, timeout_factor: int = 20) -> list[int]:
        """Stream ``rows`` back to back (all at one ``precision``) and check the results."""
        if not rows:
            return []
        precisions = {r.precision for r in rows}
        assert len(precisions) == 1, "rows of one run share precision (a runtime register)"
        self.io.set("precision", rows[0].precision)
        for row in rows:
            for w in pack.pack_beats(self.wlayout, row.codes, row.x):
                self.weights.push(w)
            for g in pack.pack_groups(self.glayout, row.fmt_ids, row.u):
                self.groups.push(g)
        n0 = len(self.result.items)
        budget = timeout_factor * sum(len(r.codes) // self.p.lanes * self.p.max_terms + 50
                                      for r in rows)
        start = self.cycle
        while len(self.result.items) < n0 + len(rows):
            await self.step(clock)
            if self.cycle - start > budget:
                raise MismatchError(
                    f"timeout: {len(self.result.items) - n0} of {len(rows)} results after "
                    f"{self.cycle - start} cycles (weights left {len(self.weights.queue)}, "
                    f"groups left {len(self.groups.queue)})")
        got = self.result.items[n0:]
        bad = []
        for i, (row, g) in enumerate(zip(rows, got)):
            want = expected(self.p, row)
            if self.corrupt_first and self.checked == 0 and i == 0:
                want += 1
            if g != want:
                bad.append(f"row {i} ({row.note}, precision {row.precision}, groups "
                           f"{len(row.fmt_ids)}, fmt_ids {row.fmt_ids[:4]}, u {row.u[:4]}): "
                           f"dut={g} ref={want}")
        self.checked += len(rows)
        if bad:
            raise MismatchError(f"{len(bad)} of {len(rows)} results differ from golden.intref:\n  "
                                + "\n  ".join(bad[:8]))
        if not (self.weights.done and self.groups.done):
            raise MismatchError("results complete but input streams not fully consumed")
        return got

    async def idle_tail(self, clock, cycles: int = 64) -> None:
        """Run ``cycles`` more cycles with no input and the sink ready: nothing may come out."""
        n0 = len(self.result.items)
        stall, self.result.stall = self.result.stall, Stalls(self.result.rng)
        for _ in range(cycles):
            await self.step(clock)
        self.result.stall = stall
        if len(self.result.items) != n0:
            raise MismatchError(f"{len(self.result.items) - n0} spurious result(s) in the "
                                f"{cycles}-cycle idle tail: {self.result.items[n0:][:4]}")
