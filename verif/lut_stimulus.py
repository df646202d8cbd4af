"""Stimulus for the shift-add LUT unit, built from golden/ (BCQ quantizer, LUT stream formats).

A :class:`LutGemv` is one layer run: a :class:`golden.bcq.BCQWeight`, integer activations and
the precision (planes, 0 = all). :func:`expected` is ``golden.bcq``'s integer path in the units
the hardware works in (:func:`golden.bcq_layout.expected`) — the unit must match it bit for bit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from golden.bcq import BCQWeight, quantize_bcq
from golden.bcq_layout import expected as golden_expected
from golden.quant import quantize_activations
from hw.lut_params import LutParams

__all__ = ["LutGemv", "expected", "quantized_gemv", "random_gemv", "act_pattern", "span_gemv",
           "ACT_PATTERNS"]

#: Activation edge cases of the table build (plus random).
ACT_PATTERNS = ("min", "max", "alternating", "random")


@dataclass
class LutGemv:
    bw: BCQWeight
    x: torch.Tensor            # [K] int
    precision: int = 0         # planes to read, 0 = all
    note: str = ""

    @property
    def n(self) -> int:
        return self.bw.shape[0]

    @property
    def k(self) -> int:
        return self.bw.shape[1]

    @property
    def planes(self) -> int:
        return self.precision or self.bw.bits


def expected(p: LutParams, g: LutGemv) -> list[int]:
    return golden_expected(g.bw, g.x, g.precision or None, p.layout.exp_base(g.bw))


def act_pattern(p: LutParams, rng: random.Random, k: int, pattern: str = "random") -> torch.Tensor:
    lo, hi = -(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1
    if pattern == "min":
        return torch.full((k,), lo)
    if pattern == "max":
        return torch.full((k,), hi)
    if pattern == "alternating":
        return torch.tensor([lo if i % 2 else hi for i in range(k)])
    x = [rng.randint(lo, hi) for _ in range(k)]
    for i in rng.sample(range(k), max(1, k // 8)):
        x[i] = rng.choice((lo, hi))
    return torch.tensor(x)


def quantized_gemv(p: LutParams, seed: int, q: int, layout: str, n: int, k: int, group_size: int,
                   precision: int = 0, pattern: str | None = None) -> LutGemv:
    """A random matrix quantized by golden.bcq (ShiftAddLLM BCQ + APoT), INT-A activations."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(n, k, generator=gen, dtype=torch.float64) * (1 + torch.rand(n, 1, generator=gen))
    bw = quantize_bcq(W, q, group_size, layout, rounds=3, apot_terms=p.apot_terms)
    if pattern is None:
        x, _ = quantize_activations(torch.randn(k, generator=gen, dtype=torch.float64), p.act_bits)
    else:
        x = act_pattern(p, random.Random(seed), k, pattern)
    return LutGemv(bw, x, precision, f"bcq{q}-{layout} G{group_size} {pattern or 'quantized'}")


def random_gemv(p: LutParams, rng: random.Random, q: int, layout: str, n: int, k: int,
                group_size: int, precision: int = 0, pattern: str = "random") -> LutGemv:
    """Random planes and APoT terms (any signs, unused terms, spans up to the datapath's)."""
    from golden.bcq import layout_spans

    rs, cs = layout_spans(layout, group_size)
    gen = torch.Generator().manual_seed(rng.randrange(1 << 31))
    planes = torch.rand(q, n, k, generator=gen) < 0.5
    shape = (q, n // rs, k // cs, p.apot_terms)
    signs = torch.randint(-1, 2, shape, generator=gen).to(torch.int8)
    exps = torch.randint(0, p.max_shift + 1, shape, generator=gen) - 7
    exps = torch.where(signs != 0, exps, 0)
    return LutGemv(BCQWeight(planes, exps, signs, layout, group_size), act_pattern(p, rng, k, pattern),
                   precision, f"random bcq{q}-{layout} G{group_size} {pattern}")


def span_gemv(p: LutParams, rng: random.Random, q: int, layout: str, n: int, k: int,
              group_size: int, precision: int = 0) -> LutGemv:
    """The largest exponent span the datapath takes: every scale is ±2^(E0+max_shift) ± 2^E0."""
    g = random_gemv(p, rng, q, layout, n, k, group_size, precision, "min")
    s, e = g.bw.signs, g.bw.exps
    s[...] = 0
    e[...] = 0
    gen = torch.Generator().manual_seed(rng.randrange(1 << 31))
    s[..., 0] = torch.where(torch.rand(s.shape[:-1], generator=gen) < 0.5, 1, -1).to(torch.int8)
    s[..., -1] = torch.where(torch.rand(s.shape[:-1], generator=gen) < 0.5, 1, -1).to(torch.int8)
    e[..., 0] = 3 + p.max_shift
    e[..., -1] = 3
    g.note = f"largest span 2^{p.max_shift} bcq{q}-{layout}"
    return g
