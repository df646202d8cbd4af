"""`bitmix elaborate --design gemv` (lint-clean Verilog + manifest) and `bitmix bench hw`."""

import json

import pytest

from bitmix.cli import main


def test_elaborate_gemv_manifest(tmp_path, capsys):
    out = tmp_path / "gemv"
    rc = main(["elaborate", "--design", "gemv", "--rows", "3", "--lanes", "4", "--group-size", "32",
               "--format-sets", "bitmod3,bitmod4", "--max-k", "256", "--max-n", "100",
               "--out", str(out)])
    assert rc == 0
    assert "lint: passed" in capsys.readouterr().out
    man = json.loads((out / "gemv.json").read_text())
    assert man["parameters"]["rows"] == 3 and man["parameters"]["format_sets"] == ["bitmod3", "bitmod4"]
    from golden.formats import get_format_set
    assert [s["hash"] for s in man["format_sets"]] == [get_format_set(n).hash for n in ("bitmod3", "bitmod4")]
    ports = {p["name"]: p for p in man["ports"]}
    # the weight port is exactly the golden layout: 3 rows x 4 lanes x 4-bit codes + 3 x (2 + 8)
    assert ports["weights__payload"]["width"] == 3 * 4 * 4 + 3 * (2 + 8)
    assert ports["weights__payload"]["fields"]["u"]["offset"] == \
        [f for f in man["packer"]["weights"] if f["field"] == "u"][0]["offset"]
    assert {"cmd__payload", "acts__payload", "results__payload", "status", "precision",
            "abort_req"} <= set(ports)
    assert man["cycle_model"]["latency"] == man["derived"]["latency"]
    v = (out / "gemv.v").read_text()
    assert "module gemv(" in v or "module gemv (" in v


@pytest.mark.parametrize("argv,msg", [
    (["--group-size", "24"], "group_size = 24 must be a power of two"),
    (["--format-sets", "bitmod4,nope"], "unknown format set 'nope'"),
    (["--rows", "0"], "rows = 0 is out of range"),
    (["--format-set", "bitmod4"], "--format-set is not an option of design 'gemv'"),
])
def test_elaborate_gemv_bad_input(argv, msg, capsys, tmp_path):
    assert main(["elaborate", "--design", "gemv", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bitmix: error: ") and msg in err


def test_bench_hw_table_from_result():
    from bitmix.bench_hw import format_table

    res = {"parameters": {"rows": 2, "lanes": 4, "group_size": 32, "format_sets": ["bitmod4"]},
           "utilization": [{"n": 64, "k": 64, "precision": 0, "measured_cycles": 300, "model_cycles": 300,
                            "ideal_cycles": 256.0, "utilization": 256 / 300, "ratio_to_full": 1.0,
                            "ideal_ratio": 1.0, "bit_exact": True}],
           "simulation": {"cycles_per_second": 1e6, "cycles": 300, "seconds": 0.0003, "run": "64x64 p0"},
           "synthesis": [], "bitmod_decode_llama2_7b": [{"name": "BitMoD", "cycles": 79493200,
                                                         "vs_fp16": 5.2}]}
    t = format_table(res)
    assert "0.8533" in t and "79,493,200" in t and "1,000,000 cycles/s" in t


@pytest.mark.slow
def test_bench_hw_small_run(tmp_path, capsys):
    """A real (small) run: utilization from the C++ harness equals the exact model."""
    assert main(["bench", "hw", "--rows", "2", "--lanes", "4", "--group-size", "32", "--sizes", "128",
                 "--out", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for r in res["utilization"]:
        assert r["bit_exact"] and r["measured_cycles"] == r["model_cycles"]
    assert res["bitmod_decode_llama2_7b"][4]["cycles"] == 79493200
