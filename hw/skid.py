"""Skid buffer: a stream register stage whose input ``ready`` is itself a register.

Between a wide datapath and an external consumer, it keeps the consumer's ``ready`` from
reaching the datapath's stall logic combinationally (issue 7: the dot unit's ``result.ready``
fanned out to every lane register's clock enable), at full throughput.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Two-register stream buffer whose ``i.ready`` is a register (no combinational path from
    ``o.ready``). Full throughput: one transfer per cycle in steady state.

    Parameters
    ----------
    shape : shape-like
        The payload shape of both streams.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape):
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid_data = Signal(self._shape)
        out = Signal(self._shape)
        out_valid = Signal()
        m.d.comb += [self.i.ready.eq(~skid_valid), self.o.valid.eq(out_valid), self.o.payload.eq(out)]
        take = self.i.valid & ~skid_valid
        with m.If(~out_valid | self.o.ready):
            with m.If(skid_valid):
                m.d.sync += [out.eq(skid_data), out_valid.eq(1), skid_valid.eq(0)]
            with m.Elif(take):
                m.d.sync += [out.eq(self.i.payload), out_valid.eq(1)]
            with m.Else():
                m.d.sync += out_valid.eq(0)
        with m.Elif(take):
            m.d.sync += [skid_data.eq(self.i.payload), skid_valid.eq(1)]
        return m
