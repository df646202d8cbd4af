"""Binary-coding quantization (BCQ) with power-of-two scales: ShiftAddLLM's weight format.

A weight matrix is approximated as ``W ≈ Σ_{i<q} α_i · B_i`` with ``B_i ∈ {−1, +1}``
(docs/architecture.md §2.4). Each α is shared by a *scale group* of weights; three layouts exist, all
described by one pair ``(row_span, col_span)``: element ``(n, k)`` uses
``α[i, n // row_span, k // col_span]``.

==========  ========================  =============================================
layout      (row_span, col_span)      meaning
==========  ========================  =============================================
``row``     ``(1, G)``                G consecutive inputs of one output row
``col``     ``(G, 1)``                ShiftAddLLM "Acc": one column, G rows (inside GPTQ)
``block``   ``(G // 8, 8)``           ShiftAddLLM "Lat": 8 columns × G/8 rows
==========  ========================  =============================================

Fitting (ShiftAddLLM Alg. 1 and its release code): greedy init (``B_i = sign(r)``,
``α_i = mean|r|``), then ``rounds`` alternating steps: least-squares α given B, the α made
positive and sorted descending (so planes are most-significant first and precision p reads
the first p planes, docs/architecture.md §2.6), rounded to APoT (``α_k = POT(α − Σ_{j<k} α_j)``, at most
``apot_terms`` signed powers of two), then the exact nearest codeword for every weight (the
``2**q`` values ``Σ ±α_i`` sorted, nearest by binary search). The best state seen per group
is kept, so extra rounds never make a group worse.

Integer path: with integer activations ``x`` and an offset ``E0`` (the smallest APoT
exponent of the layer), ``y_int = Σ_i Σ_groups Σ_t s_t 2^{e_t − E0} · (Σ_{k∈group} b_ik x_k)``
is exact in int64, and ``y = y_int · 2^{E0} · σ_x``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch

from bitmix.errors import BitmixError
from golden.quant import check_weight, quantize_activations

__all__ = ["BCQWeight", "quantize_bcq", "bcq_fit", "bcq_assign", "apot", "layout_spans",
           "APOT_TERM_BITS", "LAYOUTS"]

LAYOUTS = ("row", "col", "block")
#: Storage charged per APoT term: 1 sign bit + a 7-bit exponent (the release kernel keeps int8 exponents).
APOT_TERM_BITS = 8
#: Largest exponent span (max e − E0) the int64 integer path accepts.
MAX_EXP_SPAN = 40


def layout_spans(layout: str, group_size: int) -> tuple[int, int]:
    """``(row_span, col_span)`` of a layout (see module docstring)."""
    if layout == "row":
        return 1, group_size
    if layout == "col":
        return group_size, 1
    if layout == "block":
        if group_size % 8 or group_size < 8:
            raise BitmixError("bcq: block layout needs a group size that is a multiple of 8, "
                              f"got {group_size}")
        return group_size // 8, 8
    raise BitmixError(f"bcq: unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")


# --------------------------------------------------------------------------------------------
# APoT scales
# --------------------------------------------------------------------------------------------

def apot(alpha: torch.Tensor, terms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive powers of two: ``α ≈ Σ_t s_t 2^{e_t}`` with ``α_k = POT(α − Σ_{j<k} α_j)``.

    ``POT(a) = sign(a)·2^round(log2|a|)``. Returns ``(exp int64, sign int8)`` with a trailing
    axis of length ``terms``; a term whose residual is exactly 0 has sign 0 (and exp 0).
    """
    a = alpha.to(torch.float64)
    r = a.clone()
    exps, signs = [], []
    for _ in range(terms):
        nz = r != 0
        e = torch.round(torch.log2(torch.where(nz, r.abs(), torch.ones_like(r)))).to(torch.int64)
        s = torch.sign(r).to(torch.int8)
        e = torch.where(nz, e, torch.zeros_like(e))
        r = r - s.to(torch.float64) * torch.pow(2.0, e.to(torch.float64))
        exps.append(e)
        signs.append(s)
    return torch.stack(exps, -1), torch.stack(signs, -1)


