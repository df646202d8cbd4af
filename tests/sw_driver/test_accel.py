"""Accelerated layers (sw_driver/accel.py) against the virtual board running the FPGA top (not a
mock): layers of the shipped reference model quantized at the device's group size give exactly
golden.pmpd.QuantLinear's output at every precision, tiled in N and K; a model that fits the
weights region is written once at its weight bases and a token then sends activations only, one
that does not is streamed tile by tile; a one-tile layer stays resident; a wrong device result is
caught naming layer, token and row."""

import pytest
import torch

from bitmix.errors import BitmixError
from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
from golden.data import encode
from golden.pmpd import QuantLinear, generate, replace_linears, set_precision, static_schedule
from golden.protocol import Command
from golden.quant import quantize_rtn
from sw_driver.accel import Accelerator, AccelLinear, DeviceMismatch, tile_plan
from sw_driver.device import Device
from sw_driver.protocol import DeviceError


@pytest.fixture
def board(sim_board):
    return sim_board("bytes", persist=True)


@pytest.fixture(scope="module")
def ref():
    return load_model(REFERENCE_MODEL_DIR)


def _quant(W, g):
    return quantize_rtn(W.to(torch.float64), g.format_sets[0], g.group_size, scale_bits=g.scale_bits)


def _acts(ref, n, k):
    """``n`` activation rows of width ``k`` from the model's embeddings (real value ranges)."""
    e = ref.model.embed_tokens.weight.data[[ord(c) for c in "with"[:n]]]
    return e.repeat(1, k // e.shape[1])


def test_tile_plan_covers_in_whole_groups():
    tiles = tile_plan(130, 512, 64, 256, 32)
    assert [(r.start, r.stop, c.start, c.stop) for r, c in tiles] == [
        (0, 64, 0, 256), (0, 64, 256, 512), (64, 128, 0, 256), (64, 128, 256, 512),
        (128, 130, 0, 256), (128, 130, 256, 512)]
    with pytest.raises(BitmixError, match="cannot be tiled"):
        tile_plan(4, 100, 64, 256, 32)


def test_layers_on_device_equal_golden_at_every_precision(board, ref):
    g = board.params.gemv
    with Device.open(board.device, expect=board.params, progress=False) as dev:
        acc = Accelerator(dev)
        # k_proj: N = 128 > max N (2 row blocks); down_proj rows 0..63: K = 512 > max K (2 K tiles)
        for name, W in (("model.layers.0.self_attn.k_proj", ref.model.layers[0].self_attn.k_proj.weight),
                        ("model.layers.0.mlp.down_proj", ref.model.layers[0].mlp.down_proj.weight[:64])):
            q = _quant(W.data, g)
            x = _acts(ref, 2, W.shape[1])
            dl, gl = AccelLinear(q, name, acc), QuantLinear(q, name, g.act_bits)
            for prec in range(g.max_terms + 1):
                acc.precision = gl.precision = prec
                before = acc.stats.gemvs
                assert torch.equal(dl(x), gl(x)), f"{name} precision {prec}"
                tiles = tile_plan(*q.shape, g.max_n, g.max_k, g.group_size)
                assert acc.stats.gemvs - before == 2 * len(tiles)
            gl.precision = 1                                           # truncation matters
            assert not torch.equal(gl(x), QuantLinear(q, name, g.act_bits)(x))
        assert acc.stats.cycles > 0 and acc.stats.checked_rows == 3 * 2 * (128 + 2 * 64)   # per tile
        assert dev.transport.core.stats.retries == 0


def test_one_tile_layer_stays_resident_and_mismatch_is_named(board, ref):
    g = board.params.gemv
    W = ref.model.layers[1].self_attn.q_proj.weight.data[:g.max_n]
    q = _quant(W, g)
    name = "model.layers.1.self_attn.q_proj"
    with Device.open(board.device, expect=board.params, progress=False) as dev:
        acc = Accelerator(dev)
        lin = AccelLinear(q, name, acc)
        x = _acts(ref, 1, 256)
        lin(x)
        first = acc.reset_stats()
        assert first.loads == 1 and first.weight_bytes > 0
        lin(x)                                        # resident: only activations and results move
        assert acc.stats.loads == 0 and acc.stats.link_bytes < first.weight_bytes / 4
        # the device computes with other weights than golden's: the check names layer/token/row
        data = bytearray(acc._packed[(name, 0)])
        data[len(data) // 2] ^= 0x11
        acc._packed[(name, 0)] = bytes(data)
        acc._loaded = None
        acc.position = 7
        with pytest.raises(DeviceMismatch, match=rf"layer {name}, token 7, row \d+") as e:
            lin(x)
        assert 0 <= e.value.row < g.max_n and e.value.got != e.value.want


def _tokens(acc, layers, ref, tokens=3):
    """Run each layer on ``tokens`` one-token forwards (at full precision, then 1 term, as PMPD
    decodes), each equal to golden's QuantLinear; the AccelStats of each token."""
    g = acc.device.params.gemv
    mods = {n: (AccelLinear(q, n, acc), QuantLinear(q, n, g.act_bits)) for n, q in layers.items()}
    per_token = []
    acc.reset_stats()
    for t in range(tokens):
        acc.position = t
        acc.precision = 0 if t == 0 else 1
        for n, (dl, gl) in mods.items():
            gl.precision = acc.precision
            x = _acts(ref, 1, dl.qw.shape[1]) * (1 + t)
            assert torch.equal(dl(x), gl(x)), f"{n} token {t}"
        per_token.append(acc.reset_stats())
    return per_token


def test_model_resident_weights_once_then_activations_only(board, ref):
    """A model whose tiles fit the weights region (3 layers, 4 tiles, 1,536 of 2,048 beats) is
    written once at its weight bases; each token then moves no weight byte: one LOAD_LAYER per
    tile (a descriptor with its base), activations, results; bit-exact with golden."""
    g = board.params.gemv
    L0 = ref.model.layers[0]
    layers = {"q": _quant(L0.self_attn.q_proj.weight.data[:16], g),
              "k": _quant(L0.self_attn.k_proj.weight.data[:16], g),
              "down": _quant(L0.mlp.down_proj.weight.data[:8], g)}   # K = 512: two K tiles
    with Device.open(board.device, expect=board.params, progress=False) as dev:
        acc = Accelerator(dev)
        placed = acc.place(layers)
        assert placed["resident"] and placed["model_bytes"] == 1536 * board.params.region_beat_bytes[0]
        assert sorted(acc.bases.values()) == [0, 512, 1024, 1280]
        # written once: the model's bytes plus framing (per 507-byte chunk: address, header, CRC,
        # COBS, delimiter and a 10-byte ACK, under 7 %)
        assert placed["model_bytes"] < placed["link_bytes"] < 1.07 * placed["model_bytes"]
        per_token = _tokens(acc, layers, ref)
    act_bytes = 4 * 256                              # 4 tiles of K = 256 one-byte activations
    for st in per_token:
        assert st.loads == 0 and st.weight_bytes == 0 and st.load_link_bytes == 0
        assert st.selects == 4 and st.gemvs == 4
        # per token: the activations, and per GEMV a few short frames (descriptor, run, STATUS
        # polls — 32 bytes each, more when a loaded machine slows the board — results): under
        # half of one weight pass (a streamed token sends every tile: below)
        assert act_bytes < st.link_bytes < act_bytes + 1000 * st.gemvs < placed["model_bytes"] / 2


def test_model_larger_than_the_region_streams_tiles_per_use(board, ref):
    """On the iCEBreaker build's weights region (the default top's: 2,048 beats, 14,336 B) the
    reference model's layer-0 MLP (24 tiles) does not fit: place() leaves it streamed, and every
    token sends every tile's weights; bit-exact with golden."""
    from bitmix.cmd_build import board_values

    design, _, _, values = board_values("icebreaker")
    assert board.params.weight_beats == design.make_params(values).weight_beats
    g = board.params.gemv
    L0 = ref.model.layers[0]
    layers = {n: _quant(getattr(L0.mlp, n).weight.data, g) for n in ("gate_proj", "up_proj", "down_proj")}
    with Device.open(board.device, expect=board.params, progress=False) as dev:
        acc = Accelerator(dev)
        placed = acc.place(layers)
        assert not placed["resident"] and acc.bases is None
        assert placed["model_bytes"] > board.params.region_bytes[0] and placed["link_bytes"] == 0
        per_token = _tokens(acc, layers, ref, tokens=2)
    for st in per_token:
        assert st.loads == 24 and st.selects == 0 and st.weight_bytes == placed["model_bytes"]
        assert st.link_bytes > st.weight_bytes > st.load_link_bytes * 0.9


def test_foreign_layers_are_refused_by_name(board, ref):
    g = board.params.gemv
    W = ref.model.layers[0].self_attn.k_proj.weight.data.to(torch.float64)
    with Device.open(board.device, expect=board.params, progress=False) as dev:
        acc = Accelerator(dev)
        with pytest.raises(BitmixError, match="layer k: group size 128, the device's is 32"):
            AccelLinear(quantize_rtn(W, "bitmod4", 128, scale_bits=g.scale_bits), "k", acc)
        with pytest.raises(BitmixError, match="layer k: format set int4_asym is not compiled"):
            AccelLinear(quantize_rtn(W, "int4_asym", g.group_size), "k", acc)


def test_board_killed_mid_load_or_mid_run_is_a_clear_error_and_a_restart_is_bit_exact(sim_board, ref):
    """The board dies in the middle of streaming a layer's tiles, or between its GEMVs: a
    DeviceError names the command and what the run was doing; nothing is returned; a new board
    computes the layer bit-exact."""
    import os
    import signal

    name = "model.layers.0.mlp.gate_proj"           # 512 x 256: 8 tiles
    board = sim_board("bytes")
    p = board.params
    q = _quant(ref.model.layers[0].mlp.gate_proj.weight.data, p.gemv)
    x = _acts(ref, 1, 256)
    want = QuantLinear(q, name, p.gemv.act_bits)(x)
    for hook, nth, what in (("load_packed", 3, r"while loading layer \S+ tile 3/8 \(token 5\)"),
                            ("run", 2, r"while running layer \S+ tile 2/8 for token 5")):
        with Device.open(board.device, expect=p, progress=False, timeout=0.3, retries=1) as dev:
            acc = Accelerator(dev)
            acc.position = 5
            lin = AccelLinear(q, name, acc)
            orig, calls = getattr(dev, hook), []

            def killing(*a, _orig=orig, _calls=calls, _nth=nth, _board=board, **kw):
                _calls.append(1)
                if len(_calls) == _nth:
                    os.kill(_board.pid, signal.SIGKILL)
                    _board.wait(5)
                return _orig(*a, **kw)

            setattr(dev, hook, killing)
            got = None
            with pytest.raises(DeviceError, match=what) as e:
                got = lin(x)
            assert got is None and e.value.command in (Command.WRITE_MEM, Command.RUN)
            assert e.value.doing.startswith(what.split()[1])
        board = sim_board("bytes")                   # restart
    with Device.open(board.device, expect=p, progress=False) as dev:
        assert torch.equal(AccelLinear(q, name, Accelerator(dev))(x), want)


@pytest.mark.slow
def test_whole_model_pmpd_decode_on_device_equals_golden(board):
    """Every linear (lm_head included) on the virtual board: the PMPD decode gives golden's tokens
    and log-probabilities exactly (3 tokens, precision full then 1 term)."""
    g = board.params.gemv
    host, dev_model = load_model(REFERENCE_MODEL_DIR), load_model(REFERENCE_MODEL_DIR)
    qs = {}

    def golden_layer(name, lin):
        qs[name] = _quant(lin.weight.data, g)
        return QuantLinear(qs[name], name, g.act_bits)

    replace_linears(host, golden_layer)
    want = generate(host, encode("The "), 3, static_schedule(1), lambda p: set_precision(host, p))
    with Device.open(board.device, expect=board.params, progress=False) as dev:
        acc = Accelerator(dev)
        replace_linears(dev_model, lambda name, lin: AccelLinear(qs[name], name, acc))
        got = generate(dev_model, encode("The "), 3, static_schedule(1),
                       lambda p: setattr(acc, "precision", p))
    assert torch.equal(got.ids, want.ids) and got.logprobs == want.logprobs
    assert got.precisions == [0, 1, 1]
