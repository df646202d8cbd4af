"""Bit-serial processing element (BitMoD-style, docs/architecture.md §2.3/§4).

L lanes. A ``weights`` beat carries L codes and L signed activations. The PE keeps the beat on
its input for T cycles — T = terms of the group's format, limited by the runtime ``precision``
(0 = full precision) — and in cycle t adds, through an adder tree,

    sum over lanes of  ±(x_i << e_i)     (the t-th term of lane i's weight, or 0)

into the group partial sum. After G/L beats it offers {psum, u, last} on ``psums``.

Ports: :func:`hw.interfaces.pe_signature`. The ``groups`` descriptor is read while its group is
being computed and transferred with the group's last beat (no register, no bubble); ``psums``
leaves a register ``PE_PIPELINE_DEPTH`` (= 2) cycles after the group's final term, and while it
is full and not read the PE stalls (it never drops).

One beat-term per cycle when all streams flow: a group costs exactly T_f * G/L cycles; the two
pipeline registers (lane terms, group sum) add latency, not cycles per group.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring

from hw.interfaces import pe_signature
from hw.params import DotParams
from hw.term_decoder import TermDecoder, format_terms_table

__all__ = ["BitSerialPE", "tree_sum"]


def tree_sum(values):
    """Balanced adder tree (log2 depth); Amaranth widens each addition by one bit."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class BitSerialPE(wiring.Component):
    """L-lane bit-serial PE; ports in :func:`hw.interfaces.pe_signature`.

    Parameters
    ----------
    params : DotParams
        Validated generator parameters (``DotParams.make``).
    """

    def __init__(self, params: DotParams):
        self._params = params
        super().__init__(pe_signature(params))

    def elaborate(self, platform):
        p = self._params
        m = Module()

        term = Signal(p.term_bits)
        beat = Signal(p.beat_count_bits)
        psum = Signal(signed(p.psum_bits))

        fmt_id = self.groups.p.fmt_id
        # cycles per weight of this group: the format's term count, limited by precision
        t_fmt = Signal(p.term_bits)
        t_cur = Signal(p.term_bits)
        m.d.comb += t_fmt.eq(Array(Const(t, p.term_bits) for t in format_terms_table(p.fs))[fmt_id])
        with m.If((self.precision != 0) & (self.precision < t_fmt)):
            m.d.comb += t_cur.eq(self.precision)
        with m.Else():
            m.d.comb += t_cur.eq(t_fmt)

        lane_terms = []
        for i in range(p.lanes):
            dec = TermDecoder(p.fs)
            m.submodules[f"dec{i}"] = dec
            m.d.comb += [dec.fmt_id.eq(fmt_id), dec.code.eq(self.weights.p.codes[i]),
                         dec.term.eq(term)]
            x = self.weights.p.acts[i]
            shifted = Signal(signed(p.act_bits + p.fs.max_exp), name=f"sh{i}")
            lane = Signal(signed(p.act_bits + p.fs.max_exp + 1), name=f"lane{i}")
            m.d.comb += [
                shifted.eq(x << dec.exp),
                lane.eq(Mux(dec.nonzero, Mux(dec.sign, -shifted, shifted), 0)),
            ]
            lane_terms.append(lane)

        # Two pipeline registers keep the decoder, the adder tree and the dequantizer on separate
        # register-to-register paths: stage 1 holds the L lane terms, stage 2 the group sum and
        # the outgoing {psum, u, last}. A full output register that is not being read stalls the
        # whole PE (one clock enable), so nothing is dropped; in steady state the dequantizer is
        # always ready and the PE never stalls.
        lane_r = [Signal.like(t, name=f"{t.name}_r") for t in lane_terms]
        s1_valid, s1_first, s1_final, s1_last = Signal(), Signal(), Signal(), Signal()
        s1_u = Signal(p.scale_bits)
        out_valid = Signal()
        out_psum = Signal(signed(p.psum_bits))
        out_u = Signal(p.scale_bits)
        out_last = Signal()

        psum_next = Signal(signed(p.psum_bits))
        m.d.comb += psum_next.eq(Mux(s1_first, 0, psum) + tree_sum(lane_r))

        last_term = Signal()
        last_beat = Signal()
        final = Signal()
        stall = Signal()
        advance = Signal()
        m.d.comb += [
            last_term.eq(term + 1 >= t_cur),
            last_beat.eq(beat == p.beats_per_group - 1),
            final.eq(last_term & last_beat),
            stall.eq(out_valid & ~self.psums.ready),
            # no transfer while in reset: a source must not see `ready` then
            advance.eq(self.weights.valid & self.groups.valid & ~stall & ~ResetSignal()),
            self.psums.valid.eq(out_valid),
            self.psums.p.psum.eq(out_psum),
            self.psums.p.u.eq(out_u),
            self.psums.p.last.eq(out_last),
            self.weights.ready.eq(advance & last_term),
            self.groups.ready.eq(advance & final),
        ]
        with m.If(~stall):
            # stage 1: this cycle's lane terms
            m.d.sync += [s1_valid.eq(advance), s1_first.eq(~(term.any() | beat.any())),
                         s1_final.eq(final), s1_u.eq(self.groups.p.u),
                         s1_last.eq(self.groups.p.last)]
            m.d.sync += [r.eq(t) for r, t in zip(lane_r, lane_terms)]
            # stage 2: accumulate; a group's last term fills the output register
            with m.If(self.psums.ready):
                m.d.sync += out_valid.eq(0)
            with m.If(s1_valid):
                m.d.sync += psum.eq(psum_next)
                with m.If(s1_final):
                    m.d.sync += [out_valid.eq(1), out_psum.eq(psum_next), out_u.eq(s1_u),
                                 out_last.eq(s1_last)]
        with m.If(advance):
            with m.If(final):
                m.d.sync += [term.eq(0), beat.eq(0)]
            with m.Elif(last_term):
                m.d.sync += [term.eq(0), beat.eq(beat + 1)]
            with m.Else():
                m.d.sync += term.eq(term + 1)
        return m
