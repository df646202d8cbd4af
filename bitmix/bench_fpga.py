"""`bitmix bench fpga`: the largest GEMV engine whose whole device top fits each board and meets
timing at the board's clock, found by :mod:`fpga.engine_search`.

    bitmix bench fpga                                   # every board, with and without the LUT path
    bitmix bench fpga --boards icebreaker --quick       # synthesis only: the size check, no Fmax

Writes ``<out>/fpga.json`` and ``<out>/fpga.txt`` (default ``build/bench``) and prints the table:
per board and variant the largest passing size (rows x lanes), its lane-terms per cycle, LUT use,
post-route Fmax and density (lane-terms per cycle per 1,000 LUTs), and why the next size failed.
A line on stderr reports every build as it finishes (results are cached under
``build/bench_fpga/cache``: a rerun only builds what is new).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bitmix.argtypes import int_in_range
from bitmix.errors import BitmixError

__all__ = ["register", "run", "format_table", "VARIANTS"]

#: Engine variants: without the shift-add LUT path, and with it (q = fpga.engine_search.LUT_PLANES).
VARIANTS = {"base": False, "lut": True}


def register(bsub) -> None:
    from fpga.boards import BOARDS

    p = bsub.add_parser("fpga", help="largest engine per board whose whole top fits and meets "
                                     "timing (doubling search, Yosys pre-check, cached)",
                        description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1])
    p.add_argument("--boards", default=",".join(BOARDS), metavar="B[,B]",
                   help="boards to search (default all: " + ", ".join(BOARDS) + ")")
    p.add_argument("--variants", default="base,lut", metavar="V[,V]",
                   help="base (no LUT path), lut (with the shift-add LUT path); default both")
    p.add_argument("--quick", action="store_true",
                   help="synthesis only: the largest size whose Yosys LUT4/block-RAM counts fit "
                        "the device (no place-and-route, no Fmax; minutes instead of hours)")
    p.add_argument("--max-lane-terms", type=int_in_range("--max-lane-terms", 1), default=None,
                   metavar="N", help="do not try sizes above N lane-terms per cycle")
    p.add_argument("--min-lane-terms", type=int_in_range("--min-lane-terms", 1), default=None,
                   metavar="N", help="start the search at N lane-terms per cycle (smaller sizes "
                                     "are not built; use when they are known to pass)")
    p.add_argument("--seed", type=int_in_range("--seed", 0), default=1,
                   help="nextpnr placer seed (default 1)")
    p.add_argument("--out", default="build/bench", metavar="DIR",
                   help="folder for fpga.json and fpga.txt (default build/bench)")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def _split(text: str, known, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in known]
    if bad or not items:
        raise BitmixError(f"bench fpga: unknown {what} {bad[0] if bad else text!r}; choose from "
                          + ", ".join(known))
    return items


def _log(board: str, c, stage: str, r: dict) -> None:
    what = "synthesis" if stage == "synth" else "place-and-route"
    got = ""
    if r.get("fmax_mhz"):
        got = f" {r['luts']} LUT, Fmax {r['fmax_mhz']:.2f} MHz"
    elif r.get("luts_synth") is not None:
        got = f" {r['luts_synth']} LUT4 synthesized"
    verdict = "ok" if r["ok"] else r.get("reason", "fails")
    print(f"[bench fpga] {board} {c.label}: {what}{got} -> {verdict}"
          + (" (cached)" if r.get("cached") else f" ({r.get('seconds', 0):.0f} s)"),
          file=sys.stderr, flush=True)


def run(args) -> int:
    from fpga.boards import BOARDS
    from fpga.engine_search import search_board

    boards = _split(args.boards, BOARDS, "board")
    variants = _split(args.variants, VARIANTS, "variant")
    rows = []
    for b in boards:
        for v in variants:
            rows.append(search_board(b, lut=VARIANTS[v], quick=args.quick,
                                     max_lane_terms=args.max_lane_terms,
                                     min_lane_terms=args.min_lane_terms, seed=args.seed,
                                     progress=False, log=lambda c, s, r, b=b: _log(b, c, s, r)))
    result = {"command": "bitmix bench fpga " + " ".join(sys.argv[3:]) if sys.argv[1:3] ==
              ["bench", "fpga"] else "bitmix bench fpga", "quick": args.quick, "searches": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fpga.json").write_text(json.dumps(result, indent=1) + "\n")
    table = format_table(result)
    (out / "fpga.txt").write_text(table + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        print(table)
        print(f"json: {out / 'fpga.json'}")
    return 0


def format_table(result: dict) -> str:
    """One row per (board, variant): the largest passing engine and why the next size failed."""
    head = ("board", "clock MHz", "variant", "largest engine", "lane-terms/cyc", "LUT used",
            "Fmax MHz", "per kLUT", "next size")
    rows = [head]
    for s in result["searches"]:
        b = s["best"]
        nxt = next((t for t in s["tried"] if not t["ok"]), None)
        why = f"{nxt['label']}: {nxt['reason']}" if nxt else "none tried above"
        if b is None:
            rows.append((s["board"], f"{s['clock_mhz']:g}", "lut" if s["lut"] else "base",
                         "none", "-", "-", "-", "-", why))
            continue
        if b.get("luts"):
            used = f"{b['luts']}/{b['luts_available']}"
            fmax, dens = f"{b['fmax_mhz']:.2f}", f"{b['density']:.2f}"
        else:                                           # --quick: Yosys' count
            used, fmax, dens = f"{b['luts_synth']} (synth)", "-", "-"
        rows.append((s["board"], f"{s['clock_mhz']:g}", "lut" if s["lut"] else "base", b["label"],
                     str(b["lane_terms"]), used, fmax, dens, why))
    w = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(x.ljust(w[i]) if i in (0, 2, 3, 8) else x.rjust(w[i])
                       for i, x in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    if result.get("quick"):
        lines.append("--quick: synthesis only (Yosys counts; no place-and-route, no Fmax)")
    return "\n".join(lines)
