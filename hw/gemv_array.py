"""The GEMV engine's compute array: R rows x L lanes of bit-serial terms, one dequantizer per row.

```
 issue (codes R*L, fmt R, u R, term, flags) ─► TermDecoder x R*L ─► [s1: decoded terms] ──┐
 x (L activations, from the buffer's read register, aligned with s1) ─► [x, -x per lane] ─┤
      per row-lane: select ±x << e ─► [s2: R*L lane terms] ─► per row: adder tree
      ─► [s3: R tree sums] ─► psum += ─► [out]
      ─► GroupDequantizer x R (row += u·psum) ─► join ─► results (to the engine's skid buffer)
```

One term of every weight of the beat per cycle. The activation beat is shared: its negation is
computed once per lane, and each row-lane only selects ``±x`` and shifts it by the term's
exponent. A single clock enable (``~stall``) freezes every stage while the dequantizers cannot
take the finished group sums; ``stall`` is driven by registers only (the psum output register
and the dequantizers' state) as long as ``results.ready`` is a register — the engine feeds it
from its skid buffer, so the external ``ready`` does not fan out into the array.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, wiring

from hw.dequant import GroupDequantizer
from hw.gemv_params import GemvParams
from hw.interfaces import gemv_array_signature
from hw.params import id_port_bits
from hw.pe import tree_sum
from hw.term_decoder import TermDecoder

__all__ = ["GemvArray"]


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
        en = ~self.stall

        # ---- stage 0 -> s1: decode the issued term of every row-lane (one decoder per set)
        eb = p.exp_bits
        nz = [[Signal(name=f"nz{r}_{i}") for i in range(L)] for r in range(R)]
        sg = [[Signal(name=f"sg{r}_{i}") for i in range(L)] for r in range(R)]
        ex = [[Signal(eb, name=f"ex{r}_{i}") for i in range(L)] for r in range(R)]
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
                with m.If(en):
                    m.d.sync += [nz[r][i].eq(nz_c), sg[r][i].eq(sg_c), ex[r][i].eq(ex_c)]
        ctl = data.StructLayout({"valid": 1, "first": 1, "final": 1, "row_last": 1, "gemv_last": 1,
                                 "u": data.ArrayLayout(unsigned(p.scale_bits), R)})
        s1 = Signal(ctl)
        with m.If(en):
            m.d.sync += [s1.valid.eq(iss.valid), s1.first.eq(iss.first), s1.final.eq(iss.final),
                         s1.row_last.eq(iss.row_last), s1.gemv_last.eq(iss.gemv_last),
                         s1.u.eq(iss.beat.u)]

        # ---- s1 -> s1x: the activation beat leaves the buffer's read port into a register, with
        # its negation computed once per lane (shared by the R rows); the decoded terms wait
        # beside it. The buffer's slow clock-to-output then ends at a register.
        lane_w = A + 1 + p.max_exp
        s1x = Signal(ctl)
        pos = [Signal(signed(A), name=f"x{i}") for i in range(L)]
        neg = [Signal(signed(A + 1), name=f"negx{i}") for i in range(L)]
        nz1 = [[Signal(name=f"nz1_{r}_{i}") for i in range(L)] for r in range(R)]
        sg1 = [[Signal(name=f"sg1_{r}_{i}") for i in range(L)] for r in range(R)]
        ex1 = [[Signal(eb, name=f"ex1_{r}_{i}") for i in range(L)] for r in range(R)]
        with m.If(en):
            m.d.sync += s1x.eq(s1)
            m.d.sync += [pos[i].eq(self.x[i]) for i in range(L)]
            m.d.sync += [neg[i].eq(-self.x[i]) for i in range(L)]
            for r in range(R):
                m.d.sync += [nz1[r][i].eq(nz[r][i]) for i in range(L)]
                m.d.sync += [sg1[r][i].eq(sg[r][i]) for i in range(L)]
                m.d.sync += [ex1[r][i].eq(ex[r][i]) for i in range(L)]

        # ---- s1x -> s2: per row-lane select ±x and shift: registered lane terms
        s2 = Signal(ctl)
        s2_lane = [[Signal(signed(lane_w), name=f"term{r}_{i}") for i in range(L)] for r in range(R)]
        with m.If(en):
            m.d.sync += s2.eq(s1x)
            for r in range(R):
                for i in range(L):
                    m.d.sync += s2_lane[r][i].eq(
                        Mux(nz1[r][i], Mux(sg1[r][i], neg[i], pos[i]) << ex1[r][i], 0))

        # ---- s2 -> s3: one adder tree per row
        s3 = Signal(ctl)
        s3_sum = [Signal(signed(p.psum_bits), name=f"tree{r}") for r in range(R)]
        with m.If(en):
            m.d.sync += s3.eq(s2)
            m.d.sync += [s3_sum[r].eq(tree_sum(s2_lane[r])) for r in range(R)]

        # ---- s3 -> out: accumulate the group partial sums; a group's final term fills `out`
        dp = p.dq_params
        psum = [Signal(signed(p.psum_bits), name=f"psum{r}") for r in range(R)]
        psum_next = [Signal(signed(p.psum_bits), name=f"psum_next{r}") for r in range(R)]
        out_valid, out_last, out_gl = Signal(), Signal(), Signal()
        out_psum = [Signal(signed(p.psum_bits), name=f"out_psum{r}") for r in range(R)]
        out_u = [Signal(p.scale_bits, name=f"out_u{r}") for r in range(R)]
        for r in range(R):
            m.d.comb += psum_next[r].eq(Mux(s3.first, 0, psum[r]) + s3_sum[r])

        dqs = []
        for r in range(R):
            dq = GroupDequantizer(dp)
            m.submodules[f"dq{r}"] = dq
            dqs.append(dq)
            m.d.comb += [dq.psums.valid.eq(out_valid), dq.psums.p.psum.eq(out_psum[r]),
                         dq.psums.p.u.eq(out_u[r]), dq.psums.p.last.eq(out_last)]
        dq_ready = Signal()
        m.d.comb += [dq_ready.eq(_all(dq.psums.ready for dq in dqs)),
                     self.stall.eq(out_valid & ~dq_ready)]
        with m.If(en):
            with m.If(dq_ready):
                m.d.sync += out_valid.eq(0)
            with m.If(s3.valid):
                m.d.sync += [ps.eq(pn) for ps, pn in zip(psum, psum_next)]
                with m.If(s3.final):
                    m.d.sync += [out_valid.eq(1), out_last.eq(s3.row_last), out_gl.eq(s3.gemv_last)]
                    m.d.sync += [o.eq(pn) for o, pn in zip(out_psum, psum_next)]
                    m.d.sync += [o.eq(u) for o, u in zip(out_u, s3.u)]

        # ---- dequantizers -> join -> results. `gemv_last` of each row in flight waits in a
        # queue: one row in the dequantizers' result registers, one being finished, and a third
        # pushed in the cycle the first leaves (SyncFIFO cannot write and read when full).
        m.submodules.lastq = lastq = fifo.SyncFIFO(width=1, depth=3)
        m.d.comb += [lastq.w_en.eq(out_valid & dq_ready & out_last), lastq.w_data.eq(out_gl)]
        joined = _all(dq.result.valid for dq in dqs)
        taken = joined & self.results.ready
        m.d.comb += [self.results.valid.eq(joined), self.results.p.last.eq(lastq.r_data),
                     lastq.r_en.eq(taken)]
        for r, dq in enumerate(dqs):
            m.d.comb += [self.results.p.row[r].eq(dq.result.payload), dq.result.ready.eq(taken)]
        return m


def _all(sigs):
    sigs = list(sigs)
    out = sigs[0]
    for s in sigs[1:]:
        out = out & s
    return out
