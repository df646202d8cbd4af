"""Drive whole GEMVs through the shift-add LUT unit and check every row result bit-exactly.

Simulator-independent, like :mod:`verif.gemv_harness`: a *clock* supplies ``edge()``/``settle()``
and an *io* object ``set``/``get`` by Verilog port name (cocotb under Verilator, or Amaranth's
simulator through :class:`verif.pysim.PysimIO`). Payloads are packed with
:mod:`golden.bcq_layout`, the definition the RTL's struct layouts are built from.

Every source idles and the result sink stalls i.i.d. (``idle`` / ``backpressure``) and, with
``burst``, in bursts of :data:`verif.gemv_harness.BURST_LEN` cycles (:class:`verif.stream.Stalls`).
"""

from __future__ import annotations

import random

from hw.lut_params import LutParams
from verif.gemv_harness import BURST_LEN
from verif.lut_stimulus import LutGemv, expected
from verif.stream import Stalls, StreamSink, StreamSource

__all__ = ["LutHarness", "LutMismatch"]


class LutMismatch(AssertionError):
    pass


class LutHarness:
    def __init__(self, p: LutParams, io, rng: random.Random, idle: float = 0.0,
                 backpressure: float = 0.0, burst: float = 0.0):
        self.p, self.io, self.rng = p, io, rng
        self.lay = lay = p.layout
        self.sources = {lt.name: StreamSource(io, lt.name, lt.size, rng)
                        for lt in (lay.cmd, lay.acts, lay.keys, lay.scales)}
        for s in self.sources.values():
            s.stall = Stalls(rng, idle, burst, BURST_LEN)
        self.results = StreamSink(io, "results", lay.results(p.row_bits).size, rng, signed=False)
        self.results.stall = Stalls(rng, backpressure, burst, BURST_LEN)
        self.cycle = 0
        self.checked = 0
        self._prec: list[int] = []
        #: per GEMV: cycle of its cmd transfer, of its last key transfer and its last result
        self.gemv_log: list[dict] = []
        #: every key transfer: (cycle, gemv index, key beat index within the GEMV)
        self.key_log: list[tuple[int, int, int]] = []
        self._keys_sent = 0
        self._keys_per_gemv: list[int] = []
        #: coverage hook, called at every key transfer with (harness, gemv, beat index, stall kind
        #: of the previous cycle: "flow", "source idle" (no key offered) or "backpressure")
        self.on_key = None
        self._last_stall = "flow"

    def idle_inputs(self) -> None:
        for n in self.sources:
            self.io.set(f"{n}__valid", 0)
        self.io.set("results__ready", 0)
        self.io.set("precision", 0)

    def status(self) -> dict:
        return self.lay.status.unpack(self.io.get("status"))

    def send_cmd(self, precision: int = 0, **fields) -> None:
        """Queue a raw descriptor (``k``, ``n``, ``planes``, ``group_chunks``) with no data."""
        self.sources["cmd"].push(self.lay.cmd_word(**fields))
        self._prec.append(precision)
        self.gemv_log.append({"gemv": None})
        self._keys_per_gemv.append(0)

    def queue(self, g: LutGemv) -> None:
        lay, src = self.lay, self.sources
        src["cmd"].push(lay.layer_cmd(g.bw))
        self._prec.append(g.precision)
        for a in lay.act_beats(g.x, g.n):
            src["acts"].push(a)
        kb = lay.key_beats(g.bw, g.precision or None)
        for b in kb:
            src["keys"].push(b)
        for b in lay.scale_beats(g.bw, g.precision or None):
            src["scales"].push(b)
        self._keys_per_gemv.append(len(kb))
        self.gemv_log.append({"gemv": g})

    async def step(self, clock) -> None:
        await clock.edge()
        for e in (*self.sources.values(), self.results):
            e.drive(self.cycle)
        cmd = self.sources["cmd"]
        # precision: the queued GEMV's while its cmd is offered, random otherwise (latched at cmd)
        self.io.set("precision", self._prec[0] if cmd.holding and self._prec
                    else self.rng.randrange(1 << self.p.plane_bits))
        await clock.settle()
        cmd_taken = cmd.holding and self.io.get("cmd__ready")
        keys = self.sources["keys"]
        key_taken = keys.holding and self.io.get("keys__ready")
        stall_now = ("backpressure" if not self.io.get("results__ready")
                     else "source idle" if not keys.holding else "flow")
        for e in (*self.sources.values(), self.results):
            e.sample(self.cycle)
        if cmd_taken:
            self._prec.pop(0)
            nxt = next(d for d in self.gemv_log if "cmd" not in d)
            nxt["cmd"] = self.cycle
        if key_taken:
            self._on_key()
        self._last_stall = stall_now          # what the next key transfer's previous cycle saw
        self.cycle += 1

    def _on_key(self) -> None:
        gi, beat = 0, self._keys_sent
        while beat >= self._keys_per_gemv[gi]:
            beat -= self._keys_per_gemv[gi]
            gi += 1
        self._keys_sent += 1
        self.key_log.append((self.cycle, gi, beat))
        log = self.gemv_log[gi]
        log["last_key"] = self.cycle
        if self.on_key:
            self.on_key(self, log["gemv"], beat, self._last_stall)

    async def run(self, clock, gemvs: list[LutGemv], *, tail: int = 0,
                  timeout_factor: int = 8) -> list[list[int]]:
        """Queue ``gemvs`` back to back, run until every result is out, check them all; then
        ``tail`` idle cycles in which no result may appear."""
        lay = self.lay
        log0 = len(self.gemv_log)
        for g in gemvs:
            self.queue(g)
        n0 = len(self.results.items)
        blocks = [lay.blocks(g.n) for g in gemvs]
        want = n0 + sum(blocks)
        budget = timeout_factor * sum(3 + b * (g.k // 8) * g.planes + 20
                                      for g, b in zip(gemvs, blocks)) + 2000
        start = self.cycle
        while len(self.results.items) < want:
            await self.step(clock)
            if self.cycle - start > budget:
                left = {n: len(s.queue) for n, s in self.sources.items()}
                raise LutMismatch(f"timeout: {len(self.results.items) - n0} of {sum(blocks)} result "
                                  f"beats after {self.cycle - start} cycles (left {left}); "
                                  f"status {self.status()}")
        for _ in range(tail):
            await self.step(clock)
        if len(self.results.items) != want:
            raise LutMismatch(f"{len(self.results.items) - want} spurious result beat(s) in the "
                              f"{tail}-cycle idle tail")
        if not all(s.done for s in self.sources.values()):
            raise LutMismatch("results complete but input streams not fully consumed: "
                              + str({n: len(s.queue) for n, s in self.sources.items()}))
        st = self.status()
        if any(v for k, v in st.items() if k.startswith("err_")):
            raise LutMismatch(f"error flag set after clean GEMVs: {st}")
        beats, trans = self.results.items[n0:], self.results.transfers[n0:]
        out, bad, i = [], [], 0
        for gi, (g, nb) in enumerate(zip(gemvs, blocks)):
            got = lay.unpack_results(beats[i:i + nb], self.p.row_bits, g.n)
            self.gemv_log[log0 + gi]["last_result"] = trans[i + nb - 1]
            i += nb
            want_rows = expected(self.p, g)
            diff = [(r, a, b) for r, (a, b) in enumerate(zip(got, want_rows)) if a != b]
            if diff:
                bad.append(f"GEMV {gi} ({g.note}, N={g.n}, K={g.k}, precision {g.precision}): "
                           f"{len(diff)} rows differ, first "
                           + ", ".join(f"row {r}: dut={a} ref={b}" for r, a, b in diff[:4]))
            out.append(got)
        self.checked += len(gemvs)
        if bad:
            raise LutMismatch(f"{len(bad)} of {len(gemvs)} GEMVs differ from golden.bcq:\n  "
                              + "\n  ".join(bad[:8]))
        return out

    async def run_until(self, clock, cond, max_cycles: int = 10000) -> int:
        for n in range(max_cycles):
            if cond(self):
                return n
            await self.step(clock)
        raise LutMismatch(f"condition not reached in {max_cycles} cycles; status {self.status()}")
