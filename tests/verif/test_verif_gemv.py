"""cocotb + Verilator: the elaborated GEMV engine is bit-exact with golden.intref (path 0) and,
on the two configurations with a shift-add LUT path, with golden.bcq's integer path (path 1).

Three generator configurations (one with R = 1, two whose R does not divide the N used; one
without the weight hold register, as the iCEBreaker's) at
K up to 1024 and N up to 256 (both at once in the slow job); the five cocotb tests of
verif/tb_gemv.py run in one simulator process per configuration (reset readies, bit-exact over
every set and precision with stalls, 100 % functional coverage, the exact cycle model, error
cases). The LUT-path configurations (one 8-input chunk per word, 8-input tables, q <= 4;
two chunks per word, 4-input tables, q <= 3) add the five ``lut_*`` tests: row and block
layouts, q = 2..4 at every precision, mixed path-0/path-1 sequences, 100 % coverage, the cycle
model, errors, and a layer of a `bitmix quantize` checkpoint. Larger runs: `pytest -m slow`.
"""

import pytest
import torch

from bitmix.cli import main
from golden.qmodel import load_quantized
from hw.gemv_params import GemvParams
from verif.gemv import run_gemv

CONFIGS = {
    "R4-L8-bitmod4+ant3": dict(rows=4, lanes=8, group_size=64, scale_bits=8,
                               format_sets=("bitmod4", "ant3"), max_k=1024, max_n=256,
                               lut=dict(max_planes=4, apot_terms=3, shift_bits=5)),
    "R1-L16-bitmod3": dict(rows=1, lanes=16, group_size=128, scale_bits=8, format_sets="bitmod3",
                           max_k=1024, max_n=256, lut=dict(max_planes=3, apot_terms=3, shift_bits=5,
                                                       table_inputs=4)),
    "R3-L4-A6-ant4+er3": dict(rows=3, lanes=4, group_size=32, act_bits=6, scale_bits=5,
                              format_sets=("ant4", "er3"), max_k=256, max_n=100, registered_control=False),
}


#: the checkpoint layer each LUT configuration runs: `bitmix quantize` arguments
LAYERS = {"R4-L8-bitmod4+ant3": ["--method", "shiftadd", "--bits", "3", "--layout", "block"],
          "R1-L16-bitmod3": ["--method", "bcq", "--bits", "2", "--layout", "row"]}


def _layer_file(tiny, tmp_path, argv) -> str:
    out = tmp_path / "q"
    assert main(["quantize", "--model", str(tiny), *argv, "--group-size", "32", "--out", str(out),
                 "--calib-samples", "4", "--calib-seqlen", "32", "--no-progress", "--rounds", "2"]) == 0
    _, layers, _ = load_quantized(out, load_float=False)
    name = "model.layers.1.self_attn.q_proj"
    bw = layers[name]
    path = tmp_path / "layer.pt"
    torch.save({"planes": bw.planes, "exps": bw.exps, "signs": bw.signs, "layout": bw.layout,
                "group_size": bw.group_size, "name": name}, path)
    return str(path)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gemv_cocotb(name, tiny, tmp_path):
    # K = max K and N = max N in separate GEMVs (a 256 x 1024 GEMV on R = 1 alone is 33k cycles
    # under cocotb); GEMVs at both maxima at once run in the slow job
    p = GemvParams.make(**CONFIGS[name])
    layer = _layer_file(tiny, tmp_path, LAYERS[name]) if name in LAYERS else None
    res = run_gemv(p, lut_layer=layer)
    assert res.tests == (10 if p.lut else 5)


@pytest.mark.slow
# R1-L16 (512 single-row blocks per GEMV) is left to the default suite's K = 1024 runs: its
# full-size GEMVs are the slowest under cocotb and CI's 90 minutes hold all jobs
@pytest.mark.parametrize("name", [n for n in CONFIGS if not n.startswith("R1-")])
@pytest.mark.parametrize("seed", [1])
def test_gemv_cocotb_long(name, seed):
    """More GEMVs per precision, larger engines' maxima, a fixed seed (one seed per
    configuration keeps CI's slow job inside its time budget: ~7 min per configuration)."""
    kw = dict(CONFIGS[name], max_k=4096, max_n=1024)
    p = GemvParams.make(**kw)
    res = run_gemv(p, seed=seed, per_precision=2, max_k=2048, max_n=512, full_size=True,
                   lut_max_k=512, lut_max_n=64)
    assert res.tests == (9 if p.lut else 5)
