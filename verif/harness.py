"""Drive rows through the dot-product unit and check every result bit-exactly.

Simulator-independent: a *clock* object supplies ``await clock.edge()`` (move to the next
cycle, where inputs may change) and ``await clock.settle()`` (combinational logic has settled;
the values now seen decide the next rising edge's handshakes). cocotb and Amaranth's simulator
each provide one.
"""

from __future__ import annotations

import random

from hw.params import DotParams
from verif.stimulus import Row, expected, pack_beats, pack_groups
from verif.stream import StreamSink, StreamSource

__all__ = ["DotHarness", "MismatchError"]


class MismatchError(AssertionError):
    pass


def _port(ports: list[dict], name: str) -> dict:
    return next(pt for pt in ports if pt["name"] == name)


class DotHarness:
    def __init__(self, p: DotParams, io, ports: list[dict], rng: random.Random,
                 idle: float = 0.0, backpressure: float = 0.0, log=print):
        self.p, self.io, self.log = p, io, log
        wp, gp, rp = (_port(ports, f"{n}__payload") for n in ("weights", "groups", "result"))
        self.wfields, self.gfields = wp["fields"], gp["fields"]
        self.weights = StreamSource(io, "weights", wp["width"], rng, idle)
        self.groups = StreamSource(io, "groups", gp["width"], rng, idle)
        self.result = StreamSink(io, "result", rp["width"], rng, backpressure, signed=True)
        self.endpoints = (self.weights, self.groups, self.result)
        self.cycle = 0
        self.checked = 0
        #: self-test of the failure path only: corrupt the first expected value
        self.corrupt_first = False

    def idle_inputs(self) -> None:
        for n in ("weights", "groups"):
            self.io.set(f"{n}__valid", 0)
        self.io.set("result__ready", 0)
        self.io.set("max_terms", 0)

    async def run(self, clock, rows: list[Row], *, timeout_factor: int = 20) -> list[int]:
        """Stream ``rows`` back to back (all at one ``max_terms``) and check the results."""
        if not rows:
            return []
        mts = {r.max_terms for r in rows}
        assert len(mts) == 1, "rows of one run share max_terms (a runtime register)"
        self.io.set("max_terms", rows[0].max_terms)
        for row in rows:
            for w in pack_beats(self.p, row, self.wfields):
                self.weights.push(w)
            for g in pack_groups(self.p, row, self.gfields):
                self.groups.push(g)
        n0 = len(self.result.items)
        budget = timeout_factor * sum(len(r.codes) // self.p.lanes * self.p.max_terms + 50
                                      for r in rows)
        start = self.cycle
        while len(self.result.items) < n0 + len(rows):
            await clock.edge()
            for e in self.endpoints:
                e.drive(self.cycle)
            await clock.settle()
            for e in self.endpoints:
                e.sample(self.cycle)
            self.cycle += 1
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
                bad.append(f"row {i} ({row.note}, max_terms {row.max_terms}, groups {len(row.fmt_ids)}, "
                           f"fmt_ids {row.fmt_ids[:4]}, u {row.u[:4]}): dut={g} ref={want}")
        self.checked += len(rows)
        if bad:
            raise MismatchError(f"{len(bad)} of {len(rows)} results differ from golden.intref:\n  "
                                + "\n  ".join(bad[:8]))
        if not (self.weights.done and self.groups.done):
            raise MismatchError("results complete but input streams not fully consumed")
        return got
