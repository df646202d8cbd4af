"""golden/pmpd.py: the integer-path linear at a precision, the static scheduler and the PMPD decode
loop (precision only steps down; prefill at the first precision)."""

import pytest
import torch

from bitmix.errors import BitmixError
from golden.model import LlamaConfig, LlamaForCausalLM
from golden.pmpd import QuantLinear, generate, model_linears, replace_linears, set_precision, static_schedule
from golden.quant import quantize_rtn


def _model():
    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1)
    return LlamaForCausalLM(cfg).init_weights(3)


def test_quant_linear_is_the_integer_path_at_its_precision():
    W = torch.randn(16, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    q = quantize_rtn(W, "bitmod4", 32)
    lin = QuantLinear(q, "w")
    x = torch.randn(3, 64, dtype=torch.float64)
    assert torch.equal(lin(x), q.forward_integer(x))
    lin.precision = 1
    assert torch.equal(lin(x), q.forward_integer(x, nterms=1))
    assert not torch.equal(lin(x), q.forward_integer(x))


def test_static_schedule_and_decode_loop():
    sched = static_schedule(2)
    assert [sched(i) for i in range(4)] == [0, 0, 1, 1]
    with pytest.raises(BitmixError, match="n_high must be >= 0"):
        static_schedule(-1)
    model = _model()
    new = replace_linears(model, lambda name, lin: QuantLinear(
        quantize_rtn(lin.weight.data.to(torch.float64), "bitmod4", 32), name))
    assert list(new) == list(model_linears(model)) and "lm_head" in new
    seen = []
    out = generate(model, torch.tensor([1, 2, 3]), 4, sched, lambda p: set_precision(model, p),
                   on_step=lambda i, p: seen.append((i, p)))
    assert seen == [(0, 0), (1, 0), (2, 1), (3, 1)] and out.precisions == [0, 0, 1, 1]
    assert len(out.new_ids) == 4 and out.perplexity() >= 1.0
    # the same decode with the precision set by hand matches step for step
    set_precision(model, 0)
    ref = generate(model, torch.tensor([1, 2, 3]), 2, static_schedule(9), lambda p: None)
    assert torch.equal(ref.ids, out.ids[:5])
    with pytest.raises(BitmixError, match="raises the precision at token 1"):
        generate(model, torch.tensor([1]), 3, lambda i: 1 if i == 0 else 0, lambda p: None)


def test_quant_linear_float64_product_is_exactly_the_int64_group_sums():
    """The cached float64 product equals golden.intref's int64 sums at every precision, on the
    reference model's widest layer with full-scale activations (the largest sums) and random ones;
    a layer whose sums could pass 2^53 takes the int64 path."""
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
    from golden.intref import weight_values

    W = load_model(REFERENCE_MODEL_DIR).model.layers[0].mlp.down_proj.weight.data.to(torch.float64)
    q = quantize_rtn(W, "bitmod4", 32, scale_bits=8)
    gen = torch.Generator().manual_seed(2)
    x = torch.cat([torch.full((1, 512), 127), torch.full((1, 512), -127),
                   torch.randint(-127, 128, (3, 512), generator=gen)]).long()
    v0 = weight_values(q.codes, q.fmt_ids, q.format_set, 32)[0]
    x[0] = 127 * torch.where(v0 < 0, -1, 1)             # row 0's largest possible sum
    lin = QuantLinear(q, "down", 8)
    for prec in (0, 1, 2):
        lin.precision = prec
        assert torch.equal(lin.int_matmul(x), q.int_matmul(x, nterms=prec or None)), prec
    assert all(w is not None for w in lin._dense.values())
    wide = QuantLinear(q, "down", act_bits=48)       # 2^47-scale activations: the exact path
    assert torch.equal(wide.int_matmul(x), q.int_matmul(x)) and wide._dense == {0: None}


def test_bcq_linear_is_the_shift_add_integer_path_at_its_plane_count():
    """BCQLinear (the shift-add layer; precision = planes read, 0 = all q) gives golden.bcq's
    integer forward at every plane count, in both LUT-path layouts; its integer results are in
    units of the q planes' 2^E0, through the float64 product and through the int64 fallback; the
    planes nest (fewer planes, another result)."""
    from golden.bcq import quantize_bcq
    from golden.pmpd import BCQLinear

    gen = torch.Generator().manual_seed(4)
    W = torch.randn(32, 128, dtype=torch.float64, generator=gen)
    x = torch.randn(3, 128, dtype=torch.float64, generator=gen)
    for layout, g in (("row", 32), ("block", 128)):
        bw = quantize_bcq(W, 3, g, layout, rounds=5)
        lin, wide = BCQLinear(bw, "w"), BCQLinear(bw, "w", act_bits=60)    # wide: int64 path
        assert lin.e0 == bw.exp_offset() and lin.out_scale == 2.0 ** bw.exp_offset()
        x_int = torch.randint(-127, 128, (2, 128), generator=gen)
        outs = []
        for p in range(4):
            lin.precision = wide.precision = p
            assert torch.equal(lin(x), bw.forward_integer(x, 8, p or None)), (layout, p)
            y, e0p = bw.int_matmul(x_int, p or None)
            assert torch.equal(lin.int_matmul(x_int), y << (e0p - lin.e0))
            assert torch.equal(wide.int_matmul(x_int), lin.int_matmul(x_int))
            outs.append(lin(x))
        assert torch.equal(outs[0], outs[3]) and not torch.equal(outs[1], outs[3])
        assert lin._dense[1] is not None and wide._dense[1] is None


def test_bcq_tiles_sum_to_the_layer_and_misaligned_tiles_are_refused():
    """A layer cut into tiles of whole scale groups: each tile's integer result shifted from its
    own 2^E0 to the layer's sums to the layer's (what a device computing tile by tile returns)."""
    from golden.bcq import quantize_bcq

    gen = torch.Generator().manual_seed(5)
    bw = quantize_bcq(torch.randn(64, 256, dtype=torch.float64, generator=gen), 3, 128, "block", rounds=5)
    x = torch.randint(-127, 128, (2, 256), generator=gen)
    for p in (1, 2, 3):
        want, e0 = bw.int_matmul(x, p)
        got = torch.zeros_like(want)
        for r in range(0, 64, 32):
            for c in range(0, 256, 64):
                t = bw.tile(slice(r, r + 32), slice(c, c + 64))
                assert torch.equal(t.dequantize(p), bw.dequantize(p)[r:r + 32, c:c + 64])
                y, e0t = t.int_matmul(x[:, c:c + 64], p)
                got[:, r:r + 32] += y << (e0t - e0)
        assert torch.equal(got, want)
    with pytest.raises(BitmixError, match="rows 8..32 do not cover whole block-layout scale groups of 16"):
        bw.tile(slice(8, 32), slice(0, 64))
    with pytest.raises(BitmixError, match="columns 0..12 do not cover"):
        bw.tile(slice(0, 16), slice(0, 12))
