"""RTN quantization, BitMoD selection, two-level scales and the integer reference."""

import math

import numpy as np
import pytest
import torch

from bitmix.errors import BitmixError
from golden.formats import FORMAT_SETS, get_format, get_format_set
from golden.intref import group_partial_sums, row_results, value_table
from golden.quant import nearest_codes, quantize_activations, quantize_mx, quantize_rtn

SYMMETRIC_SETS = [n for n, s in FORMAT_SETS.items() if not s.zero_point]


def _fp32_up(x: float) -> float:
    f = np.float32(x)
    return float(np.nextafter(f, np.float32(np.inf)) if float(f) < x else f)


def _group_search(groups, fs, sigma, umax):
    """Exhaustive: every format, every integer scale 1..umax kept if it is one of the two integers
    around the group's absmax scale (BitMoD's absmax rule with an integer scale), every weight at
    its nearest grid value by a scan (ties to the lower value). Returns [(err, fid, u)]."""
    picks = []
    for g in groups:
        xs = g.tolist()
        amax = max(abs(x) for x in xs)
        best = (math.inf, 0, 0)
        for fid, f in enumerate(fs.formats):
            ideal = amax / f.max_abs / sigma
            lo, hi = min(max(math.floor(ideal), 1), umax), min(max(math.ceil(ideal), 1), umax)
            for u in range(1, umax + 1):
                if u not in (lo, hi):
                    continue
                scale = sigma * u
                vals = [min(f.grid, key=lambda v: (abs(x / scale - v), v)) for x in xs]
                err = sum((v * scale - x) ** 2 for v, x in zip(vals, xs))
                if err < best[0]:
                    best = (err, fid, u)
        picks.append(best if amax > 0 else (best[0], best[1], 0))
    return picks


def _brute_force(W, fs, G, S):
    """Independent restatement (pure Python loops, no torch kernels) of RTN selection: per row
    the two fp32 row scales (smallest max|grid|; the formats the groups chose), the lower row error wins."""
    umax = (1 << S) - 1
    out = []
    for r in range(W.shape[0]):
        groups = W[r].double().reshape(-1, G)
        amaxes = [g.abs().max().item() for g in groups]
        sigma = _fp32_up(max(amaxes) / min(f.max_abs for f in fs.formats) / umax or 1.0)
        picks = _group_search(groups, fs, sigma, umax)
        if len({f.max_abs for f in fs.formats}) > 1:
            s2 = _fp32_up(max(a / fs.formats[p[1]].max_abs for a, p in zip(amaxes, picks)) / umax or 1.0)
            p2 = _group_search(groups, fs, s2, umax)
            if sum(p[0] for p in p2) < sum(p[0] for p in picks):
                sigma, picks = s2, p2
        out.append((sigma, [p[1:] for p in picks]))
    return out


@pytest.mark.parametrize("fs_name", ["bitmod3", "bitmod4", "ant4", "ant3", "int3"])
def test_selection_matches_brute_force(fs_name):
    fs = get_format_set(fs_name)
    torch.manual_seed(1)
    W = torch.randn(4, 64) * torch.rand(4, 1)
    W[1, :16] += 0.8                           # skew one group so asymmetric variants matter
    W[3, 16:32] *= 6                           # one dominant group: the two row-scale rules differ
    q = quantize_rtn(W, fs, group_size=16)
    ref = _brute_force(W, fs, 16, q.scale_bits)
    assert q.row_scale.tolist() == [s for s, _ in ref]
    got = [list(zip(q.fmt_ids[r].tolist(), q.u[r].tolist())) for r in range(4)]
    assert got == [[tuple(p) for p in row] for _, row in ref]


def test_mixed_selection_never_worse_than_any_member():
    torch.manual_seed(2)
    W = torch.randn(16, 256) ** 3              # heavy tails
    # with a fine integer scale the two-level grid is (almost) continuous, so the
    # per-group choice must match the best single member group by group
    mixed = quantize_rtn(W, "bitmod4", 128, scale_bits=16)
    def err(q):
        return ((q.dequantize() - W.double()) ** 2).reshape(16, 2, 128).sum(-1)

    for member in get_format_set("bitmod4").formats:
        single = quantize_rtn(W, member.name, 128, scale_bits=16)
        assert (err(mixed) <= err(single) * (1 + 1e-3)).all()


