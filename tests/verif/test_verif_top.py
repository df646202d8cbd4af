"""cocotb + Verilator: the FPGA top (fpga.top.DeviceTop) through its link against golden
(verif/tb_top.py, verif/top_scenarios.py): every command, every error path, frame errors, retries,
busy/abort/reset, GEMVs bit-exact with golden.intref, for two parameter sets, through the UART
pins (cocotbext-uart) and the byte streams (random and bursty stalls)."""

import pytest

from fpga.top import DeviceTop
from fpga.top_params import TopParams
from verif.runner import run_cocotb

#: Two parameter sets: R2 x L4 bitmod4 (weights in SPRAM, as on the iCEBreaker: an engine without
#: the weight hold register), and R3 x L8 (block RAM: with it) with two format sets (one with
#: unused format ids, for the engine-error path) and the shift-add LUT path. p2's weights region
#: (1024 beats) makes the busy scenario's longest layer run ~2,000 cycles: with 256 beats it ran
#: 496, and bursty host stalls (seed 880851547) let it finish before the pipelined ABORT arrived.
PARAMS = {
    "p1": dict(rows=2, lanes=4, group_size=32, format_sets=("bitmod4",), max_k=256, max_n=64,
               weight_beats=2048, weight_mem="spram"),
    "p2": dict(rows=3, lanes=8, group_size=64, act_bits=6, format_sets=("bitmod3", "int4"),
               max_k=256, max_n=40, weight_beats=1024, lut={"max_planes": 3}),
}
ALL = ["not_ready", "identity", "errors", "memories", "retries", "frame_errors", "pipelined", "gemvs",
       "lut_gemvs", "busy", "engine_error", "based"]
#: UART pins: bit-level is ~40x slower per byte than the byte streams, so the default suite runs
#: a smaller set on a top with a weights region large enough that a run outlasts several
#: requests (BUSY/ABORT/RESET are exercised on its unwritten contents, see top_scenarios.busy).
UART_QUICK = ["not_ready", "identity", "frame_errors", "pipelined", "gemvs", "busy"]
UART_LONG = {"p1": {"max_n": 512, "weight_beats": 16384}, "p2": {"max_n": 2048, "weight_beats": 32768}}


def _run(key, link, scenarios, extra=None, **cfg):
    tp = TopParams.make(**{**PARAMS[key], **(extra or {})}, link=link, clk_hz=12_000_000,
                        baud=3_000_000)
    res = run_cocotb(DeviceTop(tp), name="top", tag=tp.tag, test_module="verif.tb_top",
                     config={"params": tp.describe(), "scenarios": scenarios, **cfg})
    assert res.tests == 1
    return res


def test_top_bytes_p1():
    _run("p1", "bytes", ALL, idle=0.2, backpressure=0.2, burst=0.01)


def test_top_uart_p1():
    _run("p1", "uart", UART_QUICK, UART_LONG["p1"], pause=200,
         options={"gemvs": {"count": 2}, "busy": {"exact": False}})


@pytest.mark.slow
def test_top_bytes_p2():
    _run("p2", "bytes", ALL, idle=0.3, backpressure=0.3, burst=0.02)


@pytest.mark.slow
# every scenario through the UART pins on p1; p2's scenarios run through the byte streams
# (test_top_bytes_p2): its UART run alone took 8.5 min, over CI's slow-job budget
@pytest.mark.parametrize("key", ["p1"])
def test_top_uart_all(key):
    _run(key, "uart", [s for s in ALL if s != "memories"], UART_LONG[key], pause=200,
         options={"busy": {"exact": False}})
