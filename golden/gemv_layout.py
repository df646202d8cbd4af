"""Wire formats of the GEMV engine: the one definition the RTL, packer, driver and docs read.

Pure Python (no Amaranth). :class:`GemvLayout` declares every stream the engine
(``hw.gemv.GemvEngine``) consumes or produces as a :class:`golden.bitfields.Layout` (fields,
widths, offsets); ``hw.interfaces`` turns the same layouts into ``amaranth.lib.data.StructLayout`` s,
the testbenches and the host driver pack with them, and :func:`doc_table` renders them for the
README.

Streams (one integer per beat, bit 0 = LSB; in a byte stream every beat is ``beat_bytes``
little-endian bytes):

``weights`` — R rows x L lanes of codes per beat, with the R group descriptors inline::

    codes[r * L + i]  code of row r, lane i            (R*L fields of b bits; b = widest set)
    fmt[r]            format id of row r's group       (R fields of id bits)
    u[r]              integer scale of row r's group   (R fields of S bits)

  A layer ``W[N, K]`` is sent as row blocks ``rows [jR, jR + R)`` in order; within a block the
  K/G groups in order; within a group its G/L beats in order (lane i of beat t holds input
  ``g*G + t*L + i``). Every beat of a group repeats the group's descriptors, so the engine reads
  ``fmt``/``u`` straight from the beat it is working on (no descriptor beat, no bubble at a group
  boundary, at any precision). The rows past N of the last block are padding: code 0 (+0 in
  every symmetric format), ``u = 0`` and the set's format with the fewest terms (so padding
  never lengthens a group).

``acts`` — L signed A-bit activations per beat, K/L beats per GEMV (input ``t*L + i`` in lane i).

``cmd`` — the layer descriptor that starts a GEMV: ``k``, ``n``, ``fmt_set`` (index into the
compiled-in format sets), ``path`` (compute path: 0 = bit-serial, 1 = shift-add LUT path; 1 is
rejected unless the LUT path is compiled in) and, only when it is (``lut_planes`` > 0),
``planes`` (the layer's stored binary planes q, path 1; ignored by path 0). On path 1 the
``weights`` beats are :class:`golden.bcq_layout.EngineLutLayout`'s reinterpretation of the same
bits and ``precision`` is the number of planes read.

``results`` — one beat per row block: ``row[r]`` (signed, ``row_bits``) and ``last`` (the
GEMV's final block). Padding rows read 0.

``status`` — ``busy`` and sticky error flags, cleared when the next ``cmd`` is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from bitmix.errors import BitmixError
from golden.bitfields import Field, Layout
from golden.formats import FormatSet

__all__ = ["GemvLayout", "doc_table", "words_to_bytes", "STATUS_FLAGS"]

#: Error/state bits of the status register, in bit order.
STATUS_FLAGS = (
    ("busy", "a GEMV is loading, computing or draining"),
    ("err_format", "a weight beat carried a format id outside the layer's format set"),
    ("err_k", "descriptor K is 0, not a multiple of G, or above max K"),
    ("err_n", "descriptor N is 0 or above max N"),
    ("err_desc", "descriptor names a format set or compute path that is not compiled in, or "
                 "(path 1) a plane count of 0 or above the compiled maximum"),
    ("err_abort", "`abort_req` was raised while a GEMV was running"),
)


def words_to_bytes(words, beat_bytes: int) -> bytes:
    """A stream's byte form from its beats as numpy ``[beats, words]`` 32-bit words (a layout's
    ``pack_columns``): each beat's first ``beat_bytes`` little-endian bytes."""
    import numpy as np

    raw = np.ascontiguousarray(words.astype("<u4")).view(np.uint8).reshape(len(words), -1)
    return raw[:, :beat_bytes].tobytes()


