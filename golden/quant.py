"""Round-to-nearest quantization of weights to codes, and of activations to integers.

A weight matrix ``W[N, K]`` is split per output row into groups of ``G`` inputs.
Each group stores a format id (which format of the set it uses), an unsigned
integer scale ``u`` and, for asymmetric INT, an integer zero point; each row stores
one float scale ``sigma``. A weight is ``w = sigma_row * u_group * (v[code] - z_group)``
(docs/architecture.md §2). This two-level scale is what lets the hardware keep every product integer
until the very end.

Storage contract (what :func:`QuantizedWeight.effective_bits` charges is what is stored and
applied): ``sigma_row`` is an fp32 value (:func:`fp32_scale` rounds up, so no group clips; it is
kept in a float64 tensor, exactly); ``u`` is an unsigned ``scale_bits``-bit integer, or for
MX (``scale_kind="pow2"``) a power of two ``2**e`` whose exponent the 8-bit shared scale holds.
:meth:`QuantizedWeight.validate` checks both; saving and loading a quantized folder call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from bitmix.errors import BitmixError
from golden.formats import Format, FormatSet, get_format, get_format_set

__all__ = [
    "QuantizedWeight", "quantize_rtn", "quantize_mx", "quantize_activations",
    "nearest_codes", "default_scale_bits", "check_weight", "fp32_scale", "METADATA_BITS",
]

#: Metadata budget per group (format id + integer scale), as BitMoD charges it.
METADATA_BITS = 8
#: Rows quantized at once; bounds peak memory to a few hundred MB whatever the layer size.
ROW_CHUNK = 512
#: Bits of the per-row float scale, counted in the effective bits per weight.
ROW_SCALE_BITS = 32


def fp32_scale(sigma: torch.Tensor, name: str = "weight") -> torch.Tensor:
    """Row scales rounded UP to the nearest fp32 value (float64 tensor holding fp32 values).

    Up, so that the group whose absmax set the scale still fits ``u <= 2**S - 1`` without clipping.
    """
    s = sigma.to(torch.float64)
    f = s.to(torch.float32)
    f = torch.where(f.to(torch.float64) < s, torch.nextafter(f, torch.full_like(f, math.inf)), f)
    if not torch.isfinite(f).all() or ((f == 0) & (s != 0)).any():
        raise BitmixError(f"{name}: row scale outside the fp32 range (max {float(s.abs().max()):g})")
    return f.to(torch.float64)


def default_scale_bits(fs: FormatSet) -> int:
    """Width of ``u`` so that format id + scale fill the 8-bit metadata budget."""
    return METADATA_BITS - fs.id_bits


@dataclass
class QuantizedWeight:
    """Everything the hardware needs for one linear layer, plus its float meaning."""

    codes: torch.Tensor          # [N, K] int64, code of each weight
    fmt_ids: torch.Tensor        # [N, K//G] int64, index into format_set.formats
    u: torch.Tensor              # [N, K//G] int64, unsigned integer group scale
    row_scale: torch.Tensor      # [N] float64, sigma_row
    format_set: FormatSet
    group_size: int
    scale_bits: int
    zero: torch.Tensor | None = None   # [N, K//G] int64 zero point (asymmetric INT only)
    method: str = "rtn"
    extra: dict = field(default_factory=dict)
    scale_kind: str = "int"            # "int": u < 2**scale_bits; "pow2" (MX): u = 2**e, e <= 62

    def validate(self, where: str = "weight") -> None:
        """Check the storage contract (module docstring); a violation names ``where`` and the field."""
        if self.scale_kind not in ("int", "pow2"):
            raise BitmixError(f"{where}: scale_kind {self.scale_kind!r} is not 'int' or 'pow2'")
        rs = self.row_scale.to(torch.float64)
        if not torch.equal(rs.to(torch.float32).to(torch.float64), rs):
            raise BitmixError(f"{where}: row_scale holds values that are not fp32 (32 bits are charged)")
        u = self.u.to(torch.int64)
        if u.numel() and int(u.min()) < 0:
            raise BitmixError(f"{where}: u holds a negative group scale {int(u.min())}")
        if self.scale_kind == "int":
            umax = (1 << self.scale_bits) - 1
            if u.numel() and int(u.max()) > umax:
                raise BitmixError(f"{where}: u holds {int(u.max())}, above the {self.scale_bits}-bit "
                                  f"group scale's maximum {umax}")
        elif ((u & (u - 1)) != 0).any():
            bad = int(u[(u & (u - 1)) != 0][0])
            raise BitmixError(f"{where}: u holds {bad}, not a power of two (MX shared exponent)")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)

    def values(self, nterms: int | None = None) -> torch.Tensor:
        """Integer grid value of every weight, ``v[code] - z`` ([N, K] int64)."""
        from golden.intref import weight_values
        return weight_values(self.codes, self.fmt_ids, self.format_set, self.group_size,
                             nterms=nterms, zero=self.zero)

    def dequantize(self, nterms: int | None = None) -> torch.Tensor:
        """Float weight the integer path computes with ([N, K] float64)."""
        scale = (self.row_scale[:, None] * self.u.to(torch.float64)).repeat_interleave(self.group_size, 1)
        return scale * self.values(nterms).to(torch.float64)

    def effective_bits(self, include_row_scale: bool = True) -> float:
        """Storage bits per weight including every piece of metadata."""
        k = self.shape[1]
        per_group = self.format_set.id_bits + self.scale_bits
        if self.zero is not None:
            per_group += self.format_set.bits
        bits = self.format_set.bits + per_group / self.group_size
        return bits + (ROW_SCALE_BITS / k if include_row_scale else 0.0)

    def int_matmul(self, x_int: torch.Tensor, nterms: int | None = None) -> torch.Tensor:
        """Exact integer result per row, ``sum_g u_g * sum_k x_k (v_k - z_g)`` (int64)."""
        from golden.intref import row_results
        return row_results(self.codes, self.fmt_ids, self.u, x_int, self.format_set,
                           self.group_size, nterms=nterms, zero=self.zero)

    def forward_integer(self, x: torch.Tensor, act_bits: int = 8, nterms: int | None = None) -> torch.Tensor:
        """``x @ W.T`` the way the hardware computes it: INT activations, integer sums, one float rescale."""
        x_int, sx = quantize_activations(x, act_bits)
        acc = self.int_matmul(x_int.reshape(-1, x.shape[-1]), nterms=nterms)
        y = acc.to(torch.float64) * self.row_scale * sx.reshape(-1, 1)
        return y.reshape(*x.shape[:-1], -1)


def check_weight(W: torch.Tensor, group_size: int, name: str = "weight") -> None:
    """Reject what no quantizer can represent, naming the tensor."""
    if W.dim() != 2:
        raise BitmixError(f"{name}: expected a 2-D weight matrix, got shape {tuple(W.shape)}")
    if group_size <= 0:
        raise BitmixError(f"{name}: group size must be positive, got {group_size}")
    if W.shape[1] % group_size:
        raise BitmixError(f"{name}: input size {W.shape[1]} is not divisible by group size {group_size}")
    bad = ~torch.isfinite(W)
    if bad.any():
        r, c = (int(i) for i in bad.nonzero()[0])
        raise BitmixError(f"{name}: {int(bad.sum())} non-finite value(s) (NaN/Inf), first at [{r}, {c}]")


def nearest_codes(x: torch.Tensor, fmt: Format) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest grid point of each element (ties to the lower point, ends clip): (codes, values)."""
    grid = torch.tensor(fmt.grid, dtype=x.dtype)
    mids = (grid[1:] + grid[:-1]) / 2
    idx = torch.bucketize(x, mids, right=False)
    code_of_idx = torch.tensor([fmt.code_of(v) for v in fmt.grid], dtype=torch.int64)
    return code_of_idx[idx], grid[idx]


