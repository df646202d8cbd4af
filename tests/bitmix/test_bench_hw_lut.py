"""`bitmix bench hw` LUT-path rows: the table, and a real small run (slow) where the engine's
LUT path (cmd.path = 1) on the C++ harness measures exactly the cycle model, bit-exact, with
cycles and bytes scaling as p/q, beside the same engine's bit-serial rows."""

import json

import pytest

from bitmix.cli import main


def test_lut_rows_in_the_table():
    from bitmix.bench_hw import format_table

    res = {"parameters": {"rows": 2, "lanes": 4, "group_size": 32, "format_sets": ["bitmod4"]},
           "utilization": [], "simulation": {"cycles_per_second": 1e6, "cycles": 1, "seconds": 1e-6,
                                             "run": "x"},
           "bitmod_decode_llama2_7b": [],
           "lut": {"parameters": {"max_planes": 4, "table_inputs": 4}, "rows": [
               {"n": 1024, "k": 1024, "planes": 3, "precision": 3, "measured_cycles": 49159,
                "model_cycles": 49159, "ideal_cycles": 49152.0, "utilization": 49152 / 49159,
                "ratio_to_full": 1.0, "ideal_ratio": 1.0, "weight_bytes": 417792, "bytes_ratio": 1.0,
                "bit_exact": True}]},
           "synthesis": [{"target": "ecp5-85f", "design": "array: lut", "luts": 16000, "ffs": 900,
                          "weight_bit_ops_per_cycle": 64, "bit_ops_per_klut": 4.0,
                          "density_vs_bit_serial": 0.25}]}
    t = format_table(res)
    assert "0.9999" in t and "417,792" in t and "array: lut" in t and "0.25" in t
    assert "4-input tables" in t


@pytest.mark.slow
def test_bench_hw_lut_small_run(tmp_path, capsys):
    assert main(["bench", "hw", "--rows", "2", "--lanes", "8", "--group-size", "32", "--sizes", "128",
                 "--lut-planes", "3", "--out", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["parameters"]["lut"]["max_planes"] == 4      # one engine measures both paths
    assert all(r["bit_exact"] for r in res["utilization"])
    rows = res["lut"]["rows"]
    assert [r["precision"] for r in rows] == [3, 2, 1]
    for r in rows:
        assert r["bit_exact"] and r["measured_cycles"] == r["model_cycles"]
        assert abs(r["ratio_to_full"] / r["ideal_ratio"] - 1) < 0.02
        assert abs(r["bytes_ratio"] / r["ideal_ratio"] - 1) < 1e-9