def apot_value(exps: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Float64 value of APoT terms (sum over the last axis)."""
    return (signs.to(torch.float64) * torch.pow(2.0, exps.to(torch.float64))).sum(-1)


# --------------------------------------------------------------------------------------------
# Fitting on a batch of scale groups
# --------------------------------------------------------------------------------------------

def _sign_patterns(q: int) -> torch.Tensor:
    """All 2**q sign vectors, [2**q, q] float64."""
    return torch.tensor(list(itertools.product((-1.0, 1.0), repeat=q)), dtype=torch.float64)


def bcq_assign(R: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Exact nearest codeword per element: ``R[M, n]``, ``alpha[M, q]`` → signs ``[M, q, n]`` (±1 float64).

    The 2**q codewords ``Σ_i s_i α_i`` of each group are sorted and every element is placed by
    binary search on the midpoints (ties go to the lower codeword).
    """
    q = alpha.shape[-1]
    S = _sign_patterns(q)                                   # [P, q]
    cw = alpha @ S.T                                        # [M, P]
    vals, order = cw.sort(-1)
    mids = (vals[:, 1:] + vals[:, :-1]) / 2
    idx = torch.searchsorted(mids.contiguous(), R.contiguous(), right=False)   # [M, n]
    pat = order.gather(1, idx)                              # [M, n] index into S
    return S[pat].permute(0, 2, 1)                          # [M, q, n]


def _ls_alpha(R: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Least-squares α given B: ``(B Bᵀ) α = B r`` per group (tiny ridge for collinear planes)."""
    q, n = B.shape[1], B.shape[2]
    BtB = B @ B.transpose(1, 2) + 1e-9 * n * torch.eye(q, dtype=torch.float64)
    rhs = (B @ R.unsqueeze(-1))
    return torch.linalg.solve(BtB, rhs).squeeze(-1)


def _normalise(alpha: torch.Tensor, apot_terms: int):
    """|α| sorted descending, then APoT-rounded (re-sorted: APoT can swap near-equal values)."""
    a = alpha.abs().sort(-1, descending=True).values
    if not apot_terms:
        return a, None, None
    e, s = apot(a, apot_terms)
    v = apot_value(e, s)
    v, order = v.sort(-1, descending=True)
    e = e.gather(-2, order.unsqueeze(-1).expand_as(e))
    s = s.gather(-2, order.unsqueeze(-1).expand_as(s))
    return v, e, s


def bcq_fit(R: torch.Tensor, q: int, rounds: int = 50, apot_terms: int = 3):
    """Fit ``q`` binary planes to each row of ``R[M, n]`` (each row is one scale group).

    Returns ``(alpha[M, q] float64, exps[M, q, K] | None, signs[M, q, K] | None, B[M, q, n] ±1)``,
    alpha descending. ``apot_terms=0`` keeps float α (no integer path).
    """
    R = R.to(torch.float64)
    M, n = R.shape
    # greedy init: B_i = sign(r), alpha_i = mean|r|
    r = R.clone()
    alpha = torch.zeros(M, q, dtype=torch.float64)
    for i in range(q):
        alpha[:, i] = r.abs().mean(-1)
        b = torch.where(r >= 0, 1.0, -1.0).to(torch.float64)
        r = r - alpha[:, i:i + 1] * b
    alpha, e, s = _normalise(alpha, apot_terms)
    B = bcq_assign(R, alpha)
    err = ((R - (alpha.unsqueeze(-1) * B).sum(1)) ** 2).sum(-1)
    best = [alpha, e, s, B, err]
    for _ in range(rounds):
        a_ls = _ls_alpha(R, B)
        alpha, e, s = _normalise(a_ls, apot_terms)
        B_new = bcq_assign(R, alpha)
        err = ((R - (alpha.unsqueeze(-1) * B_new).sum(1)) ** 2).sum(-1)
        take = err < best[4]
        if take.any():
            best[0] = torch.where(take[:, None], alpha, best[0])
            if apot_terms:
                best[1] = torch.where(take[:, None, None], e, best[1])
                best[2] = torch.where(take[:, None, None], s, best[2])
            best[3] = torch.where(take[:, None, None], B_new, best[3])
            best[4] = torch.where(take, err, best[4])
        if torch.equal(B_new, B):           # converged: the next LS step gives the same alpha
            break
        B = B_new
    return best[0], best[1], best[2], best[3]


# --------------------------------------------------------------------------------------------
# The quantized layer
# --------------------------------------------------------------------------------------------

@dataclass
class BCQWeight:
    """BCQ planes + APoT scales for one linear layer: what the shift-add hardware needs.

    ``planes[i, n, k]`` is True for +1. Scale group ``(r, c)`` of plane ``i`` has APoT terms
    ``exps[i, r, c, :]`` / ``signs[i, r, c, :]`` (sign 0 = unused term); ``alpha_float`` holds
    float α when APoT is disabled. Element ``(n, k)`` belongs to group
    ``(n // row_span, k // col_span)``.
    """

    planes: torch.Tensor                 # [q, N, K] bool, most-significant plane first
    exps: torch.Tensor | None            # [q, R, C, T] int64
    signs: torch.Tensor | None           # [q, R, C, T] int8 in {-1, 0, 1}
    layout: str
    group_size: int
    alpha_float: torch.Tensor | None = None   # [q, R, C] float64 (only without APoT)
    method: str = "bcq"
    extra: dict = field(default_factory=dict)

    @property
    def bits(self) -> int:
        return self.planes.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.planes.shape[1:])

    @property
    def spans(self) -> tuple[int, int]:
        return layout_spans(self.layout, self.group_size)

    @property
    def apot_terms(self) -> int:
        return 0 if self.exps is None else self.exps.shape[-1]

    def alpha(self) -> torch.Tensor:
        """Float64 α per plane and scale group, ``[q, R, C]``."""
        if self.exps is None:
            return self.alpha_float
        return apot_value(self.exps, self.signs)

    def _check_p(self, p):
        p = self.bits if p is None else p
        if not 1 <= p <= self.bits:
            raise BitmixError(f"bcq: precision {p} outside 1..{self.bits}")
        return p

    def _expand(self, a: torch.Tensor) -> torch.Tensor:
        rs, cs = self.spans
        return a.repeat_interleave(rs, -2).repeat_interleave(cs, -1)

    def dequantize(self, p: int | None = None) -> torch.Tensor:
        """``Σ_{i<p} α_i B_i`` ([N, K] float64); p < q reads only the first p planes (nested)."""
        p = self._check_p(p)
        a = self._expand(self.alpha()[:p])                             # [p, N, K]
        pm = self.planes[:p].to(torch.float64) * 2 - 1
        return (a * pm).sum(0)

    def exp_offset(self, p: int | None = None) -> int:
        """E0: the smallest exponent of any used APoT term of the first p planes."""
        p = self._check_p(p)
        if self.exps is None:
            raise BitmixError("bcq: the integer path needs APoT scales (apot_terms > 0)")
        used = self.signs[:p] != 0
        if not used.any():
            return 0
        e = self.exps[:p][used]
        span = int(e.max() - e.min())
        if span > MAX_EXP_SPAN:
            raise BitmixError(f"bcq: APoT exponents span 2^{span} (> 2^{MAX_EXP_SPAN}); "
                              "the integer path would overflow int64")
        return int(e.min())

    def int_alpha(self, p: int | None = None) -> tuple[torch.Tensor, int]:
        """Integer α ``Σ_t s_t 2^{e_t − E0}`` per plane and group (``[p, R, C]`` int64) and E0."""
        p = self._check_p(p)
        e0 = self.exp_offset(p)
        sh = (self.exps[:p] - e0).clamp(min=0)
        terms = self.signs[:p].to(torch.int64) * torch.bitwise_left_shift(torch.ones_like(sh), sh)
        return terms.sum(-1), e0

    def int_matmul(self, x_int: torch.Tensor, p: int | None = None) -> tuple[torch.Tensor, int]:
        """Exact ``Σ_i Σ_g A_ig · (Σ_{k∈g} b_ik x_k)`` per row: (``[T, N]`` or ``[N]`` int64, E0)."""
        p = self._check_p(p)
        A, e0 = self.int_alpha(p)                                       # [p, R, C]
        x = x_int.to(torch.int64)
        squeeze = x.dim() == 1
        x = x.reshape(-1, x.shape[-1])
        N, K = self.shape
        if x.shape[-1] != K:
            raise BitmixError(f"bcq: activations have {x.shape[-1]} inputs, weights expect {K}")
        rs, cs = self.spans
        A_rows = A.repeat_interleave(rs, 1)                             # [p, N, K // cs]
        out = torch.zeros(x.shape[0], N, dtype=torch.int64)
        tc = max(1, (1 << 22) // max(1, N * K))                          # bound [t, N, K] temporaries
        for i in range(p):
            pm = self.planes[i].to(torch.int64) * 2 - 1                 # [N, K]
            for t0 in range(0, x.shape[0], tc):
                xt = x[t0:t0 + tc]
                part = (pm.unsqueeze(0) * xt.unsqueeze(1)).reshape(xt.shape[0], N, K // cs, cs).sum(-1)
                out[t0:t0 + tc] += (part * A_rows[i]).sum(-1)
        return (out[0] if squeeze else out), e0

    def forward_integer(self, x: torch.Tensor, act_bits: int = 8, p: int | None = None) -> torch.Tensor:
        """``x @ Ŵ.T`` as the shift-add hardware computes it: INT activations, exact integer sums."""
        x_int, sx = quantize_activations(x, act_bits)
        acc, e0 = self.int_matmul(x_int.reshape(-1, x.shape[-1]), p)
        y = acc.to(torch.float64) * math.ldexp(1.0, e0) * sx.reshape(-1, 1)
        return y.reshape(*x.shape[:-1], -1)

    def effective_bits(self, p: int | None = None) -> float:
        """Bits per weight: p plane bits + every α's APoT terms (``APOT_TERM_BITS`` each; 16 if float)."""
        p = self._check_p(p)
        N, K = self.shape
        rs, cs = self.spans
        per_alpha = self.apot_terms * APOT_TERM_BITS if self.exps is not None else 16
        return p + p * per_alpha / (rs * cs)

    def tile(self, rows: slice, cols: slice) -> BCQWeight:
        """The sub-matrix ``W[rows, cols]`` as a BCQWeight of its own (its planes and its scale
        groups' terms): what a device computes when a layer is cut into tiles. Both slices must
        cover whole scale groups (a BitmixError names the misaligned one)."""
        groups = []
        for what, sl, span, size in (("rows", rows, self.spans[0], self.shape[0]),
                                     ("columns", cols, self.spans[1], self.shape[1])):
            start, stop, _ = sl.indices(size)
            if start % span or stop % span or start >= stop:
                raise BitmixError(f"bcq tile: {what} {start}..{stop} do not cover whole {self.layout}-"
                                  f"layout scale groups of {span} (of {size})")
            groups.append(slice(start // span, stop // span))

        def pick(t):
            return None if t is None else t[:, groups[0], groups[1]]

        return BCQWeight(self.planes[:, rows, cols], pick(self.exps), pick(self.signs), self.layout,
                         self.group_size, pick(self.alpha_float), self.method)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Storage form: bit-packed planes (uint8, 8 inputs per byte, LSB first) and APoT terms."""
        out = {"planes": pack_bits(self.planes)}
        if self.exps is not None:
            out["apot_exp"] = self.exps.to(torch.int16)
            out["apot_sign"] = self.signs.to(torch.int8)
        else:
            out["alpha"] = self.alpha_float
        return out

    @classmethod
    def from_tensors(cls, t: dict, shape, layout: str, group_size: int, method: str = "bcq") -> BCQWeight:
        planes = unpack_bits(t["planes"], shape[1])
        if "apot_exp" in t:
            return cls(planes, t["apot_exp"].to(torch.int64), t["apot_sign"].to(torch.int8),
                       layout, group_size, method=method)
        return cls(planes, None, None, layout, group_size, alpha_float=t["alpha"].to(torch.float64),
                   method=method)


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """Bool ``[..., K]`` → uint8 ``[..., ceil(K/8)]``, bit j of byte b = element 8b + j."""
    k = bits.shape[-1]
    pad = (-k) % 8
    b = torch.nn.functional.pad(bits.to(torch.uint8), (0, pad)).reshape(*bits.shape[:-1], -1, 8)
    w = torch.tensor([1 << j for j in range(8)], dtype=torch.uint8)
    return (b * w).sum(-1, dtype=torch.int64).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, k: int) -> torch.Tensor:
    w = torch.tensor([1 << j for j in range(8)], dtype=torch.uint8)
    b = (packed.unsqueeze(-1) & w) != 0
    return b.reshape(*packed.shape[:-1], -1)[..., :k]


# --------------------------------------------------------------------------------------------
# Direct (RTN-style) BCQ of a whole matrix
# --------------------------------------------------------------------------------------------

def _to_groups(W: torch.Tensor, rs: int, cs: int) -> torch.Tensor:
    """[N, K] → [R*C, rs*cs] rows = scale groups (row-major over (r, c))."""
    N, K = W.shape
    return W.reshape(N // rs, rs, K // cs, cs).permute(0, 2, 1, 3).reshape(-1, rs * cs)


def _from_groups(G: torch.Tensor, N: int, K: int, rs: int, cs: int) -> torch.Tensor:
    """Inverse of :func:`_to_groups` for a trailing element axis: [..., R*C, rs*cs] → [..., N, K]."""
    lead = G.shape[:-2]
    return (G.reshape(*lead, N // rs, K // cs, rs, cs).transpose(-3, -2)
            .reshape(*lead, N, K))


def fit_group_size(layout: str, group_size: int, n_rows: int) -> int:
    """Group size actually used: column/block groups run down the rows, so a layer with fewer rows
    than a group (e.g. a small k/v projection) uses one group per column (block: per 8 columns)."""
    if layout == "col" and n_rows < group_size:
        return n_rows
    if layout == "block" and n_rows < group_size // 8:
        return 8 * n_rows
    return group_size


def check_bcq_args(W: torch.Tensor, bits: int, group_size: int, layout: str, name: str) -> tuple[int, int]:
    if not 1 <= bits <= 8:
        raise BitmixError(f"{name}: BCQ bits must be in 1..8, got {bits}")
    if W.dim() != 2:
        raise BitmixError(f"{name}: expected a 2-D weight matrix, got shape {tuple(W.shape)}")
    rs, cs = layout_spans(layout, group_size)
    N, K = W.shape
    if N % rs:
        raise BitmixError(f"{name}: {N} output rows are not divisible by the {layout} layout's "
                          f"{rs}-row scale groups (group size {group_size})")
    check_weight(W, cs, name)
    return rs, cs


def quantize_bcq(W: torch.Tensor, bits: int, group_size: int = 128, layout: str = "row",
                 rounds: int = 50, apot_terms: int = 3, name: str = "weight") -> BCQWeight:
    """BCQ of a whole matrix without error compensation ("BCQ RTN")."""
    if W.dim() == 2:
        group_size = fit_group_size(layout, group_size, W.shape[0])
    rs, cs = check_bcq_args(W, bits, group_size, layout, name)
    if apot_terms < 0 or apot_terms > 8:
        raise BitmixError(f"{name}: apot_terms must be in 0..8, got {apot_terms}")
    N, K = W.shape
    Rg = _to_groups(W.to(torch.float64), rs, cs)
    alpha, e, s, B = bcq_fit(Rg, bits, rounds, apot_terms)
    planes = _from_groups(B.permute(1, 0, 2), N, K, rs, cs) > 0          # [q, N, K]
    R_, C_ = N // rs, K // cs
    if apot_terms:
        return BCQWeight(planes, e.permute(1, 0, 2).reshape(bits, R_, C_, apot_terms),
                         s.permute(1, 0, 2).reshape(bits, R_, C_, apot_terms), layout, group_size,
                         method=f"bcq{bits}-{layout}")
    return BCQWeight(planes, None, None, layout, group_size,
                     alpha_float=alpha.T.reshape(bits, R_, C_), method=f"bcq{bits}-{layout}")
