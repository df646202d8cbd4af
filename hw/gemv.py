"""GEMV engine: y = W x for one layer, R output rows x L lanes at a time (architecture.md §4, issue 7).

```
 cmd (K, N, format set, path) ─► descriptor registers, status ◄─ abort_req
 precision (latched at cmd) ──┘
 acts ─► activation buffer (max_k/L words of L*A bits, amaranth.lib.memory) ─┐ read register
 weights (R*L codes + R descriptors per beat) ─► sequencer (term/beat/group/block counters) ─┤
                                                                  GemvArray (R rows x L lanes)
                                                                              └─► results
```

A GEMV: one ``cmd`` beat (the layer descriptor), then K/L ``acts`` beats fill the buffer, then
the weight stream in the order :mod:`golden.gemv_layout` defines — row blocks, groups, beats.
Each weight beat is held for T cycles, T = the largest term count among the R rows' formats
for that group, limited by the precision latched at ``cmd`` (0 = full); each cycle one term of
every weight of the beat is issued, with the activation beat read from the buffer and broadcast
to all R rows. After a block's last group, its R row results leave as one ``results`` beat.

With ``registered_control`` (the ECP5 builds) the weight beat being issued and the next one wait
in a two-entry queue; a beat's term count T and its format check are computed when it enters,
so ``weights.ready`` is a function of registers, not of the beat (issue 10: through the
term-count tables it reached the weight source's clock enables). Without it (the iCE40 build)
the beat is issued straight from ``weights``. Either way the first beat of a GEMV enters during
the activation load and the timing below is the same.

No bubbles: beats, groups, blocks and GEMVs follow each other at one issue per cycle while the
weight stream flows; a GEMV costs ``1 + K/L + sum over blocks and groups of T * G/L`` cycles
(descriptor, activation load, compute) — :mod:`golden.gemv_cycles` is that model. The next
``cmd`` is accepted as soon as the last term is issued, so the next GEMV's descriptor and
activation load overlap the previous one's drain (pipeline, dequantizers, results).

Errors (sticky flags in ``status``, cleared by the next accepted ``cmd``): a descriptor with a
bad K, N, format set or compute path is consumed and rejected (the engine stays idle); a weight
beat with a format id outside the layer's set, or ``abort_req``, flushes the array (its state is
reset, results not yet offered on ``results`` are dropped; one already offered is still
delivered) and returns the engine to idle. No reset is needed; the
weight source must drop the rest of that GEMV's stream.

Compute paths: ``cmd.path`` = 0 selects the bit-serial array (:class:`hw.gemv_array.GemvArray`);
``cmd.path`` = 1 the shift-add LUT path (:class:`hw.lut_array.LutArray`, generator parameter
``lut``; with ``lut=None`` no LUT logic is generated and path 1 is rejected with ``err_desc``).
Both share the activation buffer, the ``weights`` port (path 1 reads each beat as one plane of
one activation word: :class:`golden.bcq_layout.EngineLutLayout`), the sequencer and
``results``. On path 1 the sequencer's term counter counts planes: a word's beats are its p
planes, p = ``precision`` capped by ``cmd.planes`` (0 = all), one beat per cycle, so a GEMV
costs ``1 + K/L + ceil(N/R) · K/L · p`` cycles. When a GEMV's path differs from the previous
one's, its first beat waits until the previous GEMV's results have all reached the skid buffer
(results leave in order; only at a path switch, a few cycles).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, ResetSignal, Signal
from amaranth.lib import data, memory, wiring

from hw.gemv_array import GemvArray
from hw.gemv_params import GemvParams
from hw.interfaces import gemv_engine_signature, struct_layout
from hw.lut_array import LutArray
from hw.params import id_port_bits
from hw.skid import SkidBuffer
from hw.term_decoder import format_terms_table

__all__ = ["GemvEngine"]

#: Sequencer states. IDLE is not 0: Yosys writes `x == 0` as `!x` (a Verilator lint warning).
IDLE, LOAD, RUN = 1, 2, 3


class GemvEngine(wiring.Component):
    """R x L bit-serial GEMV engine.

    Parameters are those of :meth:`hw.gemv_params.GemvParams.make` (keyword-only), validated
    before anything is elaborated; or pass ``params=`` a :class:`GemvParams`.

    Ports: :func:`hw.interfaces.gemv_engine_signature`, repeated here.

    Members
    -------
    cmd : In(stream.Signature(cmd layout))
        Layer descriptor ``{k, n, fmt_set, path[, planes]}``; accepted only while no GEMV is loading or
        computing. Layout: :attr:`golden.gemv_layout.GemvLayout.cmd`.
    precision : In(seq_bits)
        Path 0: terms per weight (1..T; 0 or >= T = full precision); path 1: planes read (1..q;
        0 or >= q = all). Latched when ``cmd`` is accepted.
    abort_req : In(1)
        Flush the array and return to idle; sets ``status.err_abort`` if a GEMV was in flight.
    acts : In(stream.Signature(act layout))
        L signed activations per beat, K/L beats after each accepted ``cmd``.
    weights : In(stream.Signature(weight layout))
        R*L codes + R group descriptors per beat (:attr:`golden.gemv_layout.GemvLayout.weights`);
        path 1: one plane of one word's keys and terms (:class:`golden.bcq_layout.EngineLutLayout`).
    results : Out(stream.Signature(result layout))
        One beat per row block: R signed row results and ``last``.
    status : Out(status layout)
        ``busy`` and the sticky error flags of :data:`golden.gemv_layout.STATUS_FLAGS`.
    """

    def __init__(self, params: GemvParams | None = None, **kw):
        self._MustUse__silence = True     # no "never used" warning if validation fails
        self._params = p = params if params is not None else GemvParams.make(**kw)
        self._MustUse__silence = False
        super().__init__(gemv_engine_signature(p))

    @property
    def params(self) -> GemvParams:
        return self._params

    def elaborate(self, platform):
        p = self._params
        R, B = p.rows, p.beats_per_group
        nsets = len(p.format_sets)
        m = Module()
        rst = ResetSignal()

        flush = Signal()
        array = GemvArray(p)
        m.submodules.array = ResetInserter({"sync": flush})(array)
        m.submodules.buf = buf = memory.Memory(shape=self.acts.p.x.shape(), depth=p.buffer_depth,
                                              init=[])
        rd = buf.read_port(domain="sync")
        wr = buf.write_port()

        # ---- descriptor registers (latched when a cmd is accepted)
        state = Signal(2, init=IDLE)
        ngroups_m1 = Signal(range(max(2, p.max_groups)))
        n_rows = Signal(p.layout.n_bits)
        fmt_set = Signal(range(max(2, nsets)))
        prec = Signal(p.seq_bits)
        # ---- sequencer counters (term: the term of path 0, the plane of path 1)
        term = Signal(p.seq_bits)
        beat = Signal(range(max(2, B)))
        group = Signal(range(max(2, p.max_groups)))
        addr = Signal(range(max(2, p.buffer_depth)))
        rows_base = Signal(p.layout.n_bits)
        outstanding = Signal(range(8))        # row blocks issued and not yet in the skid buffer
        status = Signal(self.status.shape())

        lut = p.lut is not None
        path1 = Signal()                       # the current GEMV runs on the LUT path
        # the LUT path's stall holds its stages; without registered_control the array's holds
        # its stages too (its clock enable); with it, the array's holds back a group's last term
        stall = Signal()
        astall = 0 if p.registered_control else array.stall
        m.d.comb += [array.fmt_set.eq(fmt_set), array.x.eq(rd.data),
                     rd.addr.eq(addr), rd.en.eq(~stall),
                     wr.addr.eq(addr), wr.data.eq(self.acts.p.x)]
        # the result skid buffer is outside the flush: a result already offered is delivered
        m.submodules.skid = skid = SkidBuffer(self.results.p.shape())
        wiring.connect(m, skid.o, wiring.flipped(self.results))
        if lut:
            lut_arr = LutArray(p)
            m.submodules.lut = ResetInserter({"sync": flush})(lut_arr)
            m.d.comb += [lut_arr.x.eq(rd.data), stall.eq(astall | lut_arr.stall)]
            # at most one path offers a result at a time (a path switch waits for the drain)
            m.d.comb += [skid.i.valid.eq(array.results.valid | lut_arr.results.valid),
                         skid.i.p.eq(Mux(lut_arr.results.valid, lut_arr.results.p, array.results.p)),
                         array.results.ready.eq(skid.i.ready), lut_arr.results.ready.eq(skid.i.ready)]
        else:
            m.d.comb += stall.eq(astall)
            wiring.connect(m, array.results, skid.i)

        # ---- the weight beat being issued (registered_control: from the weight queue), its terms
        # (the largest among the R rows' formats, capped by prec; path 1: the planes) and its
        # format check (registered_control: computed as it enters the queue)
        wi = self.weights.p
        hold = p.registered_control            # the weight queue and registered flags
        if hold:
            # a two-entry queue holds the beat being issued and the next one, each with its term
            # count and format check: two reset-less banks, written alternately and read through
            # a multiplexer at the read pointer (a register), so no ~1,200-bit clock enable or
            # reset depends on the issue logic; weights.ready is a function of three registers
            # (the queue not full, the GEMV's stream still open, reset)
            wbits = len(wi.as_value())
            banks = [Signal(wbits + p.seq_bits + 1, name=f"wq_bank{k}", reset_less=True)
                     for k in range(2)]
            wq_wptr, wq_rptr, wq_level = Signal(), Signal(), Signal(range(3))
            head = Signal.like(banks[0], name="wq_head")
            m.d.comb += head.eq(Mux(wq_rptr, banks[1], banks[0]))
            w = data.View(wi.shape(), head[:wbits])
            hold_valid = wq_level.any()
        else:                                  # registered_control off: the beat from the port
            w, hold_valid = wi, self.weights.valid
        t_rows, bad = [], []
        for r in range(R):
            t_r = Signal(p.term_bits, name=f"t_row{r}")
            sel, bad_r = None, None
            for si, fs in enumerate(p.format_sets):
                table = Array(Const(t, p.term_bits) for t in format_terms_table(fs))
                t_si = table[wi.fmt[r][:id_port_bits(fs)]]
                bad_si = wi.fmt[r] >= len(fs.formats)
                sel = t_si if sel is None else Mux(fmt_set == si, t_si, sel)
                bad_r = bad_si if bad_r is None else Mux(fmt_set == si, bad_si, bad_r)
            m.d.comb += t_r.eq(sel)
            t_rows.append(t_r)
            bad.append(bad_r)
        while hold and len(t_rows) > 1:        # a balanced tree of maxima (log2 R levels)
            t_rows = [Mux(a > b, a, b) for a, b in zip(t_rows[0::2], t_rows[1::2])] + (
                t_rows[-1:] if len(t_rows) % 2 else [])
        t_grp = t_rows[0]
        for t_r in t_rows[1:]:                 # registered_control off: a chain (R small)
            t_grp = Mux(t_r > t_grp, t_r, t_grp)
        t_in = Signal(p.seq_bits, name="t_in" if hold else "t_cur")
        planes = Signal(p.seq_bits)            # path 1: planes read (precision capped by q)
        m.d.comb += t_in.eq(Mux(path1, planes, Mux(prec.any() & (prec < t_grp), prec, t_grp)))
        if hold:
            t_cur, bad_fmt = head[wbits:wbits + p.seq_bits], head[-1]
        else:
            t_cur, bad_fmt = t_in, Signal()
            m.d.comb += bad_fmt.eq(_any(bad) & ~path1)

        # last_block: rows_base + R >= n_rows (with registered_control a register)
        last_term, last_beat, last_group, last_block = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [last_term.eq(term + 1 >= t_cur), last_beat.eq(beat == B - 1),
                     last_group.eq(group == ngroups_m1)]
        if not hold:
            m.d.comb += last_block.eq(rows_base + R >= n_rows)

        w_open = Signal()                      # the GEMV's weight stream has beats to come
        running = state == RUN
        fmt_err = Signal()
        advance = Signal()
        switching = Signal()                   # path differs from the previous GEMV's: drain first
        m.d.comb += [
            fmt_err.eq(running & hold_valid & bad_fmt),
            # a group's final term waits for a credit of the array's group FIFO
            advance.eq((running & hold_valid & ~bad_fmt & ~stall & ~self.abort_req
                        & ~(array.stall & last_term & last_beat & ~path1)
                        & ~(switching & outstanding.any())) if hold else
                       (running & hold_valid & ~bad_fmt & ~stall & ~self.abort_req
                        & ~(switching & outstanding.any()))),
            # path 0 holds a beat for its terms; path 1 takes a beat (one plane) every cycle.
            # With the queue, beats enter while it has room and the GEMV's stream is open (not
            # past its last beat: the next one belongs to the next descriptor)
            self.weights.ready.eq((~wq_level[1] & w_open & ~rst) if hold else
                                  advance & (last_term | path1) & ~rst),
            self.acts.ready.eq((state == LOAD) & ~rst),
            self.cmd.ready.eq((state == IDLE) & ~rst),
            wr.en.eq(self.acts.valid & self.acts.ready),
        ]
        iss = array.issue
        m.d.comb += [iss.valid.eq(advance & ~path1), iss.beat.eq(w), iss.term.eq(term),
                     iss.first.eq(~(term.any() | beat.any())), iss.final.eq(last_term & last_beat),
                     iss.row_last.eq(last_group), iss.gemv_last.eq(last_block)]
        if lut:
            li = lut_arr.issue
            bits = p.lut_layout.weights.size
            m.d.comb += [li.valid.eq(advance & path1),
                         li.beat.eq(data.View(struct_layout(p.lut_layout.weights), w.as_value()[:bits])),
                         li.first.eq(~(term.any() | beat.any() | group.any())),
                         li.final.eq(last_term & last_beat & last_group), li.gemv_last.eq(last_block)]

        def step_position(inner, inner_last, beat_, beat_last, group_, group_last, block_end,
                          inner_end=()):
            """Advance a stream position: ``inner`` (a term or plane), then beat, group and row
            block (``block_end()`` emits the block's own updates); the issue side and the weight
            queue's write side walk the same order."""
            with m.If(inner_last):
                m.d.sync += [inner.eq(0), *inner_end]
                with m.If(beat_last):
                    m.d.sync += beat_.eq(0)
                    with m.If(group_last):
                        m.d.sync += group_.eq(0)
                        block_end()
                    with m.Else():
                        m.d.sync += group_.eq(group_ + 1)
                with m.Else():
                    m.d.sync += beat_.eq(beat_ + 1)
            with m.Else():
                m.d.sync += inner.eq(inner + 1)

        if hold:
            wq_w, wq_r = Signal(), Signal()
            m.d.comb += [wq_w.eq(self.weights.valid & self.weights.ready),
                         wq_r.eq(advance & (last_term | path1))]
            for k, bank in enumerate(banks):
                with m.If(wq_w & (wq_wptr == k)):
                    m.d.sync += bank.eq(Cat(wi.as_value(), t_in, _any(bad) & ~path1))
            m.d.sync += [wq_wptr.eq(wq_wptr ^ wq_w), wq_rptr.eq(wq_rptr ^ wq_r),
                         wq_level.eq(wq_level + wq_w - wq_r)]
            # the stream's position of the next beat to enter (plane, beat, group, row block),
            # to close the GEMV's stream after its last beat
            w_plane, w_beat, w_group = Signal.like(term), Signal.like(beat), Signal.like(group)
            w_rows_base, w_last_block = Signal.like(rows_base), Signal(name="w_last_block")
            w_last_plane = Signal()
            m.d.comb += w_last_plane.eq((~path1 | (w_plane + 1 >= planes)) if lut else 1)
            def w_block_end():
                m.d.sync += [w_rows_base.eq(w_rows_base + R),
                             w_last_block.eq(w_rows_base + 2 * R >= n_rows)]
                with m.If(w_last_block):
                    m.d.sync += w_open.eq(0)

            with m.If(wq_w):
                step_position(w_plane, w_last_plane, w_beat, w_beat == B - 1, w_group,
                              w_group == ngroups_m1, w_block_end)

        # ---- status: busy while loading/computing or while results are still in flight
        busy = Signal()
        m.d.comb += [busy.eq((state != IDLE) | outstanding.any() | self.results.valid),
                     self.status.eq(status), self.status.busy.eq(busy)]
        block_issued = advance & last_term & last_beat & last_group
        block_out = skid.i.valid & skid.i.ready
        with m.If(block_issued & ~block_out):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(block_out & ~block_issued):
            m.d.sync += outstanding.eq(outstanding - 1)

        # ---- descriptor: validate and latch
        c = self.cmd.p
        err_k = ~c.k.any() | c.k[:p.log2_group].any() | (c.k > p.max_k)
        err_n = ~c.n.any() | (c.n > p.max_n)
        if lut:
            q = p.lut.max_planes
            err_desc = Mux(c.path, ~c.planes.any() | (c.planes > q), c.fmt_set >= nsets)
        else:
            err_desc = (c.fmt_set >= nsets) | c.path.any()
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [status.err_k.eq(err_k), status.err_n.eq(err_n), status.err_desc.eq(err_desc),
                         status.err_format.eq(0), status.err_abort.eq(0)]
            with m.If(~(err_k | err_n | err_desc)):
                m.d.sync += [state.eq(LOAD), ngroups_m1.eq((c.k >> p.log2_group) - 1),
                             n_rows.eq(c.n), fmt_set.eq(c.fmt_set), prec.eq(self.precision),
                             term.eq(0), beat.eq(0), group.eq(0), addr.eq(0), rows_base.eq(0)]
                if hold:
                    m.d.sync += [last_block.eq(c.n <= R), w_open.eq(1), w_plane.eq(0), w_beat.eq(0),
                                 w_group.eq(0), w_rows_base.eq(0), w_last_block.eq(c.n <= R)]
                if lut:
                    pr = self.precision
                    m.d.sync += [path1.eq(c.path), switching.eq(c.path != path1),
                                 planes.eq(Mux(pr.any() & (pr < c.planes), pr, c.planes))]
        with m.If(~outstanding.any()):
            m.d.sync += switching.eq(0)

        # ---- activation load: K/L beats into the buffer
        with m.If(wr.en):
            m.d.sync += addr.eq(addr + 1)
            with m.If(last_beat):
                m.d.sync += beat.eq(0)
                with m.If(last_group):
                    m.d.sync += [group.eq(0), addr.eq(0), state.eq(RUN)]
                with m.Else():
                    m.d.sync += group.eq(group + 1)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)

        # ---- compute: term -> beat -> group -> row block
        def block_end():
            with m.If(last_block):
                m.d.sync += state.eq(IDLE)
            with m.Else():
                m.d.sync += [rows_base.eq(rows_base + R),
                             *([last_block.eq(rows_base + 2 * R >= n_rows)] if hold else [])]

        with m.If(advance):
            step_position(term, last_term, beat, last_beat, group, last_group, block_end,
                          inner_end=[addr.eq(Mux(last_beat & last_group, 0, addr + 1))])

        # ---- abort / bad format id: flush and go idle (no reset needed)
        m.d.comb += flush.eq(self.abort_req | fmt_err)
        with m.If(flush):
            m.d.sync += [state.eq(IDLE), term.eq(0), beat.eq(0), group.eq(0), addr.eq(0),
                         rows_base.eq(0), outstanding.eq(0),
                         *([w_open.eq(0), wq_level.eq(0), wq_wptr.eq(0), wq_rptr.eq(0)] if hold else [])]
            with m.If(fmt_err):
                m.d.sync += status.err_format.eq(1)
            with m.If(self.abort_req & busy):
                m.d.sync += status.err_abort.eq(1)
        return m


def _any(sigs):
    out = sigs[0]
    for s in sigs[1:]:
        out = out | s
    return out
