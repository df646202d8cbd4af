"""BCQ / ShiftAddLLM binary coding with APoT scales: fitting, layouts, nesting, integer path."""

import itertools
import math

import pytest
import torch

from bitmix.errors import BitmixError
from golden.bcq import BCQWeight, apot, apot_value, bcq_assign, bcq_fit, pack_bits, quantize_bcq, unpack_bits
from golden.quant import quantize_activations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _w(n=64, k=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 0.05 * (1 + torch.rand(n, 1, generator=g))


def _rel(D, W):
    W = W.double()
    return float(((D - W) ** 2).sum() / (W ** 2).sum())


def test_apot_terms_follow_the_recursive_pot_rule():
    a = torch.tensor([0.3, -0.0123, 1.0, 0.75, 5e-4], dtype=torch.float64)
    e, s = apot(a, 3)
    r = a.clone()
    for t in range(3):   # restate POT(a) = sign(a) 2^round(log2|a|) on the running residual
        for i in range(len(a)):
            x = r[i].item()
            if x == 0:
                assert s[i, t] == 0
                continue
            assert s[i, t] == (1 if x > 0 else -1)
            assert e[i, t] == round(math.log2(abs(x)))
            r[i] -= s[i, t].item() * 2.0 ** e[i, t].item()
    assert torch.allclose(apot_value(e, s), a - r)
    # exact powers of two need one term, the rest are unused (sign 0)
    assert s[2, 1:].abs().sum() == 0 and apot_value(e, s)[2] == 1.0
    # more terms never increase the approximation error
    errs = [float((apot_value(*apot(a, k)) - a).abs().max()) for k in (1, 2, 3)]
    assert errs[0] >= errs[1] >= errs[2]


def test_assign_is_the_exact_nearest_codeword():
    g = torch.Generator().manual_seed(3)
    R = torch.randn(5, 40, generator=g, dtype=torch.float64)
    alpha = torch.rand(5, 3, generator=g, dtype=torch.float64).sort(-1, descending=True).values
    B = bcq_assign(R, alpha)
    got = (alpha.unsqueeze(-1) * B).sum(1)
    for m in range(5):
        cws = torch.tensor([sum(s * a for s, a in zip(sg, alpha[m].tolist()))
                            for sg in itertools.product((-1, 1), repeat=3)], dtype=torch.float64)
        best = (R[m][:, None] - cws[None]).abs().min(-1).values
        assert torch.allclose((R[m] - got[m]).abs(), best)


def test_alternating_rounds_never_worse_than_greedy_and_bits_help():
    R = _w(16, 128).double().reshape(-1, 128)
    errs = {}
    for rounds in (0, 50):
        a, e, s, B = bcq_fit(R, 3, rounds, 3)
        errs[rounds] = ((R - (a.unsqueeze(-1) * B).sum(1)) ** 2).sum(-1)
    assert (errs[50] <= errs[0] + 1e-15).all()
    assert errs[50].sum() < 0.9 * errs[0].sum()     # the refinement really helps
    W = _w()
    rel = [_rel(quantize_bcq(W, q, 128).dequantize(), W) for q in (1, 2, 3, 4)]
    assert rel[0] > rel[1] > rel[2] > rel[3]


@pytest.mark.parametrize("layout", ["row", "col", "block"])
def test_layouts_share_alpha_as_documented(layout):
    W = _w()
    b = quantize_bcq(W, 2, 32, layout, rounds=10)
    rs, cs = b.spans
    assert (rs, cs) == {"row": (1, 32), "col": (32, 1), "block": (4, 8)}[layout]
    alpha = b.alpha()
    D = b.dequantize()
    # every element of scale group (r, c) is one of the 4 codewords of that group's alphas
    for r, c in [(0, 0), (1, 2), (alpha.shape[1] - 1, alpha.shape[2] - 1)]:
        blk = D[r * rs:(r + 1) * rs, c * cs:(c + 1) * cs]
        cws = torch.tensor([s0 * alpha[0, r, c] + s1 * alpha[1, r, c]
                            for s0 in (-1, 1) for s1 in (-1, 1)], dtype=torch.float64)
        assert ((blk.reshape(-1, 1) - cws[None]).abs().min(-1).values < 1e-15).all()
    assert (alpha[0] >= alpha[1]).all()             # most-significant plane first


def test_planes_are_nested_precision():
    W = _w()
    b = quantize_bcq(W, 4, 128)
    rel = [_rel(b.dequantize(p), W) for p in (1, 2, 3, 4)]
    assert rel == sorted(rel, reverse=True) and rel[0] > 2 * rel[3]
    # reading p planes is exactly the sum of the first p planes
    a = b._expand(b.alpha())
    pm = b.planes.double() * 2 - 1
    assert torch.allclose(b.dequantize(2), (a[:2] * pm[:2]).sum(0))
    assert b.effective_bits(2) < b.effective_bits(4)
    with pytest.raises(BitmixError):
        b.dequantize(5)


@pytest.mark.parametrize("layout", ["row", "col", "block"])
@pytest.mark.parametrize("q", [2, 3])
def test_integer_path_equals_float(layout, q):
    W = _w(64, 128, seed=q)
    b = quantize_bcq(W, q, 32, layout, rounds=10)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 128, generator=g)
    x_int, sx = quantize_activations(x)
    for p in range(1, q + 1):
        acc, e0 = b.int_matmul(x_int, p)
        assert acc.dtype == torch.int64
        # the integer result times 2^E0 is exactly x_int @ W_hat^T (fp64 reference)
        ref = x_int.double() @ b.dequantize(p).T
        assert torch.allclose(acc.double() * 2.0 ** e0, ref, rtol=1e-12, atol=0)
        y = b.forward_integer(x, p=p)
        assert torch.allclose(y, ref * sx[:, None], rtol=1e-12, atol=1e-15)
    # the exponents are shifted to non-negative integers by the common offset
    A, e0 = b.int_alpha()
    assert torch.equal(A.double() * 2.0 ** e0, b.alpha())


