"""The GEMV engine's compute array: R rows x L lanes of bit-serial terms, one dequantizer per row.

```
 issue (codes R*L, fmt R, u R, term, flags) ─► TermDecoder x R*L ─► [s1: decoded terms] ──┐
 x (L activations, from the buffer's read register, aligned with s1) ─► [x, -x per lane] ─┤
      per row-lane: select ±x << e ─► [s2: R*L lane terms] ─► per row: adder tree
      ─► [s3: R tree sums] ─► psum += ─► group FIFO (R sums, scales, flags)
      ─► GroupDequantizer x R (row += u·psum) ─► join ─► results (to the engine's skid buffer)
```

One term of every weight of the beat per cycle. The activation beat is shared: its negation is
computed once per lane, and each row-lane only selects ``±x`` and shifts it by the term's
exponent. The stages have no clock enable: an issue cycle without a term is a bubble that
flows through. A group's finished sums go into a small FIFO in front of the dequantizers, and a
group's final term is issued only with a FIFO entry reserved for it (credits; ``stall`` holds
back only such a term), so ``stall`` is a register: neither it nor the dequantizers' readiness
fans out into the R*L lane registers (issue 10: on the ECP5 that fan-out into every stage's
clock enable limited R8 x L8 to 58 MHz).
The FIFO holds every group in flight between issue and dequantizers at one group per G/L cycles
(:meth:`GemvArray.group_fifo_depth`), so a run whose results are taken never waits for a
credit: the timing is that of the former output register, cycle for cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from amaranth.hdl import Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, wiring

from hw.dequant import GroupDequantizer
from hw.gemv_params import GemvParams
from hw.interfaces import gemv_array_signature
from hw.params import id_port_bits
from hw.pe import tree_sum
from hw.term_decoder import TermDecoder

__all__ = ["GemvArray"]

#: Cycles a group's credit is out beyond its issue cycle t: s1, s1x, s2, s3 (FIFO write), FIFO
#: read (t + 5); the credit counts again from t + 6.
_CREDIT_LOOP = 5


class GemvArray(wiring.Component):
    """R rows x L lanes: decoders, shared activation signs, adder trees, dequantizers.
    Ports: :func:`hw.interfaces.gemv_array_signature`.

    Parameters
    ----------
    params : GemvParams
        Validated generator parameters (``GemvParams.make``).
    """

    def __init__(self, params: GemvParams):
        self._params = params
        super().__init__(gemv_array_signature(params))

    def elaborate(self, platform):
        p = self._params
        R, L, A = p.rows, p.lanes, p.act_bits
        m = Module()
        iss = self.issue

        # registered_control: the stages have no clock enable and the lane data no reset
        # (reset_less): neither ``stall`` nor a flush fans out into the R*L lane registers (a
        # flush resets the flags, the group FIFO, the credits and the dequantizers). Off (the
        # iCE40): ``~stall`` is every stage's clock enable and one output register the queue.
        credit = p.registered_control
        en = ~self.stall

        def data_sig(shape, name):
            return Signal(shape, name=name, reset_less=credit)

        def sync(stmts):
            if credit:
                m.d.sync += stmts
            else:
                with m.If(en):
                    m.d.sync += stmts

        # ---- stage 0 -> s1: decode the issued term of every row-lane (one decoder per set)
        eb = p.exp_bits
        nz = [[data_sig(1, f"nz{r}_{i}") for i in range(L)] for r in range(R)]
        sg = [[data_sig(1, f"sg{r}_{i}") for i in range(L)] for r in range(R)]
        ex = [[data_sig(eb, f"ex{r}_{i}") for i in range(L)] for r in range(R)]
        for r in range(R):
            for i in range(L):
                outs = []
                for si, fs in enumerate(p.format_sets):
                    dec = TermDecoder(fs)
                    m.submodules[f"dec{si}_{r}_{i}"] = dec
                    m.d.comb += [dec.fmt_id.eq(iss.beat.fmt[r][:id_port_bits(fs)]),
                                 dec.code.eq(iss.beat.codes[r * L + i][:fs.bits]),
                                 dec.term.eq(iss.term)]
                    outs.append(dec)
                nz_c, sg_c, ex_c = outs[0].nonzero, outs[0].sign, outs[0].exp
                for si in range(1, len(outs)):
                    sel = self.fmt_set == si
                    nz_c = Mux(sel, outs[si].nonzero, nz_c)
                    sg_c = Mux(sel, outs[si].sign, sg_c)
                    ex_c = Mux(sel, outs[si].exp, ex_c)
                sync([nz[r][i].eq(nz_c), sg[r][i].eq(sg_c), ex[r][i].eq(ex_c)])
        # the groups' scales ride along with the flags; with registered_control in reset-less
        # registers of their own
        u_shape = data.ArrayLayout(unsigned(p.scale_bits), R)
        ctl = data.StructLayout({"valid": 1, "first": 1, "final": 1, "row_last": 1, "gemv_last": 1,
                                 **({} if credit else {"u": u_shape})})

        def stage(name):
            s = Signal(ctl, name=name)
            return s, (data_sig(u_shape, f"{name}_u") if credit else s.u)

        s1, s1_u = stage("s1")
        sync([s1.valid.eq(iss.valid), s1.first.eq(iss.first), s1.final.eq(iss.final),
              s1.row_last.eq(iss.row_last), s1.gemv_last.eq(iss.gemv_last), s1_u.eq(iss.beat.u)])

        # ---- s1 -> s1x: the activation beat leaves the buffer's read port into a register, with
        # its negation computed once per lane (shared by the R rows); the decoded terms wait
        # beside it. The buffer's slow clock-to-output then ends at a register.
        lane_w = A + 1 + p.max_exp
        s1x, s1x_u = stage("s1x")
        pos = [data_sig(signed(A), f"x{i}") for i in range(L)]
        neg = [data_sig(signed(A + 1), f"negx{i}") for i in range(L)]
        nz1 = [[data_sig(1, f"nz1_{r}_{i}") for i in range(L)] for r in range(R)]
        sg1 = [[data_sig(1, f"sg1_{r}_{i}") for i in range(L)] for r in range(R)]
        ex1 = [[data_sig(eb, f"ex1_{r}_{i}") for i in range(L)] for r in range(R)]
        sync([s1x.eq(s1)] + ([s1x_u.eq(s1_u)] if credit else []))
        sync([pos[i].eq(self.x[i]) for i in range(L)])
        sync([neg[i].eq(-self.x[i]) for i in range(L)])
        for r in range(R):
            sync([nz1[r][i].eq(nz[r][i]) for i in range(L)])
            sync([sg1[r][i].eq(sg[r][i]) for i in range(L)])
            sync([ex1[r][i].eq(ex[r][i]) for i in range(L)])

        # ---- s1x -> s2: per row-lane select ±x and shift: registered lane terms
        s2, s2_u = stage("s2")
        s2_lane = [[data_sig(signed(lane_w), f"term{r}_{i}") for i in range(L)] for r in range(R)]
        sync([s2.eq(s1x)] + ([s2_u.eq(s1x_u)] if credit else []))
        for r in range(R):
            for i in range(L):
                sync([s2_lane[r][i].eq(
                    Mux(nz1[r][i], Mux(sg1[r][i], neg[i], pos[i]) << ex1[r][i], 0))])

        # ---- s2 -> s3: one adder tree per row
        s3, s3_u = stage("s3")
        s3_sum = [data_sig(signed(p.psum_bits), f"tree{r}") for r in range(R)]
        sync([s3.eq(s2)] + ([s3_u.eq(s2_u)] if credit else []))
        sync([s3_sum[r].eq(tree_sum(s2_lane[r])) for r in range(R)])

        # ---- s3 -> group queue: accumulate the group partial sums; a group's final term writes
        # the R sums, scales and flags into the queue: with registered_control a FIFO reserved
        # by credits, without it one output register behind the stages' clock enable
        dp = p.dq_params
        psum = [data_sig(signed(p.psum_bits), f"psum{r}") for r in range(R)]
        psum_next = [Signal(signed(p.psum_bits), name=f"psum_next{r}") for r in range(R)]
        for r in range(R):
            m.d.comb += psum_next[r].eq(Mux(s3.first, 0, psum[r]) + s3_sum[r])
        queue = (self._credit_queue if credit else self._output_register)(m, p, s3, s3_u, psum,
                                                                          psum_next)

        dqs = []
        for r in range(R):
            dq = GroupDequantizer(dp)
            m.submodules[f"dq{r}"] = dq
            dqs.append(dq)
            m.d.comb += [dq.psums.valid.eq(queue.valid), dq.psums.p.psum.eq(queue.psum[r]),
                         dq.psums.p.u.eq(queue.u[r]), dq.psums.p.last.eq(queue.last)]
        dq_ready = Signal()
        m.d.comb += dq_ready.eq(_all(dq.psums.ready for dq in dqs))
        queue.connect_ready(dq_ready)

        # ---- dequantizers -> join -> results. `gemv_last` of each row in flight waits in a
        # queue: one row in the dequantizers' result registers, one being finished, and a third
        # pushed in the cycle the first leaves (SyncFIFO cannot write and read when full).
        m.submodules.lastq = lastq = fifo.SyncFIFO(width=1, depth=3)
        m.d.comb += [lastq.w_en.eq(queue.valid & dq_ready & queue.last),
                     lastq.w_data.eq(queue.gemv_last)]
        joined = _all(dq.result.valid for dq in dqs)
        taken = joined & self.results.ready
        m.d.comb += [self.results.valid.eq(joined), self.results.p.last.eq(lastq.r_data),
                     lastq.r_en.eq(taken)]
        for r, dq in enumerate(dqs):
            m.d.comb += [self.results.p.row[r].eq(dq.result.payload), dq.result.ready.eq(taken)]
        return m

    def _output_register(self, m, p, s3, s3_u, psum, psum_next):
        """registered_control off (the iCE40): one output register behind ``~stall``, every
        stage's clock enable; ``stall`` = the register is full and the dequantizers busy."""
        R = p.rows
        en = ~self.stall
        out_valid, out_last, out_gl = Signal(), Signal(), Signal(name="out_gl")
        out_psum = [Signal(signed(p.psum_bits), name=f"out_psum{r}") for r in range(R)]
        out_u = [Signal(p.scale_bits, name=f"out_u{r}") for r in range(R)]

        def connect_ready(dq_ready):
            m.d.comb += self.stall.eq(out_valid & ~dq_ready)
            with m.If(en):
                with m.If(dq_ready):
                    m.d.sync += out_valid.eq(0)
                with m.If(s3.valid):
                    m.d.sync += [ps.eq(pn) for ps, pn in zip(psum, psum_next)]
                    with m.If(s3.final):
                        m.d.sync += [out_valid.eq(1), out_last.eq(s3.row_last), out_gl.eq(s3.gemv_last)]
                        m.d.sync += [o.eq(pn) for o, pn in zip(out_psum, psum_next)]
                        m.d.sync += [o.eq(u) for o, u in zip(out_u, s3_u)]

        return _GroupQueue(out_valid, out_psum, out_u, out_last, out_gl, connect_ready)

    def _credit_queue(self, m, p, s3, s3_u, psum, psum_next):
        """registered_control on (the ECP5 clocks): a FIFO of finished groups; a group's final
        term is issued only with an entry reserved for it (credits), so the FIFO never overflows
        and ``stall`` is a register (no logic in front of its fan-out)."""
        R = p.rows
        with m.If(s3.valid):
            m.d.sync += [ps.eq(pn) for ps, pn in zip(psum, psum_next)]
        grp = data.StructLayout({"psum": data.ArrayLayout(signed(p.psum_bits), R),
                                 "u": data.ArrayLayout(unsigned(p.scale_bits), R),
                                 "last": 1, "gemv_last": 1})
        depth = self.group_fifo_depth(p)
        if depth > 1:
            m.submodules.groups = gq = fifo.SyncFIFO(width=grp.size, depth=depth)
        else:                                  # one entry: a register (SyncFIFO's would be 0-bit)
            m.submodules.groups = gq = _OneEntry(grp.size)
        w, rd = data.View(grp, gq.w_data), data.View(grp, gq.r_data)
        m.d.comb += [gq.w_en.eq(s3.valid & s3.final), w.u.eq(s3_u), w.last.eq(s3.row_last),
                     w.gemv_last.eq(s3.gemv_last)]
        m.d.comb += [w.psum[r].eq(psum_next[r]) for r in range(R)]
        credits = Signal(range(depth + 1), init=depth)
        no_credit, take, give = Signal(), Signal(), Signal()
        nxt = Signal.like(credits)
        m.d.comb += [take.eq(self.issue.valid & self.issue.final), give.eq(gq.r_en & gq.r_rdy),
                     nxt.eq(credits - take + give), self.stall.eq(no_credit)]
        m.d.sync += [credits.eq(nxt), no_credit.eq(~nxt.any())]

        def connect_ready(dq_ready):
            m.d.comb += gq.r_en.eq(dq_ready)

        return _GroupQueue(gq.r_rdy, rd.psum, rd.u, rd.last, rd.gemv_last, connect_ready)

    @staticmethod
    def group_fifo_depth(p: GemvParams) -> int:
        """Entries of the group FIFO: the group final terms issued in the ``_CREDIT_LOOP`` cycles
        before one (groups follow each other every G/L cycles at least) plus its own, so a run
        whose results are taken never waits for a credit."""
        return _CREDIT_LOOP // p.beats_per_group + 1


class _OneEntry(Elaboratable):
    """A one-entry queue with SyncFIFO's ports (``w_en``/``w_data``, ``r_en``/``r_rdy``/``r_data``);
    written only when empty or read in the same cycle (the credits guarantee it)."""

    def __init__(self, width: int):
        self.w_en, self.w_data = Signal(), Signal(width)
        self.r_en, self.r_rdy, self.r_data = Signal(), Signal(), Signal(width, reset_less=True)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        with m.If(self.w_en):
            m.d.sync += [self.r_data.eq(self.w_data), self.r_rdy.eq(1)]
        return m


class _GroupQueue(NamedTuple):
    """The finished groups' queue as the dequantizers see it: its head (``valid``, R ``psum``
    and ``u``, ``last``, ``gemv_last``) and ``connect_ready(dq_ready)``, which pops it."""
    valid: object
    psum: object
    u: object
    last: object
    gemv_last: object
    connect_ready: Callable


def _all(sigs):
    sigs = list(sigs)
    out = sigs[0]
    for s in sigs[1:]:
        out = out & s
    return out
