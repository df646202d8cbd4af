"""The largest GEMV engine a board holds: the search ``bitmix bench fpga`` runs.

    from fpga.engine_search import search_board
    r = search_board("ulx3s-85f", lut=False)
    r["best"]            # rows, lanes, lane-terms per cycle, LUTs, Fmax of the largest passing top

For one board and one engine variant (with or without the shift-add LUT path), the candidates
are the whole device top (:class:`fpga.top.DeviceTop`, as ``bitmix build --board`` makes it:
:func:`bitmix.cmd_build.board_values`) at engine sizes :data:`LADDER` — R x L doubling from one
step to the next, so lane-terms per cycle (R x L, a term of every row-lane each cycle) double.
The weights region holds one largest layer (``max_k`` x ``max_n``; q planes with the LUT path),
as the default top's 2,048 beats do for R2 x L4.

Search (:func:`ladder_search`, pure): upward from the smallest size, stop at the first that
fails, since a larger engine of the same shape family only grows. Each size first gets the
cheap check, Yosys alone (:func:`fpga.bitstream.build_bitstream` with ``synth_only``): a design
whose synthesized LUT4s or block RAMs already exceed the device cannot fit, and place-and-route
is skipped. Otherwise nextpnr places and routes it at the board's clock: it passes when it fits
and its post-route Fmax reaches the clock. Place-and-route time grows with the size, so the
upward doubling costs at most about twice the largest build. Every result is cached under
``build/bench_fpga/cache/<board>/<hash>.json`` by the top's parameter hash, the clock, the seed and
the check and a digest of the gateware's sources, so an interrupted or repeated run resumes
where it stopped; place-and-route reuses the Yosys netlist of the pre-check.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from bitmix.errors import BitmixError

__all__ = ["LADDER", "LUT_PLANES", "Candidate", "ladder_search", "board_candidates",
           "search_board", "density", "CACHE"]

#: (rows, lanes) of the candidates, R x L doubling; the LUT variant uses the sizes with L a
#: multiple of 8 (its tables take 8 lanes each).
LADDER = ((1, 4), (2, 4), (2, 8), (4, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32))
#: Planes q of the LUT variant (the shift-add path of issue 8 at 3 bits).
LUT_PLANES = 3
CACHE = Path("build") / "bench_fpga" / "cache"


def density(lane_terms: int, luts: int) -> float:
    """Lane-terms per cycle per 1,000 LUTs."""
    return round(1000 * lane_terms / luts, 2) if luts else 0.0


@dataclass(frozen=True)
class Candidate:
    """One engine size of the search."""

    rows: int
    lanes: int
    lut: bool

    @property
    def lane_terms(self) -> int:
        """Lane-terms per cycle: every row-lane adds one term (path 0) or one plane bit (path
        1) of a weight each cycle."""
        return self.rows * self.lanes

    @property
    def label(self) -> str:
        return f"R{self.rows} x L{self.lanes}" + (f" +lut{LUT_PLANES}" if self.lut else "")


def ladder_search(candidates, prefilter, full, log=lambda c, stage, r: None) -> dict:
    """Largest passing candidate of ``candidates`` (ordered by size, passing is monotone: a
    candidate larger than one that fails fails too).

    ``prefilter(c)`` returns a result dict with ``ok`` (False: certainly fails, e.g. synthesized
    LUTs above the device's) and ``full(c)`` one with ``ok`` (fits and meets timing); ``full``
    runs only where ``prefilter`` passed. Upward from the first candidate; stops at the first
    failure. Returns ``{"best": index or None, "tried": [(index, stage, result), ...]}``."""
    best, tried = None, []
    for i, c in enumerate(candidates):
        pre = prefilter(c)
        tried.append((i, "synth", pre))
        log(c, "synth", pre)
        if not pre["ok"]:
            break
        res = full(c)
        tried.append((i, "pnr", res))
        log(c, "pnr", res)
        if not res["ok"]:
            break
        best = i
    return {"best": best, "tried": tried}


def board_candidates(lut: bool, max_lane_terms: int | None = None, ladder=LADDER,
                     min_lane_terms: int | None = None) -> list:
    """The sizes tried for one variant, smallest first, within the lane-term bounds."""
    out = [Candidate(r, lanes, lut) for r, lanes in ladder if not lut or lanes % 8 == 0]
    return [c for c in out if (max_lane_terms is None or c.lane_terms <= max_lane_terms)
            and (min_lane_terms is None or c.lane_terms >= min_lane_terms)]


def candidate_values(board: str, c: Candidate, clk_mhz: float | None = None):
    """(design, board, plan, option values, TopParams) of candidate ``c`` on ``board``: the
    top ``bitmix build --board`` would build with ``--rows/--lanes/--lut-planes`` and a weights
    region of one largest layer."""
    from bitmix.cmd_build import board_values
    from fpga.top_params import SPRAM_COUNT, SPRAM_DEPTH, SPRAM_WIDTH, TopParams

    user = {"rows": c.rows, "lanes": c.lanes, "lut_planes": LUT_PLANES if c.lut else 0}
    design, b, plan, values = board_values(board, "top", user, clk_mhz=clk_mhz)
    p = design.make_params({**values, "weight_beats": 1, "weight_mem": "bram"})   # the layout
    g = p.gemv
    layer = -(-g.max_n // g.rows) * (g.max_k // g.lanes) * (LUT_PLANES if c.lut else 1)
    values["weight_beats"] = layer
    if values.get("weight_mem") == "spram" and (
            g.layout.weight_bits > SPRAM_COUNT * SPRAM_WIDTH or layer > SPRAM_DEPTH):
        values["weight_mem"] = "bram"          # a beat wider than the SPRAMs: block RAM
    params = design.make_params(values)
    assert isinstance(params, TopParams)
    return design, b, plan, values, params


def source_digest() -> str:
    """Digest of the gateware's and the build flow's sources (``hw/``, ``fpga/``, ``golden/``):
    a cached result is reused only for the code that produced it."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(p for d in ("hw", "fpga", "golden") for p in (root / d).glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:12]


def _cache_file(board: str, params, clk_hz: float, seed: int, stage: str) -> Path:
    return CACHE / board / f"{params.hash}_{round(clk_hz)}_s{seed}_{source_digest()}_{stage}.json"


def evaluate(board_name: str, c: Candidate, stage: str, *, clk_mhz: float | None = None,
             seed: int = 1, progress: bool = False, use_cache: bool = True) -> dict:
    """Build candidate ``c`` on ``board_name``: ``stage`` ``"synth"`` (Yosys only) or
    ``"pnr"`` (the whole bitstream flow). Returns the search's result dict (cached)."""
    from bitmix.cmd_build import _build_core
    from fpga.bitstream import MissesTiming, build_bitstream
    from fpga.synth import DoesNotFit
    from fpga.targets import get_target

    try:
        design, board, plan, values, params = candidate_values(board_name, c, clk_mhz)
    except BitmixError as e:                        # e.g. a region past the protocol's offsets
        return {"ok": False, "reason": f"invalid: {e}", "lane_terms": c.lane_terms}
    cache = _cache_file(board.name, params, plan.sys_hz, seed, stage)
    if use_cache and cache.exists():
        return {**json.loads(cache.read_text()), "cached": True}
    out = Path("build") / "bench_fpga" / board.name / params.tag   # both stages: Yosys reused
    t0 = time.monotonic()
    res = {"rows": c.rows, "lanes": c.lanes, "lut": c.lut, "lane_terms": c.lane_terms,
           "params_hash": params.hash, "weight_mem": params.weight_mem,
           "weight_beats": params.weight_beats, "target_mhz": round(plan.sys_hz / 1e6, 6),
           "stage": stage, "build_dir": str(out)}
    try:
        rep = build_bitstream(board.name, lambda _plan: _build_core(design, params, board),
                              tag=params.tag, sys_hz=plan.requested_hz, baud=plan.baud,
                              seed=seed, out=out, info=design.info(params), progress=progress,
                              synth_only=stage == "synth", reuse_synth=True)
        ok, reason = True, ""
    except DoesNotFit as e:
        rep, ok, reason = None, False, f"does not fit: {e.used} {e.resource} of {e.available}"
    except MissesTiming as e:
        rep, ok = None, False
        reason = f"misses timing: {e.achieved:.2f} MHz < {e.required:.2f} MHz"
    if rep is None:
        rep = json.loads((out / "report.json").read_text())
    y = rep.get("yosys") or {}
    res.update(luts_synth=y.get("luts"), bram_synth=y.get("bram"), ffs_synth=y.get("ffs"))
    if stage == "synth" and ok:
        tgt = get_target(board.device)
        spram = y.get("cells", {}).get("SB_SPRAM256KA", 0)
        over = [(what, used, cap) for what, used, cap in
                (("LUT4", y.get("luts", 0), tgt.luts), ("block RAM", y.get("bram", 0) - spram,
                                                        tgt.bram)) if used > cap]
        if over:
            ok, reason = False, "does not fit (synthesis): " + ", ".join(
                f"{u} {w} of {cap}" for w, u, cap in over)
    if stage == "pnr" and rep.get("resources"):
        logic = next(iter(rep["resources"].values()))
        res.update(luts=logic["used"], luts_available=logic["available"],
                   fmax_mhz=rep.get("fmax_mhz"), critical_path=rep.get("critical_path"),
                   resources={k: {"used": v["used"], "available": v["available"]}
                              for k, v in rep["resources"].items()},
                   density=density(c.lane_terms, logic["used"]))
    res.update(ok=ok, reason=reason, seconds=round(time.monotonic() - t0, 1))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res, indent=1) + "\n")
    return res