def test_integer_path_row_layout_structure_by_hand():
    """Σ_i Σ_t s_t 2^{e_t−E0} (Σ_{j∈group} b_ij x_j), restated with Python ints."""
    W = _w(4, 16, seed=5)
    b = quantize_bcq(W, 2, 8, "row", rounds=5)
    x = torch.randint(-127, 128, (16,))
    acc, e0 = b.int_matmul(x)
    for n in range(4):
        tot = 0
        for i in range(2):
            for gidx in range(2):
                part = sum((1 if b.planes[i, n, k] else -1) * int(x[k])
                           for k in range(gidx * 8, gidx * 8 + 8))
                for t in range(b.apot_terms):
                    s, e = int(b.signs[i, n, gidx, t]), int(b.exps[i, n, gidx, t])
                    if s:
                        tot += s * part * 2 ** (e - e0)
        assert tot == int(acc[n])


def test_pack_roundtrip_and_storage():
    g = torch.Generator().manual_seed(1)
    bits = torch.rand(3, 5, 21, generator=g) > 0.5
    p = pack_bits(bits)
    assert p.dtype == torch.uint8 and p.shape == (3, 5, 3)
    assert torch.equal(unpack_bits(p, 21), bits)
    b = quantize_bcq(_w(16, 64), 3, 32, "block", rounds=3)
    b2 = BCQWeight.from_tensors(b.tensors(), b.shape, b.layout, b.group_size)
    assert torch.equal(b2.dequantize(), b.dequantize())


def test_float_alpha_mode_and_effective_bits():
    W = _w()
    b = quantize_bcq(W, 3, 128, apot_terms=0)
    assert b.exps is None and _rel(b.dequantize(), W) < 0.1
    with pytest.raises(BitmixError, match="APoT"):
        b.int_matmul(torch.zeros(256, dtype=torch.int64))
    assert quantize_bcq(W, 3, 128).effective_bits() == 3 + 3 * 3 * 8 / 128


def test_bad_inputs_name_the_tensor():
    W = _w(16, 64)
    with pytest.raises(BitmixError, match="layout"):
        quantize_bcq(W, 2, 32, "diag")
    with pytest.raises(BitmixError, match="my.layer"):
        quantize_bcq(W, 2, 48, name="my.layer")
    W[3, 5] = float("nan")
    with pytest.raises(BitmixError, match=r"my.layer.*\[3, 5\]"):
        quantize_bcq(W, 2, 32, name="my.layer")
    with pytest.raises(BitmixError, match="rows"):
        quantize_bcq(torch.randn(24, 64), 2, 16, "col")
