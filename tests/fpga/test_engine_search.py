"""fpga.engine_search (`bitmix bench fpga`): the ladder search's order and stopping rule, the
candidates it builds (the board's own top at R2 x L4), Yosys-only builds; slow: a quick search on
the iCEBreaker with real synthesis of the whole top, and its cache."""

import json

import pytest

from fpga.engine_search import (
    LADDER,
    Candidate,
    board_candidates,
    candidate_values,
    density,
    ladder_search,
)


def _recorder(limit, calls, stage):
    def check(c):
        calls.append((stage, c.lane_terms))
        return {"ok": c.lane_terms <= limit}
    return check


def test_ladder_search_stops_at_first_failure_and_skips_pnr_when_synthesis_fails():
    cands = board_candidates(False)
    calls = []
    r = ladder_search(cands, _recorder(64, calls, "synth"), _recorder(16, calls, "pnr"))
    assert cands[r["best"]].lane_terms == 16
    # synth then pnr per size, upward; stops right after the first failing place-and-route
    assert calls == [("synth", 4), ("pnr", 4), ("synth", 8), ("pnr", 8), ("synth", 16),
                     ("pnr", 16), ("synth", 32), ("pnr", 32)]
    calls.clear()
    r = ladder_search(cands, _recorder(8, calls, "synth"), _recorder(1 << 20, calls, "pnr"))
    assert cands[r["best"]].lane_terms == 8
    assert calls[-1] == ("synth", 16) and ("pnr", 16) not in calls   # pre-check failed: no P&R
    calls.clear()
    r = ladder_search(cands, _recorder(0, calls, "synth"), _recorder(0, calls, "pnr"))
    assert r["best"] is None and calls == [("synth", 4)]


def test_candidates_double_and_the_lut_variant_has_whole_tables():
    base = board_candidates(False)
    assert [c.lane_terms for c in base] == [4 << i for i in range(len(LADDER))]
    lut = board_candidates(True)
    assert lut and all(c.lanes % 8 == 0 and c.lut for c in lut)
    assert [c.lane_terms for c in board_candidates(False, max_lane_terms=20)] == [4, 8, 16]
    assert density(64, 8000) == 8.0 and density(1, 0) == 0.0


def test_candidate_r2_l4_is_the_board_default_top():
    """R2 x L4 with a one-layer weights region is exactly what `bitmix build --board` builds."""
    from bitmix.cli import build_parser
    from bitmix.cmd_build import resolve

    for board in ("icebreaker", "ulx3s-85f"):
        *_, params = candidate_values(board, Candidate(2, 4, False))
        _, _, _, built = resolve(build_parser().parse_args(["build", "--board", board]))
        assert params.hash == built.hash and params.board == board
    # too wide for the SPRAMs: the weights move to block RAM; the region holds one layer
    *_, p = candidate_values("icebreaker", Candidate(4, 8, False))
    g = p.gemv
    assert p.weight_mem == "bram" and p.weight_beats == -(-g.max_n // 4) * (g.max_k // 8)
    *_, p = candidate_values("ulx3s-85f", Candidate(2, 8, True))
    assert p.gemv.lut.max_planes == 3 and p.weight_beats == 32 * 32 * 3


def test_synth_only_build_stops_after_yosys(tmp_path):
    from fpga.bitstream import build_bitstream, format_report
    from fpga.board_top import EchoCore

    r = build_bitstream("icebreaker", lambda plan: EchoCore(plan.uart), tag="echo",
                        out=tmp_path, progress=False, synth_only=True)
    assert r["status"] == "synthesized" and r["yosys"]["luts"] > 0 and "fmax_mhz" not in r
    assert not (tmp_path / "top.bin").exists() and not (tmp_path / "top.tim").exists()
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "synthesized"
    assert "synthesis only" in format_report(r)
    # place-and-route reuses that netlist (same top.il); a changed design is synthesized anew
    full = build_bitstream("icebreaker", lambda plan: EchoCore(plan.uart), tag="echo",
                           out=tmp_path, progress=False, reuse_synth=True)
    assert full["status"] == "ok" and full["synth_reused"] and "yosys" not in full["seconds"]
    assert (tmp_path / "top.bin").exists() and full["yosys"]["luts"] == r["yosys"]["luts"]
    other = build_bitstream("icebreaker", lambda plan: EchoCore(plan.uart), tag="echo",
                            out=tmp_path, progress=False, reuse_synth=True, sys_hz=30e6)
    assert not other["synth_reused"] and "yosys" in other["seconds"]


@pytest.mark.slow
def test_quick_search_on_the_icebreaker_is_cached(tmp_path, monkeypatch):
    """A real Yosys run of the whole top (R1 x L4, one build: CI's slow budget) fits the UP5K's
    LUTs; the second search is answered from the cache."""
    import fpga.engine_search as es

    monkeypatch.setattr(es, "CACHE", tmp_path / "cache")
    r = es.search_board("icebreaker", lut=False, quick=True, max_lane_terms=4)
    assert r["best"]["label"] == "R1 x L4" and 0 < r["best"]["luts_synth"] < 5280
    assert [t["stage"] for t in r["tried"]] == ["synth"] and not r["tried"][0].get("cached")
    again = es.search_board("icebreaker", lut=False, quick=True, max_lane_terms=4)
    assert all(t.get("cached") for t in again["tried"]) and again["best"]["luts_synth"] == \
        r["best"]["luts_synth"]