def search_board(board_name: str, *, lut: bool, quick: bool = False,
                 max_lane_terms: int | None = None, min_lane_terms: int | None = None,
                 clk_mhz: float | None = None, seed: int = 1, progress: bool = False,
                 log=lambda c, stage, r: None) -> dict:
    """The ladder search for one board and variant. ``quick``: synthesis only (the largest
    size whose Yosys counts fit the device; no place-and-route, no Fmax). ``min_lane_terms``:
    start there (the smaller sizes are taken to pass, as a larger one does)."""
    from fpga.boards import clock_plan, get_board

    board = get_board(board_name)
    cands = board_candidates(lut, max_lane_terms, min_lane_terms=min_lane_terms)
    if quick:
        def full(c):
            return {"ok": True, "reason": "synthesis only (--quick)"}
    else:
        def full(c):
            return evaluate(board_name, c, "pnr", clk_mhz=clk_mhz, seed=seed, progress=progress)
    t0 = time.monotonic()
    found = ladder_search(
        cands, lambda c: evaluate(board_name, c, "synth", clk_mhz=clk_mhz, seed=seed,
                                  progress=progress), full, log)
    tried = [{"label": cands[i].label, "stage": stage, **r} for i, stage, r in found["tried"]
             if not (quick and stage == "pnr")]
    best = None
    if found["best"] is not None:
        c = cands[found["best"]]
        last = [t for t in tried if t["label"] == c.label][-1]
        best = {"label": c.label, **{k: v for k, v in last.items() if k != "label"}}
    plan = clock_plan(board, clk_mhz * 1e6 if clk_mhz else None)
    return {"board": board.name, "device": board.device, "lut": lut, "quick": quick,
            "min_lane_terms": min_lane_terms, "max_lane_terms": max_lane_terms,
            "clock_mhz": round(plan.sys_hz / 1e6, 6), "seed": seed, "best": best,
            "tried": tried, "seconds": round(time.monotonic() - t0, 1)}
