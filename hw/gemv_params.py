"""Generator parameters of the GEMV engine (:class:`hw.gemv.GemvEngine`) and what derives from them.

No Amaranth import: the CLI, manifest writer, cycle model and testbenches validate and derive
widths here without elaborating anything. Every parameter is validated by :meth:`GemvParams.make`
before any Elaboratable exists; a bad value raises :class:`bitmix.errors.BitmixError` naming it.

Parameters
----------
rows : R, output rows computed side by side (one row block = R rows of W).
lanes : L, weights per row per beat; the activation beat (L values) is broadcast to all R rows.
group_size : G, weights per group (one format id + one scale u per row and group); a power of
    two and a multiple of L, so K/G and K mod G are bit selects in hardware.
act_bits, scale_bits : A and S, as in :class:`hw.params.DotParams`.
format_sets : the format sets compiled in; a layer picks one at run time (``cmd.fmt_set``).
    Code slots in the weight stream are as wide as the widest set's codes.
max_k, max_n : the largest layer (K inputs, N outputs); max K sizes the activation buffer
    (max_k / L words of L*A bits) and the row accumulators.
lut : the shift-add LUT path (``cmd.path`` = 1), or ``None`` (default): no LUT logic is
    generated and path 1 is rejected. A mapping of :meth:`hw.lut_params.LutParams.make`'s
    ``max_planes``, ``apot_terms``, ``shift_bits``, ``table_inputs`` (rows, act_bits, max_k, max_n are the
    engine's); L must be a multiple of 8 and the LUT beat must fit the weight beat
    (:class:`golden.bcq_layout.EngineLutLayout`).

Widths are those of the dot unit (:mod:`hw.params`) for the worst compiled-in set: each set
gets a ``DotParams`` with ``max_groups = max_k / G``; psum/row widths are the maxima.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bitmix.errors import BitmixError
from golden.bcq_layout import EngineLutLayout
from golden.digest import json_digest
from golden.formats import FormatSet, get_format_set
from golden.gemv_layout import GemvLayout
from hw.lut_params import LutParams
from hw.params import LIMITS, DotParams, check_int, format_cycles, term_port_bits

__all__ = ["GemvParams", "GEMV_LIMITS", "ARRAY_PIPELINE_DEPTH", "LUT_PATH_PIPELINE_DEPTH",
           "LUT_PATH_KEYS"]

#: The LUT path's own generator parameters (the rest are the engine's).
LUT_PATH_KEYS = ("max_planes", "apot_terms", "shift_bits", "table_inputs")
#: Path 1 registers between a beat's issue and its row accumulator: the activation word (buffer
#: read register) beside the beat, the L/8 tables, the looked-up sums, the shifted row sums.
LUT_PATH_PIPELINE_DEPTH = 4

#: Inclusive ranges of the engine-only integer parameters.
GEMV_LIMITS = {"rows": (1, 64), "max_k": (1, 1 << 16), "max_n": (1, 1 << 20)}

#: Register stages between a term's issue and its row's partial-sum register: decoded terms
#: (+ the activation buffer's read register), the activation beat and its negation (+ the
#: decoded terms, delayed), the R*L lane terms, the R adder-tree sums, then the psum output
#: register feeding the dequantizers.
ARRAY_PIPELINE_DEPTH = 5


def _check(name: str, value, limits=None) -> int:
    return check_int(name, value, limits or {**LIMITS, **GEMV_LIMITS})


@dataclass(frozen=True)
class GemvParams:
    """Validated generator parameters of the GEMV engine (see the module docstring)."""

    rows: int
    lanes: int
    group_size: int
    act_bits: int
    scale_bits: int
    format_sets: tuple[FormatSet, ...]
    max_k: int
    max_n: int
    lut: LutParams | None = None
    #: Flow control from registers (the ECP5 clocks): weight beats wait in a two-entry queue
    #: with their term counts computed as they enter (``weights.ready`` from registers only),
    #: the array runs without clock enables, its groups' sums going through a FIFO reserved by
    #: credits (``stall`` a register), and the top's reply and result writes leave the command
    #: unit's state decoding through registers. False: the beat is issued straight from
    #: ``weights`` (``ready`` depends on its term count) and ``~stall`` is every array stage's
    #: clock enable — fewer logic cells, for the full iCE40UP5K at 24 MHz.
    registered_control: bool = True

    @classmethod
    def make(cls, *, rows: int, lanes: int, group_size: int = 128, act_bits: int = 8,
             scale_bits: int = 8, format_sets=("bitmod4",), max_k: int = 4096,
             max_n: int = 4096, lut=None, registered_control: bool = True) -> GemvParams:
        for name, value in (("rows", rows), ("lanes", lanes), ("group_size", group_size),
                            ("act_bits", act_bits), ("scale_bits", scale_bits), ("max_k", max_k),
                            ("max_n", max_n)):
            _check(name, value)
        if group_size & (group_size - 1):
            raise BitmixError(f"group_size = {group_size} must be a power of two for the GEMV engine")
        if group_size % lanes:
            raise BitmixError(f"group_size = {group_size} is not a multiple of lanes = {lanes}")
        if max_k % group_size:
            raise BitmixError(f"max_k = {max_k} is not a multiple of group_size = {group_size}")
        if isinstance(format_sets, str | FormatSet):
            format_sets = (format_sets,)
        sets = tuple(fs if isinstance(fs, FormatSet) else get_format_set(fs) for fs in format_sets)
        if not sets:
            raise BitmixError("format_sets: at least one format set must be compiled in")
        if len({fs.name for fs in sets}) != len(sets):
            raise BitmixError(f"format_sets: duplicate names in {[fs.name for fs in sets]}")
        for fs in sets:
            if fs.zero_point:
                raise BitmixError(f"format set {fs.name!r} uses a zero point (asymmetric INT); the "
                                  "bit-serial PE has no zero-point correction")
        lp = None
        if lut is not None:
            if isinstance(lut, LutParams):
                lut = {k: getattr(lut, k) for k in LUT_PATH_KEYS}
            if not isinstance(lut, dict) or set(lut) - set(LUT_PATH_KEYS):
                raise BitmixError(f"lut: expected None or a mapping with keys among "
                                  f"{', '.join(LUT_PATH_KEYS)}, got {lut!r}")
            lp = LutParams.make(rows=rows, act_bits=act_bits, max_k=max_k, max_n=max_n, **lut)
        if not isinstance(registered_control, bool):
            raise BitmixError(f"registered_control must be True or False, got {registered_control!r}")
        p = cls(rows, lanes, group_size, act_bits, scale_bits, sets, max_k, max_n, lp, registered_control)
        if lp is not None:
            _ = p.lut_layout               # validates L and the beat fit before anything exists
        return p

    @classmethod
    def from_dict(cls, d: dict) -> GemvParams:
        """Inverse of :meth:`describe` (a manifest's or testbench config's ``parameters``); the
        format-set hashes must match the installed golden definitions."""
        p = cls.make(**{k: d[k] for k in ("rows", "lanes", "group_size", "act_bits", "scale_bits",
                                           "format_sets", "max_k", "max_n")}, lut=d.get("lut"),
                     registered_control=d.get("registered_control", False))
        if "format_set_hashes" in d and d["format_set_hashes"] != [fs.hash for fs in p.format_sets]:
            raise BitmixError(f"format sets {d['format_sets']} changed since these parameters were "
                              "written (format-set hashes differ)")
        return p

    # ------------------------------------------------------------------ derived
    @cached_property
    def layout(self) -> GemvLayout:
        """The stream formats (golden.gemv_layout): the single definition of every payload."""
        return GemvLayout(self.rows, self.lanes, self.group_size, self.act_bits, self.scale_bits,
                          self.format_sets, self.max_k, self.max_n,
                          self.lut.max_planes if self.lut else 0)

    @cached_property
    def lut_layout(self) -> EngineLutLayout | None:
        """The LUT path's weight beat (``None`` without a LUT path)."""
        if self.lut is None:
            return None
        return EngineLutLayout(self.lut.layout, self.lanes, self.layout.weight_bits, self.group_size)

    @cached_property
    def set_params(self) -> tuple[DotParams, ...]:
        """One dot-unit parameter set per compiled-in format set (widths, dequantizer rate)."""
        return tuple(DotParams.make(lanes=self.lanes, group_size=self.group_size,
                                    act_bits=self.act_bits, scale_bits=self.scale_bits,
                                    format_set=fs, max_groups=self.max_groups)
                     for fs in self.format_sets)

    @property
    def dq_params(self) -> DotParams:
        """The set with the widest partial sums: the dequantizers are built for it."""
        return max(self.set_params, key=lambda p: p.psum_bits)

    @property
    def max_groups(self) -> int:
        return self.max_k // self.group_size

    @property
    def beats_per_group(self) -> int:
        return self.group_size // self.lanes

    @property
    def buffer_depth(self) -> int:
        return self.max_k // self.lanes

    @property
    def log2_group(self) -> int:
        return self.group_size.bit_length() - 1

    @property
    def psum_bits(self) -> int:
        return self.dq_params.psum_bits

    @property
    def row_bits(self) -> int:
        """Width of a ``results`` row: the dequantizers' (and the LUT path's, if wider)."""
        return max(self.dq_params.row_bits, self.lut.row_bits if self.lut else 0)

    @property
    def seq_bits(self) -> int:
        """Width of the ``precision`` input and the term/plane counter (both paths)."""
        return max(self.term_bits, self.lut.plane_bits if self.lut else 0)

    @property
    def term_bits(self) -> int:
        """Width of the term index and of the ``precision`` input."""
        return max(term_port_bits(fs) for fs in self.format_sets)

    @property
    def max_terms(self) -> int:
        return max(fs.max_terms for fs in self.format_sets)

    @property
    def exp_bits(self) -> int:
        return max(p.exp_bits for p in self.set_params)

    @property
    def max_exp(self) -> int:
        return max(fs.max_exp for fs in self.format_sets)

    def format_terms(self, set_index: int) -> list[int]:
        return format_cycles(self.format_sets[set_index])

    @property
    def dq_steps(self) -> int:
        return self.dq_params.dq_steps

    @property
    def latency(self) -> int:
        """Cycles from a block's last issued term to its result's transfer on ``results`` (ready
        high): the array's pipeline registers, the dequantizer's input register and steps, and
        the skid buffer's output register."""
        return ARRAY_PIPELINE_DEPTH + 1 + self.dq_steps + 1

    def describe(self) -> dict:
        return {"rows": self.rows, "lanes": self.lanes, "group_size": self.group_size,
                "act_bits": self.act_bits, "scale_bits": self.scale_bits,
                "format_sets": [fs.name for fs in self.format_sets],
                "format_set_hashes": [fs.hash for fs in self.format_sets],
                "max_k": self.max_k, "max_n": self.max_n,
                # only with a LUT path: the parameter hashes of engines without one are unchanged
                **({"lut": {k: getattr(self.lut, k) for k in LUT_PATH_KEYS}} if self.lut else {}),
                # only with registered control (likewise; parameters written before it existed
                # describe an engine without it)
                **({"registered_control": True} if self.registered_control else {})}

    def derived(self) -> dict:
        return {"code_bits": self.layout.code_bits, "id_bits": self.layout.id_bits,
                "term_bits": self.term_bits, "max_terms": self.max_terms,
                "format_terms": {fs.name: self.format_terms(i) for i, fs in enumerate(self.format_sets)},
                "psum_bits": self.psum_bits, "row_bits": self.row_bits,
                "beats_per_group": self.beats_per_group, "buffer_depth": self.buffer_depth,
                "dq_bits_per_cycle": self.dq_params.dq_bits_per_cycle, "dq_steps": self.dq_steps,
                "weight_beat_bits": self.layout.weight_bits,
                "stream_bits_per_weight": self.layout.stream_bits_per_weight(),
                "latency": self.latency,
                **({"lut_latency": self.lut_latency, "lut_row_bits": self.lut.row_bits,
                    "lut_bits": self.lut.lut_bits, "lut_beat_bits": self.lut_layout.weights.size}
                   if self.lut else {})}

    @property
    def lut_latency(self) -> int:
        """Path 1: cycles from a block's last issued beat to its result's transfer (ready high):
        activation word + beat, tables, looked-up sums, shifted row sums, accumulator/out
        register, skid buffer."""
        return LUT_PATH_PIPELINE_DEPTH + 2

    @property
    def hash(self) -> str:
        return json_digest(self.describe(), 12, compact=False)

    @property
    def tag(self) -> str:
        sets = "+".join(fs.name for fs in self.format_sets)
        lut = (f"_lutQ{self.lut.max_planes}T{self.lut.apot_terms}E{self.lut.shift_bits}"
               f"M{self.lut.table_inputs}" if self.lut else "")
        return (f"gemv_R{self.rows}_L{self.lanes}_G{self.group_size}_A{self.act_bits}_"
                f"S{self.scale_bits}_{sets}{lut}_K{self.max_k}_N{self.max_n}_{self.hash[:8]}")
