"""golden.cycle_model: BitMoD's simulator reproduced exactly, and the engine comparison model.

The published figures below are the release's own (``bitmod_sim/plot/speedup_plot.ipynb`` of
yc2367/BitMoD-HPCA-25 @58d7bdb, the Fig. 7 data; docs/architecture.md §4 quotes the Llama-2-7B decode ones);
the per-layer figures are worked by hand from the formula in research/bitmod.md §2.
"""

import math
import re
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from bitmix.errors import BitmixError
from golden.cycle_model import (
    LLAMA2_7B,
    LLAMA2_13B,
    LLAMA3_8B,
    EngineSpec,
    SimAccelerator,
    bitmod_sim_cycles,
    bitmod_sim_designs,
    bitmod_sim_layer,
    bitmod_sim_layers,
    bitmod_table,
    engine_cycles,
    engine_layer,
    generative_cycles,
    workload,
)

DESIGNS = ("FP16", "ANT", "OliVe", "BitMoD lossless", "BitMoD")
# speedup_plot.ipynb: cycle_{fp16,ant,olive,bitmod_con,bitmod_agg}_{d,g}, models in its order
# (OPT-1.3B, Phi-2, Yi-6B, Llama-2-7B, Llama-2-13B, Llama-3-8B); the LLaMA columns.
PUBLISHED = {
    ("decode", LLAMA2_7B): (413518608, 129497936, 97236816, 156919888, 79493200),
    ("decode", LLAMA2_13B): (804330080, 251907680, 189155680, 305157360, 154552560),
    ("decode", LLAMA3_8B): (469624976, 132370576, 105031744, 178109840, 90099088),
    ("prefill", LLAMA2_7B): (3156574208, 1949564928, 1768062976, 1649680384, 1202921472),
    ("prefill", LLAMA2_13B): (6676111360, 4076584960, 3648512000, 3537397760, 2601461760),
    ("prefill", LLAMA3_8B): (3969089536, 2266234880, 2008645632, 1901133824, 1273233408),
}


def test_spec_anchors_llama2_7b_decode():
    """docs/architecture.md §4 / issue 7 item 8(b): the four figures, exactly."""
    ops = workload(LLAMA2_7B, "decode")
    d = bitmod_sim_designs("decode", LLAMA2_7B)
    assert bitmod_sim_cycles(d["BitMoD"], ops) == 79_493_200
    assert bitmod_sim_cycles(d["ANT"], ops) == 129_497_936
    assert bitmod_sim_cycles(d["OliVe"], ops) == 97_236_816
    assert bitmod_sim_cycles(d["FP16"], ops) == 413_518_608


@pytest.mark.parametrize(("phase", "model"), list(PUBLISHED), ids=lambda v: getattr(v, "name", v))
def test_every_published_llama_figure(phase, model):
    ops = workload(model, phase)
    designs = bitmod_sim_designs(phase, model)
    assert tuple(bitmod_sim_cycles(designs[n], ops) for n in DESIGNS) == PUBLISHED[phase, model]


def test_generative_is_prefill_plus_20_decode_steps():
    """Fig. 7's generative figure; the paper's 4.18x mean over six models, Llama-2-7B alone ~4.09x."""
    assert generative_cycles("BitMoD") == 1202921472 + 20 * 79493200
    speedup = generative_cycles("FP16") / generative_cycles("BitMoD")
    assert speedup == pytest.approx((3156574208 + 20 * 413518608) / (1202921472 + 20 * 79493200))


