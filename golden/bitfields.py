"""Bit-field layouts of stream payloads, in plain Python (no Amaranth).

A :class:`Layout` is an ordered list of fields packed LSB first with no gaps, exactly as
``amaranth.lib.data.StructLayout`` places them. The hardware derives its ``StructLayout`` from
the same :class:`Layout` (``hw.interfaces.struct_layout``), and the packer, the driver and the
testbenches pack and unpack payload integers with it, so a field's position is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitmix.errors import BitmixError

__all__ = ["Field", "Layout"]


@dataclass(frozen=True)
class Field:
    """``count`` elements of ``width`` bits (an array when ``count`` > 1, or when ``array`` is
    set: a per-row field of an engine with one row is still an array), two's complement if
    ``signed``."""

    name: str
    width: int
    count: int = 1
    signed: bool = False
    doc: str = ""
    array: bool = False

    @property
    def is_array(self) -> bool:
        return self.array or self.count > 1

    @property
    def size(self) -> int:
        return self.width * self.count


@dataclass(frozen=True)
class Layout:
    """Fields in order, LSB first."""

    name: str
    fields: tuple[Field, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.fields)

    def offset(self, name: str) -> int:
        off = 0
        for f in self.fields:
            if f.name == name:
                return off
            off += f.size
        raise KeyError(name)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def pack(self, **values) -> int:
        """One payload integer; array fields take a sequence, signed fields negative values."""
        word, off = 0, 0
        for f in self.fields:
            v = values[f.name]
            elems = list(v) if f.is_array else [v]
            if len(elems) != f.count:
                raise BitmixError(f"{self.name}.{f.name}: {len(elems)} values for {f.count} elements")
            for i, e in enumerate(elems):
                lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else \
                         (0, (1 << f.width) - 1)
                if not lo <= e <= hi:
                    raise BitmixError(f"{self.name}.{f.name}[{i}] = {e} does not fit "
                                      f"{'signed' if f.signed else 'unsigned'}({f.width})")
                word |= (e & ((1 << f.width) - 1)) << (off + i * f.width)
            off += f.size
        return word

    def unpack(self, word: int) -> dict:
        out, off = {}, 0
        for f in self.fields:
            elems = []
            for i in range(f.count):
                e = (word >> (off + i * f.width)) & ((1 << f.width) - 1)
                if f.signed and e >> (f.width - 1):
                    e -= 1 << f.width
                elems.append(e)
            out[f.name] = elems if f.is_array else elems[0]
            off += f.size
        return out

    def pack_columns(self, cols: dict, nwords: int | None = None):
        """:meth:`pack` vectorised over many beats (large streams): ``cols[name]`` is an integer
        array ``[beats, count]``; returns a numpy ``[beats, nwords]`` uint32 array, word w holding
        beat bits ``32w .. 32w+31`` (default: as many words as the layout needs). Values are not
        range-checked (the packers that call this check them); signed ones are masked."""
        import numpy as np

        nwords = nwords or -(-self.size // 32)
        beats = len(next(iter(cols.values())))
        out = np.zeros((beats, nwords + 1), dtype=np.uint64)
        off = 0
        for f in self.fields:
            vals = np.asarray(cols[f.name], dtype=np.int64).reshape(beats, f.count)
            vals = (vals & ((1 << f.width) - 1)).astype(np.uint64)
            for e in range(f.count):
                w, sh = divmod(off + e * f.width, 32)
                v = vals[:, e] << np.uint64(sh)          # < 2**(31 + 16): fits in 64 bits
                out[:, w] |= v & np.uint64(0xFFFFFFFF)
                out[:, w + 1] |= v >> np.uint64(32)
            off += f.size
        return out[:, :nwords].astype(np.uint32)

    def rows(self) -> list[dict]:
        """One row per field (name, offset, width, count, signed, doc): documentation tables."""
        return [{"field": f.name, "offset": self.offset(f.name), "width": f.width,
                 "count": f.count, "signed": f.signed, "doc": f.doc} for f in self.fields]
