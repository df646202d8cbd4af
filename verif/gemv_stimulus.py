"""Stimulus for the GEMV engine, built from golden/ (formats, quantizer, integer reference).

A :class:`Gemv` is one layer run: codes/format ids/scales of ``W[N, K]``, integer activations,
the format set and the precision (terms per weight, 0 = full) it runs at. :func:`expected` is
``golden.intref.row_results`` — the engine must match it bit for bit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from golden import intref
from hw.gemv_params import GemvParams

__all__ = ["Gemv", "expected", "random_gemv", "every_code_gemv", "extreme_gemv", "quantized_gemv"]


@dataclass
class Gemv:
    codes: torch.Tensor        # [N, K]
    fmt_ids: torch.Tensor      # [N, K/G]
    u: torch.Tensor            # [N, K/G]
    x: torch.Tensor            # [K]
    fmt_set: int = 0           # index into GemvParams.format_sets
    precision: int = 0
    note: str = ""

    @property
    def n(self) -> int:
        return self.codes.shape[0]

    @property
    def k(self) -> int:
        return self.codes.shape[1]


def expected(p: GemvParams, g: Gemv) -> list[int]:
    fs = p.format_sets[g.fmt_set]
    return intref.row_results(g.codes, g.fmt_ids, g.u, g.x, fs, p.group_size,
                              g.precision or None).tolist()


def _acts(p: GemvParams, rng: random.Random, k: int) -> torch.Tensor:
    lo, hi = -(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1
    x = [rng.randint(lo, hi) for _ in range(k)]
    for i in rng.sample(range(k), max(1, k // 8)):
        x[i] = rng.choice((lo, hi))
    return torch.tensor(x)


def random_gemv(p: GemvParams, rng: random.Random, n: int, k: int, fmt_set: int = 0,
                precision: int = 0, note: str = "random") -> Gemv:
    fs = p.format_sets[fmt_set]
    ng = k // p.group_size
    g = torch.Generator().manual_seed(rng.randrange(1 << 31))
    codes = torch.randint(0, 1 << fs.bits, (n, k), generator=g)
    fmt_ids = torch.randint(0, len(fs.formats), (n, ng), generator=g)
    u = torch.randint(0, 1 << p.scale_bits, (n, ng), generator=g)
    return Gemv(codes, fmt_ids, u, _acts(p, rng, k), fmt_set, precision, note)


def every_code_gemv(p: GemvParams, rng: random.Random, fmt_set: int = 0, precision: int = 0) -> Gemv:
    """Every (format, code) pair appears in every row position of a block (R rows x all formats)."""
    fs = p.format_sets[fmt_set]
    ncodes = 1 << fs.bits
    k = p.group_size * max(1, -(-ncodes // p.group_size))
    k = min(k, p.max_k)
    rows = []
    for f in range(len(fs.formats)):
        for _ in range(p.rows):
            codes = (list(range(ncodes)) * (-(-k // ncodes)))[:k]
            rng.shuffle(codes)
            rows.append((codes, f))
    n = min(len(rows), p.max_n)
    codes = torch.tensor([c for c, _ in rows[:n]])
    ng = k // p.group_size
    fmt_ids = torch.tensor([[f] * ng for _, f in rows[:n]])
    gen = torch.Generator().manual_seed(rng.randrange(1 << 31))
    u = torch.randint(1, 1 << p.scale_bits, (n, ng), generator=gen)
    return Gemv(codes, fmt_ids, u, _acts(p, rng, k), fmt_set, precision, "every code of every format")


def extreme_gemv(p: GemvParams, fmt_set: int = 0) -> Gemv | None:
    """Rows that reach +row_max and -row_max (K = max K, u = 2**S - 1, x = -2**(A-1))."""
    fs = p.format_sets[fmt_set]
    dp = p.set_params[fmt_set]
    rows = []
    for target in (+1, -1):
        hit = next(((f, c, t) for t in range(1, fs.max_terms + 1) for f, fm in enumerate(fs.formats)
                    for c in range(1 << fs.bits) if fm.truncated_value(c, t) == -target * dp.max_value),
                   None)
        if hit is None:
            return None
        rows.append(hit)
    if len({t for _, _, t in rows}) != 1:
        return None
    k, ng = p.max_k, p.max_groups
    codes = torch.tensor([[c] * k for _, c, _ in rows])
    fmt_ids = torch.tensor([[f] * ng for f, _, _ in rows])
    u = torch.full((2, ng), (1 << p.scale_bits) - 1)
    x = torch.full((k,), -(1 << (p.act_bits - 1)))
    return Gemv(codes, fmt_ids, u, x, fmt_set, rows[0][2], "extreme +-row_max")


def quantized_gemv(p: GemvParams, seed: int, n: int, k: int, fmt_set: int = 0,
                   precision: int = 0) -> Gemv:
    """A random weight matrix quantized by golden.quant.quantize_rtn (BitMoD selection)."""
    from golden.quant import quantize_activations, quantize_rtn

    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(n, k, generator=gen, dtype=torch.float64)
    W[torch.rand(n, k, generator=gen) < 0.01] *= 8
    q = quantize_rtn(W, p.format_sets[fmt_set], p.group_size, scale_bits=p.scale_bits)
    x_int, _ = quantize_activations(torch.randn(k, generator=gen, dtype=torch.float64), bits=p.act_bits)
    return Gemv(q.codes, q.fmt_ids, q.u, x_int, fmt_set, precision, "quantize_rtn")
