"""Parameters of the dot-product unit and every width derived from them.

This module has no Amaranth import: the CLI, the manifest writer and the testbenches use it
to validate parameters and to derive widths before (or without) elaborating anything.

Width derivation (docs/architecture.md §4: "no legal input can overflow")
--------------------------------------------------------
Let A = activation bits, S = scale bits, G = group size, and

    V = max over formats f, codes c, precisions t = 1..T of |sum of the first t terms of c|

(the largest value any weight can take at *any* nested precision: a truncated value can
exceed the grid's max |v|, e.g. 7 = 8 - 1 reads as 8 with one term). Every prefix of the
bit-serial accumulation is a sum of at most G such products with |x| <= 2**(A-1), so

    |partial sum| <= P = G * 2**(A-1) * V                      -> psum_bits  = bitlen(P) + 1
    |row result|  <= R = max_groups * (2**S - 1) * P           -> row_bits   = bitlen(R) + 1

(+1 for the sign; a signed n-bit register holds +-(2**(n-1) - 1) iff bitlen(M) <= n - 1).
The dequantizer's intermediate sums are prefixes of u*p with non-negative bit weights, so they
obey the same bound.

Dequantizer rate
----------------
A group takes at least G/L cycles (one term per weight, >= 1 term). The dequantizer handles
r = ceil(S / (G/L)) bits of u per cycle, so it needs ceil(S / r) <= G/L cycles per group and is
always free again before the PE finishes the next group: zero stall in steady state.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from bitmix.errors import BitmixError
from golden.digest import json_digest
from golden.formats import FormatSet, get_format_set
from golden.pack import id_field_bits

__all__ = ["DotParams", "LIMITS", "PE_PIPELINE_DEPTH", "check_format_set", "check_int", "id_port_bits",
           "term_port_bits", "exp_port_bits", "format_cycles"]

#: Register stages of the PE between a group's final term and its psum reaching the dequantizer
#: (lane terms, then the group sum): they cut decoder -> adder tree -> dequantizer into separate
#: register-to-register paths and add latency, not cycles per group.
PE_PIPELINE_DEPTH = 2

def id_port_bits(fs: FormatSet) -> int:
    """Width of a format-id port: a 1-bit port even for a single format (``golden.pack``)."""
    return id_field_bits(fs)


def term_port_bits(fs: FormatSet) -> int:
    """Width of the term index and of the runtime ``precision`` input (0 = full)."""
    return max(1, fs.max_terms.bit_length())


def exp_port_bits(fs: FormatSet) -> int:
    return max(1, fs.max_exp.bit_length())


def format_cycles(fs: FormatSet) -> list[int]:
    """Cycles per weight of each format id (>= 1: a format of zeros still takes a cycle)."""
    return [max(1, f.max_terms) for f in fs.formats]


def check_format_set(format_set: str | FormatSet) -> FormatSet:
    """The named (or given) set, if the bit-serial datapath can compute it."""
    if isinstance(format_set, FormatSet):
        fs = format_set
    elif isinstance(format_set, str):
        fs = get_format_set(format_set)
    else:
        raise BitmixError(f"format_set must be a name or a golden.formats.FormatSet, got {format_set!r}")
    if fs.zero_point:
        raise BitmixError(
            f"format_set {fs.name!r} uses a zero point (asymmetric INT); the bit-serial PE has "
            "no zero-point correction — use a symmetric format set")
    return fs


#: Inclusive ranges of the integer parameters.
LIMITS = {
    "lanes": (1, 256),
    "group_size": (1, 4096),
    "act_bits": (2, 16),
    "scale_bits": (1, 16),
    "max_groups": (1, 1 << 16),
}


def check_int(name: str, value, limits: dict | None = None) -> int:
    """``value`` if it is an integer within ``limits[name]`` (default :data:`LIMITS`), else a
    BitmixError naming the parameter."""
    lo, hi = (limits or LIMITS)[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise BitmixError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise BitmixError(f"{name} = {value} is out of range [{lo}, {hi}]")
    return value


@dataclass(frozen=True)
class DotParams:
    """Validated generator parameters of :class:`hw.dot_unit.DotProductUnit`."""

    lanes: int
    group_size: int
    act_bits: int
    scale_bits: int
    format_set: FormatSet
    max_groups: int

    @classmethod
    def make(cls, *, lanes: int, group_size: int, act_bits: int = 8, scale_bits: int = 8,
             format_set: str | FormatSet = "bitmod4", max_groups: int = 32) -> DotParams:
        for name, value in (("lanes", lanes), ("group_size", group_size), ("act_bits", act_bits),
                            ("scale_bits", scale_bits), ("max_groups", max_groups)):
            check_int(name, value)
        if group_size % lanes:
            raise BitmixError(f"group_size = {group_size} is not a multiple of lanes = {lanes}")
        fs = check_format_set(format_set)
        return cls(lanes, group_size, act_bits, scale_bits, fs, max_groups)

    @classmethod
    def for_row_length(cls, *, k: int, group_size: int, **kw) -> DotParams:
        """Parameters sized for rows of up to ``k`` weights (``k`` must be a multiple of G)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BitmixError(f"k must be a positive integer, got {k!r}")
        if isinstance(group_size, int) and group_size > 0 and k % group_size:
            raise BitmixError(f"group_size = {group_size} does not divide k = {k}")
        return cls.make(group_size=group_size, max_groups=max(1, k // max(1, group_size)), **kw)

    @classmethod
    def from_dict(cls, d: dict) -> DotParams:
        """Inverse of :meth:`describe` (a manifest's or testbench config's ``parameters``);
        the format-set hash, if present, must match the installed golden definition."""
        p = cls.make(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
        if "format_set_hash" in d and d["format_set_hash"] != p.fs.hash:
            raise BitmixError(f"format set {p.fs.name!r} changed since these parameters were "
                              f"written (hash {d['format_set_hash']} != {p.fs.hash})")
        return p

    def replace(self, **changes) -> DotParams:
        """A validated copy with some parameters changed."""
        return self.make(**{**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                            **changes})

    # ---------------------------------------------------------------- derived quantities
    @property
    def fs(self) -> FormatSet:
        return self.format_set

    @property
    def n_formats(self) -> int:
        return len(self.fs.formats)

    @property
    def code_bits(self) -> int:
        return self.fs.bits

    @property
    def id_bits(self) -> int:
        return id_port_bits(self.fs)

    @property
    def max_terms(self) -> int:
        return self.fs.max_terms

    @property
    def term_bits(self) -> int:
        return term_port_bits(self.fs)

    @property
    def exp_bits(self) -> int:
        return exp_port_bits(self.fs)

    def format_terms(self) -> list[int]:
        return format_cycles(self.fs)

    @property
    def max_value(self) -> int:
        """V: largest |value| of any code at any nested precision (see module docstring)."""
        return max(abs(f.truncated_value(c, t)) for f in self.fs.formats
                   for c in range(1 << f.bits) for t in range(1, self.max_terms + 1))

    @property
    def beats_per_group(self) -> int:
        return self.group_size // self.lanes

    @property
    def psum_max(self) -> int:
        return self.group_size * (1 << (self.act_bits - 1)) * self.max_value

    @property
    def psum_bits(self) -> int:
        return self.psum_max.bit_length() + 1

    @property
    def row_max(self) -> int:
        return self.max_groups * ((1 << self.scale_bits) - 1) * self.psum_max

    @property
    def row_bits(self) -> int:
        return self.row_max.bit_length() + 1

    @property
    def dq_bits_per_cycle(self) -> int:
        """r: bits of u the dequantizer consumes per cycle."""
        return math.ceil(self.scale_bits / self.beats_per_group)

    @property
    def dq_steps(self) -> int:
        """Cycles the dequantizer spends on one group (<= G/L, the shortest group)."""
        return math.ceil(self.scale_bits / self.dq_bits_per_cycle)

    @property
    def beat_count_bits(self) -> int:
        return max(1, (self.beats_per_group - 1).bit_length())

    #: Cycles from the cycle a row's first beat is presented (all streams ready) to the cycle
    #: its result is valid, beyond the compute cycles: the PE's pipeline registers plus the
    #: dequantizer's steps on the last group.
    @property
    def latency_constant(self) -> int:
        return PE_PIPELINE_DEPTH + self.dq_steps

    def group_cycles(self, fmt_id: int, precision: int = 0) -> int:
        """Cycles of one group of format ``fmt_id`` at runtime ``precision`` (0 = full)."""
        t = self.format_terms()[fmt_id]
        if precision:
            t = min(t, precision)
        return t * self.beats_per_group

    def describe(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**d, "format_set": self.fs.name, "format_set_hash": self.fs.hash}

    def derived(self) -> dict:
        return {
            "code_bits": self.code_bits, "id_bits": self.id_bits, "n_formats": self.n_formats,
            "max_terms": self.max_terms, "format_terms": self.format_terms(),
            "max_value": self.max_value, "beats_per_group": self.beats_per_group,
            "psum_max": self.psum_max, "psum_bits": self.psum_bits,
            "row_max": self.row_max, "row_bits": self.row_bits,
            "dq_bits_per_cycle": self.dq_bits_per_cycle, "dq_steps": self.dq_steps,
            "latency_constant": self.latency_constant,
        }

    @property
    def hash(self) -> str:
        return json_digest(self.describe(), 12, compact=False)

    @property
    def tag(self) -> str:
        """Short readable name of the parameter set (build directory names)."""
        return (f"L{self.lanes}_G{self.group_size}_A{self.act_bits}_S{self.scale_bits}_"
                f"{self.fs.name}_M{self.max_groups}_{self.hash[:8]}")
