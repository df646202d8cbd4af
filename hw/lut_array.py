"""The GEMV engine's shift-add LUT path (``cmd.path`` = 1): R rows x C = L/8 tables per cycle
(ShiftAddLLM / FIGLUT; docs/architecture.md §2.4, §4; issue 8).

```
 issue (beat: R*C keys + R*C*T terms, flags) ─► [s1: beat] ──────────────┐
 x (L activations, the buffer's read register, aligned with s1) ─► C table builds (hw.lut_unit)
      ─► [s2: C tables of 128 entries, beat] ─► per row and chunk: 128:1 read, mirror
      ─► [s3: R*C sums, terms] ─► per row: Σ_c Σ_t ±(sum << shift) ─► [s4: R row sums]
      ─► acc += ─► [out] ─► results (to the engine's skid buffer)
```

The engine's activation buffer holds L activations per word, so one word is C = L/8 chunks
and one beat queries C tables for each of the R rows: R·C keys = R·L plane bits per cycle,
the same lanes as the bit-serial array. The tables are rebuilt from every word read (one
combinational build per chunk, registered), so table construction never stalls the readers
and the engine's word → plane order needs no table store. The beat carries the terms of every
key (:class:`golden.bcq_layout.EngineLutLayout`), so there is no scale stream. A single clock
enable (``~stall``) freezes every stage while the output register waits for ``results.ready``
(a register: the engine's skid buffer).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring

from golden.bcq_layout import KEY_BITS
from hw.gemv_params import GemvParams
from hw.interfaces import lut_array_signature
from hw.lut_unit import accumulate, apot_parts, build_tables, lookup, table_registers
from hw.pe import tree_sum

__all__ = ["LutArray"]


class LutArray(wiring.Component):
    """R rows x L/8 tables of the shift-add path. Ports: :func:`hw.interfaces.lut_array_signature`.

    Parameters
    ----------
    params : GemvParams
        Validated engine parameters with a LUT path (``params.lut`` not ``None``).
    """

    def __init__(self, params: GemvParams):
        self._params = params
        super().__init__(lut_array_signature(params))

    def elaborate(self, platform):
        p = self._params
        lp, el = p.lut, p.lut_layout
        R, C, T = p.rows, el.chunks, lp.apot_terms
        m = Module()
        iss = self.issue
        out_valid = Signal()
        en = ~self.stall
        m.d.comb += self.stall.eq(out_valid & ~self.results.ready)

        ctl = data.StructLayout({"valid": 1, "first": 1, "final": 1, "gemv_last": 1})
        # ---- issue -> s1: the beat waits for its activation word (buffer read register)
        s1, s1_beat = Signal(ctl), Signal(iss.beat.shape())
        with m.If(en):
            m.d.sync += [s1.valid.eq(iss.valid), s1.first.eq(iss.first), s1.final.eq(iss.final),
                         s1.gemv_last.eq(iss.gemv_last), s1_beat.eq(iss.beat)]

        # ---- s1 -> s2: one table per chunk of the word
        s2, s2_beat = Signal(ctl), Signal(iss.beat.shape())
        tabs = []
        for c in range(C):
            new = build_tables(m, [self.x[KEY_BITS * c + j] for j in range(KEY_BITS)], lp,
                               prefix=f"c{c}_")
            regs = table_registers(lp, prefix=f"c{c}_")
            with m.If(en):
                m.d.sync += [t.eq(v) for tab, nw in zip(regs, new) for t, v in zip(tab, nw)]
            tabs.append(regs)
        with m.If(en):
            m.d.sync += [s2.eq(s1), s2_beat.eq(s1_beat)]

        # ---- s2 -> s3: every row's key of every chunk reads its table
        term = data.StructLayout({"sign": signed(2), "shift": lp.shift_bits})
        s3 = Signal(ctl)
        s3_sum = [[Signal(signed(lp.lut_bits), name=f"q{r}_{c}") for c in range(C)] for r in range(R)]
        s3_terms = [[[Signal(term, name=f"qt{r}_{c}_{t}") for t in range(T)] for c in range(C)]
                    for r in range(R)]
        with m.If(en):
            m.d.sync += s3.eq(s2)
            for r in range(R):
                for c in range(C):
                    i = r * C + c
                    m.d.sync += s3_sum[r][c].eq(lookup(m, tabs[c], s2_beat.key[i], lp, f"{r}_{c}"))
                    for t in range(T):
                        m.d.sync += [s3_terms[r][c][t].sign.eq(s2_beat.sign[i * T + t]),
                                     s3_terms[r][c][t].shift.eq(s2_beat.shift[i * T + t])]

        # ---- s3 -> s4: shift by every term, add every chunk (one tree per row)
        s4 = Signal(ctl)
        s4_sum = [Signal(signed(lp.row_bits), name=f"sh{r}") for r in range(R)]
        with m.If(en):
            m.d.sync += s4.eq(s3)
            for r in range(R):
                parts = []
                for c in range(C):
                    parts += apot_parts(m, s3_sum[r][c], s3_terms[r][c], lp.lut_bits, lp.max_shift,
                                        f"{r}_{c}")
                m.d.sync += s4_sum[r].eq(tree_sum(parts))

        # ---- s4 -> accumulators; a block's final beat fills the out register
        accumulate(m, en, s4, s4_sum, out_valid, self.results, lp.row_bits)
        return m

