"""Automated bit allocation across layers (ShiftAddLLM §4.3).

Sensitivity criterion (Eq. 3): ``C = ‖IS‖_F · std(IS)²`` with
``IS = W / diag(cholesky((XXᵀ)⁻¹))`` (damped as GPTQ damps ``H``; the diagonal divides
column-wise, as the OBS saliency ``w²/[H⁻¹]_jj`` does).

Cost per layer and bit-width ``C_{i,b}``: the paper fits polynomials that map the criterion to
the reparameterisation error at each b. We measure instead: ``C_{i,b}`` is the criterion applied
to the layer's *quantization residual* at b bits, ``IS_b = (W − Ŵ_b) / diag(chol(H⁻¹))`` with
``Ŵ_b`` the chosen quantizer's RTN output at b bits. So ``C_{i,b}`` is the paper's statistic
measured at each bit-width, no fit needed, and it decreases with b by construction of the data.

Exact allocation (Eq. 4): minimise ``Σ_i C_{i,b_i}`` subject to an average-bit budget. The budget
is weighted by parameter count (``Σ n_i b_i ≤ B Σ n_i``: what memory actually holds; default) or
per layer as in the paper (``Σ b_i ≤ B · L``, ``weights="layers"``). Solved exactly by a
multiple-choice knapsack dynamic programme over the integer budget (weights divided by their
gcd), which is exact because all weights are integers.

The release code's heuristic is kept for comparison (:func:`allocate_80_20`): rank layers by
the criterion, give the top 20 % the next width and the rest the low one; the release code
enters fc layers 4× into the ranking (≈ their parameter share in OPT), here the 20 % is counted
in parameters directly when sizes are given.
"""

from __future__ import annotations

import itertools
import math
from functools import reduce

import torch

from bitmix.errors import BitmixError
from golden.gptq import prepare_hessian

__all__ = ["saliency", "criterion", "layer_costs", "output_costs", "allocate", "allocate_80_20",
           "brute_force", "average_bits", "weighted_bits", "bits_histogram"]

BITS = (2, 3, 4)


def _inv_chol_diag(H: torch.Tensor, percdamp: float) -> torch.Tensor:
    Hd, _, _ = prepare_hessian(H, None, percdamp)
    Hinv = torch.cholesky_inverse(torch.linalg.cholesky(Hd))
    return torch.diag(torch.linalg.cholesky(Hinv, upper=True))


def saliency(W: torch.Tensor, H: torch.Tensor, percdamp: float = 0.01) -> torch.Tensor:
    """``IS = W / diag(cholesky(H⁻¹))`` (column-wise), H damped.

    ``H ∝ XXᵀ``: the criterion is scale-free up to a constant."""
    return W.to(torch.float64) / _inv_chol_diag(H, percdamp)[None, :]


def criterion(IS: torch.Tensor) -> float:
    """``‖IS‖_F · std(IS)²``."""
    return float(torch.linalg.norm(IS) * IS.std() ** 2)


def layer_costs(W: torch.Tensor, H: torch.Tensor, quantize_at, bits=BITS,
                percdamp: float = 0.01) -> dict[int, float]:
    """``{b: C_{i,b}}``: the criterion of the residual ``W − quantize_at(W, b)`` (see module doc)."""
    d = _inv_chol_diag(H, percdamp)
    W = W.to(torch.float64)
    return {b: criterion((W - quantize_at(W, b).to(torch.float64)) / d[None, :]) for b in bits}


def output_costs(W: torch.Tensor, H: torch.Tensor, quantize_at, bits=BITS) -> dict[int, float]:
    """Alternative ``{b: C_{i,b}}``: the layer's output error ``tr(ΔHΔᵀ) ∝ ‖WX − Ŵ_bX‖²`` at b bits."""
    from golden.gptq import proxy_loss
    return {b: proxy_loss(W, quantize_at(W.to(torch.float64), b), H) for b in bits}


def average_bits(choice, sizes=None) -> float:
    sizes = [1] * len(choice) if sizes is None else sizes
    return sum(b * n for b, n in zip(choice, sizes)) / sum(sizes)


def weighted_bits(results: dict, bits: dict | None = None) -> float:
    """Parameter-weighted mean over quantized linears ``{name: result}`` of ``bits[name]``.

    Without ``bits`` each result's own ``effective_bits()`` (storage per weight with every piece
    of metadata) is averaged: the one figure a quantized model is summarised by.
    """
    vals = [results[n].effective_bits() if bits is None else bits[n] for n in results]
    return average_bits(vals, [r.shape[0] * r.shape[1] for r in results.values()])