def test_ties_go_to_the_first_format_and_to_the_lower_grid_point():
    W = torch.zeros(1, 8)
    W[0, :4] = torch.tensor([4.0, -4.0, 2.0, 1.0])   # on every ER/EA grid's shared points
    q = quantize_rtn(W, "er4", group_size=8, scale_bits=8)
    assert q.fmt_ids.tolist() == [[0]]
    codes, vals = nearest_codes(torch.tensor([0.5, 2.5, -0.5, 9.0, -9.0, 0.49]), get_format("int4"))
    assert vals.tolist() == [0, 2, -1, 7, -7, 0]
    assert [get_format("int4").codebook[c] for c in codes.tolist()] == vals.tolist()


@pytest.mark.parametrize("fs_name", SYMMETRIC_SETS + ["int3_asym", "int4_asym"])
def test_two_level_scale_ranges_and_effective_bits(fs_name):
    fs = get_format_set(fs_name)
    torch.manual_seed(3)
    W = torch.randn(4, 256)
    W[2, 128:] = 0                              # an all-zero group
    q = quantize_rtn(W, fs, 128)
    assert q.scale_bits + fs.id_bits == 8
    assert int(q.u.min()) >= 0 and int(q.u.max()) <= (1 << q.scale_bits) - 1
    assert q.u[2, 1] == 0 and (q.dequantize()[2, 128:] == 0).all()
    zero_bits = fs.bits if fs.zero_point else 0
    assert q.effective_bits(False) == pytest.approx(fs.bits + (8 + zero_bits) / 128)
    assert q.effective_bits() == pytest.approx(q.effective_bits(False) + 32 / 256)
    rel = ((q.dequantize() - W.double()).norm() / W.double().norm()).item()
    assert rel < {2: 0.6, 3: 0.3, 4: 0.17}[fs.bits]


def test_asymmetric_keeps_zero_exact():
    W = torch.rand(2, 64) + 0.5                 # all positive
    W[0, 5] = 0.0
    q = quantize_rtn(W, "int4_asym", 32)
    assert q.dequantize()[0, 5] == 0
    assert int(q.codes.max()) <= 15 and int(q.codes.min()) >= 0


def test_mx_uses_power_of_two_group_scales():
    torch.manual_seed(4)
    W = torch.randn(4, 64)
    q = quantize_mx(W, "fp4", 32)
    u = q.u[q.u > 0]
    assert ((u & (u - 1)) == 0).all()
    assert math.log2(q.row_scale[0].item()).is_integer()
    assert q.effective_bits(False) == pytest.approx(4 + 8 / 32)
    assert ((q.dequantize() - W.double()).norm() / W.norm()).item() < 0.15


def test_bad_input_names_the_tensor():
    W = torch.randn(2, 96)
    with pytest.raises(BitmixError, match="layer0.q: input size 96 is not divisible by group size 64"):
        quantize_rtn(W, "int4", 64, name="layer0.q")
    W[1, 7] = float("nan")
    with pytest.raises(BitmixError, match=r"layer0.q: 1 non-finite value\(s\).*\[1, 7\]"):
        quantize_rtn(W, "int4", 32, name="layer0.q")
    with pytest.raises(BitmixError, match="unknown format set"):
        quantize_rtn(torch.randn(2, 32), "int5", 32)


def test_activation_quantization_is_symmetric_per_token():
    x = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]])
    xi, s = quantize_activations(x, 8)
    assert xi.tolist() == [[64, -127, 32], [0, 0, 0]]
    assert s[0].item() == pytest.approx(1 / 127)
    xi, _ = quantize_activations(torch.randn(50, 32), 4)
    assert int(xi.abs().max()) == 7


@pytest.mark.parametrize("fs_name", ["bitmod3", "bitmod4", "ant3", "int4_asym", "fp4"])
def test_integer_reference_equals_explicit_sums(fs_name):
    fs = get_format_set(fs_name)
    torch.manual_seed(5)
    W = torch.randn(3, 64)
    q = quantize_rtn(W, fs, 16)
    x = torch.randint(-128, 128, (64,))
    table = value_table(fs)
    expect = []
    for r in range(3):
        acc = 0
        for g in range(4):
            p = 0
            for k in range(16 * g, 16 * g + 16):
                v = int(table[q.fmt_ids[r, g], q.codes[r, k]])
                z = int(q.zero[r, g]) if q.zero is not None else 0
                p += int(x[k]) * (v - z)
            acc += int(q.u[r, g]) * p
        expect.append(acc)
    assert row_results(q.codes, q.fmt_ids, q.u, x, fs, 16, zero=q.zero).tolist() == expect
    assert q.int_matmul(torch.stack([x, -x])).tolist() == [expect, [-e for e in expect]]


