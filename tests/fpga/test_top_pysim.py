"""Amaranth-simulator tests of the FPGA top in byte-stream mode, with the scenarios of
verif/top_scenarios.py (the cocotb + Verilator regression, both link modes, is
tests/verif/test_verif_top.py; the LUT-path GEMVs through the top run here by default)."""

import random

import pytest

from fpga.top import DeviceTop
from fpga.top_params import TopParams
from verif.pysim import run_harness
from verif.top_harness import BytesHost
from verif.top_scenarios import SCENARIOS


def _run(tp, names, seed=1, **stalls):
    dut = DeviceTop(tp)
    rng = random.Random(seed)
    out = {}

    def make(io):
        return BytesHost(io, None, rng, **stalls)

    async def script(host, clock):
        host.clock = clock
        for name in names:
            out[name] = await SCENARIOS[name](host, tp, rng)
        out["cycles"] = host.cycle

    run_harness(dut, make, script)
    return out




P2 = dict(rows=3, lanes=8, group_size=64, act_bits=6, format_sets=("bitmod3", "int4"), max_k=256,
          max_n=40, weight_beats=256, lut={"max_planes": 3})


@pytest.mark.slow
def test_top_pysim_commands_and_errors():
    """Every NACK path, retries, frame errors, pipelined writes; random stalls on both byte
    streams (slow: the default suite runs these scenarios under Verilator, test_verif_top)."""
    out = _run(TopParams.make(link="bytes", weight_beats=64),
               ["not_ready", "identity", "errors", "retries", "frame_errors", "pipelined"],
               idle=0.2, backpressure=0.2, burst=0.01)
    assert out["errors"]["nacks"] >= 25 and out["frame_errors"]["bad_frames"] == 6


def test_top_pysim_gemv_lut_and_engine_error():
    """GEMVs at every precision of both format sets and on the LUT path (weights at random
    bases), bit-exact; a bad format id is an engine error that RESET clears; layers resident at
    their own weight bases run without their weights re-sent."""
    out = _run(TopParams.make(link="bytes", **P2), ["gemvs", "lut_gemvs", "engine_error", "based"],
               seed=2, idle=0.1, backpressure=0.1)
    assert out["gemvs"]["gemvs"] == 4 and out["engine_error"] == {"errors": 1}
    assert out["lut_gemvs"]["lut_gemvs"] == 5
    assert out["based"]["layers"] >= 2
