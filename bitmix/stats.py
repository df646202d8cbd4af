"""Paired bootstrap confidence intervals for the quality benchmarks.

Every row of a benchmark is scored on the *same* units (perplexity windows, MiniLM sentences),
so the difference between two rows is judged on resamples that draw the same units for both
(a paired bootstrap: Koehn 2004). An ordering is claimed only when its 95 % interval excludes
zero; :func:`verdict` turns an interval into "a < b", "a > b" or "n.s.".
"""

from __future__ import annotations

import torch

__all__ = ["resample_index", "ppl_ratio_ci", "mean_diff_ci", "verdict", "B_DEFAULT"]

B_DEFAULT = 2000


def resample_index(n: int, b: int = B_DEFAULT, seed: int = 0) -> torch.Tensor:
    """``[b, n]`` indices drawn with replacement; one fixed draw shared by every comparison."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (b, n), generator=g)


def _ci(samples: torch.Tensor, level: float) -> tuple[float, float]:
    lo, hi = torch.quantile(samples, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=samples.dtype))
    return float(lo), float(hi)


def ppl_ratio_ci(nll_a: torch.Tensor, nll_b: torch.Tensor, tokens_per_window: int,
                 idx: torch.Tensor | None = None, level: float = 0.95) -> dict:
    """``ppl_a / ppl_b − 1`` from per-window summed NLLs, with its paired-bootstrap interval.

    Each resample takes the same windows for both rows; the perplexity of a resample is
    ``exp(Σ nll / (n · tokens_per_window))``.
    """
    a, b = nll_a.to(torch.float64), nll_b.to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired rows need the same windows, got {tuple(a.shape)} and {tuple(b.shape)}")
    n = len(a)
    idx = resample_index(n) if idx is None else idx
    d = (a - b) / tokens_per_window
    point = float(torch.exp(d.mean()) - 1)
    samples = torch.exp(d[idx].mean(-1)) - 1
    lo, hi = _ci(samples, level)
    return {"value": point, "lo": lo, "hi": hi}


def mean_diff_ci(x_a: torch.Tensor, x_b: torch.Tensor, idx: torch.Tensor | None = None,
                 level: float = 0.95) -> dict:
    """``mean(x_a) − mean(x_b)`` over paired units (e.g. per-sentence cosines), with its interval."""
    a, b = x_a.to(torch.float64), x_b.to(torch.float64)
    idx = resample_index(len(a)) if idx is None else idx
    d = a - b
    lo, hi = _ci(d[idx].mean(-1), level)
    return {"value": float(d.mean()), "lo": lo, "hi": hi}


def verdict(ci: dict, a: str = "a", b: str = "b") -> str:
    """``"a < b"`` when the interval of (a − b) lies below zero, ``"a > b"`` above, else ``"n.s."``."""
    if ci["hi"] < 0:
        return f"{a} < {b}"
    if ci["lo"] > 0:
        return f"{a} > {b}"
    return "n.s."
