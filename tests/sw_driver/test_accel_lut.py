"""Accelerated layers on the shift-add LUT path (sw_driver/accel.py with golden.bcq layers):
tiling for the LUT path, refusals by name, placement of the per-precision streams; on the virtual
board (`-m slow`: a top with L = 8 and the LUT path for 3 planes, the build test_device's LUT
test shares): layers of the reference model quantized by golden.bcq give exactly
golden.pmpd.BCQLinear's output at every plane count, tiled in N and K; a corrupted stream is
caught naming layer, token and row; a resident model sends no weight byte per token."""

from types import SimpleNamespace

import pytest
import torch

from bitmix.cmd_demo import LUT_BOARD
from bitmix.errors import BitmixError
from fpga.top_params import TopParams
from golden.bcq import quantize_bcq
from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
from golden.pmpd import BCQLinear
from golden.protocol import Region
from sw_driver.accel import AccelBCQLinear, Accelerator, AccelLinear, DeviceMismatch, lut_tile_plan

LUT_TOP = TopParams.make(lanes=8, lut={"max_planes": 3})


@pytest.fixture(scope="module")
def ref():
    return load_model(REFERENCE_MODEL_DIR)


def _bcq(W, q=3, layout="block", g=128):
    return quantize_bcq(W.to(torch.float64), q, g, layout, rounds=2)       # the structure matters here


class _Dev:
    """A device that is only its parameters and a write log (host-side checks, no board)."""

    def __init__(self, params):
        self.params = params
        self.transport = SimpleNamespace(tx_bytes=0, rx_bytes=0)
        self.writes = []

    def write_mem(self, region, offset, data, progress=False):
        self.writes.append((region, offset, len(data)))


def test_lut_tiles_are_whole_groups_and_their_streams_fit_the_region(ref):
    g = LUT_TOP.gemv
    nb = LUT_TOP.region_beat_bytes[Region.WEIGHTS]
    for W in (ref.model.layers[0].mlp.down_proj.weight.data, ref.lm_head.weight.data):
        bw = _bcq(W)
        rs, cs = bw.spans
        tiles = lut_tile_plan(LUT_TOP, bw)
        cover = torch.zeros(bw.shape, dtype=torch.int64)
        for rows, cols in tiles:
            cover[rows, cols] += 1
            assert rows.start % rs == 0 and (rows.stop - rows.start) % rs == 0
            assert cols.start % 32 == 0 and (cols.stop - cols.start) % 32 == 0
            assert cols.stop - cols.start <= g.max_k
            t = bw.tile(rows, cols)
            beats = len(g.lut_layout.weight_bytes(t)) // nb
            assert beats <= LUT_TOP.weight_beats                # the 3-plane stream fits
        assert bool((cover == 1).all())


def test_layers_the_device_cannot_compute_are_refused_by_name(ref):
    W = ref.model.layers[0].self_attn.k_proj.weight.data
    bw = _bcq(W)
    with pytest.raises(BitmixError, match="layer k: a shift-add .BCQ. layer, but this device has no "
                                          "shift-add LUT path"):
        AccelLinear(bw, "k", Accelerator(_Dev(TopParams.make())))
    acc = Accelerator(_Dev(LUT_TOP))
    with pytest.raises(BitmixError, match="layer k: BCQ layout 'col': the LUT path needs one scale"):
        AccelLinear(_bcq(W, layout="col", g=32), "k", acc)
    with pytest.raises(BitmixError, match="layer k: 4 binary planes, the device's LUT path computes at "
                                          "most 3"):
        AccelLinear(_bcq(W, q=4), "k", acc)
    wide = _bcq(W)
    wide.exps[0, 0, 0, 0] = wide.exps[wide.signs != 0].min() - 40     # a span the shifter lacks
    with pytest.raises(BitmixError, match=r"layer k tile 1/4: APoT exponents span 2\^\d+; the LUT path "
                                          r"shifts by at most 2\^31"):
        AccelLinear(wide, "k", acc)
    lin = AccelLinear(bw, "k", acc)
    assert isinstance(lin, AccelBCQLinear) and isinstance(lin, BCQLinear) and lin.e0 == bw.exp_offset()


