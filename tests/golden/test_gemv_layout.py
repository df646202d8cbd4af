"""golden.gemv_layout: the GEMV engine's weight stream round-trips on real quantized layers."""

import random

import pytest
import torch

from bitmix.errors import BitmixError
from golden.formats import get_format_set
from golden.gemv_layout import GemvLayout, doc_table
from golden.quant import quantize_rtn


def _layout(rows, lanes, group, sets, max_k, max_n=4096, a=8, s=6):
    return GemvLayout(rows, lanes, group, a, s, tuple(get_format_set(n) for n in sets), max_k, max_n)


@pytest.fixture(scope="module")
def ref_layers():
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model

    model = load_model(REFERENCE_MODEL_DIR)
    sd = model.state_dict()
    # k_proj [128, 256] and down_proj [256, 512] of layer 0 (the model's longest rows)
    return {n: sd[f"model.layers.0.{n}.weight"].double() for n in ("self_attn.k_proj", "mlp.down_proj")}


@pytest.mark.parametrize("rows,lanes,group,fs", [
    (3, 8, 64, "bitmod4"),       # N = 128 and 256 are not multiples of 3: padded last block
    (1, 16, 128, "bitmod3"),
    (8, 4, 32, "ant3"),
])
def test_round_trip_reference_layers(ref_layers, rows, lanes, group, fs):
    for name, W in ref_layers.items():
        n, k = W.shape
        q = quantize_rtn(W, fs, group, scale_bits=6, name=name)
        lay = _layout(rows, lanes, group, ["int4", fs], max_k=k)      # K at its maximum
        beats = lay.weight_beats(q.codes, q.fmt_ids, q.u, fs, what=name)
        assert len(beats) == lay.blocks(n) * (k // group) * (group // lanes)
        data = lay.to_bytes(beats)
        assert len(data) == len(beats) * lay.beat_bytes
        codes, fmt_ids, u = lay.unpack_weights(lay.from_bytes(data), n, k, what=name)
        assert torch.equal(codes, q.codes) and torch.equal(fmt_ids, q.fmt_ids) and torch.equal(u, q.u)
        words = lay.weight_words(q.codes, q.fmt_ids, q.u, fs)       # the vectorised packer agrees
        assert [sum(int(x) << (32 * i) for i, x in enumerate(row)) for row in words] == beats
        assert lay.weight_bytes(q.codes, q.fmt_ids, q.u, fs) == data      # and its bytes, as sent


def test_stream_order_and_padding():
    """Beat (block j, group g, beat t) holds rows jR.. and inputs gG + tL ..; padding rows are
    code 0, u 0, the set's cheapest format."""
    lay = _layout(2, 2, 4, ["ant3"], max_k=8)
    n, k = 3, 8
    codes = torch.arange(n * k).reshape(n, k) % 8
    fmt_ids = torch.tensor([[0, 0], [0, 0], [0, 0]])
    u = torch.tensor([[1, 2], [3, 4], [5, 6]])
    beats = lay.weight_beats(codes, fmt_ids, u, "ant3")
    assert len(beats) == 2 * 2 * 2
    v = lay.weights.unpack(beats[3])         # block 0, group 1, beat 1
    assert v["codes"] == [codes[0, 6], codes[0, 7], codes[1, 6], codes[1, 7]]
    assert v["u"] == [2, 4]
    v = lay.weights.unpack(beats[4])         # block 1: row 2 and a padding row
    assert v["codes"] == [codes[2, 0], codes[2, 1], 0, 0]
    assert v["u"] == [5, 0] and v["fmt"] == [0, 1]           # ant3 = (int3: 2 terms, fp3: 1 term)


def test_layouts_and_signed_values_round_trip():
    lay = _layout(4, 8, 32, ["bitmod3", "bitmod4"], max_k=1024)
    assert lay.code_bits == 4 and lay.id_bits == 2 and lay.set_bits == 1
    assert lay.weights.offset("fmt") == 4 * 8 * 4 and lay.weights.offset("u") == 4 * 8 * 4 + 4 * 2
    table = doc_table(lay.weights)
    assert "| `u` | u6 | 136 | 4 |" in table
    rng = random.Random(1)
    x = [rng.randint(-128, 127) for _ in range(16)] + [-128, 127] * 4
    beats = lay.act_beats(x)
    assert [y for w in beats for y in lay.acts.unpack(w)["x"]] == x
    vals = [-(1 << 26), (1 << 26) - 1, 0, -1]
    assert lay.unpack_results([lay.results(27).pack(row=vals, last=1)], 27, 3) == vals[:3]
    one = _layout(1, 1, 4, ["int4"], max_k=8)          # R = L = 1: fields are still arrays
    assert one.weights.unpack(one.weights.pack(codes=[5], fmt=[0], u=[3])) == {
        "codes": [5], "fmt": [0], "u": [3]}


def test_bad_input_is_named():
    lay = _layout(2, 4, 32, ["bitmod4"], max_k=64, max_n=8)
    ok = dict(codes=torch.zeros(2, 64, dtype=torch.int64), fmt_ids=torch.zeros(2, 2, dtype=torch.int64),
              u=torch.zeros(2, 2, dtype=torch.int64))
    def z(*shape):
        return torch.zeros(*shape, dtype=torch.int64)

    with pytest.raises(BitmixError, match="K = 96"):
        lay.weight_beats(z(2, 96), z(2, 3), z(2, 3), "bitmod4")
    with pytest.raises(BitmixError, match="N = 9"):
        lay.weight_beats(z(9, 64), z(9, 2), z(9, 2), "bitmod4")
    with pytest.raises(BitmixError, match="not compiled"):
        lay.weight_beats(fmt_set="bitmod3", **ok)
    with pytest.raises(BitmixError, match="myproj: format id 4"):
        lay.weight_beats(ok["codes"], torch.full((2, 2), 4), ok["u"], "bitmod4", what="myproj")
    with pytest.raises(BitmixError, match="u outside"):
        lay.weight_beats(ok["codes"], ok["fmt_ids"], torch.full((2, 2), 64), "bitmod4")
    beats = lay.weight_beats(fmt_set="bitmod4", **ok)
    beats[1] ^= 1 << lay.weights.offset("u")                 # u differs within a group
    with pytest.raises(BitmixError, match="descriptors differ"):
        lay.unpack_weights(beats, 2, 64)
    with pytest.raises(BitmixError, match="beats, expected"):
        lay.unpack_weights(beats[:-1], 2, 64)


def test_readme_tables_are_generated_from_the_layout():
    """The README's GEMV stream tables are exactly doc_table() of the default engine's layouts."""
    from _readme import section

    from bitmix.designs import DESIGNS

    d = DESIGNS["gemv"]
    p = d.make_params({o.dest: o.default for o in d.options})
    text = section("GEMV engine")
    for lt in (p.layout.cmd, p.layout.acts, p.layout.weights, p.layout.results(p.row_bits),
               p.layout.status):
        assert doc_table(lt) in text, lt.name
