"""Drive whole GEMVs through the GEMV engine and check every row result bit-exactly.

Simulator-independent, like :mod:`verif.harness`: a *clock* supplies ``edge()``/``settle()``
and an *io* object ``set``/``get`` by Verilog port name; cocotb (Verilator) and Amaranth's
simulator each provide both. Payloads are packed with :mod:`golden.gemv_layout` — the same
definition the RTL's struct layouts are built from.

Stalls (:class:`verif.stream.Stalls`): every source idles and the result sink stalls with
probabilities ``idle`` / ``backpressure`` per cycle (i.i.d.) and, with ``burst`` set, in long
bursts (:data:`BURST_LEN` cycles), which is what shows a missing stall enable that i.i.d. stalls
rarely hit.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from golden.bcq_layout import KEY_BITS
from hw.gemv_params import GemvParams
from verif import lut_stimulus
from verif.gemv_stimulus import Gemv, expected
from verif.lut_stimulus import LutGemv
from verif.stream import Stalls, StreamSink, StreamSource

__all__ = ["GemvHarness", "GemvMismatch", "BeatInfo", "LutBeatInfo", "BURST_LEN"]

#: Length (min, max cycles) of a burst stall: longer than the array's pipeline and a whole group.
BURST_LEN = (20, 200)


class GemvMismatch(AssertionError):
    pass


@dataclass(frozen=True)
class BeatInfo:
    """What one weight beat is (for coverage): its GEMV's set and precision, the R rows' format
    ids, its terms T, its position in the group and at the row-block boundary."""

    fmt_set: int
    fmts: tuple[int, ...]
    precision: int
    terms: int
    pos: str            # first / middle / last beat of its group
    boundary: str       # block_first / block_last / inside
    gemv_first: bool = False


@dataclass(frozen=True)
class LutBeatInfo:
    """What one path-1 (LUT) weight beat is: its layer's BCQ layout, stored planes q, planes read
    p, the plane, the word's place in its row (first / group start / in group / last) and whether
    the row's first key of it reads the mirrored half of a table."""

    layout: str
    q: int
    p: int
    plane: int
    position: str
    mirrored: bool
    gemv_first: bool = False


