"""Dot-product unit: one row of K weights times K activations (docs/architecture.md §4).

```
 weights ──► BitSerialPE ──psums──► GroupDequantizer ──► result
 groups  ──►   (L lanes, TermDecoder per lane)   (row += u·psum, bit-serial in u)
 precision ─►
```

A row is a sequence of groups; each group is G/L ``weights`` beats plus one ``groups``
descriptor ``{fmt_id, u, last}``; ``last`` marks the row's final group, after which the exact
integer ``sum_g u_g * sum_i x_i * v(fmt_g, code_i)`` appears on ``result`` (signed).
Widths and the cycle model: see :mod:`hw.params`.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.dequant import GroupDequantizer
from hw.interfaces import dot_unit_signature
from hw.params import DotParams
from hw.pe import BitSerialPE

__all__ = ["DotProductUnit"]


class DotProductUnit(wiring.Component):
    """PE + dequantizer; ports in :func:`hw.interfaces.dot_unit_signature`.

    Parameters
    ----------
    params : DotParams
        Validated generator parameters: ``DotParams.make(lanes=, group_size=, act_bits=,
        scale_bits=, format_set=, max_groups=)`` raises :class:`bitmix.errors.BitmixError`
        naming a bad parameter before any gateware object exists.
    """

    def __init__(self, params: DotParams):
        if not isinstance(params, DotParams):
            raise TypeError(f"DotProductUnit takes a DotParams (DotParams.make(...)), got {params!r}")
        self._params = params
        super().__init__(dot_unit_signature(params))

    @property
    def params(self) -> DotParams:
        return self._params

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe = pe = BitSerialPE(self._params)
        m.submodules.dequant = dq = GroupDequantizer(self._params)
        wiring.connect(m, wiring.flipped(self.weights), pe.weights)
        wiring.connect(m, wiring.flipped(self.groups), pe.groups)
        wiring.connect(m, pe.psums, dq.psums)
        wiring.connect(m, dq.result, wiring.flipped(self.result))
        m.d.comb += pe.precision.eq(self.precision)
        return m