def test_resident_placement_orders_streams_so_every_load_is_in_bounds(ref):
    """A LUT tile's base is checked by LOAD_LAYER against its q-plane stream: place() writes the
    lower-precision streams first, so every tile at every placed precision passes that check."""
    L0 = ref.model.layers[0]
    layers = {"k": _bcq(L0.self_attn.k_proj.weight.data[:32]),
              "down": _bcq(L0.mlp.down_proj.weight.data[:16])}
    tp = LUT_TOP.replace(weight_beats=4096)
    acc = Accelerator(_Dev(tp))
    placed = acc.place(layers, precisions=(0, 1))
    assert placed["resident"] and len(acc.bases) == 2 * (1 + 2)          # k: 1 tile, down: 2 (K = 512)
    nb = tp.region_beat_bytes[Region.WEIGHTS]
    for (name, ti, p), base in acc.bases.items():
        full = len(acc._packed[(name, ti, 3)]) // nb
        assert base + full <= tp.weight_beats and (p == 3 or base + full < placed["model_bytes"] // nb)
    # the same model in the boards' 2,048 beats does not fit: streamed
    assert not Accelerator(_Dev(LUT_TOP)).place(layers, precisions=(0, 1))["resident"]


@pytest.fixture(scope="module")
def lut_board(sim_top_values):
    from verif.sim_board import SimBoard

    exe, p, manifest = sim_top_values(LUT_BOARD, "bytes")
    with SimBoard(exe, link="bytes", clk_hz=p.clk_hz, manifest=manifest, persist=True) as board:
        board.params = p
        yield board


def _acts(ref, n, k):
    e = ref.model.embed_tokens.weight.data[[ord(c) for c in "with"[:n]]]
    return e.repeat(1, k // e.shape[1])


@pytest.mark.slow
def test_shift_add_layers_on_device_equal_golden_at_every_plane_count(lut_board, ref):
    from sw_driver.device import Device

    with Device.open(lut_board.device, expect=lut_board.params, progress=False) as dev:
        acc = Accelerator(dev)
        # k_proj: N = 128, 4 row tiles of 32; down_proj rows 0..31: K = 512, 2 K tiles
        for name, W in (("model.layers.0.self_attn.k_proj", ref.model.layers[0].self_attn.k_proj.weight),
                        ("model.layers.0.mlp.down_proj", ref.model.layers[0].mlp.down_proj.weight[:32])):
            bw = _bcq(W.data)
            x = _acts(ref, 2, W.shape[1])
            dl, gl = AccelLinear(bw, name, acc), BCQLinear(bw, name, 8)
            for prec in range(4):
                acc.precision = gl.precision = prec
                before = acc.stats.gemvs
                assert torch.equal(dl(x), gl(x)), f"{name} precision {prec}"
                assert acc.stats.gemvs - before == 2 * len(lut_tile_plan(dev.params, bw))
        assert acc.stats.checked_rows == 4 * 2 * (128 + 2 * 32)          # per tile: down_proj's 2
        # a stream the device computes differently from golden: named by layer, token and row
        name, bw = "model.layers.0.self_attn.k_proj", _bcq(ref.model.layers[0].self_attn.k_proj.weight.data)
        lin = AccelLinear(bw, name, acc)
        acc.precision, acc.position = 2, 7
        key = (name, 1, 2)
        data = bytearray(acc._packed[key])
        data[len(data) // 2] ^= 0x5A
        acc._packed[key] = bytes(data)
        acc._loaded = None
        with pytest.raises(DeviceMismatch, match=rf"layer {name}, token 7, row \d+, precision 2") as e:
            lin(_acts(ref, 1, 256))
        assert 32 <= e.value.row < 64 and e.value.got != e.value.want      # tile 2's rows


@pytest.mark.slow
def test_shift_add_model_resident_then_activations_only(lut_board, ref):
    """Streams at the two decode precisions written once; per token no weight byte; a precision
    that was not placed is refused (streaming it would overwrite the resident tiles)."""
    from sw_driver.device import Device

    L0 = ref.model.layers[0]
    layers = {"k": _bcq(L0.self_attn.k_proj.weight.data[:16]),      # 3 + 1 planes x 512 beats each:
              "v": _bcq(L0.self_attn.v_proj.weight.data[:16])}      # the 2,048-beat region
    with Device.open(lut_board.device, expect=lut_board.params, progress=False) as dev:
        acc = Accelerator(dev)
        placed = acc.place(layers, precisions=(0, 1))
        assert placed["resident"]
        assert placed["model_bytes"] < placed["link_bytes"] < 1.07 * placed["model_bytes"]
        mods = {n: (AccelLinear(bw, n, acc), BCQLinear(bw, n, 8)) for n, bw in layers.items()}
        for t, prec in enumerate((0, 0, 1)):
            acc.reset_stats()
            acc.position, acc.precision = t, prec
            for n, (dl, gl) in mods.items():
                gl.precision = prec
                x = _acts(ref, 1, dl.qw.shape[1]) * (1 + t)
                assert torch.equal(dl(x), gl(x)), f"{n} token {t}"
            st = acc.stats
            assert st.loads == 0 and st.weight_bytes == 0 and st.selects == 2 and st.gemvs == 2
            assert st.link_bytes < 2 * 1000 + 2 * 256                        # descriptors, acts, results
        acc.precision = 2
        with pytest.raises(BitmixError, match="layer k was not placed on the device for 2 planes"):
            mods["k"][0](_acts(ref, 1, 256))
