"""`bitmix bench link` (bitmix/bench_link.py) through the virtual board: payload efficiency at
3 Mbaud in bit-level mode (pipelined ≥ 0.9, above stop-and-wait), the STATUS round trip, a
fault-injecting transport with zero wrong results, fuzz counts equal to golden's, JSON + table."""

import json

import pytest

from bitmix.cli import main


def test_bench_link_small(tmp_path, capsys):
    assert main(["bench", "link", "--fuzz", "30", "--fuzz-uart", "10", "--gemvs", "1",
                 "--flip", "5e-4", "--drop", "5e-4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    r = json.loads((tmp_path / "link.json").read_text())
    assert r["params"]["baud"] == 3_000_000 and r["params"]["divisor"] == 4
    sw, pipe = r["window_1"], r["window_4"]
    assert pipe["efficiency"] >= 0.9 and pipe["efficiency"] > sw["efficiency"]
    assert pipe["efficiency"] <= 507 / 523              # framing: 507 data bytes in >= 523 on the line
    for w in (sw, pipe):
        assert w["payload_bytes"] == r["params"]["weights_region_bytes"] and w["verified"]
        assert w["retries"] == 0
    rt = r["round_trip"]
    assert rt["count"] == 50 and rt["cycles_min"] >= rt["line_cycles"] > 0
    f = r["faults"]
    assert f["wrong_results"] == 0 and f["timeouts"] == 0
    assert sum(f["bytes_dropped"].values()) + sum(f["bytes_flipped"].values()) > 0
    assert f["retries"] > 0 and f["recovered_requests"] > 0 and f["device_frames_dropped"] > 0
    assert [z["link"] for z in r["fuzz"]] == ["bytes", "uart"]
    assert all(z["frames_bad_match"] for z in r["fuzz"]) and r["fuzz_sequences_total"] == 40
    assert f"**{pipe['efficiency']:.3f}**" in out and "0 wrong" in out


@pytest.mark.slow
def test_bench_link_defaults(tmp_path):
    assert main(["bench", "link", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "link.json").read_text())
    assert r["window_4"]["efficiency"] >= 0.9 and r["faults"]["wrong_results"] == 0
    assert r["fuzz_sequences_total"] >= 2000 and all(z["frames_bad_match"] for z in r["fuzz"])
