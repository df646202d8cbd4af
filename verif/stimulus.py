"""Stimulus for the dot-product unit, built from golden/ (formats, quantizer, integer reference).

A :class:`Row` is one dot product: K codes, K activations, per-group format ids and scales, and
the precision it is read at (``precision``: 0 = full, t = first t terms, as the hardware's
``precision`` input). :func:`expected` is ``golden.intref.row_results`` — the hardware must
match it bit for bit. The streams a row becomes are packed by :mod:`golden.pack`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from golden import intref
from hw.params import DotParams

__all__ = ["Row", "expected", "random_rows", "exhaustive_rows", "special_rows", "extreme_rows",
           "quantized_rows", "row_cycles"]


@dataclass
class Row:
    codes: list[int]
    x: list[int]
    fmt_ids: list[int]
    u: list[int]
    precision: int = 0
    note: str = ""


def expected(p: DotParams, row: Row) -> int:
    nterms = row.precision or None
    r = intref.row_results(torch.tensor([row.codes]), torch.tensor([row.fmt_ids]),
                           torch.tensor([row.u]), torch.tensor(row.x), p.fs, p.group_size, nterms)
    return int(r[0])


def row_cycles(p: DotParams, row: Row) -> int:
    """Cycle model: sum over groups of T_g * G/L."""
    return sum(p.group_cycles(f, row.precision) for f in row.fmt_ids)


def _acts(p: DotParams, rng: random.Random, k: int, extremes: bool = True) -> list[int]:
    lo, hi = -(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1
    x = [rng.randint(lo, hi) for _ in range(k)]
    if extremes and k >= 4:
        for i in rng.sample(range(k), max(2, k // 8)):
            x[i] = rng.choice((lo, hi))
    return x


def random_rows(p: DotParams, rng: random.Random, n: int, precision: int = 0,
                ngroups: int | None = None) -> list[Row]:
    """Uniformly random codes/formats/scales, rows of 1..max_groups groups."""
    rows = []
    umax = (1 << p.scale_bits) - 1
    for _ in range(n):
        ng = ngroups or rng.randint(1, p.max_groups)
        k = ng * p.group_size
        rows.append(Row([rng.randrange(1 << p.code_bits) for _ in range(k)], _acts(p, rng, k),
                        [rng.randrange(p.n_formats) for _ in range(ng)],
                        [rng.randint(0, umax) for _ in range(ng)], precision, "random"))
    return rows


def exhaustive_rows(p: DotParams, rng: random.Random, precision: int = 0) -> list[Row]:
    """Every code of every format (specials included), against random and extreme activations."""
    rows, ncodes, G = [], 1 << p.code_bits, p.group_size
    lo, hi = -(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1
    umax = (1 << p.scale_bits) - 1
    ng = -(-ncodes // G)                       # groups needed to hold every code once
    k = ng * G
    for f in range(p.n_formats):
        for acts in ("random", "min", "max"):
            codes = list(range(ncodes)) + [rng.randrange(ncodes) for _ in range(k - ncodes)]
            rng.shuffle(codes)
            x = {"random": lambda: _acts(p, rng, k), "min": lambda: [lo] * k,
                 "max": lambda: [hi] * k}[acts]()
            rows.append(Row(codes, x, [f] * ng, [rng.randint(1, umax) for _ in range(ng)],
                            precision, f"every code of format {f}, acts {acts}"))
    return rows


def special_rows(p: DotParams, rng: random.Random, precision: int = 0) -> list[Row]:
    """Scales 0 / 1 / max, all-zero groups (zero codes, zero activations), mixed groups."""
    G, umax = p.group_size, (1 << p.scale_bits) - 1
    zero_codes = {f: [c for c in range(1 << p.code_bits) if fm.codebook[c] == 0]
                  for f, fm in enumerate(p.fs.formats)}
    rows = []
    ng = min(3, p.max_groups)
    for u in (0, 1, umax):
        base = random_rows(p, rng, 1, precision, ngroups=ng)[0]
        base.u = [u] * ng
        base.note = f"u = {u}"
        rows.append(base)
    for kind in ("codes", "acts"):
        r = random_rows(p, rng, 1, precision, ngroups=ng)[0]
        g = rng.randrange(ng)
        for i in range(g * G, (g + 1) * G):
            if kind == "codes":
                r.codes[i] = rng.choice(zero_codes[r.fmt_ids[g]])
            else:
                r.x[i] = 0
        r.note = f"all-zero group {g} ({kind})"
        rows.append(r)
    r = random_rows(p, rng, 1, precision, ngroups=1)[0]
    r.x = [0] * G
    r.note = "all-zero row"
    rows.append(r)
    return rows


def extreme_rows(p: DotParams) -> list[Row]:
    """Rows that reach +-row_max, the accumulator bound (max_groups groups, u = 2**S - 1).

    For each sign, pick (format, code, precision) whose value is -+V (V = DotParams.max_value)
    and activations -2**(A-1)."""
    G, umax, lo = p.group_size, (1 << p.scale_bits) - 1, -(1 << (p.act_bits - 1))
    rows = []
    for target in (+1, -1):
        hit = next(((f, c, t) for t in range(1, p.max_terms + 1)
                    for f, fm in enumerate(p.fs.formats) for c in range(1 << p.code_bits)
                    if fm.truncated_value(c, t) == -target * p.max_value), None)
        if hit:
            f, c, t = hit
            n = G * p.max_groups
            rows.append(Row([c] * n, [lo] * n, [f] * p.max_groups, [umax] * p.max_groups, t,
                            f"extreme {'+' if target > 0 else '-'}row_max (precision {t})"))
    return rows


def quantized_rows(p: DotParams, seed: int, n: int, ngroups: int, precision: int = 0) -> list[Row]:
    """Rows of a random weight matrix quantized by golden.quant.quantize_rtn (BitMoD selection)."""
    from golden.quant import quantize_activations, quantize_rtn

    gen = torch.Generator().manual_seed(seed)
    k = ngroups * p.group_size
    W = torch.randn(n, k, generator=gen, dtype=torch.float64)
    W[torch.rand(n, k, generator=gen) < 0.01] *= 8            # a few outliers
    q = quantize_rtn(W, p.fs, p.group_size, scale_bits=p.scale_bits)
    x = torch.randn(n, k, generator=gen, dtype=torch.float64)
    x_int, _ = quantize_activations(x, bits=p.act_bits)
    return [Row(q.codes[i].tolist(), x_int[i].tolist(), q.fmt_ids[i].tolist(), q.u[i].tolist(),
                precision, "quantize_rtn") for i in range(n)]
