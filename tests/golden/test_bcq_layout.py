"""The LUT path's stream formats (golden.bcq_layout): round trips on layers quantized by
golden.bcq, precision as a prefix, refusals, and the streams' meaning checked by a plain-Python
LUT machine against golden.bcq's integer path."""

import pytest
import torch

from bitmix.errors import BitmixError
from golden.bcq import quantize_bcq
from golden.bcq_layout import KEY_BITS, LutLayout, expected, plane_of_key_beats
from golden.quant import quantize_activations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lay(rows=3, **kw):
    d = dict(rows=rows, max_planes=4, apot_terms=3, shift_bits=5, act_bits=8, max_k=256, max_n=64)
    d.update(kw)
    return LutLayout(**d)


def _layer(q, layout, n=20, k=64, g=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(n, k, generator=gen, dtype=torch.float64) * (1 + torch.rand(n, 1, generator=gen))
    return quantize_bcq(W, q, g, layout, rounds=5)


def _lut_machine(lay, bw, x_int, p):
    """What the hardware does, from the streams alone: a 256-entry table per chunk, keys query
    it, the scale beat's terms shift it, per-row accumulation."""
    n, k = bw.shape
    gc = lay.check_weight(bw)
    keys = iter(lay.key_beats(bw, p))
    scales = iter(lay.scale_beats(bw, p))
    acts = iter(lay.act_beats(x_int, n))
    R, T = lay.rows, lay.apot_terms
    out = []
    for _ in range(lay.blocks(n)):
        acc = [0] * R
        terms = {}
        for c in range(k // KEY_BITS):
            x = lay.acts.unpack(next(acts))["x"]
            table = [sum((1 if key >> j & 1 else -1) * x[j] for j in range(8)) for key in range(256)]
            for i in range(p):
                if c % gc == 0:
                    v = lay.scales.unpack(next(scales))
                    terms[i] = [list(zip(v["sign"][r * T:(r + 1) * T], v["shift"][r * T:(r + 1) * T]))
                                for r in range(R)]
                kv = lay.keys.unpack(next(keys))["key"]
                for r in range(R):
                    acc[r] += sum(s * (table[kv[r]] << sh) for s, sh in terms[i][r])
        out += acc
    return out[:n]


@pytest.mark.parametrize("layout", ["row", "block"])
@pytest.mark.parametrize("q", [2, 3, 4])
def test_round_trip_every_precision(layout, q):
    lay = _lay()
    bw = _layer(q, layout, seed=q)
    e0 = lay.exp_base(bw)
    n, k = bw.shape
    for p in range(1, q + 1):
        kb, sb = lay.key_beats(bw, p), lay.scale_beats(bw, p)
        back = lay.unpack(kb, sb, n=n, k=k, planes=p, layout=layout, group_size=bw.group_size, e0=e0)
        assert torch.equal(back.planes, bw.planes[:p])
        assert torch.equal(back.signs, bw.signs[:p])
        assert torch.equal(back.exps, torch.where(bw.signs[:p] != 0, bw.exps[:p], 0))
        assert torch.allclose(back.dequantize(), bw.dequantize(p))


@pytest.mark.parametrize("layout", ["row", "block"])
def test_precision_is_a_prefix_of_every_chunk(layout):
    lay = _lay()
    bw = _layer(4, layout)
    full_k, full_s = lay.key_beats(bw), lay.scale_beats(bw)
    for p in (1, 2, 3):
        planes_k = plane_of_key_beats(len(full_k), 4)
        planes_s = plane_of_key_beats(len(full_s), 4)
        assert lay.key_beats(bw, p) == [b for b, i in zip(full_k, planes_k) if i < p]
        assert lay.scale_beats(bw, p) == [b for b, i in zip(full_s, planes_s) if i < p]
        bits = lay.stream_bits(bw, p)
        assert bits["total"] * 4 == lay.stream_bits(bw)["total"] * p


@pytest.mark.parametrize("layout,g", [("row", 32), ("row", 8), ("block", 32), ("block", 16)])
@pytest.mark.parametrize("q", [2, 3, 4])
def test_streams_mean_golden_integer_path(layout, g, q):
    lay = _lay(rows=3)
    bw = _layer(q, layout, n=16 if layout == "block" else 14, k=64, g=g, seed=10 * q + g)
    gen = torch.Generator().manual_seed(q)
    x_int, _ = quantize_activations(torch.randn(64, generator=gen, dtype=torch.float64), 8)
    e0 = lay.exp_base(bw)
    for p in range(1, q + 1):
        assert _lut_machine(lay, bw, x_int, p) == expected(bw, x_int, p, e0)
    # the same real value as golden's own offset
    y, e0p = bw.int_matmul(x_int, 2)
    assert [v * 2.0 ** e0 for v in expected(bw, x_int, 2, e0)] == [v * 2.0 ** e0p for v in y.tolist()]


def test_col_layout_refused_in_one_line():
    lay = _lay()
    bw = _layer(2, "col", n=32)
    for f in (lay.key_beats, lay.scale_beats, lay.layer_cmd):
        with pytest.raises(BitmixError) as e:
            f(bw)
        msg = str(e.value)
        assert "'col'" in msg and "8-input key" in msg and "\n" not in msg


def test_bad_layers_refused():
    lay = _lay(max_planes=2, shift_bits=5, max_k=32)
    with pytest.raises(BitmixError, match="3 binary planes.*at most 2"):
        lay.key_beats(_layer(3, "row", k=32))
    bw = _layer(2, "row", k=64)
    with pytest.raises(BitmixError, match="K = 64.*max K = 32"):
        lay.key_beats(bw)
    bw = _layer(2, "row", k=32)
    lay.scale_beats(bw)                           # its natural span fits 5 shift bits
    bw.exps[0, 0, 0, 0] = int(bw.exps[bw.signs != 0].min()) + 32
    bw.signs[0, 0, 0, 0] = 1
    with pytest.raises(BitmixError, match="span 2\\^32; .*at most 2\\^31 \\(shift_bits = 5\\)"):
        lay.scale_beats(bw)
    bad = _layer(2, "row", k=32, g=4)
    with pytest.raises(BitmixError, match="multiple of 8"):
        lay.key_beats(bad)


def test_unpacker_checks_stream():
    lay = _lay()
    bw = _layer(2, "block")
    n, k = bw.shape
    kb, sb = lay.key_beats(bw), lay.scale_beats(bw)
    kw = dict(n=n, k=k, planes=2, layout="block", group_size=bw.group_size, e0=lay.exp_base(bw))
    with pytest.raises(BitmixError, match="key beats"):
        lay.unpack(kb[:-1], sb, **kw)
    # block groups span 4 rows: change one row's terms only
    v = lay.scales.unpack(sb[0])
    v["sign"][0] = -v["sign"][0] or 1
    with pytest.raises(BitmixError, match="same scale group"):
        lay.unpack(kb, [lay.scales.pack(**v), *sb[1:]], **kw)


# ---------------------------------------------------------------- the engine's LUT path beat

def _elay(rows=3, lanes=16, beat_bits=400, k_step=32):
    from golden.bcq_layout import EngineLutLayout

    return EngineLutLayout(_lay(rows), lanes, beat_bits, k_step)


@pytest.mark.parametrize("layout,q", [("row", 3), ("block", 4)])
def test_engine_beats_round_trip_every_precision(layout, q):
    el = _elay()
    bw = _layer(q, layout, n=20, k=64, g=32)
    e0 = el.lut.exp_base(bw)
    for p in range(1, q + 1):
        beats = el.weight_beats(bw, p)
        assert len(beats) == el.lut.blocks(20) * (64 // 16) * p
        assert max(beats) < 1 << el.weights.size <= 1 << el.beat_bits
        # the driver's vectorised byte form is these beats, little-endian, beat_bytes each
        assert el.weight_bytes(bw, p) == b"".join(b.to_bytes(el.beat_bytes, "little") for b in beats)
        back = el.unpack_weights(beats, n=20, k=64, planes=p, layout=layout, group_size=32, e0=e0)
        assert torch.equal(back.planes, bw.planes[:p])
        used = bw.signs[:p] != 0
        assert torch.equal(back.signs, bw.signs[:p])
        assert torch.equal(back.exps[used], bw.exps[:p][used])
        assert el.stream_bytes(bw, p)["port"] * q == el.stream_bytes(bw)["port"] * p


def test_engine_beat_refusals_in_one_line():
    from golden.bcq_layout import EngineLutLayout

    el = _elay()
    with pytest.raises(BitmixError, match="^q_proj: BCQ layout 'col': the LUT path needs") as e:
        el.weight_beats(_layer(2, "col", n=32, k=64, g=16), what="q_proj")
    assert "\n" not in str(e.value)
    with pytest.raises(BitmixError, match="K = 48 is not a multiple of 32"):
        el.weight_beats(_layer(2, "row", n=4, k=48, g=16))
    with pytest.raises(BitmixError, match="lanes = 12 must be a multiple of 8"):
        EngineLutLayout(_lay(), 12, 400)
    with pytest.raises(BitmixError, match="needs 174 bits, the engine's weight beat has 100"):
        EngineLutLayout(_lay(), 16, 100)
