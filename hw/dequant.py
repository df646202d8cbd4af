"""Per-group dequantizer: row += u * psum, bit-serially over the bits of u (docs/architecture.md §4).

Each cycle it consumes r bits of u (r = ``DotParams.dq_bits_per_cycle``) and adds
``sum_j u[j] * (psum << j)`` — r shifted copies, selected by the bits of u — to the row
accumulator, shifting psum left and u right by r. A group takes ``dq_steps = ceil(S / r)``
cycles, and ``dq_steps <= G/L`` (the shortest possible group), so while the PE computes the
next group the dequantizer is always done with the previous one: it accepts a new psum in its
own last step and adds no cycles in steady state.

On a group with ``last`` set, the last step moves the row sum into the ``result`` register
(and clears the accumulator) — only when that register is free or being read this cycle;
otherwise the dequantizer waits, and ``psums.ready`` stays low (backpressure).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from hw.interfaces import dequantizer_signature
from hw.params import DotParams
from hw.pe import tree_sum

__all__ = ["GroupDequantizer"]


class GroupDequantizer(wiring.Component):
    """Bit-serial ``row += u * psum``; ports in :func:`hw.interfaces.dequantizer_signature`.

    Parameters
    ----------
    params : DotParams
        Validated generator parameters (``DotParams.make``).
    """

    def __init__(self, params: DotParams):
        self._params = params
        super().__init__(dequantizer_signature(params))

    def elaborate(self, platform):
        p = self._params
        r, steps, S = p.dq_bits_per_cycle, p.dq_steps, p.scale_bits
        m = Module()

        busy = Signal()
        step = Signal(range(max(2, steps)))
        mult = Signal(signed(p.psum_bits + S))     # psum << (r * step)
        ubits = Signal(unsigned(S))                # u >> (r * step)
        last = Signal()
        acc = Signal(signed(p.row_bits))
        res = Signal(signed(p.row_bits))
        res_valid = Signal()

        partial = [Signal(signed(p.psum_bits + S + r), name=f"pp{j}") for j in range(r)]
        for j, pp in enumerate(partial):
            m.d.comb += pp.eq(Mux(ubits[j], mult << j, 0))
        acc_next = Signal(signed(p.row_bits))
        m.d.comb += acc_next.eq(acc + tree_sum(partial))

        final_step = Signal()
        out_free = Signal()
        finishing = Signal()      # the current group completes this cycle
        m.d.comb += [
            final_step.eq(busy & (step == steps - 1)),
            out_free.eq(~res_valid | self.result.ready),
            finishing.eq(final_step & (~last | out_free)),
            self.psums.ready.eq(~busy | finishing),
            self.result.valid.eq(res_valid),
            self.result.payload.eq(res),
        ]

        with m.If(self.result.valid & self.result.ready):
            m.d.sync += res_valid.eq(0)

        with m.If(busy & ~final_step):
            m.d.sync += [acc.eq(acc_next), mult.eq(mult << r), ubits.eq(ubits >> r),
                         step.eq(step + 1)]
        with m.If(finishing):
            m.d.sync += busy.eq(0)
            with m.If(last):
                m.d.sync += [acc.eq(0), res.eq(acc_next), res_valid.eq(1)]
            with m.Else():
                m.d.sync += acc.eq(acc_next)

        with m.If(self.psums.valid & self.psums.ready):
            m.d.sync += [busy.eq(1), step.eq(0), mult.eq(self.psums.p.psum),
                         ubits.eq(self.psums.p.u), last.eq(self.psums.p.last)]
        return m