def lut_beat_infos(p: GemvParams, g: LutGemv) -> list[LutBeatInfo]:
    """Coverage descriptions of a path-1 GEMV's beats, in stream order."""
    L, R = p.lanes, p.rows
    words, gc = g.k // L, g.bw.spans[1]
    planes = g.bw.planes
    out = []
    for j in range(-(-g.n // R)):
        row = min(j * R, g.n - 1)
        for w in range(words):
            pos = ("last" if w == words - 1 else "first" if w == 0
                   else "group start" if (w * L) % gc < L else "in group")
            for i in range(g.planes):
                out.append(LutBeatInfo(g.bw.layout, g.bw.bits, g.planes, i, pos,
                                       bool(planes[i, row, w * L + KEY_BITS - 1]),
                                       gemv_first=j == 0 and w == 0 and i == 0))
    return out


def gemv_expected(p: GemvParams, g) -> list[int]:
    """golden's row results of either path (golden.intref / golden.bcq's integer path)."""
    return lut_stimulus.expected(p.lut, g) if isinstance(g, LutGemv) else expected(p, g)


class GemvHarness:
    def __init__(self, p: GemvParams, io, rng: random.Random, idle: float = 0.0,
                 backpressure: float = 0.0, burst: float = 0.0, log=print):
        self.p, self.io, self.rng, self.log = p, io, rng, log
        lay = p.layout
        self.lay = lay
        self.cmd, self.acts, self.weights = (StreamSource(io, lt.name, lt.size, rng)
                                             for lt in (lay.cmd, lay.acts, lay.weights))
        self.results = StreamSink(io, "results", lay.results(p.row_bits).size, rng, signed=False)
        for e in (self.cmd, self.acts, self.weights):
            e.stall = Stalls(rng, idle, burst, BURST_LEN)
        self.results.stall = Stalls(rng, backpressure, burst, BURST_LEN)
        self.endpoints = (self.cmd, self.acts, self.weights, self.results)
        self.cycle = 0
        self.checked = 0
        self._prec_queue: list[int] = []
        self._abort_next = False
        #: cycle of every cmd transfer and of every GEMV's last result (cycle model checks)
        self.gemv_log: list[dict] = []
        #: coverage hook: ``on_beat(meta, stall)`` after every weight-beat transfer, with the
        #: beat's :class:`BeatInfo` and the stall state while it was computed ("input": the
        #: weight source presented it late; else "output": the result sink was not ready in one
        #: of its cycles; else "none")
        self.on_beat = None
        self._sink_stalled_at = -1
        self._beats: deque[BeatInfo] = deque()
        self._ready_from = 0            # first cycle the next weight beat could have been taken

    def idle_inputs(self) -> None:
        for n in ("cmd", "acts", "weights"):
            self.io.set(f"{n}__valid", 0)
        self.io.set("results__ready", 0)
        self.io.set("precision", 0)
        self.io.set("abort_req", 0)

    def status(self) -> dict:
        return self.lay.status.unpack(self.io.get("status"))

    def send_cmd(self, precision: int = 0, **fields) -> None:
        """Queue a descriptor (``k``, ``n``, ``fmt_set``, ``path``) and its precision."""
        self.cmd.push(self.lay.cmd_word(**fields))
        self._prec_queue.append(precision)

    def queue(self, g: Gemv | LutGemv) -> None:
        lay, p = self.lay, self.p
        if isinstance(g, LutGemv):
            self.send_cmd(g.precision, k=g.k, n=g.n, path=1, planes=g.bw.bits)
            for a in lay.act_beats(g.x):
                self.acts.push(a)
            for b in p.lut_layout.weight_beats(g.bw, g.precision or None):
                self.weights.push(b)
            self._beats.extend(lut_beat_infos(p, g))
            return
        self.send_cmd(g.precision, k=g.k, n=g.n, fmt_set=g.fmt_set)
        for a in lay.act_beats(g.x):
            self.acts.push(a)
        for b in lay.weight_beats(g.codes, g.fmt_ids, g.u, p.format_sets[g.fmt_set]):
            self.weights.push(b)
        terms = p.format_terms(g.fmt_set)
        pad = terms[lay.pad_fmt(g.fmt_set)]
        R, B, ng = p.rows, p.beats_per_group, g.k // p.group_size
        fmt = g.fmt_ids.tolist()
        for j in range(lay.blocks(g.n)):
            rows = fmt[j * R:(j + 1) * R]
            for gi in range(ng):
                t = max([terms[r[gi]] for r in rows] + ([pad] if len(rows) < R else []))
                t = min(t, g.precision) if g.precision else t
                for b in range(B):
                    self._beats.append(BeatInfo(
                        g.fmt_set, tuple(r[gi] for r in rows), g.precision, t,
                        "first" if b == 0 else "last" if b == B - 1 else "middle",
                        "block_first" if gi == 0 and b == 0 else
                        "block_last" if gi == ng - 1 and b == B - 1 else "inside",
                        gemv_first=j == 0 and gi == 0 and b == 0))

    async def step(self, clock) -> None:
        await clock.edge()
        for e in self.endpoints:
            e.drive(self.cycle)
        # precision: the queued GEMV's while its cmd is offered, random otherwise (it must be
        # latched at cmd, so a change mid-GEMV must not matter)
        if self.cmd.holding and self._prec_queue:
            self.io.set("precision", self._prec_queue[0])
        else:
            self.io.set("precision", self.rng.randrange(1 << self.p.seq_bits))
        if not self.results._ready:
            self._sink_stalled_at = self.cycle
        self.io.set("abort_req", int(self._abort_next))
        self._abort_next = False
        await clock.settle()
        cmd_taken = self.cmd.holding and self.io.get("cmd__ready")
        nw, na = len(self.weights.transfers), len(self.acts.transfers)
        for e in self.endpoints:
            e.sample(self.cycle)
        if cmd_taken:
            self._prec_queue.pop(0)
            self.gemv_log.append({"cmd": self.cycle})
        if len(self.acts.transfers) > na:
            self._ready_from = self.cycle + 1
        if len(self.weights.transfers) > nw:
            self._beat_done()
        self.cycle += 1

    def _beat_done(self) -> None:
        meta = self._beats.popleft()
        first, done = self.weights.first_valid[-1], self.cycle
        start, late = max(first, self._ready_from), first > self._ready_from
        stall = "input" if late else "output" if self._sink_stalled_at >= start else "none"
        self._ready_from = done + 1
        if self.on_beat:
            self.on_beat(meta, stall)

    async def run(self, clock, gemvs: list[Gemv], *, tail: int = 0,
                  timeout_factor: int = 8) -> list[list[int]]:
        """Queue ``gemvs`` back to back, run until every result is out, check them all; then
        ``tail`` idle cycles in which no result may appear."""
        p = self.p
        for g in gemvs:
            self.queue(g)
        n0 = len(self.results.items)
        blocks = [self.lay.blocks(g.n) for g in gemvs]
        want_beats = n0 + sum(blocks)
        log0 = len(self.gemv_log)
        budget = timeout_factor * sum(
            1 + g.k // p.lanes + b * (g.k // p.lanes) * (g.planes if isinstance(g, LutGemv)
                                                         else p.max_terms) + 40
            for g, b in zip(gemvs, blocks)) + 2000
        start = self.cycle
        while len(self.results.items) < want_beats:
            await self.step(clock)
            if self.cycle - start > budget:
                raise GemvMismatch(
                    f"timeout: {len(self.results.items) - n0} of {sum(blocks)} result beats after "
                    f"{self.cycle - start} cycles (cmd left {len(self.cmd.queue)}, acts left "
                    f"{len(self.acts.queue)}, weights left {len(self.weights.queue)}); "
                    f"status {self.status()}")
        for _ in range(tail):
            await self.step(clock)
        if len(self.results.items) != want_beats:
            raise GemvMismatch(f"{len(self.results.items) - want_beats} spurious result beat(s) in the "
                               f"{tail}-cycle idle tail")
        if not (self.cmd.done and self.acts.done and self.weights.done):
            raise GemvMismatch("results complete but input streams not fully consumed")
        st = self.status()
        if any(v for k, v in st.items() if k.startswith("err_")):
            raise GemvMismatch(f"error flag set after clean GEMVs: {st}")
        beats = self.results.items[n0:]
        trans = self.results.transfers[n0:]
        out, bad, i = [], [], 0
        for gi, (g, nb) in enumerate(zip(gemvs, blocks)):
            got = self.lay.unpack_results(beats[i:i + nb], p.row_bits, g.n)
            self.gemv_log[log0 + gi]["last_result"] = trans[i + nb - 1]
            self.gemv_log[log0 + gi]["gemv"] = g
            i += nb
            want = gemv_expected(p, g)
            diff = [(r, a, b) for r, (a, b) in enumerate(zip(got, want)) if a != b]
            if diff:
                what = ("LUT path" if isinstance(g, LutGemv)
                        else f"set {p.format_sets[g.fmt_set].name}")
                bad.append(f"GEMV {gi} ({g.note}, N={g.n}, K={g.k}, {what}, "
                           f"precision {g.precision}): {len(diff)} rows differ, first "
                           + ", ".join(f"row {r}: dut={a} ref={b}" for r, a, b in diff[:4]))
            out.append(got)
        self.checked += len(gemvs)
        if bad:
            raise GemvMismatch(f"{len(bad)} of {len(gemvs)} GEMVs differ from golden:\n  "
                               + "\n  ".join(bad[:8]))
        return out

    async def run_until(self, clock, cond, max_cycles: int = 10000) -> int:
        """Step until ``cond(self)`` holds (checked after each cycle); returns cycles taken."""
        for n in range(max_cycles):
            if cond(self):
                return n
            await self.step(clock)
        raise GemvMismatch(f"condition not reached in {max_cycles} cycles; status {self.status()}")

    async def abort(self, clock) -> None:
        """Raise ``abort_req`` for one cycle (set with the cycle's other inputs)."""
        self._abort_next = True
        await self.step(clock)

    def drop_inputs(self) -> None:
        """Forget whatever is still queued (after an error/abort the source drops its stream)."""
        self._beats.clear()
        for s in (self.cmd, self.acts, self.weights):
            s.queue.clear()
            s.holding = False
            self.io.set(f"{s.name}__valid", 0)
        self._prec_queue.clear()
