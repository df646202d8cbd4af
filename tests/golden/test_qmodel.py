"""Quantized-model folders keep the storage contract: u as stored is u as used, fp32 row scales."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from bitmix.errors import BitmixError
from golden.model import LlamaConfig, LlamaForCausalLM
from golden.qmodel import QUANTIZED_FILE, load_quantized, save_quantized
from golden.quant import ROW_SCALE_BITS, quantize_mx, quantize_rtn


@pytest.fixture(scope="module")
def tiny():
    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2)
    return LlamaForCausalLM(cfg).init_weights(0)


def _roundtrip(tiny, tmp_path, res):
    out = save_quantized(tiny, {"layer": res}, tmp_path / "q", {"method": "test"})
    return out, load_quantized(out, load_float=False)[1]["layer"]


def test_mx_scale_span_beyond_int32_survives_save_and_load(tiny, tmp_path):
    W = torch.randn(2, 64, dtype=torch.float64)
    W[0, 32:] *= 2.0 ** 40                         # second group's shared exponent 40 above the first's
    q = quantize_mx(W, "fp4", 32)
    assert int(q.u.max()) >= 2 ** 40               # int32 storage used to turn this into 0
    _, back = _roundtrip(tiny, tmp_path, q)
    assert torch.equal(back.u, q.u)
    assert torch.equal(back.dequantize(), q.dequantize()) and back.dequantize()[0, 32:].abs().max() > 0


def test_u_is_checked_against_scale_bits_on_save_and_on_load(tiny, tmp_path):
    q = quantize_rtn(torch.randn(4, 128), "bitmod4", 64)
    assert q.scale_bits == 6 and int(q.u.max()) <= 63
    out, _ = _roundtrip(tiny, tmp_path, q)
    path = out / QUANTIZED_FILE
    t = load_file(str(path))
    t["layer.u"][0, 0] = 64                         # one past the 6-bit maximum
    save_file(t, str(path), metadata={"format": "x"})
    with pytest.raises(BitmixError, match=r"layer layer: u holds 64, above the 6-bit group scale's max"):
        load_quantized(out, load_float=False)
    bad = quantize_rtn(torch.randn(4, 128), "bitmod4", 64)
    bad.u[1, 1] = 1 << 20
    with pytest.raises(BitmixError, match="u holds 1048576"):
        save_quantized(tiny, {"layer": bad}, tmp_path / "q2", {"method": "test"})
    assert not (tmp_path / "q2").exists()
    mx = quantize_mx(torch.randn(2, 64), "fp4", 32)
    mx.u[0, 0] = 3                                  # not a power of two: no MX shared exponent
    with pytest.raises(BitmixError, match="not a power of two"):
        save_quantized(tiny, {"layer": mx}, tmp_path / "q3", {"method": "test"})


@pytest.mark.parametrize("quantize", [lambda W: quantize_rtn(W, "bitmod3", 64),
                                      lambda W: quantize_rtn(W, "int4_asym", 64),
                                      lambda W: quantize_mx(W, "fp4", 32)])
def test_row_scale_stored_as_charged(tiny, tmp_path, quantize):
    q = quantize(torch.randn(8, 128) * torch.logspace(-3, 1, 8)[:, None])
    assert torch.equal(q.row_scale.float().double(), q.row_scale)    # the applied scale is an fp32 value
    out, back = _roundtrip(tiny, tmp_path, q)
    stored = load_file(str(out / QUANTIZED_FILE))["layer.row_scale"]
    assert stored.dtype == torch.float32 and torch.finfo(stored.dtype).bits == ROW_SCALE_BITS
    assert torch.equal(back.dequantize(), q.dequantize())             # nothing lost in the file
    man = json.loads((out / "manifest.json").read_text())
    assert man["layers"]["layer"]["effective_bits"] == q.effective_bits()


def test_non_fp32_row_scale_is_refused(tiny, tmp_path):
    q = quantize_rtn(torch.randn(2, 64), "int4", 64)
    q.row_scale = q.row_scale * (1 + 2.0 ** -40)
    with pytest.raises(BitmixError, match="row_scale holds values that are not fp32"):
        save_quantized(tiny, {"layer": q}, tmp_path / "q", {"method": "test"})
