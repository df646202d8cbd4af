"""Second-order post-training quantization (GPTQ / OPTQ): one engine, any quantizer.

The engine minimises ``‖WX − ŴX‖²`` column by column (docs/architecture.md §3, research notes §D):

1. ``H = 2XXᵀ`` accumulated over calibration tokens as a running mean (:class:`Hessian`,
   always float64 here — cheap at these sizes and what ShiftAddLLM uses for BCQ);
2. dead inputs (``H_ii = 0``) → ``H_ii = 1`` and ``W[:, i] = 0``;
3. optional act-order (see below); damping ``H_ii += percdamp · mean(diag H)``;
4. ``U`` = upper Cholesky factor of ``H⁻¹``;
5. blocks of (at least) 128 columns; per column ``q = quant(w)``, ``e = (w − q)/U_jj``,
   ``W[:, j:blk_end] −= e · U[j, j:blk_end]``; after each block the remaining columns get the
   lazy update ``W[:, blk_end:] −= E · U[blk, blk_end:]``;
6. the quantizer's shared parameters are refit on the current, error-compensated weights
   whenever a new scale group starts (``j % width == 0``): for BitMoD this is where the per-group
   format selection happens; for ShiftAddLLM "Acc" (BCQ, column layout) the width is 1, so BCQ
   runs on every compensated column; for "Lat" (block layout) every 8 columns.

Quantizers plug in as :class:`Adapter` objects (``fit`` a group, ``quant`` a column,
``result``) and the output is exactly what the hardware needs: a
:class:`golden.quant.QuantizedWeight` or a :class:`golden.bcq.BCQWeight`.

Two-level scales: every group of a row must share ``σ_row``, so the row scale is fixed once
at the start from the (dead-column-zeroed) weights by RTN's rule (times ``scale_headroom``)
and each group refit uses the ``row_scale`` hook of :func:`golden.quant.quantize_rtn`.

Act-order with groups: plain act-order would scatter a group's columns over the processing
order, so a group could not be fitted on compensated weights before its first column is
quantized. Here act-order is *group-aware*: whole scale groups are ordered by the sum of their
``diag H`` (descending; as ShiftAddLLM's "Lat" mode orders 8-column groups) and the columns
inside a group by ``diag H`` (descending). With one group per row (or width 1) it is exactly
GPTQ's act-order. The storage layout is unchanged (groups stay contiguous inputs); only the
processing order changes, and it is undone at the end.
"""

from __future__ import annotations

import math

import torch

from bitmix.errors import BitmixError
from golden.bcq import BCQWeight, bcq_assign, bcq_fit, check_bcq_args, fit_group_size, layout_spans
from golden.formats import FormatSet, get_format, get_format_set
from golden.quant import (
    QuantizedWeight,
    check_weight,
    default_scale_bits,
    fp32_scale,
    nearest_codes,
    quantize_mx,
    quantize_rtn,
)

__all__ = ["Hessian", "collect_hessians", "gptq", "RTNAdapter", "MXAdapter", "BCQAdapter",
           "proxy_loss", "prepare_hessian"]


