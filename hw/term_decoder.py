"""Term decoder: (format id, code, term index) -> one signed power of two (docs/architecture.md §2.3).

The table is generated from ``golden.formats`` (each code's NAF terms, largest first); no value
is typed here, so changing a grid in ``golden/`` changes this logic. A term index past the end
of a code's terms, or a format id past the end of the set, decodes to "no term" (zero).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Signal, unsigned
from amaranth.lib import wiring

from golden.formats import FormatSet
from hw.interfaces import term_decoder_signature
from hw.params import check_format_set, exp_port_bits, format_cycles, id_port_bits, term_port_bits

__all__ = ["TermDecoder", "check_format_set", "term_table", "format_terms_table"]


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

    Ports: :func:`hw.interfaces.term_decoder_signature`.

    Parameters
    ----------
    format_set : FormatSet
        A symmetric set; validate a set from outside with :func:`check_format_set` (the PE's
        sets are validated by ``DotParams.make``).
    """

    def __init__(self, format_set: FormatSet):
        self._format_set = format_set
        super().__init__(term_decoder_signature(format_set))

    def elaborate(self, platform):
        m = Module()
        fs = self._format_set
        eb = exp_port_bits(fs)
        entries = [nz | (s << 1) | (e << 2) for nz, s, e in term_table(fs)]
        rom = Array(Const(v, unsigned(2 + eb)) for v in entries)
        word = Signal(2 + eb)
        m.d.comb += [
            word.eq(rom[Cat(self.term, self.code, self.fmt_id)]),
            self.nonzero.eq(word[0]),
            self.sign.eq(word[1]),
            self.exp.eq(word[2:]),
        ]
        return m
