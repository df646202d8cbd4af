"""Term decoder: (format id, code, term index) -> one signed power of two (SPEC §2.3).

The table is generated from ``golden.formats`` (each code's NAF terms, largest first); no value
is typed here, so changing a grid in ``golden/`` changes this logic. A term index past the end
of a code's terms, or a format id past the end of the set, decodes to "no term" (zero).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bitmix.errors import BitmixError
from golden.formats import FormatSet
from hw.params import exp_port_bits, format_cycles, id_port_bits, term_port_bits

__all__ = ["TermDecoder", "term_table", "format_terms_table"]


def term_table(fs: FormatSet) -> list[tuple[int, int, int]]:
    """Flat decoder table, indexed by ``Cat(t, code, fmt_id)`` -> (nonzero, sign, exp)."""
    b, tb, ib = fs.bits, term_port_bits(fs), id_port_bits(fs)
    table = []
    for fid in range(1 << ib):
        for code in range(1 << b):
            for t in range(1 << tb):
                terms = fs.formats[fid].terms[code] if fid < len(fs.formats) else ()
                table.append((1, terms[t].sign, terms[t].exp) if t < len(terms) else (0, 0, 0))
    return table


def format_terms_table(fs: FormatSet) -> list[int]:
    """Cycles per weight of each format id (padding ids take one cycle)."""
    cycles = format_cycles(fs)
    return cycles + [1] * ((1 << id_port_bits(fs)) - len(cycles))


class TermDecoder(wiring.Component):
    """Combinational: the ``term``-th term of ``code`` in format ``fmt_id``.

    Ports: ``fmt_id``, ``code``, ``term`` in; ``nonzero``, ``sign`` (1 = negative), ``exp`` out.
    """

    def __init__(self, *, format_set: FormatSet):
        self._MustUse__silence = True     # no "never used" warning if validation fails
        if not isinstance(format_set, FormatSet):
            raise BitmixError(f"format_set must be a golden.formats.FormatSet, got {format_set!r}")
        if format_set.zero_point:
            raise BitmixError(f"format_set {format_set.name!r} uses a zero point; the term decoder "
                              "supports symmetric formats only")
        self.format_set = format_set
        self._MustUse__silence = False
        super().__init__({
            "fmt_id": In(id_port_bits(format_set)),
            "code": In(format_set.bits),
            "term": In(term_port_bits(format_set)),
            "nonzero": Out(1),
            "sign": Out(1),
            "exp": Out(exp_port_bits(format_set)),
        })

    def elaborate(self, platform):
        m = Module()
        eb = exp_port_bits(self.format_set)
        entries = [nz | (s << 1) | (e << 2) for nz, s, e in term_table(self.format_set)]
        rom = Array(Const(v, unsigned(2 + eb)) for v in entries)
        word = Signal(2 + eb)
        m.d.comb += [
            word.eq(rom[Cat(self.term, self.code, self.fmt_id)]),
            self.nonzero.eq(word[0]),
            self.sign.eq(word[1]),
            self.exp.eq(word[2:]),
        ]
        return m
