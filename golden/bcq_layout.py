"""Wire formats of the shift-add LUT path (ShiftAddLLM / FIGLUT): the one definition the RTL
(``hw.lut_unit``), the packer, the testbenches and the docs read.

Pure Python (no Amaranth). The LUT path computes, per output row and for ``p`` planes,

    y_int = Σ_{i<p} Σ_{c<K/8} α_int(i, row, c) · lut_c[key(i, row, c)]
    lut_c[key] = Σ_{j<8} (2·bit_j(key) − 1) · x_{8c+j}
    α_int = Σ_t s_t · 2^{shift_t},  shift_t = e_t − E0

where E0 (:meth:`LutLayout.exp_base`) is the smallest exponent of any used APoT term of the
layer's q stored planes. ``golden.bcq.BCQWeight.int_matmul(x, p)`` is the same sum with its own
offset E0(p) ≥ E0, so the hardware's integer is ``int_matmul(x, p) << (E0(p) − E0)`` — the same
real value ``y_int · 2^E0 · σ_x`` (:func:`expected`).

A key (one byte, bit j = input ``8c + j``, 1 = +1) needs one scale over its 8 inputs. The
``row`` layout (G a multiple of 8) and the ``block`` ("Lat.") layout qualify; the ``col``
("Acc.") layout gives each input column its own α and is refused (:data:`COL_REFUSAL`).

Streams (one integer per beat, fields LSB first; ``R`` rows computed side by side):

``cmd`` — ``k`` (inputs, a multiple of 8), ``n`` (rows), ``planes`` (q stored), and
``group_chunks`` (8-input chunks sharing one scale beat: G/8 in the row layout, 1 in the block
layout). The runtime ``precision`` p (0 = all q) is latched with it.

``acts`` — 8 signed activations (one chunk) per beat; for every row block the K/8 chunks again.

``keys`` — R keys per beat (row r of the block in ``key[r]``). Order: row blocks; in a block
the K/8 chunks; in a chunk the p planes, most significant first. The stream at precision p is
the q-plane stream with planes ≥ p left out (:func:`plane_of_key_beats`).

``scales`` — R rows' APoT terms of one plane (``sign[r*T + t]`` ∈ {−1, 0, +1},
``shift[r*T + t]``), sent for the chunks that start a scale group (``c % group_chunks == 0``):
row blocks, then those chunks, then the p planes. A row's terms hold until its next group;
in the block layout every chunk starts one, and rows of one block-group repeat the same terms.

``results`` — one beat per row block: R signed row results and ``last``. Padding rows (past N)
have sign-0 terms and read 0.

``status`` — ``busy`` and sticky error flags, cleared by the next accepted ``cmd``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from bitmix.errors import BitmixError
from golden.bcq import BCQWeight, pack_bits
from golden.bitfields import Field, Layout
from golden.gemv_layout import GemvLayout, words_to_bytes

__all__ = ["LutLayout", "EngineLutLayout", "KEY_BITS", "LUT_ENTRIES", "LUT_STATUS_FLAGS", "COL_REFUSAL",
           "group_chunks", "expected", "plane_of_key_beats"]

#: Inputs per table (one key = one byte of a binary plane).
KEY_BITS = 8
#: Entries stored per table: 256 sums halved by mirror symmetry, lut[~key] = −lut[key].
LUT_ENTRIES = 1 << (KEY_BITS - 1)
#: Why the ``col`` layout cannot run on the LUT path (one line, used by every refusal).
COL_REFUSAL = ("the LUT path needs one scale over each 8-input key, but the 'col' (ShiftAddLLM "
               "Acc.) layout gives every input column its own scale; use the 'row' or 'block' layout")

LUT_STATUS_FLAGS = (
    ("busy", "a GEMV is computing or draining"),
    ("err_k", "descriptor K is 0, not a multiple of 8, or above max K"),
    ("err_n", "descriptor N is 0 or above max N"),
    ("err_desc", "descriptor planes is 0 or above the compiled maximum, or group_chunks is 0"),
)


def group_chunks(bw: BCQWeight, what: str = "layer") -> int:
    """Chunks of 8 inputs that share one scale beat (row: G/8, block: 1); refuses ``col``."""
    if bw.layout == "col":
        raise BitmixError(f"{what}: BCQ layout 'col': {COL_REFUSAL}")
    rs, cs = bw.spans
    if cs % KEY_BITS:
        raise BitmixError(f"{what}: BCQ layout {bw.layout!r} with group size {bw.group_size}: the "
                          f"LUT path needs a group size that is a multiple of {KEY_BITS}")
    return cs // KEY_BITS


def _key_of(bits) -> int:
    return sum(1 << j for j, b in enumerate(bits) if b)


@dataclass(frozen=True)
class LutLayout:
    """Stream layouts of one LUT-path configuration (R rows, q_max planes, T terms, E shift bits)."""

    rows: int
    max_planes: int
    apot_terms: int
    shift_bits: int
    act_bits: int
    max_k: int
    max_n: int

    @property
    def max_shift(self) -> int:
        """Largest exponent span ``e − E0`` the datapath shifts by."""
        return (1 << self.shift_bits) - 1

    @property
    def k_bits(self) -> int:
        return max(16, self.max_k.bit_length() + 1)

    @property
    def n_bits(self) -> int:
        return max(16, self.max_n.bit_length() + 1)

    @property
    def plane_bits(self) -> int:
        """Wide enough for a plane count above the maximum (so the engine can reject it)."""
        return self.max_planes.bit_length() + 1

    @property
    def gc_bits(self) -> int:
        return (self.max_k // KEY_BITS).bit_length() + 1

    # ------------------------------------------------------------------ layouts
    @cached_property
    def cmd(self) -> Layout:
        return Layout("cmd", (
            Field("k", self.k_bits, doc="inputs per row (multiple of 8, <= max K)"),
            Field("n", self.n_bits, doc="output rows (<= max N)"),
            Field("planes", self.plane_bits, doc="binary planes q stored (1..max planes)"),
            Field("group_chunks", self.gc_bits,
                  doc="8-input chunks per scale beat (row layout G/8, block layout 1)"),
        ))

    @cached_property
    def acts(self) -> Layout:
        return Layout("acts", (Field("x", self.act_bits, KEY_BITS, signed=True,
                                     doc="activation 8c + j of chunk c"),))

    @cached_property
    def keys(self) -> Layout:
        return Layout("keys", (Field("key", KEY_BITS, self.rows, array=True,
                                     doc="row r's key: bit j = sign of input 8c + j (1 = +1)"),))

    @cached_property
    def scales(self) -> Layout:
        n = self.rows * self.apot_terms
        return Layout("scales", (
            Field("sign", 2, n, signed=True, array=True,
                  doc="term t of row r at r*T + t: -1, 0 (unused), +1"),
            Field("shift", self.shift_bits, n, array=True, doc="term t of row r: exponent - E0"),
        ))

    def results(self, row_bits: int) -> Layout:
        return Layout("results", (
            Field("row", row_bits, self.rows, signed=True, array=True,
                  doc="integer result of row r of the block (units of 2^E0)"),
            Field("last", 1, doc="the GEMV's final row block"),
        ))

    @cached_property
    def status(self) -> Layout:
        return Layout("status", tuple(Field(n, 1, doc=d) for n, d in LUT_STATUS_FLAGS))

    # ------------------------------------------------------------------ checks
    def blocks(self, n: int) -> int:
        return -(-n // self.rows)

    def check_weight(self, bw: BCQWeight, what: str = "layer") -> int:
        """Everything the hardware cannot run, as one clear line; returns group_chunks."""
        gc = group_chunks(bw, what)
        n, k = bw.shape
        if k % KEY_BITS or not 0 < k <= self.max_k:
            raise BitmixError(f"{what}: K = {k} must be a positive multiple of {KEY_BITS} and at "
                              f"most max K = {self.max_k}")
        if not 0 < n <= self.max_n:
            raise BitmixError(f"{what}: N = {n} must be in 1..max N = {self.max_n}")
        if bw.bits > self.max_planes:
            raise BitmixError(f"{what}: {bw.bits} binary planes, the LUT path is compiled for at "
                              f"most {self.max_planes}")
        if bw.exps is None:
            raise BitmixError(f"{what}: float scales; the LUT path needs APoT scales (apot_terms > 0)")
        if bw.apot_terms > self.apot_terms:
            raise BitmixError(f"{what}: {bw.apot_terms} APoT terms per scale, the LUT path adds at "
                              f"most {self.apot_terms}")
        self.exp_base(bw, what)
        return gc

    def exp_base(self, bw: BCQWeight, what: str = "layer") -> int:
        """E0 of the layer (all q planes); refuses a span the datapath cannot shift."""
        used = bw.signs != 0
        if not used.any():
            return 0
        e = bw.exps[used]
        span = int(e.max() - e.min())
        if span > self.max_shift:
            raise BitmixError(f"{what}: APoT exponents span 2^{span}; the LUT path shifts by at most "
                              f"2^{self.max_shift} (shift_bits = {self.shift_bits})")
        return int(e.min())

    @staticmethod
    def precision(bw: BCQWeight, p: int | None) -> int:
        p = bw.bits if not p else p
        if not 1 <= p <= bw.bits:
            raise BitmixError(f"precision {p} outside 1..{bw.bits} planes")
        return p

    # ------------------------------------------------------------------ packers
    def cmd_word(self, *, k: int, n: int, planes: int, group_chunks: int) -> int:
        return self.cmd.pack(k=k, n=n, planes=planes, group_chunks=group_chunks)

    def layer_cmd(self, bw: BCQWeight) -> int:
        n, k = bw.shape
        return self.cmd_word(k=k, n=n, planes=bw.bits, group_chunks=self.check_weight(bw))

    def key_beats(self, bw: BCQWeight, p: int | None = None, what: str = "layer") -> list[int]:
        """Keys in stream order at precision p (see module docstring)."""
        self.check_weight(bw, what)
        p = self.precision(bw, p)
        n, k = bw.shape
        R = self.rows
        keys = pack_bits(bw.planes[:p]).to(torch.int64)             # [p, N, K/8]
        pad = self.blocks(n) * R - n
        if pad:
            keys = torch.cat([keys, torch.zeros(p, pad, k // KEY_BITS, dtype=torch.int64)], 1)
        beats = []
        for j in range(self.blocks(n)):
            blk = keys[:, j * R:(j + 1) * R]
            for c in range(k // KEY_BITS):
                for i in range(p):
                    beats.append(self.keys.pack(key=blk[i, :, c].tolist()))
        return beats

    def _row_terms(self, bw: BCQWeight, e0: int):
        """Per plane, row and chunk: (signs, shifts) ``[q, N, K/8, T]`` (unused terms: 0, 0)."""
        rs, cs = bw.spans
        n, k = bw.shape
        T = self.apot_terms
        s = bw.signs.to(torch.int64)
        sh = torch.where(s != 0, bw.exps - e0, torch.zeros_like(bw.exps))
        pad = T - s.shape[-1]
        if pad:
            s = torch.nn.functional.pad(s, (0, pad))
            sh = torch.nn.functional.pad(sh, (0, pad))
        chunk_group = torch.arange(k // KEY_BITS) * KEY_BITS // cs
        row_group = torch.arange(n) // rs
        s = s[:, row_group][:, :, chunk_group]
        sh = sh[:, row_group][:, :, chunk_group]
        return s, sh

    def scale_beats(self, bw: BCQWeight, p: int | None = None, what: str = "layer") -> list[int]:
        """Scale beats in stream order at precision p (see module docstring)."""
        gc = self.check_weight(bw, what)
        p = self.precision(bw, p)
        n, k = bw.shape
        R, T = self.rows, self.apot_terms
        s, sh = self._row_terms(bw, self.exp_base(bw))
        pad = self.blocks(n) * R - n
        if pad:
            z = torch.zeros(s.shape[0], pad, *s.shape[2:], dtype=torch.int64)
            s, sh = torch.cat([s, z], 1), torch.cat([sh, z], 1)
        beats = []
        for j in range(self.blocks(n)):
            rows = slice(j * R, (j + 1) * R)
            for c in range(0, k // KEY_BITS, gc):
                for i in range(p):
                    beats.append(self.scales.pack(sign=s[i, rows, c].reshape(R * T).tolist(),
                                                  shift=sh[i, rows, c].reshape(R * T).tolist()))
        return beats

    def act_beats(self, x_int, n: int) -> list[int]:
        """The K/8 chunk beats, once per row block."""
        x = torch.as_tensor(x_int).to(torch.int64).reshape(-1).tolist()
        if len(x) % KEY_BITS:
            raise BitmixError(f"activations: {len(x)} values is not a multiple of {KEY_BITS}")
        one = [self.acts.pack(x=x[i:i + KEY_BITS]) for i in range(0, len(x), KEY_BITS)]
        return one * self.blocks(n)

    def stream_bits(self, bw: BCQWeight, p: int | None = None) -> dict:
        """Weight-stream bits of one GEMV at precision p: keys, scales and their sum."""
        p = self.precision(bw, p)
        gc = self.check_weight(bw)
        n, k = bw.shape
        nb, chunks = self.blocks(n), k // KEY_BITS
        kb = nb * chunks * p * self.keys.size
        sb = nb * (-(-chunks // gc)) * p * self.scales.size
        return {"keys": kb, "scales": sb, "total": kb + sb}

    #: Row results of one GEMV (padding rows dropped, ``last`` flags checked): the same block
    #: result format as the bit-serial engine's, so the same reader.
    unpack_results = GemvLayout.unpack_results

    # ------------------------------------------------------------------ unpacker
    def unpack(self, key_beats: list[int], scale_beats: list[int], *, n: int, k: int, planes: int,
               layout: str, group_size: int, e0: int, what: str = "stream") -> BCQWeight:
        """Inverse of :meth:`key_beats` + :meth:`scale_beats` for ``planes`` planes: a
        :class:`BCQWeight` (exponents ``shift + e0``, unused terms 0). Checks lengths and that
        rows of one scale group carry the same terms."""
        R, T = self.rows, self.apot_terms
        bw0 = BCQWeight(torch.zeros(planes, n, k, dtype=torch.bool), None, None, layout, group_size)
        gc = group_chunks(bw0, what)
        rs, cs = bw0.spans
        nb, chunks = self.blocks(n), k // KEY_BITS
        ns = -(-chunks // gc)
        if len(key_beats) != nb * chunks * planes:
            raise BitmixError(f"{what}: {len(key_beats)} key beats, expected {nb * chunks * planes}")
        if len(scale_beats) != nb * ns * planes:
            raise BitmixError(f"{what}: {len(scale_beats)} scale beats, expected {nb * ns * planes}")
        keys = torch.zeros(planes, nb * R, chunks, dtype=torch.int64)
        it = iter(key_beats)
        for j in range(nb):
            for c in range(chunks):
                for i in range(planes):
                    keys[i, j * R:(j + 1) * R, c] = torch.tensor(self.keys.unpack(next(it))["key"])
        bits = ((keys.unsqueeze(-1) >> torch.arange(KEY_BITS)) & 1).bool()
        planes_t = bits.reshape(planes, nb * R, k)[:, :n]
        exps = torch.zeros(planes, n // rs, k // cs, T, dtype=torch.int64)
        signs = torch.zeros(planes, n // rs, k // cs, T, dtype=torch.int8)
        seen = torch.zeros(planes, n // rs, k // cs, dtype=torch.bool)
        it = iter(scale_beats)
        for j in range(nb):
            for c in range(0, chunks, gc):
                for i in range(planes):
                    v = self.scales.unpack(next(it))
                    for r in range(R):
                        row = j * R + r
                        if row >= n:
                            continue
                        sg = torch.tensor(v["sign"][r * T:(r + 1) * T], dtype=torch.int8)
                        ex = torch.where(sg != 0, torch.tensor(v["shift"][r * T:(r + 1) * T]) + e0, 0)
                        g = (i, row // rs, c * KEY_BITS // cs)
                        if seen[g] and not (torch.equal(signs[g], sg) and torch.equal(exps[g], ex)):
                            raise BitmixError(f"{what}: block {j}, chunk {c}, plane {i}, row {row}: "
                                              "terms differ from another row of the same scale group")
                        signs[g], exps[g], seen[g] = sg, ex, True
        return BCQWeight(planes_t, exps, signs, layout, group_size)


@dataclass(frozen=True)
class EngineLutLayout:
    """The GEMV engine's LUT path (``cmd.path`` = 1): its ``weights`` beat, reinterpreted.

    The engine keeps one ``weights`` port (:attr:`golden.gemv_layout.GemvLayout.weights`, ``beat_bits``
    wide); on path 1 its low bits are this layout, the rest zero. An activation word holds L
    inputs = C = L/8 chunks, each chunk one table; a beat is one plane of one word for the R rows::

        key[r * C + c]        row r's key of chunk c (bit j = sign of input w*L + 8c + j, 1 = +1)
        sign[(r * C + c) * T + t], shift[...]   the chunk's APoT term t (-1/0/+1, exponent - E0)

    Order: row blocks; in a block the K/L words; in a word the p planes read, most significant
    first, so precision p is the q-plane stream with planes >= p left out. The terms repeat on
    every beat of their scale group (like the bit-serial descriptors): no scale stream, no store.
    ``lut`` carries everything else (checks, E0, the row-result bound): R = the engine's rows.
    """

    lut: LutLayout
    lanes: int
    beat_bits: int
    #: K must be a multiple of this (the engine's G: its activation load counts whole groups)
    k_step: int = KEY_BITS

    def __post_init__(self):
        if self.lanes % KEY_BITS:
            raise BitmixError(f"lut path: lanes = {self.lanes} must be a multiple of {KEY_BITS} "
                              "(one activation word = whole 8-input tables)")
        if self.weights.size > self.beat_bits:
            raise BitmixError(
                f"lut path: a beat of {self.rows} rows x {self.chunks} keys and their "
                f"{self.lut.apot_terms}-term scales needs {self.weights.size} bits, the engine's "
                f"weight beat has {self.beat_bits}; use fewer apot_terms or shift_bits")

    @property
    def rows(self) -> int:
        return self.lut.rows

    @property
    def chunks(self) -> int:
        """Tables per activation word (C = L/8)."""
        return self.lanes // KEY_BITS

    @cached_property
    def weights(self) -> Layout:
        n, t = self.rows * self.chunks, self.rows * self.chunks * self.lut.apot_terms
        return Layout("lut_weights", (
            Field("key", KEY_BITS, n, array=True, doc="row r, chunk c at r*C + c: one plane's key"),
            Field("sign", 2, t, signed=True, array=True,
                  doc="term t of row r, chunk c at (r*C + c)*T + t: -1, 0 (unused), +1"),
            Field("shift", self.lut.shift_bits, t, array=True, doc="that term's exponent - E0"),
        ))

    @property
    def beat_bytes(self) -> int:
        return -(-self.beat_bits // 8)

    def check_weight(self, bw: BCQWeight, what: str = "layer") -> None:
        self.lut.check_weight(bw, what)
        step = max(self.lanes, self.k_step)
        if bw.shape[1] % step:
            raise BitmixError(f"{what}: K = {bw.shape[1]} is not a multiple of {step} (the engine's "
                              f"L = {self.lanes} and G = {self.k_step})")

    def _columns(self, bw: BCQWeight, p: int | None, what: str):
        """Keys, signs, shifts of every beat in stream order: ``[beats, R*C]``, ``[beats, R*C*T]`` x 2."""
        self.check_weight(bw, what)
        p = self.lut.precision(bw, p)
        n, k = bw.shape
        R, C, T = self.rows, self.chunks, self.lut.apot_terms
        keys = pack_bits(bw.planes[:p]).to(torch.int64)               # [p, N, K/8]
        s, sh = self.lut._row_terms(bw, self.lut.exp_base(bw))        # [q, N, K/8, T]
        nb = self.lut.blocks(n)
        pad = nb * R - n
        if pad:
            keys = torch.cat([keys, torch.zeros(p, pad, k // KEY_BITS, dtype=torch.int64)], 1)
            z = torch.zeros(s.shape[0], pad, *s.shape[2:], dtype=torch.int64)
            s, sh = torch.cat([s, z], 1), torch.cat([sh, z], 1)
        # beat (j, w, i): row r, chunk c -> [j, w, i, r, c]
        words = k // self.lanes
        kk = keys.reshape(p, nb, R, words, C).permute(1, 3, 0, 2, 4).reshape(-1, R * C)
        ss = s[:p].reshape(p, nb, R, words, C, T).permute(1, 3, 0, 2, 4, 5).reshape(-1, R * C * T)
        hh = sh[:p].reshape(p, nb, R, words, C, T).permute(1, 3, 0, 2, 4, 5).reshape(-1, R * C * T)
        return kk, ss, hh

    def weight_beats(self, bw: BCQWeight, p: int | None = None, what: str = "layer") -> list[int]:
        """Beats in stream order at precision p (see the class docstring)."""
        kk, ss, hh = self._columns(bw, p, what)
        return [self.weights.pack(key=a, sign=b, shift=c)
                for a, b, c in zip(kk.tolist(), ss.tolist(), hh.tolist())]

    def weight_words(self, bw: BCQWeight, p: int | None = None, nwords: int | None = None,
                     what: str = "layer"):
        """The beats of :meth:`weight_beats`, vectorised (large layers): numpy ``[beats, words]``
        uint32, ``nwords`` words per beat (default: the engine's weight beat)."""
        kk, ss, hh = self._columns(bw, p, what)
        return self.weights.pack_columns({"key": kk.numpy(), "sign": ss.numpy(), "shift": hh.numpy()},
                                         nwords or -(-self.beat_bits // 32))

    def weight_bytes(self, bw: BCQWeight, p: int | None = None, what: str = "layer") -> bytes:
        """The beats of :meth:`weight_beats` in the engine's byte form (``GemvLayout.to_bytes``:
        ``beat_bytes`` little-endian bytes each), vectorised: what the driver writes."""
        return words_to_bytes(self.weight_words(bw, p, what=what), self.beat_bytes)

    def unpack_weights(self, beats: list[int], *, n: int, k: int, planes: int, layout: str,
                       group_size: int, e0: int, what: str = "stream") -> BCQWeight:
        """Inverse of :meth:`weight_beats` (``planes`` planes): regroups the beats into the LUT
        unit's key and scale streams and reads them with :meth:`LutLayout.unpack`."""
        R, C, T = self.rows, self.chunks, self.lut.apot_terms
        nb, words = self.lut.blocks(n), k // self.lanes
        if len(beats) != nb * words * planes:
            raise BitmixError(f"{what}: {len(beats)} beats, expected {nb * words * planes}")
        bw0 = BCQWeight(torch.zeros(planes, n, k, dtype=torch.bool), None, None, layout, group_size)
        gc = group_chunks(bw0, what)
        v = [self.weights.unpack(b) for b in beats]
        lk, ls = self.lut.keys, self.lut.scales
        key_beats, scale_beats = [], []
        for j in range(nb):
            for c in range(k // KEY_BITS):
                w, cc = divmod(c, C)
                for i in range(planes):
                    d = v[(j * words + w) * planes + i]
                    rows = [r * C + cc for r in range(R)]
                    key_beats.append(lk.pack(key=[d["key"][x] for x in rows]))
                    if c % gc == 0:
                        scale_beats.append(ls.pack(
                            sign=[d["sign"][x * T + t] for x in rows for t in range(T)],
                            shift=[d["shift"][x * T + t] for x in rows for t in range(T)]))
        return self.lut.unpack(key_beats, scale_beats, n=n, k=k, planes=planes, layout=layout,
                               group_size=group_size, e0=e0, what=what)

    def stream_bytes(self, bw: BCQWeight, p: int | None = None) -> dict:
        """Weight bytes of one GEMV at precision p: as read through the engine's port (whole
        beats) and as payload (keys, terms)."""
        p = self.lut.precision(bw, p)
        n, k = bw.shape
        beats = self.lut.blocks(n) * (k // self.lanes) * p
        key_bits = beats * self.rows * self.chunks * KEY_BITS
        return {"beats": beats, "port": beats * self.beat_bytes, "keys": key_bits // 8,
                "payload": beats * self.weights.size / 8}


def plane_of_key_beats(n_beats: int, planes: int) -> list[int]:
    """Plane index of each key beat in a stream of ``planes`` planes per chunk."""
    return [b % planes for b in range(n_beats)]


def expected(bw: BCQWeight, x_int, p: int | None, e0: int) -> list[int]:
    """The LUT path's row results at precision p, in units of 2^e0 (``LutLayout.exp_base``):
    ``golden.bcq``'s integer path rescaled from its own offset E0(p)."""
    p = LutLayout.precision(bw, p)
    y, e0p = bw.int_matmul(torch.as_tensor(x_int), p)
    if not (bw.signs[:p] != 0).any():
        return [0] * bw.shape[0]
    return (y << (e0p - e0)).tolist()