def bits_histogram(bits: dict) -> dict[int, int]:
    """``{width: number of layers}`` of a per-layer width map, narrowest first."""
    out: dict[int, int] = {}
    for b in sorted(bits.values()):
        out[b] = out.get(b, 0) + 1
    return out


def _check(costs, budget, sizes):
    if not costs:
        raise BitmixError("bit allocation: no layers")
    if sizes is not None and len(sizes) != len(costs):
        raise BitmixError(f"bit allocation: {len(sizes)} sizes for {len(costs)} layers")
    lo = min(min(c) for c in costs)
    if budget < lo - 1e-12:
        raise BitmixError(f"bit budget {budget} is below the smallest width {lo}")


def allocate(costs: list[dict[int, float]], budget: float, sizes: list[int] | None = None) -> list[int]:
    """Exact ``argmin Σ_i costs[i][b_i]`` s.t. ``Σ sizes_i b_i ≤ budget · Σ sizes_i``.

    ``sizes`` default to 1 (a per-layer budget).

    Multiple-choice knapsack DP over the integer "extra bits above the narrowest width" budget.
    Ties are broken towards fewer bits, then lower layer index.
    """
    _check(costs, budget, sizes)
    L = len(costs)
    sizes = [1] * L if sizes is None else [int(s) for s in sizes]
    g = reduce(math.gcd, sizes)
    units = [s // g for s in sizes]
    bmin = min(min(c) for c in costs)
    # capacity in units of (bit × g params) above bmin everywhere; epsilon guards float budgets like 2.2
    cap = math.floor((budget - bmin) * sum(units) + 1e-9)
    INF = math.inf
    best = [0.0] + [INF] * cap            # best[c]: min cost of the layers so far using exactly c units
    args: list[list[int]] = []            # args[i][c]: width of layer i on the optimal path ending at c
    for i in range(L):
        new = [INF] * (cap + 1)
        arg = [-1] * (cap + 1)
        for c in range(cap + 1):
            if best[c] == INF:
                continue
            for b, cost in sorted(costs[i].items()):
                w = (b - bmin) * units[i]
                if c + w <= cap and best[c] + cost < new[c + w]:
                    new[c + w] = best[c] + cost
                    arg[c + w] = b
        args.append(arg)
        best = new
    feasible = [c for c in range(cap + 1) if best[c] < INF]
    if not feasible:
        raise BitmixError(f"bit budget {budget} is infeasible for widths {sorted(costs[0])}")
    c = min(feasible, key=lambda c: (best[c], c))
    out = []
    for i in range(L - 1, -1, -1):
        b = args[i][c]
        out.append(b)
        c -= (b - bmin) * units[i]
    return out[::-1]


def brute_force(costs: list[dict[int, float]], budget: float,
                sizes: list[int] | None = None) -> tuple[float, list[int]]:
    """Exhaustive reference for small instances: (best total cost, one optimal choice)."""
    _check(costs, budget, sizes)
    sizes = [1] * len(costs) if sizes is None else sizes
    best = (math.inf, None)
    for combo in itertools.product(*[sorted(c) for c in costs]):
        if sum(b * n for b, n in zip(combo, sizes)) <= budget * sum(sizes) + 1e-9:
            v = sum(c[b] for c, b in zip(costs, combo))
            if v < best[0]:
                best = (v, list(combo))
    if best[1] is None:
        raise BitmixError(f"bit budget {budget} is infeasible")
    return best


def allocate_80_20(scores: list[float], low: int = 2, high: int = 3, frac_high: float = 0.2,
                   sizes: list[int] | None = None) -> list[int]:
    """Release-code heuristic: the most sensitive layers get ``high`` bits, the rest ``low``.

    Without ``sizes`` the top ``frac_high`` of the layers by count get ``high`` (the release code's
    ``--mix_bits 0.0,0.8,0.2``). With ``sizes`` the share is by parameters — the release code
    enters the (4× larger) fc layers 4× into its ranking for the same effect — so the average
    stays within ``low + frac_high·(high − low)`` bits: layers are taken from the most sensitive
    down while they fit.
    """
    L = len(scores)
    order = sorted(range(L), key=lambda i: scores[i], reverse=True)
    out = [low] * L
    if sizes is None:
        for i in order[:int(round(frac_high * L))]:
            out[i] = high
        return out
    room = frac_high * sum(sizes) + 1e-9
    for i in order:
        if sizes[i] <= room:
            out[i] = high
            room -= sizes[i]
    return out
