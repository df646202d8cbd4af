"""Weight number formats: the single source of truth.

Every format is declared here by its integer grid and nothing else. The b-bit code
of each value, the signed power-of-two terms the bit-serial PE consumes (docs/architecture.md §2.3),
the nested lower-precision values (docs/architecture.md §2.6) and the hash a bitstream reports are
all *derived* from the grid, so adding a format means adding one grid line.

Code assignment (derived, see :func:`_assign_codes`):

* symmetric grids (INT, FP, FLINT and the BitMoD variants) use sign-magnitude codes,
  ``code = sign << (b-1) | magnitude_index``; the redundant "-0" code carries the
  grid's one special value (BitMoD's redundant-zero remapping), or 0 if it has none;
* asymmetric INT grids (``*_asym``) use the unsigned code itself as the value and are
  read with a per-group zero point.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from bitmix.errors import BitmixError
from golden.digest import json_digest

__all__ = [
    "Format", "FormatSet", "Term", "FORMATS", "FORMAT_SETS",
    "get_format", "get_format_set", "naf_terms", "format_table_hash",
]


def _fp_grid(magnitudes, extra=()):
    """Symmetric grid from its non-negative magnitudes, plus optional special values."""
    mags = sorted(set(magnitudes))
    return tuple(sorted({m for m in mags} | {-m for m in mags} | set(extra)))


_FP3 = (0, 1, 2, 4)
_FP4 = (0, 1, 2, 3, 4, 6, 8, 12)          # 2x standard E2M1 units
_FLINT4 = (0, 1, 2, 3, 4, 6, 8, 16)

#: name -> (bits, grid, zero_point). The only place a grid is written down.
_GRIDS: dict[str, tuple[int, tuple[int, ...], bool]] = {
    "int3": (3, _fp_grid(range(4)), False),
    "int4": (4, _fp_grid(range(8)), False),
    "fp3": (3, _fp_grid(_FP3), False),
    "fp3_er_pos": (3, _fp_grid(_FP3, (3,)), False),
    "fp3_er_neg": (3, _fp_grid(_FP3, (-3,)), False),
    "fp3_ea_pos": (3, _fp_grid(_FP3, (6,)), False),
    "fp3_ea_neg": (3, _fp_grid(_FP3, (-6,)), False),
    "fp4": (4, _fp_grid(_FP4), False),
    "fp4_er_pos": (4, _fp_grid(_FP4, (10,)), False),
    "fp4_er_neg": (4, _fp_grid(_FP4, (-10,)), False),
    "fp4_ea_pos": (4, _fp_grid(_FP4, (16,)), False),
    "fp4_ea_neg": (4, _fp_grid(_FP4, (-16,)), False),
    "flint4": (4, _fp_grid(_FLINT4), False),
    "int2_asym": (2, tuple(range(4)), True),
    "int3_asym": (3, tuple(range(8)), True),
    "int4_asym": (4, tuple(range(16)), True),
}

#: Mixtures a group may choose from; the index in the tuple is the group's format id.
_SETS: dict[str, tuple[str, ...]] = {
    "bitmod3": ("fp3_er_pos", "fp3_er_neg", "fp3_ea_pos", "fp3_ea_neg"),
    "bitmod4": ("fp4_er_pos", "fp4_er_neg", "fp4_ea_pos", "fp4_ea_neg"),
    "er3": ("fp3_er_pos", "fp3_er_neg"),
    "ea3": ("fp3_ea_pos", "fp3_ea_neg"),
    "er4": ("fp4_er_pos", "fp4_er_neg"),
    "ea4": ("fp4_ea_pos", "fp4_ea_neg"),
    "ant3": ("int3", "fp3"),
    "ant4": ("int4", "flint4"),
}


@dataclass(frozen=True)
class Term:
    """One signed power of two, ``(-1)**sign * 2**exp``."""

    sign: int
    exp: int

    @property
    def value(self) -> int:
        return (-1) ** self.sign * (1 << self.exp)


def naf_terms(value: int) -> tuple[Term, ...]:
    """Minimal signed-power-of-two decomposition (non-adjacent form), largest first.

    NAF has the fewest non-zero digits of any signed-binary representation, which is
    what bounds the bit-serial PE's cycles per weight.
    """
    sign = 1 if value < 0 else 0
    n, exp, digits = abs(value), 0, []
    while n:
        if n & 1:
            d = 2 - (n & 3)            # +1 or -1
            digits.append(Term(sign ^ (d < 0), exp))
            n -= d
        n >>= 1
        exp += 1
    return tuple(reversed(digits))


def _assign_codes(name: str, bits: int, grid: tuple[int, ...], zero_point: bool) -> tuple[int, ...]:
    """Value of every b-bit code, derived from the grid (see module docstring)."""
    ncodes = 1 << bits
    if zero_point:
        if grid != tuple(range(ncodes)):
            raise ValueError(f"format {name}: an asymmetric grid must be 0..{ncodes - 1}")
        return grid
    mags = sorted({abs(v) for v in grid if -v in grid})
    specials = [v for v in grid if -v not in grid]
    half = ncodes // 2
    if len(mags) != half or mags[0] != 0 or len(specials) > 1:
        raise ValueError(
            f"format {name}: a sign-magnitude grid needs {half} magnitudes (with 0) "
            f"and at most one special value, got magnitudes {mags} and specials {specials}")
    codebook = list(mags) + [-m for m in mags]
    codebook[half] = specials[0] if specials else 0       # the redundant -0 code
    return tuple(codebook)


@dataclass(frozen=True)
class Format:
    """A b-bit weight format: integer grid, code assignment and term decomposition."""

    name: str
    bits: int
    grid: tuple[int, ...]
    zero_point: bool = False

    @functools.cached_property
    def codebook(self) -> tuple[int, ...]:
        """Integer value of each code ``0 .. 2**bits - 1``."""
        return _assign_codes(self.name, self.bits, self.grid, self.zero_point)

    @functools.cached_property
    def terms(self) -> tuple[tuple[Term, ...], ...]:
        """Signed power-of-two terms of each code's value, largest first."""
        return tuple(naf_terms(v) for v in self.codebook)

    @property
    def max_terms(self) -> int:
        return max(len(t) for t in self.terms)

    @property
    def max_exp(self) -> int:
        return max((t.exp for ts in self.terms for t in ts), default=0)

    @property
    def max_abs(self) -> int:
        return max(abs(v) for v in self.grid)

    @property
    def special(self) -> int | None:
        """BitMoD's extra value (held by the -0 code), if this grid has one."""
        extra = [v for v in self.grid if -v not in self.grid]
        return extra[0] if extra and not self.zero_point else None

    def code_of(self, value: int) -> int:
        """Canonical code of a grid value (+0 for zero)."""
        try:
            return self.codebook.index(value)
        except ValueError:
            raise BitmixError(f"format {self.name}: {value} is not on the grid {list(self.grid)}") from None

    def truncated_value(self, code: int, nterms: int) -> int:
        """Value read at reduced precision: the sum of the first ``nterms`` terms (architecture.md §2.6)."""
        return sum(t.value for t in self.terms[code][:nterms])

    def describe(self) -> dict:
        return {"name": self.name, "bits": self.bits, "zero_point": self.zero_point,
                "codebook": list(self.codebook),
                "terms": [[[t.sign, t.exp] for t in ts] for ts in self.terms]}


