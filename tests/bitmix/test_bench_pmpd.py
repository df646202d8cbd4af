"""`bitmix train-scheduler` then `bitmix bench pmpd` on a small setting: the file holds the static
n from the sweep and the classifier; the four policies' figures follow their switch points (terms,
bits and cycles between uniform low's and uniform high's, uniform high's the most), JSON, table
and plot are written."""

import json

import pytest

from bitmix.cli import main


@pytest.mark.slow          # about a minute on a loaded 2-core machine (2 quantizations, 40 short decodes)
def test_train_scheduler_then_bench_pmpd_small(tmp_path, capsys):
    sched = tmp_path / "s.pt"
    assert main(["train-scheduler", "--train", "4", "--val", "2", "--tokens", "6", "--epochs", "2",
                 "--out", str(sched), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["switch_points"] == [0, 2, 4, 6] and meta["static_n"] in meta["switch_points"]
    assert sum(meta["class_counts"]) == 4 and len(meta["val_rouge_by_class"]) == 4
    png = tmp_path / "p.png"
    assert main(["bench", "pmpd", "--scheduler", str(sched), "--prompts", "3", "--out", str(tmp_path),
                 "--plot", str(png), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "pmpd.json").read_text()) == res and png.stat().st_size > 1000
    rows = {r["policy"]: r for r in res["rows"]}
    assert list(rows) == ["uniform high", "uniform low", "static", "learned", "switch after 2",
                          "switch after 4"]
    assert rows["switch after 2"]["classes"] == [0, 3, 0, 0]
    hi, lo = rows["uniform high"], rows["uniform low"]
    assert hi["classes"] == [0, 0, 0, 3] and lo["classes"] == [3, 0, 0, 0]
    assert hi["terms"] == 2.0 and lo["terms"] == 1.0 and hi["bits"] == 4.0 > lo["bits"]
    assert hi["cycles"] == res["cycles_per_token"]["0"] > lo["cycles"] == res["cycles_per_token"]["1"]
    for r in rows.values():
        assert lo["cycles"] <= r["cycles"] <= hi["cycles"] and sum(r["classes"]) == 3
        assert 0 <= r["exact"] <= 1 and 0 <= r["rougeL"] <= 1 and r["ppl"] > 1
        assert r["rougeL_ci"][0] <= r["rougeL"] <= r["rougeL_ci"][1]
    assert rows["static"]["classes"][meta["switch_points"].index(meta["static_n"])] == 3
    assert main(["bench", "pmpd", "--scheduler", str(tmp_path / "none.pt")]) == 2
    assert "bitmix train-scheduler" in capsys.readouterr().err
