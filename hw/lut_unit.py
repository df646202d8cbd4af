"""Shift-add LUT unit: y = W x for BCQ weights by table look-up, adds and shifts (ShiftAddLLM,
FIGLUT; docs/architecture.md §2.4, architecture.md §4, issue 8).

```
 acts (8 x A bits) ─► table build (134 adders) ─► table register (128 x (A+4) bits)
 keys (R x 8 bits) ─► per row: 128:1 read, mirror (key bit 7: negate) ─► [s1: sum, terms]
 scales (R x T terms) ─► per-row/plane term store ─┘
      [s1] ─► per row: Σ_t ±(sum << shift_t) ─► [s2] ─► acc += ─► [out] ─► skid buffer ─► results
```

For each chunk of 8 activations the unit keeps the table ``lut[key] = Σ_j (2·bit_j − 1)·x_j``
halved by mirror symmetry: it stores the 128 keys with bit 7 = 0 (``lut[~key] = −lut[key]``),
built as ``lut[0] = −Σ x`` and ``lut[m + 2^s] = lut[m] + 2·x_s``. Every cycle the R rows of the
block each query it with one plane's key; the sum is shifted by the plane's APoT terms (≤ T
signed powers of two, as shifts ``e − E0``) and accumulated. The stream order (chunk, then p
planes, most significant first) and every payload are :mod:`golden.bcq_layout`'s.

Table construction (measured, ``tests/hw/test_lut_unit.py``): *parallel build*. The whole
table is computed combinationally from the chunk's ``acts`` beat and registered in the cycle
the previous chunk's last query issues, so table builds never stall the readers: with streams
that flow, back-to-back GEMVs start every ``2 + ceil(N/R) · K/8 · p`` cycles (one cycle for the
descriptor, one for the first table, one per query). The price is 134 adders of A+4 bits
and a 128-entry register table, shared by the R readers; a serial builder (one entry per cycle,
double-buffered) needs 128 cycles per table while a chunk's queries take p cycles, so it would
stay hidden only if each table were queried by ≥ 128/p row blocks (chunk-major order).

Scales: a scale beat arrives for each plane at the chunks that start a scale group
(``cmd.group_chunks``: G/8 in the row layout, 1 in the block layout); the unit keeps each row's
terms per plane until the next group.

Errors (sticky flags in ``status``, cleared by the next accepted ``cmd``): a descriptor with a
bad K, N, plane count or group_chunks is consumed and rejected; the unit stays idle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring

from golden.bcq_layout import KEY_BITS
from hw.interfaces import lut_unit_signature
from hw.lut_params import LutParams
from hw.pe import tree_sum
from hw.skid import SkidBuffer

__all__ = ["LutUnit", "build_tables", "table_registers", "lookup", "apot_parts", "accumulate"]

#: Sequencer states. IDLE is not 0 (Yosys writes `x == 0` as `!x`, a Verilator lint warning).
IDLE, RUN = 1, 2


def build_tables(m: Module, x, p: LutParams, prefix: str = "") -> list[list[Signal]]:
    """The stored entries for activations ``x[0..7]``, combinational: one table per μ inputs
    (μ = ``p.table_inputs``), each halved by mirror symmetry (its keys with the top bit 0):
    ``lut[0] = −Σ x``, ``lut[m + 2^s] = lut[m] + 2·x_s``."""
    mu = p.table_inputs
    out = []
    for h in range(KEY_BITS // mu):
        xs = [x[h * mu + j] for j in range(mu)]
        ent = [Signal(signed(p.entry_bits), name=f"{prefix}lut_new{h}_{i}")
               for i in range(1 << (mu - 1))]
        m.d.comb += ent[0].eq(-tree_sum(xs))
        for sb in range(mu - 1):
            for i in range(1 << sb):
                m.d.comb += ent[(1 << sb) + i].eq(ent[i] + (xs[sb] << 1))
        out.append(ent)
    return out


def table_registers(p: LutParams, prefix: str = "") -> list[Array]:
    """Registers for the tables of :func:`build_tables` (read by :func:`lookup`)."""
    mu = p.table_inputs
    return [Array(Signal(signed(p.entry_bits), name=f"{prefix}lut{h}_{i}")
                  for i in range(1 << (mu - 1))) for h in range(KEY_BITS // mu)]


def lookup(m: Module, tabs: list[Array], key, p: LutParams, name: str):
    """``lut[key]`` of the 8-input key, as the sum of its μ-bit parts' reads; a part whose top
    bit is set reads ``−lut[~part]`` (mirror symmetry)."""
    mu = p.table_inputs
    parts = []
    for h, tab in enumerate(tabs):
        k = key[h * mu:(h + 1) * mu]
        idx = Mux(k[mu - 1], ~k[:mu - 1], k[:mu - 1]) if mu > 1 else 0
        hit = Signal(signed(p.entry_bits), name=f"hit{name}_{h}")
        m.d.comb += hit.eq(tab[idx])
        parts.append(Mux(k[mu - 1], -hit, hit))
    total = Signal(signed(p.lut_bits), name=f"sum{name}")
    m.d.comb += total.eq(tree_sum(parts))
    return total


def apot_parts(m: Module, value, terms, value_bits: int, max_shift: int, name: str) -> list[Signal]:
    """``±(value << shift_t)`` for each APoT term (sign 0: 0); the negation is computed once."""
    neg = Signal(signed(value_bits + 1), name=f"neg{name}")
    m.d.comb += neg.eq(-value)
    parts = []
    for t, tt in enumerate(terms):
        v = Signal(signed(value_bits + 1 + max_shift), name=f"part{name}_{t}")
        m.d.comb += v.eq(Mux(~tt.sign.any(), 0, Mux(tt.sign[1], neg, value) << tt.shift))
        parts.append(v)
    return parts


def accumulate(m: Module, en, s, sums, out_valid: Signal, results, row_bits: int) -> None:
    """Row accumulators: ``acc += sum`` for each valid stage ``s`` (restarting at ``s.first``);
    a block's ``s.final`` fills the out register (``out_valid``), which offers it on the
    ``results`` stream (rows and ``last``) until ``results.ready``. ``en``: the clock enable."""
    R = len(sums)
    acc = [Signal(signed(row_bits), name=f"acc{r}") for r in range(R)]
    acc_next = [Signal(signed(row_bits), name=f"acc_next{r}") for r in range(R)]
    out_rows = [Signal(signed(row_bits), name=f"out{r}") for r in range(R)]
    out_last = Signal()
    for r in range(R):
        m.d.comb += acc_next[r].eq(Mux(s.first, 0, acc[r]) + sums[r])
    m.d.comb += [results.valid.eq(out_valid), results.p.last.eq(out_last)]
    m.d.comb += [results.p.row[r].eq(out_rows[r]) for r in range(R)]
    with m.If(en):
        with m.If(results.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(s.valid):
            m.d.sync += [a.eq(n) for a, n in zip(acc, acc_next)]
            with m.If(s.final):
                m.d.sync += [out_valid.eq(1), out_last.eq(s.gemv_last)]
                m.d.sync += [o.eq(n) for o, n in zip(out_rows, acc_next)]


class LutUnit(wiring.Component):
    """R-row shift-add LUT unit.

    Parameters are those of :meth:`hw.lut_params.LutParams.make` (keyword-only), validated before
    anything is elaborated; or pass ``params=`` a :class:`LutParams`.

    Ports: :func:`hw.interfaces.lut_unit_signature`, repeated here.

    Members
    -------
    cmd : In(stream.Signature(cmd layout))
        Layer descriptor ``{k, n, planes, group_chunks}`` (:attr:`golden.bcq_layout.LutLayout.cmd`).
    precision : In(plane_bits)
        Planes to read (1..planes; 0 or >= planes = all); latched when ``cmd`` is accepted.
    acts : In(stream.Signature(acts layout))
        One chunk of 8 signed activations per beat, K/8 beats per row block.
    keys : In(stream.Signature(keys layout))
        R keys per beat, chunk by chunk, p planes per chunk.
    scales : In(stream.Signature(scales layout))
        R rows' APoT terms for one plane, at each chunk that starts a scale group.
    results : Out(stream.Signature(results layout))
        One beat per row block: R signed row results and ``last``.
    status : Out(status layout)
        ``busy`` and the sticky error flags of :data:`golden.bcq_layout.LUT_STATUS_FLAGS`.
    """

    def __init__(self, params: LutParams | None = None, **kw):
        self._MustUse__silence = True     # no "never used" warning if validation fails
        self._params = p = params if params is not None else LutParams.make(**kw)
        self._MustUse__silence = False
        super().__init__(lut_unit_signature(p))

    @property
    def params(self) -> LutParams:
        return self._params

    def elaborate(self, platform):
        p = self._params
        lay = p.layout
        R, T, Q = p.rows, p.apot_terms, p.max_planes
        m = Module()

        # ---- descriptor registers and sequencer counters
        state = Signal(2, init=IDLE)
        chunks_m1 = Signal(lay.k_bits)
        gc_m1 = Signal(lay.gc_bits)
        n_rows = Signal(lay.n_bits)
        planes = Signal(p.plane_bits)
        plane = Signal(p.plane_bits)
        chunk = Signal(lay.k_bits)
        gcount = Signal(lay.gc_bits)
        rows_base = Signal(lay.n_bits)
        outstanding = Signal(range(8))
        status = Signal(self.status.shape())

        # ---- output side: accumulators -> out register -> skid buffer
        m.submodules.skid = skid = SkidBuffer(self.results.p.shape())
        wiring.connect(m, skid.o, wiring.flipped(self.results))
        out_valid = Signal()
        stall = Signal()
        m.d.comb += stall.eq(out_valid & ~skid.i.ready)
        en = ~stall

        # ---- the table: built from the acts beat, loaded when the previous chunk is done
        tabs = table_registers(p)
        tab_valid = Signal()
        new = build_tables(m, self.acts.p.x, p)

        last_plane, last_chunk, last_block, need_scale = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [last_plane.eq(plane + 1 >= planes), last_chunk.eq(chunk == chunks_m1),
                     last_block.eq(rows_base + R >= n_rows), need_scale.eq(~gcount.any())]
        running = state == RUN
        go = Signal()
        m.d.comb += go.eq(running & en & tab_valid & self.keys.valid
                          & (self.scales.valid | ~need_scale))
        load = Signal()
        m.d.comb += [
            self.acts.ready.eq(running & (~tab_valid | (go & last_plane & ~(last_chunk & last_block)))),
            load.eq(self.acts.valid & self.acts.ready),
            self.keys.ready.eq(go),
            self.scales.ready.eq(go & need_scale),
        ]
        with m.If(load):
            m.d.sync += [t.eq(v) for tab, nw in zip(tabs, new) for t, v in zip(tab, nw)]
            m.d.sync += tab_valid.eq(1)
        with m.Elif(go & last_plane):
            m.d.sync += tab_valid.eq(0)

        # ---- query: per row, read + mirror, terms from the beat (new group) or the store
        term = data.StructLayout({"sign": signed(2), "shift": p.shift_bits})
        s1 = Signal(data.StructLayout({"valid": 1, "first": 1, "final": 1, "gemv_last": 1}))
        s1_sum = [Signal(signed(p.lut_bits), name=f"q{r}") for r in range(R)]
        s1_terms = [[Signal(term, name=f"qt{r}_{t}") for t in range(T)] for r in range(R)]
        sc = self.scales.p
        for r in range(R):
            key = self.keys.p.key[r]
            store = [[Signal(term, name=f"st{r}_{i}_{t}") for t in range(T)] for i in range(Q)]
            for t in range(T):
                beat_t = Signal(term, name=f"bt{r}_{t}")
                m.d.comb += [beat_t.sign.eq(sc.sign[r * T + t]), beat_t.shift.eq(sc.shift[r * T + t])]
                stored = store[0][t]
                for i in range(1, Q):
                    stored = Mux(plane == i, store[i][t], stored)
                with m.If(go):
                    m.d.sync += s1_terms[r][t].eq(Mux(need_scale, beat_t, stored))
                for i in range(Q):
                    with m.If(go & need_scale & (plane == i if i else ~plane.any())):
                        m.d.sync += store[i][t].eq(beat_t)
            with m.If(go):
                m.d.sync += s1_sum[r].eq(lookup(m, tabs, key, p, str(r)))
        with m.If(en):
            m.d.sync += [s1.valid.eq(go), s1.first.eq(~chunk.any() & ~plane.any()),
                         s1.final.eq(last_chunk & last_plane), s1.gemv_last.eq(last_block)]

        # ---- s1 -> s2: shift by every term and add (one small tree per row)
        s2 = Signal(s1.shape())
        s2_sum = [Signal(signed(p.row_bits), name=f"sh{r}") for r in range(R)]
        for r in range(R):
            parts = apot_parts(m, s1_sum[r], s1_terms[r], p.lut_bits, p.max_shift, str(r))
            with m.If(en):
                m.d.sync += s2_sum[r].eq(tree_sum(parts))
        with m.If(en):
            m.d.sync += s2.eq(s1)

        # ---- s2 -> accumulators; a block's final query fills the out register
        accumulate(m, en, s2, s2_sum, out_valid, skid.i, p.row_bits)

        # ---- status: busy while computing or while results are in flight
        busy = Signal()
        m.d.comb += [busy.eq(running | outstanding.any()), self.status.eq(status),
                     self.status.busy.eq(busy)]
        block_issued = go & last_plane & last_chunk
        block_out = self.results.valid & self.results.ready
        with m.If(block_issued & ~block_out):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(block_out & ~block_issued):
            m.d.sync += outstanding.eq(outstanding - 1)

        # ---- descriptor: validate and latch
        c = self.cmd.p
        m.d.comb += self.cmd.ready.eq(state == IDLE)
        err_k = ~c.k.any() | c.k[:3].any() | (c.k > p.max_k)
        err_n = ~c.n.any() | (c.n > p.max_n)
        err_desc = ~c.planes.any() | (c.planes > Q) | ~c.group_chunks.any()
        prec = self.precision
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [status.err_k.eq(err_k), status.err_n.eq(err_n), status.err_desc.eq(err_desc)]
            with m.If(~(err_k | err_n | err_desc)):
                m.d.sync += [state.eq(RUN), chunks_m1.eq((c.k >> 3) - 1), gc_m1.eq(c.group_chunks - 1),
                             n_rows.eq(c.n),
                             planes.eq(Mux(prec.any() & (prec < c.planes), prec, c.planes)),
                             plane.eq(0), chunk.eq(0), gcount.eq(0), rows_base.eq(0)]

        # ---- sequencer: plane -> chunk -> row block
        with m.If(go):
            with m.If(last_plane):
                m.d.sync += plane.eq(0)
                with m.If(last_chunk):
                    m.d.sync += [chunk.eq(0), gcount.eq(0)]
                    with m.If(last_block):
                        m.d.sync += state.eq(IDLE)
                    with m.Else():
                        m.d.sync += rows_base.eq(rows_base + R)
                with m.Else():
                    m.d.sync += [chunk.eq(chunk + 1), gcount.eq(Mux(gcount == gc_m1, 0, gcount + 1))]
            with m.Else():
                m.d.sync += plane.eq(plane + 1)
        return m