FORMATS: dict[str, Format] = {n: Format(n, b, g, z) for n, (b, g, z) in _GRIDS.items()}


@dataclass(frozen=True)
class FormatSet:
    """The formats a group may choose from; a group's format id indexes ``formats``."""

    name: str
    formats: tuple[Format, ...]

    def __post_init__(self):
        widths = {f.bits for f in self.formats}
        if len(widths) != 1:
            raise ValueError(f"format set {self.name}: mixed widths {sorted(widths)}")

    @property
    def bits(self) -> int:
        return self.formats[0].bits

    @property
    def id_bits(self) -> int:
        """Bits of the per-group format id (0 for a single format)."""
        return math.ceil(math.log2(len(self.formats))) if len(self.formats) > 1 else 0

    @property
    def zero_point(self) -> bool:
        return any(f.zero_point for f in self.formats)

    @property
    def max_terms(self) -> int:
        return max(f.max_terms for f in self.formats)

    @property
    def max_exp(self) -> int:
        return max(f.max_exp for f in self.formats)

    @property
    def max_abs(self) -> int:
        return max(f.max_abs for f in self.formats)

    def describe(self) -> dict:
        return {"name": self.name, "bits": self.bits, "id_bits": self.id_bits,
                "formats": [f.describe() for f in self.formats]}

    @functools.cached_property
    def hash(self) -> str:
        """Stable SHA-256 (hex, 16 chars) of everything the hardware derives from this set."""
        return json_digest(self.describe(), 16)


FORMAT_SETS: dict[str, FormatSet] = {
    **{n: FormatSet(n, (f,)) for n, f in FORMATS.items()},
    **{n: FormatSet(n, tuple(FORMATS[m] for m in members)) for n, members in _SETS.items()},
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise BitmixError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None


def get_format_set(name: str) -> FormatSet:
    try:
        return FORMAT_SETS[name]
    except KeyError:
        raise BitmixError(
            f"unknown format set {name!r}; known: {', '.join(FORMAT_SETS)}") from None


def format_table_hash() -> str:
    """Hash of every format and set: what a driver compares with a bitstream's report."""
    return json_digest({n: s.describe() for n, s in FORMAT_SETS.items()}, 16)
