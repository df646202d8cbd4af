"""Dot-product unit: one row of K weights times K activations (SPEC §4).

```
 weights ──► BitSerialPE ──psums──► GroupDequantizer ──► result
 groups  ──►   (L lanes, TermDecoder per lane)   (row += u·psum, bit-serial in u)
 max_terms ─►
```

A row is a sequence of groups; each group is G/L ``weights`` beats plus one ``groups``
descriptor ``{fmt_id, u, last}``; ``last`` marks the row's final group, after which the exact
integer ``sum_g u_g * sum_i x_i * v(fmt_g, code_i)`` appears on ``result`` (signed).
Widths and the cycle model: see :mod:`hw.params`.
"""

from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.formats import FormatSet
from hw.dequant import GroupDequantizer
from hw.params import DotParams
from hw.pe import BitSerialPE, beat_layout, group_layout

__all__ = ["DotProductUnit"]


class DotProductUnit(wiring.Component):
    """Parameters (keyword-only): ``lanes``, ``group_size``, ``act_bits``, ``scale_bits``,
    ``format_set`` (name or FormatSet), ``max_groups`` (groups per row the accumulator is sized
    for). Bad values raise :class:`bitmix.errors.BitmixError` naming the parameter."""

    def __init__(self, *, lanes: int, group_size: int, act_bits: int = 8, scale_bits: int = 8,
                 format_set: str | FormatSet = "bitmod4", max_groups: int = 32):
        self._MustUse__silence = True     # no "never used" warning if validation fails
        self.params = p = DotParams.make(lanes=lanes, group_size=group_size, act_bits=act_bits,
                                         scale_bits=scale_bits, format_set=format_set,
                                         max_groups=max_groups)
        self._MustUse__silence = False
        super().__init__({
            "weights": In(stream.Signature(beat_layout(p))),
            "groups": In(stream.Signature(group_layout(p))),
            "result": Out(stream.Signature(signed(p.row_bits))),
            "max_terms": In(p.term_bits),
        })

    @classmethod
    def from_params(cls, p: DotParams) -> DotProductUnit:
        return cls(lanes=p.lanes, group_size=p.group_size, act_bits=p.act_bits,
                   scale_bits=p.scale_bits, format_set=p.fs, max_groups=p.max_groups)

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe = pe = BitSerialPE(self.params)
        m.submodules.dequant = dq = GroupDequantizer(self.params)
        wiring.connect(m, wiring.flipped(self.weights), pe.weights)
        wiring.connect(m, wiring.flipped(self.groups), pe.groups)
        wiring.connect(m, pe.psums, dq.psums)
        wiring.connect(m, dq.result, wiring.flipped(self.result))
        m.d.comb += pe.max_terms.eq(self.max_terms)
        return m
