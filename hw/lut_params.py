"""Generator parameters of the shift-add LUT unit (:class:`hw.lut_unit.LutUnit`) and what derives
from them.

No Amaranth import: the CLI, manifest writer and testbenches validate and derive widths here.
Every parameter is validated by :meth:`LutParams.make` before any Elaboratable exists.

Parameters
----------
rows : R, output rows computed side by side: R keys (one per row) query the shared table per cycle.
max_planes : the most binary planes q a layer may have (the ``precision`` port selects p <= q).
apot_terms : T, signed power-of-two terms per scale (ShiftAddLLM: 3).
shift_bits : E, width of a term's shift ``e − E0``; exponent spans up to 2**E − 1 are exact.
act_bits : A, signed activation bits.
table_inputs : μ, activations per hardware table (8, 4 or 2; default 8). The wire keys are
    always bytes (``golden.bcq_layout``); with μ < 8 a byte key reads 8/μ tables of 2^(μ−1)
    entries (each halved by mirror symmetry) and adds the parts — the same sum, and on a LUT4
    fabric far smaller reads (8:1 instead of 128:1 multiplexers for μ = 4).
max_k, max_n : the largest layer; max K sizes the row accumulators.

Width derivation (docs/architecture.md §4: no legal input can overflow)
----------------------------------------------------------------------
A table entry is a sum of 8 terms ±x with |x| <= 2**(A-1): |lut| <= 2**(A+2) -> ``lut_bits``
= A + 4. One query adds at most T terms of |lut| << (2**E − 1); a row adds q * K/8 queries:

    |row| <= M = max_planes * (max_k / 8) * T * 2**(A + 2 + 2**E − 1)   -> row_bits = bitlen(M) + 1

reached exactly by x = −2**(A−1), every key 0xFF and every term −1 << (2**E − 1) (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bitmix.errors import BitmixError
from golden.bcq import MAX_EXP_SPAN
from golden.bcq_layout import KEY_BITS, LUT_ENTRIES, LutLayout
from golden.digest import json_digest
from hw.params import check_int

__all__ = ["LutParams", "LUT_LIMITS", "LUT_PIPELINE_DEPTH", "TABLE_INPUTS"]

#: Inclusive ranges of the integer parameters.
LUT_LIMITS = {"rows": (1, 64), "max_planes": (1, 8), "apot_terms": (1, 3),
              "shift_bits": (1, MAX_EXP_SPAN.bit_length()), "act_bits": (2, 16),
              "max_k": (KEY_BITS, 1 << 16), "max_n": (1, 1 << 20)}

#: Activations per hardware table (divisors of the 8-bit key, > 1).
TABLE_INPUTS = (8, 4, 2)

#: Registers between a query and its row accumulator: looked-up sums + terms, shifted sums.
LUT_PIPELINE_DEPTH = 2


@dataclass(frozen=True)
class LutParams:
    """Validated generator parameters of the LUT unit (see the module docstring)."""

    rows: int
    max_planes: int
    apot_terms: int
    shift_bits: int
    act_bits: int
    max_k: int
    max_n: int
    table_inputs: int = KEY_BITS

    @classmethod
    def make(cls, *, rows: int, max_planes: int = 4, apot_terms: int = 3, shift_bits: int = 5,
             act_bits: int = 8, max_k: int = 4096, max_n: int = 4096,
             table_inputs: int = KEY_BITS) -> LutParams:
        vals = dict(rows=rows, max_planes=max_planes, apot_terms=apot_terms, shift_bits=shift_bits,
                    act_bits=act_bits, max_k=max_k, max_n=max_n)
        for name, value in vals.items():
            check_int(name, value, LUT_LIMITS)
        if table_inputs not in TABLE_INPUTS:
            raise BitmixError(f"table_inputs = {table_inputs!r} must be one of "
                              f"{', '.join(map(str, TABLE_INPUTS))} (a divisor of the 8-bit key)")
        vals["table_inputs"] = table_inputs
        if (1 << shift_bits) - 1 > MAX_EXP_SPAN:
            raise BitmixError(f"shift_bits = {shift_bits} allows spans up to 2^{(1 << shift_bits) - 1}, "
                              f"beyond golden.bcq's integer path (2^{MAX_EXP_SPAN})")
        if max_k % KEY_BITS:
            raise BitmixError(f"max_k = {max_k} is not a multiple of {KEY_BITS} (one key per 8 inputs)")
        return cls(**vals)

    @classmethod
    def from_dict(cls, d: dict) -> LutParams:
        """Inverse of :meth:`describe`."""
        return cls.make(**{k: d[k] for k in ("rows", "max_planes", "apot_terms", "shift_bits",
                                              "act_bits", "max_k", "max_n")},
                        table_inputs=d.get("table_inputs", KEY_BITS))

    # ------------------------------------------------------------------ derived
    @cached_property
    def layout(self) -> LutLayout:
        """The stream formats (golden.bcq_layout): the single definition of every payload."""
        return LutLayout(self.rows, self.max_planes, self.apot_terms, self.shift_bits,
                         self.act_bits, self.max_k, self.max_n)

    @property
    def max_shift(self) -> int:
        return self.layout.max_shift

    @property
    def entry_bits(self) -> int:
        """Width of one stored entry: a sum of μ terms ±x."""
        return (self.table_inputs << (self.act_bits - 1)).bit_length() + 1

    @property
    def lut_bits(self) -> int:
        return (KEY_BITS << (self.act_bits - 1)).bit_length() + 1

    @property
    def row_max(self) -> int:
        return (self.max_planes * (self.max_k // KEY_BITS) * self.apot_terms
                << (self.act_bits + 2 + self.max_shift))

    @property
    def row_bits(self) -> int:
        return self.row_max.bit_length() + 1

    @property
    def plane_bits(self) -> int:
        return self.layout.plane_bits

    @property
    def latency(self) -> int:
        """Cycles from a block's last query to its result's transfer (ready high): the pipeline
        registers, the accumulator/output register and the skid buffer's output register."""
        return LUT_PIPELINE_DEPTH + 2

    def describe(self) -> dict:
        return {"rows": self.rows, "max_planes": self.max_planes, "apot_terms": self.apot_terms,
                "shift_bits": self.shift_bits, "act_bits": self.act_bits, "max_k": self.max_k,
                "max_n": self.max_n,
                # only when not 8: the hashes of existing parameter sets are unchanged
                **({"table_inputs": self.table_inputs} if self.table_inputs != KEY_BITS else {})}

    def derived(self) -> dict:
        return {"lut_entries": LUT_ENTRIES, "table_inputs": self.table_inputs,
                "tables_per_key": KEY_BITS // self.table_inputs,
                "entries_per_table": 1 << (self.table_inputs - 1), "entry_bits": self.entry_bits,
                "lut_bits": self.lut_bits, "max_shift": self.max_shift,
                "row_bits": self.row_bits, "plane_bits": self.plane_bits,
                "key_beat_bits": self.layout.keys.size, "scale_beat_bits": self.layout.scales.size,
                "latency": self.latency}

    @property
    def hash(self) -> str:
        return json_digest(self.describe(), 12, compact=False)

    @property
    def tag(self) -> str:
        mu = f"_M{self.table_inputs}" if self.table_inputs != KEY_BITS else ""
        return (f"lut_R{self.rows}_Q{self.max_planes}_T{self.apot_terms}_E{self.shift_bits}{mu}_"
                f"A{self.act_bits}_K{self.max_k}_N{self.max_n}_{self.hash[:8]}")
