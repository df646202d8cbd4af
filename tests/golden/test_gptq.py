"""The second-order engine: every quantizer family, act-order, dead columns, integer path."""

import pytest
import torch

from bitmix.errors import BitmixError
from golden.bcq import BCQWeight, quantize_bcq
from golden.gptq import BCQAdapter, Hessian, MXAdapter, RTNAdapter, gptq, proxy_loss
from golden.intref import row_results, weight_values
from golden.quant import QuantizedWeight, quantize_activations, quantize_mx, quantize_rtn

N, K, T = 64, 128, 512


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layer():
    """A synthetic layer whose inputs are strongly correlated and unevenly scaled."""
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(K, K, generator=g) / K ** 0.5
    X = (torch.randn(T, K, generator=g) @ mix + 0.5 * torch.randn(T, 1, generator=g)) \
        * (0.2 + 2 * torch.rand(K, generator=g))
    W = torch.randn(N, K, generator=g) * 0.05
    h = Hessian(K)
    for chunk in X.split(300):
        h.add_batch(chunk)
    return W, X.double(), h.H


def _out_err(W, D, X):
    return float((((W.double() - D) @ X.T) ** 2).sum())


FAMILIES = {
    "bitmod4": (lambda: RTNAdapter("bitmod4"), lambda W: quantize_rtn(W, "bitmod4")),
    "bitmod3": (lambda: RTNAdapter("bitmod3"), lambda W: quantize_rtn(W, "bitmod3")),
    "ant3": (lambda: RTNAdapter("ant3"), lambda W: quantize_rtn(W, "ant3")),
    "int3_asym": (lambda: RTNAdapter("int3_asym"), lambda W: quantize_rtn(W, "int3_asym")),
    "int4": (lambda: RTNAdapter("int4"), lambda W: quantize_rtn(W, "int4")),
    "mx_fp4": (lambda: MXAdapter("fp4", 32), lambda W: quantize_mx(W, "fp4", 32)),
    "bcq3_col": (lambda: BCQAdapter(3, 64, "col", rounds=10), lambda W: quantize_bcq(W, 3, 64, "col", 10)),
    "bcq2_block": (lambda: BCQAdapter(2, 64, "block", rounds=10),
                   lambda W: quantize_bcq(W, 2, 64, "block", 10)),
    "bcq2_row": (lambda: BCQAdapter(2, 128, "row", rounds=10), lambda W: quantize_bcq(W, 2, 128, "row", 10)),
}


def test_hessian_is_running_mean_of_2xxT(layer):
    W, X, H = layer
    assert torch.allclose(H, 2 * X.T @ X / T, rtol=1e-10)
    full = proxy_loss(W, torch.zeros_like(W), H)
    assert abs(full - 2 * _out_err(W, torch.zeros(N, K, dtype=torch.float64), X) / T) < 1e-8 * full


@pytest.mark.parametrize("family", list(FAMILIES))
def test_gptq_beats_rtn_for_every_family(layer, family):
    W, X, H = layer
    make, rtn = FAMILIES[family]
    res, Q = gptq(W, H, make(), return_dequantized=True)
    D = res.dequantize()
    # the engine compensated against exactly the values the returned object encodes
    assert torch.allclose(D, Q, rtol=0, atol=1e-15)
    e_rtn, e_gptq = _out_err(W, rtn(W).dequantize(), X), _out_err(W, D, X)
    assert e_gptq < 0.85 * e_rtn, (family, e_gptq, e_rtn)
    ao = gptq(W, H, make(), act_order=True)
    assert _out_err(W, ao.dequantize(), X) < e_rtn


def test_bitmod_selection_happens_at_refit(layer):
    W, X, H = layer
    res = gptq(W, H, RTNAdapter("bitmod3", 64))
    assert isinstance(res, QuantizedWeight) and res.fmt_ids.shape == (N, K // 64)
    assert len(set(res.fmt_ids.flatten().tolist())) > 1     # groups pick different variants
    # each group's choice is BitMoD's choice for the row-scale-fixed group at that point
    assert res.u.max() <= (1 << res.scale_bits) - 1


def test_act_order_keeps_groups_contiguous(layer):
    W, X, H = layer
    res = gptq(W, H, RTNAdapter("bitmod4", 64), act_order=True)
    assert res.group_size == 64 and res.extra["act_order"]
    # storage layout unchanged: dequantize uses contiguous groups and matches the compensated values
    res2, Q = gptq(W, H, RTNAdapter("bitmod4", 64), act_order=True, return_dequantized=True)
    assert torch.allclose(res2.dequantize(), Q, atol=1e-15)


def test_dead_columns(layer):
    W, X, H = layer
    X = X.clone()
    X[:, [3, 100]] = 0
    H2 = 2 * X.T @ X / T
    for make in (lambda: RTNAdapter("bitmod4"), lambda: BCQAdapter(2, 64, "col", rounds=5)):
        res = gptq(W, H2, make())
        D = res.dequantize()
        assert torch.isfinite(D).all() and res.extra["dead"] == 2
        if isinstance(res, QuantizedWeight):
            assert (D[:, [3, 100]] == 0).all()


@pytest.mark.parametrize("family", ["bitmod3", "int3_asym", "mx_fp4"])
def test_integer_path_equals_intref(layer, family):
    W, X, H = layer
    res = gptq(W, H, FAMILIES[family][0]())
    x_int, sx = quantize_activations(X[:5].float())
    ref = row_results(res.codes, res.fmt_ids, res.u, x_int, res.format_set, res.group_size, zero=res.zero)
    assert torch.equal(res.int_matmul(x_int), ref)
    vals = weight_values(res.codes, res.fmt_ids, res.format_set, res.group_size, zero=res.zero)
    # the integer reference, rescaled once, is the float product with the dequantized weight
    scale = (res.row_scale[:, None] * res.u.double()).repeat_interleave(res.group_size, 1)
    assert torch.allclose(scale * vals.double(), res.dequantize())
    assert torch.allclose(ref.double() * res.row_scale, x_int.double() @ res.dequantize().T, rtol=1e-12)


def test_shiftadd_integer_path(layer):
    W, X, H = layer
    res = gptq(W, H, BCQAdapter(3, 64, "col", rounds=3))
    assert isinstance(res, BCQWeight) and res.layout == "col"
    x_int, _ = quantize_activations(X[:4].float())
    acc, e0 = res.int_matmul(x_int)
    assert torch.allclose(acc.double() * 2.0 ** e0, x_int.double() @ res.dequantize().T, rtol=1e-12)


def test_bad_inputs(layer):
    W, X, H = layer
    with pytest.raises(BitmixError, match="Hessian"):
        gptq(W, H[:10, :10], RTNAdapter("bitmod4"))
    with pytest.raises(BitmixError, match="divisible"):
        gptq(W[:, :100], H[:100, :100], RTNAdapter("bitmod4"))
    Wn = W.clone()
    Wn[0, 0] = float("nan")
    with pytest.raises(BitmixError, match="layer.x"):
        gptq(Wn, H, RTNAdapter("bitmod4"), name="layer.x")
