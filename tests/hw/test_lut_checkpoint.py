"""Layers of a `bitmix quantize --method bcq/shiftadd` checkpoint run through the LUT unit and
through the GEMV engine's LUT path (cmd.path = 1) bit-exactly at every precision (row and block
layouts); the ShiftAddLLM default 'col' layout is refused in one line by both packers."""

import random

import pytest

from bitmix.cli import main
from bitmix.errors import BitmixError
from golden.qmodel import load_quantized
from hw.lut_params import LutParams
from verif.lut_pysim import run_lut_pysim
from verif.lut_stimulus import LutGemv, act_pattern

FAST = ["--calib-samples", "4", "--calib-seqlen", "32", "--no-progress", "--rounds", "2"]


def _quantized_layers(tiny, tmp_path, argv) -> dict:
    """``bitmix quantize`` the tiny model with ``argv`` at group 32; its quantized layers."""
    out = tmp_path / "q"
    assert main(["quantize", "--model", str(tiny), *argv, "--group-size", "32", "--out", str(out),
                 *FAST]) == 0
    return load_quantized(out, load_float=False)[1]


@pytest.mark.parametrize("argv", [["--method", "bcq", "--bits", "3", "--layout", "row"],
                                  ["--method", "shiftadd", "--bits", "2", "--layout", "block"]])
def test_checkpoint_layers_on_the_lut_unit(tiny, tmp_path, argv):
    layers = _quantized_layers(tiny, tmp_path, argv)
    p = LutParams.make(rows=8, max_planes=4, max_k=128, max_n=128)
    rng = random.Random(0)
    gemvs = []
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"):
        bw = layers[name]
        for prec in range(1, bw.bits + 1):
            gemvs.append(LutGemv(bw, act_pattern(p, rng, bw.shape[1]), prec, f"{name} p={prec}"))

    async def script(h, clock):
        await h.run(clock, gemvs, tail=20)

    assert run_lut_pysim(p, script, seed=1, idle=0.1, backpressure=0.1).checked == len(gemvs)


@pytest.mark.parametrize("argv", [["--method", "shiftadd", "--bits", "3", "--layout", "block"],
                                  ["--method", "bcq", "--bits", "2", "--layout", "row"]])
def test_checkpoint_layer_on_the_engine_lut_path(tiny, tmp_path, argv):
    """One layer per checkpoint at every precision, with a bit-serial GEMV between them."""
    from hw.gemv_params import GemvParams
    from verif.gemv_pysim import run_gemv_pysim
    from verif.gemv_stimulus import random_gemv

    layers = _quantized_layers(tiny, tmp_path, argv)
    p = GemvParams.make(rows=8, lanes=8, group_size=32, max_k=128, max_n=128, lut=dict(max_planes=4))
    rng = random.Random(0)
    bw = layers["model.layers.1.self_attn.q_proj"]
    gemvs = [LutGemv(bw, act_pattern(p.lut, rng, bw.shape[1]), prec, f"q_proj p={prec}")
             for prec in range(1, bw.bits + 1)]
    gemvs.insert(1, random_gemv(p, rng, 9, 64, 0, 0, "bit-serial between"))

    async def script(h, clock):
        await h.run(clock, gemvs, tail=20)

    assert run_gemv_pysim(p, script, seed=1, idle=0.1, backpressure=0.1).checked == len(gemvs)


def test_shiftadd_default_col_layout_is_refused(tiny, tmp_path):
    out = tmp_path / "col"
    assert main(["quantize", "--model", str(tiny), "--method", "shiftadd", "--bits", "2",
                 "--out", str(out), *FAST]) == 0
    _, layers, _ = load_quantized(out, load_float=False)
    bw = layers["model.layers.0.self_attn.q_proj"]
    assert bw.layout == "col"
    with pytest.raises(BitmixError, match="^q_proj: BCQ layout 'col': the LUT path needs one scale") as e:
        LutParams.make(rows=4, max_k=128, max_n=128).layout.key_beats(bw, what="q_proj")
    assert "\n" not in str(e.value)
    from hw.gemv_params import GemvParams

    p = GemvParams.make(rows=4, lanes=8, group_size=32, max_k=128, max_n=128, lut=dict(max_planes=4))
    with pytest.raises(BitmixError, match="^q_proj: BCQ layout 'col': the LUT path needs one scale"):
        p.lut_layout.weight_beats(bw, what="q_proj")