def _row_sigma(absmax_rows: torch.Tensor, denom, umax: int) -> torch.Tensor:
    sigma = absmax_rows / denom / umax
    return fp32_scale(torch.where(sigma > 0, sigma, torch.ones_like(sigma)))


def _u_candidates(ideal: torch.Tensor, umax: int) -> list[torch.Tensor]:
    lo = torch.floor(ideal).clamp(1, umax)
    hi = torch.ceil(ideal).clamp(1, umax)
    return [lo.to(torch.int64), hi.to(torch.int64)]


def quantize_rtn(W: torch.Tensor, fs: FormatSet | str, group_size: int = 128,
                 scale_bits: int | None = None, name: str = "weight",
                 row_scale: torch.Tensor | None = None) -> QuantizedWeight:
    """Per-group RTN with BitMoD's selection among the set's formats (lowest MSE, ties to the first).

    ``row_scale`` (optional, ``[N]``) fixes ``sigma_row`` instead of deriving it from ``W``:
    GPTQ (golden/gptq.py) refits one group at a time on error-compensated weights and needs
    every group of a row to share the row scale chosen at the start.

    The row scale is ``max_g absmax_g / min_f max|grid_f| / (2**S - 1)`` so every
    candidate's ideal group scale is representable; for each group and format the two
    integer scales around the ideal (``absmax / max|grid|``) are tried, and the
    (format, u) pair with the lowest squared error wins.
    """
    fs = get_format_set(fs) if isinstance(fs, str) else fs
    check_weight(W, group_size, name)
    S = default_scale_bits(fs) if scale_bits is None else scale_bits
    if not 1 <= S <= 16:
        raise BitmixError(f"{name}: scale_bits must be in 1..16, got {S}")
    impl = _quantize_asym if fs.zero_point else _quantize_sym
    # rows are independent: bound the float64 temporaries of big layers (7B-size) by chunking
    if row_scale is not None and tuple(row_scale.shape) != (W.shape[0],):
        raise BitmixError(f"{name}: row_scale has shape {tuple(row_scale.shape)}, expected ({W.shape[0]},)")
    parts = [impl(W[r:r + ROW_CHUNK], fs, group_size, S,
                  None if row_scale is None else row_scale[r:r + ROW_CHUNK])
             for r in range(0, W.shape[0], ROW_CHUNK)]
    if len(parts) == 1:
        return parts[0]

    def cat(attr):
        return torch.cat([getattr(p, attr) for p in parts]) if getattr(parts[0], attr) is not None else None

    return QuantizedWeight(cat("codes"), cat("fmt_ids"), cat("u"), cat("row_scale"), fs, group_size, S,
                           zero=cat("zero"), method=parts[0].method, scale_kind=parts[0].scale_kind)