def test_bitmod_decode_by_hand():
    """Every Linear layer of BitMoD decode is DRAM-bound; attention follows the simulator's shapes.

    Bytes per Linear [N, K] at 3.0625 bits: ceil(K·3.0625/8)·N weights + 2K inputs + 2N outputs;
    cycles = bytes·8/256. Decode QK: weight q [1, 4096] 8192 B, input 4096·2·32 heads = 262144 B,
    output 2·32 B; compute 1024·1·2 tiles · 2. Decode SV: weight [32, 256] 16384 B, input 8192 B,
    output 2·32 B; compute 64·1·1 tiles · 2.
    """
    def linear(n, k):
        return (math.ceil(k * 49 / 128) * n + 2 * k + 2 * n) * 8 // 256

    q = linear(4096, 4096)
    assert q == 201_216
    up, down, head = linear(11008, 4096), linear(4096, 11008), linear(32000, 4096)
    qk = max(1024 * 2 * 2, (8192 + 262144 + 64) // 32)
    sv = max(64 * 2, (16384 + 8192 + 64) // 32)
    assert (qk, sv) == (8450, 770)
    by_hand = 32 * (4 * q + 2 * up + down + qk + sv) + head
    assert by_hand == 79_493_200
    layers = bitmod_sim_layers(bitmod_sim_designs()["BitMoD"], workload())
    assert all(lc.memory_bound for lc in layers)
    assert layers[0].name == "model.layers.0.self_attn.q_proj" and layers[0].cycles == q
    assert layers[0].compute == 1024 * 64 * 2


def test_fp16_prefill_q_proj_by_hand_is_compute_bound_with_weight_refetch():
    """32×24 array, 256 tokens: tiles 4096·128·ceil(256/24); W = 32 MiB and I = 2 MiB both exceed
    512 KiB, so the cheaper refetch is weights 4 times (4·32 + 2 < 64·2 + 32 MiB)."""
    acc = bitmod_sim_designs("prefill")["FP16"]
    lc = bitmod_sim_layer(acc, workload(phase="prefill")[0])
    assert lc.compute == 4096 * 128 * 11
    assert lc.bytes == 4 * 2**25 + 2**21 + 2**21
    assert lc.memory == lc.bytes // 32
    assert not lc.memory_bound and lc.cycles == 5_767_168


def test_refetch_choice_and_its_limit():
    op = workload(phase="prefill")[0]
    acc = bitmod_sim_designs("prefill")["FP16"]
    big = replace(acc, sram_bytes=2**30)          # everything fits: one fetch of each
    assert bitmod_sim_layer(big, op).bytes == 2**25 + 2 * 2**21
    # Both refetch options are at least the single-fetch bytes, and the model picks the cheaper one.
    w, i, s = 2**25, 2**21, acc.sram_bytes
    assert bitmod_sim_layer(acc, op).bytes - 2**21 == min(math.ceil(i / s) * w + i, math.ceil(w / s) * i + w)


@pytest.mark.parametrize("name", DESIGNS)
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_more_dram_bandwidth_never_increases_cycles(phase, name):
    ops = workload(LLAMA2_7B, phase)
    acc = bitmod_sim_designs(phase)[name]
    totals = [bitmod_sim_cycles(replace(acc, dram_bits_per_cycle=b), ops)
              for b in (32, 100, 256, 257, 1000, 4096, 2**40)]
    assert totals == sorted(totals, reverse=True)
    compute = sum(lc.compute for lc in bitmod_sim_layers(acc, ops))
    assert totals[-1] == compute                      # unlimited DRAM: pure compute
    assert totals[0] > compute                        # starved DRAM: memory-bound


def test_decode_switches_to_compute_bound_at_the_arrays_weight_rate():
    """BitMoD decode eats 64 rows · 4 weights / 2 cycles = 128 weights a cycle = 392 bits at
    3.0625 bits; q_proj (plus its 16 KiB of activations) switches just above 392 bits a cycle."""
    acc = bitmod_sim_designs()["BitMoD"]
    q = workload()[0]
    assert bitmod_sim_layer(replace(acc, dram_bits_per_cycle=392), q).memory_bound
    assert not bitmod_sim_layer(replace(acc, dram_bits_per_cycle=400), q).memory_bound


@pytest.mark.parametrize(("bits", "serial", "latency"),
                         [(Fraction(49, 16), True, 2), (Fraction(65, 16), True, 2),
                          (Fraction(97, 16), True, 3), (Fraction(2), True, 1), (Fraction(79, 10), True, 4),
                          (Fraction(16), False, 1), (Fraction(5), False, 1)])
def test_pe_latency_is_two_weight_bits_a_cycle(bits, serial, latency):
    assert SimAccelerator("x", 64, 16, 4, bits, serial).latency == latency


def test_workload_shapes():
    ops = workload(LLAMA3_8B, "decode")
    assert len(ops) == 32 * 7 + 1 + 2 * 32
    k_proj = ops[1]
    assert k_proj.weight == (1024, 4096)                          # GQA: 8 KV heads of 128
    assert ops[32 * 7].name == "lm_head" and ops[32 * 7].weight == (128256, 4096)
    assert {op.kind for op in ops} == {"linear", "attn_qk", "attn_v"}


@pytest.mark.parametrize("bad", [dict(phase="train"), dict(context=0)])
def test_bad_workload_is_a_bitmix_error(bad):
    with pytest.raises(BitmixError, match="cycle model"):
        workload(LLAMA2_7B, **{"phase": "decode", **bad})


def test_bad_accelerator_is_a_bitmix_error():
    with pytest.raises(BitmixError, match="'x'.*rows"):
        SimAccelerator("x", 0, 16, 4, Fraction(3), True)
    with pytest.raises(BitmixError, match="engine 'e'.*lanes"):
        EngineSpec("e", 4, 0, 2, Fraction(3))
    with pytest.raises(BitmixError, match="precision must be 1..2"):
        EngineSpec.for_format_set("bitmod3", rows=4, lanes=4, precision=3)


# ---- the engine comparison model

def test_engine_bitmod3_stores_bitmods_decode_bits():
    e = EngineSpec.for_format_set("bitmod3", rows=64, lanes=16)
    assert (e.terms, e.weight_bits) == (2, bitmod_sim_designs()["BitMoD"].weight_bits)


def test_engine_linear_is_ideal_when_compute_bound():
    """Unlimited link, activation load hidden: N·K·T/(R·L) cycles per Linear layer (divisible)."""
    e = EngineSpec.for_format_set("bitmod4", rows=8, lanes=16, link_bits_per_cycle=2**40,
                                  overlap_activation_load=True)
    total = engine_cycles(e, kinds=("linear",))
    weights = sum(n * k for _, n, k in LLAMA2_7B.linears())
    assert total == weights * 2 // (8 * 16)
    half = engine_cycles(replace(e, terms=1), kinds=("linear",))
    assert 2 * half == total                                      # one term a weight: half the cycles


def test_engine_activation_load_costs_k_over_l_per_gemv():
    e = EngineSpec.for_format_set("bitmod3", rows=4, lanes=16, link_bits_per_cycle=2**40)
    op = workload()[0]                                            # q_proj, K = 4096
    hidden = engine_layer(replace(e, overlap_activation_load=True), op).compute
    assert engine_layer(e, op).compute - hidden == 4096 // 16


def test_engine_decode_at_256_bits_is_link_bound_on_weights():
    """R·L/T = 512 weights a cycle ≫ 256/3.0625: every Linear layer waits on the link."""
    e = EngineSpec.for_format_set("bitmod3", rows=64, lanes=16)
    layers = [engine_layer(e, op) for op in workload() if op.kind == "linear"]
    assert all(lc.memory_bound for lc in layers)
    q = layers[0]
    assert q.memory == math.ceil((4096 * 4096 * Fraction(49, 16) + 2 * 4096 * 16) / 256)


def test_engine_attention_streams_the_real_kv_cache():
    e = EngineSpec.for_format_set("bitmod3", rows=64, lanes=16)
    qk = next(op for op in workload() if op.kind == "attn_qk")
    lc = engine_layer(e, qk)
    cache_bits = 256 * 4096 * 16
    assert lc.memory == (cache_bits + 32 * (128 + 256) * 16) // 256
    assert lc.compute == 32 * (math.ceil(256 / 64) * (128 // 16) * 8 + 128 // 16)


def test_default_engine_differs_from_bitmod_only_in_attention():
    """Both are DRAM-bound on the same Linear bytes; BitMoD's attention is 32 · (8450 + 770) cycles
    (hand-computed above), the engine's streams 2 · 2 MiB of KV cache per block."""
    e = EngineSpec.for_format_set("bitmod3", rows=64, lanes=16)
    linear = tuple(op for op in workload() if op.kind == "linear")
    assert engine_cycles(e, kinds=("linear",)) == bitmod_sim_cycles(bitmod_sim_designs()["BitMoD"], linear)
    assert engine_cycles(e, kinds=("linear",)) == 79_493_200 - 32 * (8450 + 770) == 79_198_160
    attention = engine_cycles(e, kinds=("attn_qk", "attn_v"))
    assert attention == 32 * 2 * (2**21 * 8 // 256 + 32 * 384 * 16 // 256)


@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_engine_more_link_bandwidth_never_increases_cycles(phase):
    e = EngineSpec.for_format_set("bitmod4", rows=16, lanes=8)
    totals = [engine_cycles(replace(e, link_bits_per_cycle=b), phase=phase, context=64)
              for b in (16, 64, 256, 1000, 2**40)]
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]


# ---- the table for `bitmix bench hw` and the README

def test_bitmod_table_rows():
    rows = bitmod_table()
    by_name = {r.name: r for r in rows}
    assert [r.name for r in rows][:5] == list(DESIGNS)
    assert by_name["FP16"].vs_fp16 == 1.0
    assert by_name["BitMoD"].cycles == 79_493_200
    assert by_name["BitMoD"].vs_fp16 == pytest.approx(413518608 / 79493200)
    engine_row = rows[5]
    assert engine_row.name.startswith("bitmix bitmod3") and engine_row.cycles == engine_cycles(
        EngineSpec.for_format_set("bitmod3", rows=64, lanes=16))
    assert len(bitmod_table(engine=None)) == 5
    gen = {r.name: r.cycles for r in bitmod_table("generative", engine=None)}
    assert gen["OliVe"] == 1768062976 + 20 * 97236816


def test_readme_snippet_prints_the_four_anchors():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## BitMoD's simulator, reproduced"):]
    cmd = re.search(r"```console\n(python -c .*?)\n```", section, re.S).group(1)
    code = re.fullmatch(r'python -c "(.*)"', cmd.replace("\\\n", ""), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for figure in ("79,493,200", "129,497,936", "97,236,816", "413,518,608"):
        assert figure in out and figure in section


def test_unknown_design_is_a_bitmix_error():
    with pytest.raises(BitmixError, match="unknown design 'TPU'"):
        generative_cycles("TPU")
