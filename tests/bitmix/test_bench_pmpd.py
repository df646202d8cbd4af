"""`bitmix bench pmpd` on a small setting: every policy is scored against the uniform-high
output (which scores 1 against itself), terms per weight follow the schedule, JSON is written."""

import json

import pytest

from bitmix.bench_pmpd import policies
from bitmix.cli import main


@pytest.mark.slow          # about a minute on a loaded 2-core machine (quantization, 40 decodes)
def test_bench_pmpd_small(tmp_path, capsys):
    assert main(["bench", "pmpd", "--prompts", "2", "--tokens", "4", "--out", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "pmpd.json").read_text()) == res
    rows = {r["policy"]: r for r in res["rows"]}
    assert list(rows) == list(policies(4))
    high = rows["uniform high"]
    assert high["rougeL"] == high["exact"] == 1.0 and high["terms"] == 2.0     # equal texts score 1
    assert rows["uniform low"]["terms"] == 1.0
    for name, (n, _) in policies(4).items():
        assert rows[name]["terms"] == (2 * min(n, 4) + (4 - min(n, 4))) / 4
        assert 0 <= rows[name]["exact"] <= 1 and 0 <= rows[name]["rougeL"] <= 1 and rows[name]["ppl"] > 1
