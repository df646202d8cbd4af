"""`bitmix train-scheduler` and `bitmix bench pmpd` on a small setting: the scheduler file is
reproducible, the four policies are scored with intervals, terms and cycles follow each
policy's schedule, the static n comes from the sweep, and a mismatched scheduler is refused."""

import json

import pytest
import torch
from safetensors.torch import load_file

from bitmix.cli import main
from golden.pmpd_learned import switch_points


@pytest.mark.slow          # about a minute on a loaded 2-core machine (quantization, batched decodes)
def test_train_scheduler_and_bench_pmpd_small(tmp_path, capsys):
    sch = tmp_path / "s.safetensors"
    common = ["--tokens", "3", "--prompt-len", "8"]
    assert main(["train-scheduler", *common, "--prompts", "10", "--epochs", "2", "--out", str(sch)]) == 0
    first = load_file(sch)
    summary = json.loads(sch.with_suffix(".json").read_text())
    assert summary["switch_points"] == [0, 1, 2, 3] and sum(summary["class_counts"]) == 9
    assert main(["train-scheduler", *common, "--prompts", "10", "--epochs", "2", "--out", str(sch)]) == 0
    again = load_file(sch)               # seeded: the same weights (the header's key order varies)
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    capsys.readouterr()
    png = tmp_path / "p.png"
    assert main(["bench", "pmpd", *common, "--prompts", "4", "--val-prompts", "3", "--scheduler", str(sch),
                 "--out", str(tmp_path), "--plot", str(png), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert json.loads((tmp_path / "pmpd.json").read_text()) == res and png.stat().st_size > 1000
    n = res["static_sweep"]["chosen"]
    assert n in switch_points(3) and set(res["static_sweep"]["candidates"]) == {"0", "1", "2", "3"}
    rows = {r["policy"]: r for r in res["rows"]}
    assert list(rows) == ["uniform high", "uniform low", f"static n={n}", "learned"]
    cyc = {int(p): c for p, c in res["cycles_per_token_by_precision"].items()}
    assert cyc[0] > cyc[1] > 0
    terms = lambda k: (2 * max(1, k) + (3 - max(1, k))) / 3      # noqa: E731 - prefill high
    assert rows["uniform high"]["terms"] == 2.0 and rows["uniform high"]["cycles"] == cyc[0]
    assert rows["uniform low"]["terms"] == 1.0 and rows["uniform low"]["cycles"] == cyc[1]
    assert rows[f"static n={n}"]["terms"] == pytest.approx(terms(n))
    choices = {int(k): c for k, c in res["learned_choices"].items()}
    assert sum(choices.values()) == 4
    assert rows["learned"]["terms"] == pytest.approx(sum(terms(k) * c for k, c in choices.items()) / 4)
    for r in rows.values():
        assert 0 <= r["rougeL"] <= 1 and 0 <= r["exact"] <= 1 and r["ppl"] > 1
        assert r["rougeL_ci"][0] <= r["rougeL"] <= r["rougeL_ci"][1]
    assert set(res["learned_minus_static"]) == {"rougeL", "exact", "terms", "cycles"}
    # a scheduler trained for T = 3 refuses T = 6: one line, exit status 2
    assert main(["bench", "pmpd", "--tokens", "6", "--prompt-len", "8", "--prompts", "2",
                 "--val-prompts", "2", "--scheduler", str(sch), "--out", str(tmp_path)]) == 2
    assert f"{sch}: trained for tokens = 3, this decode uses 6" in capsys.readouterr().err