def _select(Wg, absmax, fs, sigma, umax):
    """BitMoD's per-group choice at fixed row scales: (codes, fmt_ids, u, squared error per group)."""
    best_err = torch.full(absmax.shape, math.inf, dtype=torch.float64)
    best = (torch.zeros(Wg.shape, dtype=torch.int64), torch.zeros(absmax.shape, dtype=torch.int64),
            torch.zeros(absmax.shape, dtype=torch.int64))
    for fid, fmt in enumerate(fs.formats):
        ideal = absmax / fmt.max_abs / sigma[:, None]
        for u in _u_candidates(ideal, umax):
            scale = sigma[:, None, None] * u[..., None]
            codes, vals = nearest_codes(Wg / scale, fmt)
            err = ((vals * scale - Wg) ** 2).sum(-1)
            take = err < best_err
            best_err = torch.where(take, err, best_err)
            best = (torch.where(take[..., None], codes, best[0]),
                    torch.where(take, torch.full_like(u, fid), best[1]),
                    torch.where(take, u, best[2]))
    return (*best, best_err)


def _quantize_sym(W, fs, group_size, S, row_scale=None) -> QuantizedWeight:
    """Row scale from the smallest ``max|grid|`` (every format's ideal ``u`` fits); for sets whose
    formats differ in range (bitmod3: ER 4, EA 6; ANT) also from the formats the groups actually
    selected, keeping per row whichever gives the lower squared error (README: "row scale")."""
    umax = (1 << S) - 1
    N, K = W.shape
    Wg = W.to(torch.float64).reshape(N, K // group_size, group_size)
    absmax = Wg.abs().amax(-1)                                   # [N, ng]
    if row_scale is not None:
        sigma = fp32_scale(row_scale)
    else:
        sigma = _row_sigma(absmax.amax(-1), min(f.max_abs for f in fs.formats), umax)   # [N]
    codes, fmt_ids, u, err = _select(Wg, absmax, fs, sigma, umax)
    ranges = torch.tensor([f.max_abs for f in fs.formats], dtype=torch.float64)
    if row_scale is None and len(set(ranges.tolist())) > 1:
        sigma2 = _row_sigma((absmax / ranges[fmt_ids]).amax(-1), 1.0, umax)
        c2, f2, u2, e2 = _select(Wg, absmax, fs, sigma2, umax)
        take = e2.sum(-1) < err.sum(-1)                          # per row
        codes = torch.where(take[:, None, None], c2, codes)
        fmt_ids = torch.where(take[:, None], f2, fmt_ids)
        u = torch.where(take[:, None], u2, u)
        sigma = torch.where(take, sigma2, sigma)
    u = torch.where(absmax > 0, u, torch.zeros_like(u))           # all-zero group: scale 0
    return QuantizedWeight(codes.reshape(N, K), fmt_ids, u, sigma, fs, group_size, S,
                           method=f"rtn-{fs.name}")


def _quantize_asym(W, fs, group_size, S, row_scale=None) -> QuantizedWeight:
    """Asymmetric INT (zero point), min-max range widened to include 0 as GPTQ's quantizer does."""
    fmt = fs.formats[0]
    qmax = (1 << fmt.bits) - 1
    umax = (1 << S) - 1
    N, K = W.shape
    Wg = W.to(torch.float64).reshape(N, K // group_size, group_size)
    wmin = Wg.amin(-1).clamp(max=0)
    wmax = Wg.amax(-1).clamp(min=0)
    ideal_scale = (wmax - wmin) / qmax                           # [N, ng]
    sigma = _row_sigma(ideal_scale.amax(-1), 1.0, umax)
    if row_scale is not None:
        sigma = fp32_scale(row_scale)
    best_err = torch.full(ideal_scale.shape, math.inf, dtype=torch.float64)
    best = None
    for u in _u_candidates(ideal_scale / sigma[:, None], umax):
        scale = sigma[:, None] * u
        z = torch.round(-wmin / scale).clamp(0, qmax)
        q = torch.clamp(torch.round(Wg / scale[..., None]) + z[..., None], 0, qmax)
        err = (((q - z[..., None]) * scale[..., None] - Wg) ** 2).sum(-1)
        take = err < best_err
        best_err = torch.where(take, err, best_err)
        cand = (q.to(torch.int64), u, z.to(torch.int64))
        best = cand if best is None else tuple(torch.where(take[..., None] if i == 0 else take, c, b)
                                               for i, (c, b) in enumerate(zip(cand, best)))
    q, u, z = best
    live = (wmax - wmin) > 0
    u = torch.where(live, u, torch.zeros_like(u))
    return QuantizedWeight(q.reshape(N, K), torch.zeros_like(u), u, sigma, fs, group_size, S,
                           zero=z, method=f"rtn-{fs.name}")


def quantize_mx(W: torch.Tensor, fmt: str = "fp4", group_size: int = 32,
                name: str = "weight") -> QuantizedWeight:
    """MX-FP baseline: each group shares a power-of-two scale (the smallest that does not clip).

    Stored in the two-level form with ``sigma_row = 2**min_e`` and ``u = 2**(e - min_e)``
    so the same integer reference applies; the 8-bit shared exponent is what is charged.
    """
    f = get_format(fmt)
    fs = get_format_set(fmt)
    check_weight(W, group_size, name)
    N, K = W.shape
    Wg = W.to(torch.float64).reshape(N, K // group_size, group_size)
    absmax = Wg.abs().amax(-1)
    tiny = torch.finfo(torch.float64).tiny
    e = torch.ceil(torch.log2((absmax / f.max_abs).clamp(min=tiny))).to(torch.int64)
    e_min = e.amin(-1)
    span = int((e - e_min[:, None]).max()) if e.numel() else 0
    if span > 62:
        raise BitmixError(f"{name}: group scales span 2^{span}; the MX shared exponents overflow int64")
    u = torch.pow(2, e - e_min[:, None])
    sigma = fp32_scale(torch.pow(2.0, e_min.to(torch.float64)), name)      # a power of two: exact
    codes, _ = nearest_codes(Wg / (sigma[:, None, None] * u[..., None]), f)
    u = torch.where(absmax > 0, u, torch.zeros_like(u))
    return QuantizedWeight(codes.reshape(N, K), torch.zeros_like(u), u, sigma, fs, group_size,
                           METADATA_BITS, method=f"mx-{fmt}", scale_kind="pow2")


def quantize_activations(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-token INT quantization.

    ``x_int = round(x / sigma)`` with ``sigma = absmax / (2**(A-1) - 1)``."""
    if not 2 <= bits <= 16:
        raise BitmixError(f"activation bits must be in 2..16, got {bits}")
    if not torch.isfinite(x).all():
        raise BitmixError("activations: non-finite value(s) (NaN/Inf)")
    qmax = (1 << (bits - 1)) - 1
    x64 = x.to(torch.float64)
    sigma = x64.abs().amax(-1, keepdim=True) / qmax
    sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    x_int = torch.clamp(torch.round(x64 / sigma), -qmax, qmax).to(torch.int64)
    return x_int, sigma.squeeze(-1)
