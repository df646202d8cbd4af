"""A second, trivially different design for the flow tests: sums of consecutive pairs.

Defined here, outside ``hw/``, on purpose: ``bitmix.elaborate``, ``verif.runner`` and
``fpga.synth`` must take it with no edit to them.
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class PairSum(wiring.Component):
    """Out = in[2i] + in[2i+1].

    Members
    -------
    inp : In(stream.Signature(signed(width)))
        Values, two per output.
    out : Out(stream.Signature(signed(width + 1)))
        The sum of each pair, from a register.
    """

    def __init__(self, width: int = 8):
        self._width = width
        super().__init__({"inp": In(stream.Signature(signed(width))),
                          "out": Out(stream.Signature(signed(width + 1)))})

    def elaborate(self, platform):
        m = Module()
        first = Signal(signed(self._width))
        have_first = Signal()
        m.d.comb += self.inp.ready.eq(~self.out.valid | self.out.ready)
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        with m.If(self.inp.valid & self.inp.ready):
            with m.If(have_first):
                m.d.sync += [self.out.payload.eq(first + self.inp.payload), self.out.valid.eq(1),
                             have_first.eq(0)]
            with m.Else():
                m.d.sync += [first.eq(self.inp.payload), have_first.eq(1)]
        return m
