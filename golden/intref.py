"""Integer reference: exactly what the hardware computes, in int64.

For a row with groups ``g`` of ``G`` weights, format ids ``f_g``, integer scales
``u_g`` and integer activations ``x``:

    p_g = sum_{k in g} x_k * (v_{f_g}[code_k] - z_g)      (group partial sum, the PE)
    r   = sum_g u_g * p_g                                 (row result, the dequantizer)

``nterms`` reads every weight at reduced precision: only its first ``nterms``
signed power-of-two terms (docs/architecture.md §2.6). All arithmetic is exact.
"""

from __future__ import annotations

import functools

import torch

from bitmix.errors import BitmixError
from golden.formats import FormatSet

__all__ = ["value_table", "weight_values", "group_partial_sums", "row_results"]


@functools.cache
def _table(fs: FormatSet, nterms: int | None) -> torch.Tensor:
    rows = [[f.codebook[c] if nterms is None else f.truncated_value(c, nterms)
             for c in range(1 << f.bits)] for f in fs.formats]
    return torch.tensor(rows, dtype=torch.int64)


def value_table(fs: FormatSet, nterms: int | None = None) -> torch.Tensor:
    """``[n_formats, 2**bits]`` integer value of each (format id, code)."""
    if nterms is not None and nterms < 0:
        raise BitmixError(f"nterms must be >= 0, got {nterms}")
    return _table(fs, nterms).clone()


def weight_values(codes: torch.Tensor, fmt_ids: torch.Tensor, fs: FormatSet, group_size: int,
                  nterms: int | None = None, zero: torch.Tensor | None = None) -> torch.Tensor:
    """Integer value ``v[code] - z`` of every weight ([N, K] int64)."""
    n, k = codes.shape
    if k % group_size or fmt_ids.shape != (n, k // group_size):
        raise BitmixError(f"fmt_ids shape {tuple(fmt_ids.shape)} does not match codes {tuple(codes.shape)} "
                          f"with group size {group_size}")
    if int(codes.min()) < 0 or int(codes.max()) >= 1 << fs.bits:
        raise BitmixError(f"codes: values outside 0..{(1 << fs.bits) - 1} for {fs.bits}-bit "
                          f"format set {fs.name}")
    if int(fmt_ids.min()) < 0 or int(fmt_ids.max()) >= len(fs.formats):
        raise BitmixError(f"fmt_ids: unknown format id {int(fmt_ids.max())} for set {fs.name} "
                          f"({len(fs.formats)} formats)")
    table = _table(fs, nterms)
    ids = fmt_ids.to(torch.int64).repeat_interleave(group_size, 1)
    vals = table[ids, codes.to(torch.int64)]
    if zero is not None:
        vals = vals - zero.to(torch.int64).repeat_interleave(group_size, 1)
    return vals


def group_partial_sums(codes, fmt_ids, x_int, fs: FormatSet, group_size: int,
                       nterms: int | None = None, zero=None) -> torch.Tensor:
    """Per-group integer partial sums: ``[N, ng]`` for ``x_int[K]``, ``[T, N, ng]`` for ``x_int[T, K]``."""
    vals = weight_values(codes, fmt_ids, fs, group_size, nterms, zero)
    n, k = vals.shape
    x = x_int.to(torch.int64)
    if x.shape[-1] != k:
        raise BitmixError(f"activations have {x.shape[-1]} inputs, weights expect {k}")
    ng = k // group_size
    prod = vals.reshape(1, n, ng, group_size) * x.reshape(-1, 1, ng, group_size)
    p = prod.sum(-1)
    return p[0] if x.dim() == 1 else p


def row_results(codes, fmt_ids, u, x_int, fs: FormatSet, group_size: int,
                nterms: int | None = None, zero=None) -> torch.Tensor:
    """Exact row results ``sum_g u_g * p_g``: ``[N]`` for ``x_int[K]``, ``[T, N]`` for ``x_int[T, K]``."""
    p = group_partial_sums(codes, fmt_ids, x_int, fs, group_size, nterms, zero)
    return (p * u.to(torch.int64)).sum(-1)