@pytest.mark.parametrize("fs_name", list(FORMAT_SETS))
def test_integer_path_matches_float_path(fs_name):
    """For every format: integer sums rescaled once == float product with the dequantized weight."""
    torch.manual_seed(6)
    W = torch.randn(8, 256) * 0.05
    q = quantize_rtn(W, fs_name, 128)
    x = torch.randn(5, 256)
    xi, sx = quantize_activations(x)
    float_path = (xi.double() * sx[:, None]) @ q.dequantize().T
    assert torch.allclose(q.forward_integer(x), float_path, rtol=1e-12, atol=1e-12)


def test_term_truncation_reads_fewer_terms():
    fs = get_format_set("bitmod4")
    torch.manual_seed(7)
    q = quantize_rtn(torch.randn(2, 128), fs, 128)
    x = torch.randint(-128, 128, (128,))
    full = group_partial_sums(q.codes, q.fmt_ids, x, fs, 128)
    assert torch.equal(group_partial_sums(q.codes, q.fmt_ids, x, fs, 128, nterms=fs.max_terms), full)
    assert (group_partial_sums(q.codes, q.fmt_ids, x, fs, 128, nterms=0) == 0).all()
    one = value_table(fs, 1)
    assert all(v == 0 or abs(v) & (abs(v) - 1) == 0 for v in one.flatten().tolist())


def test_reference_rejects_unknown_format_id_and_bad_codes():
    fs = get_format_set("bitmod3")
    codes = torch.zeros(1, 8, dtype=torch.int64)
    with pytest.raises(BitmixError, match="unknown format id 4"):
        row_results(codes, torch.tensor([[4]]), torch.tensor([[1]]), torch.zeros(8), fs, 8)
    with pytest.raises(BitmixError, match="codes: values outside 0..7"):
        row_results(codes + 8, torch.tensor([[0]]), torch.tensor([[1]]), torch.zeros(8), fs, 8)


@pytest.mark.parametrize("fs_name", ["bitmod4", "int4_asym"])
def test_row_chunking_does_not_change_the_result(fs_name, monkeypatch):
    import golden.quant as gq
    W = torch.randn(37, 64)
    whole = quantize_rtn(W, fs_name, 32)
    monkeypatch.setattr(gq, "ROW_CHUNK", 8)
    chunked = quantize_rtn(W, fs_name, 32)
    for attr in ("codes", "fmt_ids", "u", "row_scale", "zero"):
        a, b = getattr(whole, attr), getattr(chunked, attr)
        assert (a is None and b is None) or torch.equal(a, b), attr


@pytest.mark.parametrize("sign", [1, -1])
def test_bitmod3_row_scale_follows_the_selected_formats(sign):
    """Groups that all choose an EA format (max 6) get a row scale from 6, not from ER's 4:
    u then spans its whole 6-bit range and the row's error drops."""
    torch.manual_seed(3)
    W = torch.randn(1, 256, dtype=torch.float64) * 0.25
    W[0, ::16] = sign * (1.5 + 1.5 * torch.rand(16, dtype=torch.float64))   # one big outlier per group
    W[0, 0] = sign * 3.0
    q = quantize_rtn(W, "bitmod3", 16)
    names = [q.format_set.formats[i].name for i in q.fmt_ids[0].tolist()]
    assert all(n.startswith("fp3_ea") for n in names)
    assert q.row_scale.item() == pytest.approx(3.0 / 6 / 63, rel=1e-6)
    assert int(q.u.max()) > 42                      # the former rule capped EA groups at 63 * 4 / 6
    old = quantize_rtn(W, "bitmod3", 16, row_scale=torch.tensor([3.0 / 4 / 63]))  # the former rule
    err = lambda r: float(((r.dequantize() - W) ** 2).sum())  # noqa: E731
    assert err(q) < err(old)
