"""`bitmix bench e2e` on the virtual board: per token and policy, cycles follow the precision, the
model streams once per token, the wall time split has no negative part, and the engine's useful lane-term
fraction over the decode is the ideal cycles over the measured ones (>= 0.9)."""

import json

import pytest

from bitmix.cli import main


@pytest.mark.slow          # ~1.5 min: 3 policies x (a one-byte prefill + 1 token), the model streamed each
def test_bench_e2e_small(tmp_path, capsys):
    assert main(["bench", "e2e", "--tokens", "2", "--prompt", "T", "--out", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "e2e.json").read_text()) == res
    assert not res["resident"] and res["model_bytes"] > res["weights_region_bytes"]
    pol = res["policies"]
    assert list(pol) == ["uniform high", "uniform low", "static n=1"]
    hi, lo = pol["uniform high"]["tokens"][0], pol["uniform low"]["tokens"][0]
    assert hi["precision"] == 0 and lo["precision"] == 1 and hi["cycles"] > 1.8 * lo["cycles"]
    assert pol["static n=1"]["tokens"][0]["cycles"] == lo["cycles"]      # the same work at 1 term
    for p in pol.values():
        for t in p["tokens"]:
            assert t["link_bytes"] > res["model_bytes"]                  # every tile streamed
            # the parts are measured inside the token's wall time: none is negative (host is the rest)
            assert min(t["host_s"], t["link_s"], t["simulation_s"]) >= 0 and t["simulation_s"] > 0
            assert 0.9 <= t["ideal_cycles"] / t["cycles"] <= 1
    dec = [t for p in pol.values() for t in p["tokens"]]
    ideal, cycles = sum(t["ideal_cycles"] for t in dec), sum(t["cycles"] for t in dec)
    assert res["utilization"] == pytest.approx(ideal / cycles)