@dataclass(frozen=True)
class GemvLayout:
    """Stream layouts of one engine configuration (R rows, L lanes, group G, A/S bits, sets)."""

    rows: int
    lanes: int
    group_size: int
    act_bits: int
    scale_bits: int
    format_sets: tuple[FormatSet, ...]
    max_k: int
    max_n: int
    #: most binary planes of the shift-add LUT path (0 = no LUT path compiled in)
    lut_planes: int = 0

    # ------------------------------------------------------------------ widths
    @property
    def code_bits(self) -> int:
        return max(fs.bits for fs in self.format_sets)

    @property
    def id_bits(self) -> int:
        return max(1, max(fs.id_bits for fs in self.format_sets))

    @property
    def set_bits(self) -> int:
        return max(1, (len(self.format_sets) - 1).bit_length())

    @property
    def k_bits(self) -> int:
        """Wide enough to hold a K above max K (so the engine can reject it)."""
        return max(16, self.max_k.bit_length() + 1)

    @property
    def n_bits(self) -> int:
        return max(16, self.max_n.bit_length() + 1)

    @property
    def beats_per_group(self) -> int:
        return self.group_size // self.lanes

    @property
    def plane_bits(self) -> int:
        """Width of ``cmd.planes``: holds a count above the maximum (so the engine can reject it)."""
        return self.lut_planes.bit_length() + 1

    # ------------------------------------------------------------------ layouts
    @cached_property
    def weights(self) -> Layout:
        R, L = self.rows, self.lanes
        return Layout("weights", (
            Field("codes", self.code_bits, R * L, doc="code of row r, lane i at index r*L + i",
                  array=True),
            Field("fmt", self.id_bits, R, doc="format id of row r's current group", array=True),
            Field("u", self.scale_bits, R, doc="integer scale of row r's current group", array=True),
        ))

    @cached_property
    def acts(self) -> Layout:
        return Layout("acts", (Field("x", self.act_bits, self.lanes, signed=True,
                                     doc="activation of lane i", array=True),))

    @cached_property
    def cmd(self) -> Layout:
        return Layout("cmd", (
            Field("k", self.k_bits, doc="inputs per row (multiple of G, <= max K)"),
            Field("n", self.n_bits, doc="output rows (<= max N)"),
            Field("fmt_set", self.set_bits, doc="index of the layer's format set (compiled-in sets)"),
            Field("path", 1, doc="compute path: 0 = bit-serial, 1 = shift-add LUT path"),
            *((Field("planes", self.plane_bits, doc="path 1: binary planes q stored (1..max)"),)
              if self.lut_planes else ()),
        ))

    def results(self, row_bits: int) -> Layout:
        return Layout("results", (
            Field("row", row_bits, self.rows, signed=True, doc="integer result of row r of the block",
                  array=True),
            Field("last", 1, doc="the GEMV's final row block"),
        ))

    @cached_property
    def status(self) -> Layout:
        return Layout("status", tuple(Field(n, 1, doc=d) for n, d in STATUS_FLAGS))

    @property
    def weight_bits(self) -> int:
        return self.weights.size

    @property
    def beat_bytes(self) -> int:
        return -(-self.weight_bits // 8)

    def stream_bits_per_weight(self) -> float:
        """Weight-stream bits per weight (codes + repeated descriptors)."""
        return self.weight_bits / (self.rows * self.lanes)

    # ------------------------------------------------------------------ checks
    def set_index(self, fs: FormatSet | str) -> int:
        name = fs if isinstance(fs, str) else fs.name
        for i, s in enumerate(self.format_sets):
            if s.name == name and (isinstance(fs, str) or s.hash == fs.hash):
                return i
        raise BitmixError(f"format set {name!r} is not compiled into this engine "
                          f"(compiled in: {', '.join(s.name for s in self.format_sets)})")

    def pad_fmt(self, set_index: int) -> int:
        """Format id of padding rows: the set's format with the fewest terms (first on ties)."""
        fs = self.format_sets[set_index]
        terms = [max(1, f.max_terms) for f in fs.formats]
        return terms.index(min(terms))

    def check_layer(self, n: int, k: int, what: str = "layer") -> None:
        if k <= 0 or k % self.group_size or k > self.max_k:
            raise BitmixError(f"{what}: K = {k} must be a positive multiple of G = {self.group_size} "
                              f"and at most max K = {self.max_k}")
        if n <= 0 or n > self.max_n:
            raise BitmixError(f"{what}: N = {n} must be in 1..max N = {self.max_n}")

    def blocks(self, n: int) -> int:
        return -(-n // self.rows)

    # ------------------------------------------------------------------ packers
    def weight_beats(self, codes, fmt_ids, u, fmt_set: FormatSet | str, what: str = "layer") -> list[int]:
        """Beats of one layer in stream order (see module docstring)."""
        codes, fmt_ids, u = (torch.as_tensor(t).to(torch.int64) for t in (codes, fmt_ids, u))
        if codes.dim() != 2:
            raise BitmixError(f"{what}: codes must be [N, K], got shape {tuple(codes.shape)}")
        n, k = codes.shape
        self.check_layer(n, k, what)
        si = self.set_index(fmt_set)
        fs = self.format_sets[si]
        ng = k // self.group_size
        for name, t in (("fmt_ids", fmt_ids), ("u", u)):
            if tuple(t.shape) != (n, ng):
                raise BitmixError(f"{what}: {name} has shape {tuple(t.shape)}, expected {(n, ng)}")
        if int(codes.min()) < 0 or int(codes.max()) >= 1 << fs.bits:
            raise BitmixError(f"{what}: codes outside 0..{(1 << fs.bits) - 1} for format set {fs.name}")
        if int(fmt_ids.min()) < 0 or int(fmt_ids.max()) >= len(fs.formats):
            raise BitmixError(f"{what}: format id {int(fmt_ids.max())} outside format set {fs.name} "
                              f"({len(fs.formats)} formats)")
        if int(u.min()) < 0 or int(u.max()) >= 1 << self.scale_bits:
            raise BitmixError(f"{what}: u outside 0..{(1 << self.scale_bits) - 1}")
        R, L, B = self.rows, self.lanes, self.beats_per_group
        nb = self.blocks(n)
        pad = nb * R - n
        if pad:
            codes = torch.cat([codes, torch.zeros(pad, k, dtype=torch.int64)])
            fmt_ids = torch.cat([fmt_ids, torch.full((pad, ng), self.pad_fmt(si), dtype=torch.int64)])
            u = torch.cat([u, torch.zeros(pad, ng, dtype=torch.int64)])
        wf = self.weights
        beats = []
        for j in range(nb):
            rs = slice(j * R, (j + 1) * R)
            for g in range(ng):
                desc = {"fmt": fmt_ids[rs, g].tolist(), "u": u[rs, g].tolist()}
                for t in range(B):
                    c0 = g * self.group_size + t * L
                    desc["codes"] = codes[rs, c0:c0 + L].reshape(-1).tolist()
                    beats.append(wf.pack(**desc))
        return beats

    def unpack_weights(self, beats: list[int], n: int, k: int, what: str = "stream"):
        """Inverse of :meth:`weight_beats`: ``(codes [N, K], fmt_ids [N, K/G], u [N, K/G])``.

        Checks the stream's length and that every beat of a group repeats its descriptors."""
        self.check_layer(n, k, what)
        R, L, B = self.rows, self.lanes, self.beats_per_group
        ng, nb = k // self.group_size, self.blocks(n)
        if len(beats) != nb * ng * B:
            raise BitmixError(f"{what}: {len(beats)} beats, expected {nb * ng * B} for N={n}, K={k}")
        codes = torch.zeros(nb * R, k, dtype=torch.int64)
        fmt_ids = torch.zeros(nb * R, ng, dtype=torch.int64)
        u = torch.zeros(nb * R, ng, dtype=torch.int64)
        it = iter(beats)
        for j in range(nb):
            rs = slice(j * R, (j + 1) * R)
            for g in range(ng):
                for t in range(B):
                    v = self.weights.unpack(next(it))
                    d = (v["fmt"], v["u"])
                    if t == 0:
                        first = d
                        fmt_ids[rs, g] = torch.tensor(d[0])
                        u[rs, g] = torch.tensor(d[1])
                    elif d != first:
                        raise BitmixError(f"{what}: block {j}, group {g}, beat {t}: descriptors differ "
                                          "from the group's first beat")
                    c0 = g * self.group_size + t * L
                    codes[rs, c0:c0 + L] = torch.tensor(v["codes"]).reshape(R, L)
        return codes[:n], fmt_ids[:n], u[:n]

    def weight_words(self, codes, fmt_ids, u, fmt_set: FormatSet | str, what: str = "layer"):
        """The same beats as :meth:`weight_beats`, vectorised (large layers): a numpy
        ``[beats, words]`` uint32 array, word w holding beat bits ``32w .. 32w+31``."""
        codes, fmt_ids, u = (torch.as_tensor(t).to(torch.int64) for t in (codes, fmt_ids, u))
        n, k = codes.shape
        self.check_layer(n, k, what)
        si = self.set_index(fmt_set)
        fs = self.format_sets[si]
        ng = k // self.group_size
        if (int(codes.min()) < 0 or int(codes.max()) >= 1 << fs.bits
                or int(fmt_ids.min()) < 0 or int(fmt_ids.max()) >= len(fs.formats)
                or int(u.min()) < 0 or int(u.max()) >= 1 << self.scale_bits):
            raise BitmixError(f"{what}: codes, format ids or scales out of range for {fs.name}")
        R, L, B = self.rows, self.lanes, self.beats_per_group
        nb = self.blocks(n)
        pad = nb * R - n
        if pad:
            codes = torch.cat([codes, torch.zeros(pad, k, dtype=torch.int64)])
            fmt_ids = torch.cat([fmt_ids, torch.full((pad, ng), self.pad_fmt(si), dtype=torch.int64)])
            u = torch.cat([u, torch.zeros(pad, ng, dtype=torch.int64)])
        # beat (j, g, t): codes[jR + r, gG + tL + i] at element r*L + i
        c = codes.reshape(nb, R, ng, B, L).permute(0, 2, 3, 1, 4).reshape(-1, R * L)
        f = fmt_ids.reshape(nb, R, ng).permute(0, 2, 1).repeat_interleave(B, 1).reshape(-1, R)
        s = u.reshape(nb, R, ng).permute(0, 2, 1).repeat_interleave(B, 1).reshape(-1, R)
        return self.weights.pack_columns({"codes": c.numpy(), "fmt": f.numpy(), "u": s.numpy()})

    def weight_bytes(self, codes, fmt_ids, u, fmt_set: FormatSet | str, what: str = "layer") -> bytes:
        """``to_bytes(weight_beats(...))`` from :meth:`weight_words` (vectorised): what the driver
        writes, packed in a fraction of the time for a real model's 10^5-10^6 beats."""
        return words_to_bytes(self.weight_words(codes, fmt_ids, u, fmt_set, what), self.beat_bytes)

    def to_bytes(self, beats: list[int]) -> bytes:
        nb = self.beat_bytes
        return b"".join(w.to_bytes(nb, "little") for w in beats)

    def from_bytes(self, data: bytes) -> list[int]:
        nb = self.beat_bytes
        if len(data) % nb:
            raise BitmixError(f"weight stream of {len(data)} bytes is not a whole number of "
                              f"{nb}-byte beats")
        return [int.from_bytes(data[i:i + nb], "little") for i in range(0, len(data), nb)]

    def act_beats(self, x_int) -> list[int]:
        x = torch.as_tensor(x_int).to(torch.int64).reshape(-1).tolist()
        if len(x) % self.lanes:
            raise BitmixError(f"activations: {len(x)} values is not a multiple of L = {self.lanes}")
        return [self.acts.pack(x=x[i:i + self.lanes])
                for i in range(0, len(x), self.lanes)]

    def cmd_word(self, *, k: int, n: int, fmt_set: int = 0, path: int = 0, planes: int = 0) -> int:
        if planes and not self.lut_planes:
            raise BitmixError("cmd: planes given, but this engine has no LUT path")
        extra = {"planes": planes} if self.lut_planes else {}
        return self.cmd.pack(k=k, n=n, fmt_set=fmt_set, path=path, **extra)

    def unpack_results(self, beats: list[int], row_bits: int, n: int) -> list[int]:
        """Row results of one GEMV (padding rows dropped); checks the ``last`` flags."""
        rf = self.results(row_bits)
        nb = self.blocks(n)
        if len(beats) != nb:
            raise BitmixError(f"results: {len(beats)} beats, expected {nb} for N={n}")
        out = []
        for j, w in enumerate(beats):
            v = rf.unpack(w)
            if v["last"] != int(j == nb - 1):
                raise BitmixError(f"results: block {j} has last={v['last']}")
            out += v["row"]
        return out[:n]


def doc_table(layout: Layout) -> str:
    """Markdown table of one stream's fields (generated documentation)."""
    lines = [f"**`{layout.name}`** ({layout.size} bits)", "",
             "| field | type | offset | elements | meaning |", "|---|---|---|---|---|"]
    for r in layout.rows():
        kind = f"{'s' if r['signed'] else 'u'}{r['width']}"
        lines.append(f"| `{r['field']}` | {kind} | {r['offset']} | {r['count']} | {r['doc']} |")
    return "\n".join(lines)