class Hessian:
    """Running ``H = 2/n Σ x xᵀ`` over calibration tokens (GPTQ's ``add_batch``), float64."""

    def __init__(self, k: int):
        self.H = torch.zeros(k, k, dtype=torch.float64)
        self.n = 0

    def add_batch(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
        t = x.shape[0]
        if t == 0:
            return
        self.H *= self.n / (self.n + t)
        self.n += t
        x = math.sqrt(2.0 / self.n) * x
        self.H += x.T @ x


class _Stop(Exception):
    """Ends a calibration forward pass once the last linear of interest has seen its input."""


def collect_hessians(modules: dict, names, inputs, run, stop_after: str | None = None) -> dict:
    """``{name: H}`` of the linears ``modules[name]`` over ``run(x)`` for every ``x`` in ``inputs``.

    Forward hooks feed each linear's input to a :class:`Hessian`. With ``stop_after`` the pass
    ends right after that linear (the rest of the model is not needed for this group), so
    GPTQ's true-sequential sub-groups cost only the forward up to their last linear.
    """
    hs = {n: Hessian(modules[n].in_features) for n in names}

    def make(n):
        def hook(mod, inp, out):
            hs[n].add_batch(inp[0])
            if n == stop_after:
                raise _Stop
        return hook

    handles = [modules[n].register_forward_hook(make(n)) for n in names]
    try:
        with torch.no_grad():
            for x in inputs:
                try:
                    run(x)
                except _Stop:
                    pass
    finally:
        for hd in handles:
            hd.remove()
    return {n: hs[n].H for n in names}


def prepare_hessian(H: torch.Tensor, W: torch.Tensor | None = None, percdamp: float = 0.01):
    """Dead-column fix and damping; returns ``(H, W, dead)`` (copies)."""
    H = H.to(torch.float64).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    if W is not None:
        W = W.to(torch.float64).clone()
        W[:, dead] = 0.0
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(H.shape[0], dtype=torch.float64)
    return H, W, dead


def proxy_loss(W: torch.Tensor, W_hat: torch.Tensor, H: torch.Tensor) -> float:
    """``tr((W − Ŵ) H (W − Ŵ)ᵀ)`` = ``‖WX − ŴX‖²·2/n`` for ``H = 2XXᵀ/n``."""
    D = (W.to(torch.float64) - W_hat.to(torch.float64))
    return float(((D @ H.to(torch.float64)) * D).sum())


# --------------------------------------------------------------------------------------------
# Quantizer adapters: fit(group block) / quant(column) / result()
# --------------------------------------------------------------------------------------------

class Adapter:
    """Interface the engine drives. ``width`` columns share fitted parameters."""

    width: int = 1

    def start(self, W: torch.Tensor) -> None:        # called once with the initial weights
        pass

    def fit(self, block: torch.Tensor, g: int) -> None:   # block: [N, width] current weights, original order
        raise NotImplementedError

    def quant(self, w: torch.Tensor, col: int) -> torch.Tensor:   # returns the dequantized column
        raise NotImplementedError

    def result(self):
        raise NotImplementedError


class RTNAdapter(Adapter):
    """Any format set of golden.formats (INT, INT-asym, FP, ANT, BitMoD mixtures) with two-level scales."""

    def __init__(self, fs: FormatSet | str, group_size: int = 128, scale_bits: int | None = None,
                 scale_headroom: float = 1.0):
        self.fs = get_format_set(fs) if isinstance(fs, str) else fs
        self.width = group_size
        self.S = default_scale_bits(self.fs) if scale_bits is None else scale_bits
        self.headroom = scale_headroom

    def start(self, W):
        N, K = W.shape
        self.sigma = fp32_scale(quantize_rtn(W, self.fs, self.width, self.S).row_scale * self.headroom)
        ng = K // self.width
        self.codes = torch.zeros(N, K, dtype=torch.int64)
        self.fmt_ids = torch.zeros(N, ng, dtype=torch.int64)
        self.u = torch.zeros(N, ng, dtype=torch.int64)
        self.zero = torch.zeros(N, ng, dtype=torch.int64) if self.fs.zero_point else None

    def fit(self, block, g):
        q = quantize_rtn(block, self.fs, self.width, self.S, row_scale=self.sigma)
        self.fmt_ids[:, g] = q.fmt_ids[:, 0]
        self.u[:, g] = q.u[:, 0]
        if self.zero is not None:
            self.zero[:, g] = q.zero[:, 0]

    def quant(self, w, col):
        g = col // self.width
        u = self.u[:, g]
        scale = self.sigma * u.to(torch.float64)
        live = u > 0
        x = torch.where(live, w / torch.where(live, scale, torch.ones_like(scale)), torch.zeros_like(w))
        if self.zero is not None:
            qmax = (1 << self.fs.bits) - 1
            z = self.zero[:, g]
            codes = torch.clamp(torch.round(x) + z, 0, qmax).to(torch.int64)
            codes = torch.where(live, codes, z)
            vals = (codes - z).to(torch.float64)
        else:
            codes = torch.zeros_like(u)
            vals = torch.zeros_like(w)
            fid = self.fmt_ids[:, g]
            for i, fmt in enumerate(self.fs.formats):
                m = fid == i
                if m.any():
                    c, v = nearest_codes(x[m], fmt)
                    codes[m], vals[m] = c, v
        self.codes[:, col] = codes
        return vals * scale

    def result(self):
        return QuantizedWeight(self.codes, self.fmt_ids, self.u, self.sigma, self.fs, self.width,
                               self.S, zero=self.zero, method=f"gptq-{self.fs.name}")


class MXAdapter(Adapter):
    """MX-FP: a power-of-two scale per group, refit on compensated weights; combined at the end."""

    def __init__(self, fmt: str = "fp4", group_size: int = 32):
        self.f = get_format(fmt)
        self.fmt = fmt
        self.width = group_size

    def start(self, W):
        N, K = W.shape
        self.e = torch.zeros(N, K // self.width, dtype=torch.int64)
        self.live = torch.zeros(N, K // self.width, dtype=torch.bool)
        self.codes = torch.zeros(N, K, dtype=torch.int64)

    def fit(self, block, g):
        q = quantize_mx(block, self.fmt, self.width)       # one group: sigma = 2^e, u in {0, 1}
        self.e[:, g] = torch.round(torch.log2(q.row_scale)).to(torch.int64)
        self.live[:, g] = q.u[:, 0] > 0

    def quant(self, w, col):
        g = col // self.width
        scale = torch.pow(2.0, self.e[:, g].to(torch.float64))
        c, v = nearest_codes(w / scale, self.f)
        c = torch.where(self.live[:, g], c, torch.zeros_like(c))
        v = torch.where(self.live[:, g], v, torch.zeros_like(v))
        self.codes[:, col] = c
        return v * scale

    def result(self):
        big = torch.iinfo(torch.int64).max
        e_min = torch.where(self.live, self.e, torch.full_like(self.e, big)).amin(-1)
        e_min = torch.where(e_min == big, torch.zeros_like(e_min), e_min)
        span = int((torch.where(self.live, self.e - e_min[:, None], torch.zeros_like(self.e))).max()) \
            if self.e.numel() else 0
        if span > 62:
            raise BitmixError(f"mx: group scales span 2^{span}; the shared exponents overflow int64")
        u = torch.where(self.live, torch.pow(2, (self.e - e_min[:, None]).clamp(min=0)),
                        torch.zeros_like(self.e))
        sigma = fp32_scale(torch.pow(2.0, e_min.to(torch.float64)), getattr(self, "name", "mx"))
        fs = get_format_set(self.fmt)
        return QuantizedWeight(self.codes, torch.zeros_like(u), u, sigma, fs, self.width, 8,
                               method=f"gptq-mx-{self.fmt}", scale_kind="pow2")


class BCQAdapter(Adapter):
    """BCQ + APoT inside GPTQ: ``col`` = ShiftAddLLM Acc, ``block`` = Lat, ``row`` = row groups.

    ``fit`` runs the full BCQ (greedy + alternating) on the group's current columns; ``quant``
    re-solves each column's binary codes with the fitted α fixed (exact nearest codeword), which
    for the column layout returns the fitted codes themselves.
    """

    def __init__(self, bits: int, group_size: int = 128, layout: str = "col", rounds: int = 50,
                 apot_terms: int = 3):
        self.q, self.G, self.layout = bits, group_size, layout
        self.rounds, self.apot_terms = rounds, apot_terms
        self.rs, self.cs = layout_spans(layout, group_size)
        self.width = self.cs

    def start(self, W):
        N, K = W.shape
        self.G = fit_group_size(self.layout, self.G, N)
        self.rs, self.cs = check_bcq_args(W, self.q, self.G, self.layout, getattr(self, "name", "weight"))
        R_, C_ = N // self.rs, K // self.cs
        self.planes = torch.zeros(self.q, N, K, dtype=torch.bool)
        T = max(self.apot_terms, 1)
        self.exps = torch.zeros(self.q, R_, C_, T, dtype=torch.int64)
        self.signs = torch.zeros(self.q, R_, C_, T, dtype=torch.int8)
        self.alpha = torch.zeros(self.q, R_, C_, dtype=torch.float64)

    def fit(self, block, g):
        N = block.shape[0]
        R_ = N // self.rs
        groups = block.reshape(R_, self.rs * self.cs)          # rows of rs × cs (row-major)
        alpha, e, s, _ = bcq_fit(groups, self.q, self.rounds, self.apot_terms)
        self.alpha[:, :, g] = alpha.T
        if self.apot_terms:
            self.exps[:, :, g] = e.permute(1, 0, 2)
            self.signs[:, :, g] = s.permute(1, 0, 2)

    def quant(self, w, col):
        g = col // self.cs
        a = self.alpha[:, :, g].T.repeat_interleave(self.rs, 0)        # [N, q]
        B = bcq_assign(w.reshape(-1, 1), a)[:, :, 0]                   # [N, q]
        self.planes[:, :, col] = (B > 0).T
        return (a * B).sum(-1)

    def result(self):
        if self.apot_terms:
            return BCQWeight(self.planes, self.exps, self.signs, self.layout, self.G,
                             method=f"gptq-bcq{self.q}-{self.layout}")
        return BCQWeight(self.planes, None, None, self.layout, self.G, alpha_float=self.alpha,
                         method=f"gptq-bcq{self.q}-{self.layout}")


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------

def _group_aware_order(diag: torch.Tensor, width: int) -> torch.Tensor:
    K = diag.shape[0]
    g = diag.reshape(K // width, width)
    gorder = torch.argsort(g.sum(-1), descending=True, stable=True)
    inner = torch.argsort(g, dim=-1, descending=True, stable=True)
    return (gorder[:, None] * width + inner[gorder]).reshape(-1)


def gptq(W: torch.Tensor, H: torch.Tensor, adapter: Adapter, blocksize: int = 128,
         percdamp: float = 0.01, act_order: bool = False, name: str = "weight",
         return_dequantized: bool = False):
    """Quantize ``W[N, K]`` with second-order error compensation; returns the adapter's result.

    ``result.extra`` holds ``gptq_loss`` (Σ (w−q)²/U_jj² / 2, GPTQ's own estimate), ``dead``
    (count of dead inputs) and ``act_order``. With ``return_dequantized`` the float columns the
    loop compensated against are returned too (they equal ``result.dequantize()``).
    """
    check_weight(W, adapter.width, name)
    N, K = W.shape
    if tuple(H.shape) != (K, K):
        raise BitmixError(f"{name}: Hessian has shape {tuple(H.shape)}, expected ({K}, {K})")
    if not torch.isfinite(H).all():
        raise BitmixError(f"{name}: Hessian has non-finite values")
    H, W, dead = prepare_hessian(H, W, percdamp)
    width = adapter.width
    bs = width * max(1, math.ceil(blocksize / width))          # blocks never split a group
    adapter.name = name
    adapter.start(W)
    perm = _group_aware_order(torch.diag(H), width) if act_order else torch.arange(K)
    W = W[:, perm]
    H = H[perm][:, perm]
    try:
        L = torch.linalg.cholesky(H)
        Hinv = torch.cholesky_inverse(L)
        U = torch.linalg.cholesky(Hinv, upper=True)
    except RuntimeError as exc:  # torch.linalg.LinAlgError subclasses RuntimeError
        raise BitmixError(f"{name}: Hessian is not positive definite after damping "
                          f"(percdamp={percdamp}); raise the damping ({exc})") from None
    Q = torch.zeros_like(W)
    loss = 0.0
    for i1 in range(0, K, bs):
        i2 = min(i1 + bs, K)
        W1 = W[:, i1:i2].clone()
        E1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            pos = i1 + i
            if pos % width == 0:                         # a new group starts: refit on current weights
                cols = perm[pos:pos + width]
                order = torch.argsort(cols)
                adapter.fit(W1[:, i:i + width][:, order], int(cols[0]) // width)
            w = W1[:, i]
            q = adapter.quant(w, int(perm[pos]))
            Q[:, pos] = q
            d = U1[i, i]
            err = (w - q) / d
            loss += float((err ** 2).sum()) / 2
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            E1[:, i] = err
        if i2 < K:
            W[:, i2:] -= E1 @ U[i1:i2, i2:]
    res = adapter.result()
    inv = torch.argsort(perm)
    res.extra.update(gptq_loss=loss, dead=int(dead.sum()), act_order=act_order)
    return (res, Q[:, inv]) if return_dequantized else res
