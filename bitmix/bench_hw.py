"""`bitmix bench hw`: the GEMV engine's utilization, precision scaling, simulation speed,
synthesis density and the BitMoD comparison, measured in one run (JSON + table).

* **Utilization** = ideal cycles ÷ measured cycles for one N×K GEMV, ideal = N·K·T ÷ (R·L)
  (T = terms per weight at the precision), measured = from the cycle the descriptor is accepted
  to the cycle the last result transfers, inclusive — descriptor, activation load, compute and
  pipeline drain all counted. Measured on the Verilator model through the C++ harness
  (:mod:`verif.gemv_cpp`), every result checked bit-exactly against golden.intref, and compared
  with the exact RTL model ``golden.cycle_model.gemv_rtl_cycles``.
* **Precision ratio**: cycles at each runtime precision ÷ full-precision cycles, against the
  ideal term ratio t ÷ T.
* **Simulation speed**: Verilator cycles per second of the longest run (C++ harness, -O2).
* **Synthesis** (``--synth``): LUTs, FFs, Fmax of the engine and of the dot-product unit with the
  same L, and the density lane-terms per cycle per 1,000 LUTs (engine R·L, dot unit L), ratioed.
* **BitMoD**: ``golden.cycle_model.bitmod_table`` (BitMoD's simulator, reproduced) with this
  engine's R, L as the comparison row.
* **Shift-add LUT path** (``--lut-planes Q``, 0 = off): the engine is built with its LUT path
  (``lut=dict(max_planes=max(4, Q), table_inputs=μ)``, ``--lut-table-inputs``) and both paths
  run on that one engine, side by side: the same sizes as BCQ layers with Q planes (row layout,
  group G) at every precision p through ``cmd.path = 1`` on the same C++ harness (results
  bit-exact vs golden.bcq), the exact model ``golden.cycle_model.gemv_lut_rtl_cycles``,
  utilization = ideal ``N·K·p/(R·L)`` (one plane of R·L weights per cycle) ÷ measured, the ratio
  to full precision vs p/q, and the weight bytes read per GEMV (whole beats of the engine's
  weight port) vs p/q. With ``--synth``, Yosys (no place-and-route: the LUT path's takes far
  longer than the brief's 15 minutes on a shared machine) counts the two compute arrays alone
  (``hw.gemv_array.GemvArray``, ``hw.lut_array.LutArray``) and the engine with and without the
  LUT path; the density — weight-bit × activation operations per cycle per 1,000 LUTs, from the
  measured 1024² cycles (bit-serial: N·K·b, LUT path: N·K·p) — is compared side by side.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

__all__ = ["register", "run", "run_bench", "format_table"]


def register(bsub) -> None:
    from bitmix.argtypes import int_in_range

    p = bsub.add_parser("hw", help="GEMV engine: utilization, precision scaling, Verilator speed, "
                                   "synthesis density, BitMoD comparison",
                        description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int_in_range("--rows", 1), default=8, help="engine rows R (default 8)")
    p.add_argument("--lanes", type=int_in_range("--lanes", 1), default=8, help="lanes L (default 8)")
    p.add_argument("--group-size", type=int_in_range("--group-size", 1), default=128,
                   help="group size G (default 128)")
    p.add_argument("--format-sets", default="bitmod4",
                   help="comma-separated format sets compiled in; the first is measured (default "
                        "bitmod4: the dot unit it is compared with has one set)")
    p.add_argument("--sizes", default="1024,4096", help="square GEMV sizes N = K (default 1024,4096)")
    p.add_argument("--synth", default="", metavar="TARGETS",
                   help="comma-separated synthesis targets, e.g. ecp5-85f,ice40-up5k (default none; "
                        "slow). iCE40 uses --ice40-rows/--ice40-lanes (the UP5K has 5,280 LUTs)")
    p.add_argument("--ice40-rows", type=int_in_range("--ice40-rows", 1), default=2)
    p.add_argument("--ice40-lanes", type=int_in_range("--ice40-lanes", 1), default=4)
    p.add_argument("--lut-planes", type=int_in_range("--lut-planes", 0, 8), default=0,
                   help="measure the engine's shift-add LUT path (cmd.path = 1) on BCQ layers of this "
                        "many planes q, side by side with the bit-serial path on the same engine "
                        "(default 0 = no LUT path; e.g. 3)")
    p.add_argument("--lut-table-inputs", type=int, choices=(8, 4, 2), default=4,
                   help="activations per hardware table of the LUT path (default 4)")
    p.add_argument("--seed", type=int_in_range("--seed", 0, 2**32 - 1), default=1,
                   help="stimulus seed (default 1)")
    p.add_argument("--out", default="build/bench", metavar="DIR", help="folder for hw.json")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def _params(rows, lanes, group_size, sets, max_k, max_n=None, lut=None):
    from hw.gemv_params import GemvParams

    return GemvParams.make(rows=rows, lanes=lanes, group_size=group_size, format_sets=sets,
                           max_k=max_k, max_n=max_n or max_k, lut=lut)


def run_bench(*, rows=8, lanes=8, group_size=128, format_sets=("bitmod4",),
              sizes=(1024, 4096), synth=(), ice40=(2, 4), seed=1, lut_planes=0, lut_table_inputs=4,
              log=print) -> dict:
    from golden.cycle_model import EngineSpec, bitmod_table, gemv_ideal_cycles, gemv_rtl_cycles
    from verif.gemv_cpp import run_cpp
    from verif.gemv_stimulus import random_gemv

    t0 = time.monotonic()
    lut = dict(max_planes=max(4, lut_planes), table_inputs=lut_table_inputs) if lut_planes else None
    p = _params(rows, lanes, group_size, tuple(format_sets), max(sizes), lut=lut)
    rng = random.Random(seed)
    fs = p.format_sets[0]
    util, fastest = [], None
    for size in sizes:
        full = None
        for prec in [0, *range(1, fs.max_terms)]:
            g = random_gemv(p, rng, size, size, 0, prec, f"{size}x{size}")
            log(f"[bench hw] {size}x{size} precision {prec or 'full'} on the C++ harness ...")
            r = run_cpp(p, [g])
            rec = r["gemvs"][0]
            measured = rec["last_result_cycle"] - rec["cmd_cycle"] + 1
            model = gemv_rtl_cycles(p.layout, g.fmt_ids, 0, prec, latency=p.latency)
            ideal = gemv_ideal_cycles(p.layout, size, size, 0, prec)
            t = fs.max_terms if not prec else min(prec, fs.max_terms)
            row = {"n": size, "k": size, "format_set": fs.name, "precision": prec, "terms": t,
                   "measured_cycles": measured, "model_cycles": model["to_last_result"] + 1,
                   "model_error": (model["to_last_result"] + 1 - measured) / measured,
                   "ideal_cycles": float(ideal), "utilization": float(ideal) / measured,
                   "load_cycles": model["load"], "bit_exact": rec["bit_exact"],
                   # every precision reads every beat (terms are read from the whole codes)
                   "weight_bytes": p.layout.blocks(size) * (size // p.lanes) * p.layout.beat_bytes,
                   "sim_cycles_per_second": r["cycles_per_second"]}
            if prec == 0:
                full = row
            row["ratio_to_full"] = measured / full["measured_cycles"]
            row["ideal_ratio"] = t / fs.max_terms
            row["ratio_error"] = row["ratio_to_full"] / row["ideal_ratio"] - 1
            util.append(row)
            if fastest is None or r["cycles"] > fastest["cycles"]:
                fastest = {"cycles": r["cycles"], "seconds": r["sim_seconds"],
                           "cycles_per_second": r["cycles_per_second"], "run": f"{size}x{size} p{prec}"}
    spec = EngineSpec.for_format_set("bitmod3", rows=rows, lanes=lanes, group_size=group_size,
                                     name=f"this engine R={rows} L={lanes} bitmod3")
    bitmod = [{"name": r.name, "cycles": r.cycles, "vs_fp16": r.vs_fp16}
              for r in bitmod_table("decode", engine=spec)]
    result = {"parameters": p.describe(), "derived": p.derived(), "utilization": util,
              "simulation": fastest, "bitmod_decode_llama2_7b": bitmod, "synthesis": [],
              "targets": {"utilization_1024": 0.97, "utilization_4096": 0.99, "precision_ratio": 0.02}}
    import dataclasses

    for target in synth:
        # place and route the engine without its LUT path (as before; the LUT path's own figures
        # are Yosys counts, below)
        result["synthesis"] += _synth_rows(dataclasses.replace(p, lut=None), target, ice40, log)
    if lut_planes:
        result["lut"] = _lut_rows(p, lut_planes, sizes, rng, log)
        for target in synth:
            if not target.startswith("ice40"):
                result["synthesis"] += _lut_synth_rows(p, target, util, result["lut"]["rows"], log)
    result["seconds"] = round(time.monotonic() - t0, 1)
    return result


def _lut_rows(p, q: int, sizes, rng, log) -> dict:
    """The engine's LUT path on q-plane BCQ layers (row layout, group G) of every size, at every
    precision, on the same engine (and C++ harness) as the bit-serial rows."""
    from golden.cycle_model import gemv_lut_rtl_cycles
    from verif.gemv_cpp import run_cpp
    from verif.lut_stimulus import random_gemv

    out = []
    el = p.lut_layout
    for size in sizes:
        full = None
        for prec in range(q, 0, -1):
            g = random_gemv(p.lut, rng, q, "row", size, size, p.group_size, 0 if prec == q else prec)
            log(f"[bench hw] LUT path {size}x{size} q={q} p={prec} on the C++ harness ...")
            rec = run_cpp(p, [g])["gemvs"][0]
            measured = rec["last_result_cycle"] - rec["cmd_cycle"] + 1
            model = gemv_lut_rtl_cycles(p.layout, size, size, prec, latency=p.lut_latency)
            ideal = model["ideal"]
            by = el.stream_bytes(g.bw, prec)
            row = {"n": size, "k": size, "planes": q, "precision": prec, "measured_cycles": measured,
                   "model_cycles": model["to_last_result"] + 1,
                   "model_error": (model["to_last_result"] + 1 - measured) / measured,
                   "ideal_cycles": float(ideal), "utilization": float(ideal) / measured,
                   "bit_exact": rec["bit_exact"], "weight_bytes": by["port"],
                   "payload_bytes": by["payload"], "key_bytes": by["keys"]}
            full = full or row
            row["ratio_to_full"] = measured / full["measured_cycles"]
            row["ideal_ratio"] = prec / q
            row["ratio_error"] = row["ratio_to_full"] / row["ideal_ratio"] - 1
            row["bytes_ratio"] = row["weight_bytes"] / full["weight_bytes"]
            out.append(row)
    return {"parameters": p.describe()["lut"], "derived": {k: v for k, v in p.derived().items()
                                                           if k.startswith("lut")},
            "weight_beat_bytes": el.beat_bytes, "rows": out,
            "targets": {"utilization": 0.95, "precision_ratio": 0.02, "density_vs_bit_serial": 2.0}}


def _lut_synth_rows(p, target: str, util: list[dict], lut_rows: list[dict], log) -> list[dict]:
    """Yosys counts of the two compute arrays and of the engine with and without its LUT path;
    density = weight-bit x activation operations per cycle (measured at the first size, full
    precision) per 1,000 LUTs."""
    import dataclasses

    from bitmix.designs import gemv_info
    from fpga.synth import synthesize
    from hw.gemv import GemvEngine
    from hw.gemv_array import GemvArray
    from hw.lut_array import LutArray

    fs = p.format_sets[0]
    bs = next(r for r in util if r["precision"] == 0)
    lt = next(r for r in lut_rows if r["n"] == bs["n"] and r["precision"] == r["planes"])
    ops = {"bit-serial": bs["n"] * bs["k"] * fs.bits / bs["measured_cycles"],
           "lut": lt["n"] * lt["k"] * lt["planes"] / lt["measured_cycles"]}
    plain = dataclasses.replace(p, lut=None)
    mu = p.lut.table_inputs
    out = []
    for kind, path, comp, name, tag in (
            ("array", "bit-serial", GemvArray(plain), "gemv_array", f"array_{plain.tag}"),
            ("array", "lut", LutArray(p), "lut_array", f"lutarray_{p.tag}"),
            ("engine", "bit-serial", GemvEngine(plain), "gemv", plain.tag),
            ("engine", "both", GemvEngine(p), "gemv", p.tag)):
        log(f"[bench hw] Yosys (no place-and-route) {name} ({tag}) for {target} ...")
        r = synthesize(comp, target, name=name, tag=tag, info=gemv_info(p), place=False)
        out.append({"target": target, "design": f"{kind}: {path}", "luts": r["luts"],
                    "ffs": r["ffs"], "carries": r["carries"], "table_inputs": mu,
                    "synthesis": "Yosys only"})
    a_bs, a_lut, e_bs, e_both = out
    for row, path, luts in ((a_bs, "bit-serial", a_bs["luts"]), (a_lut, "lut", a_lut["luts"]),
                            (e_bs, "bit-serial", e_bs["luts"]),
                            (e_both, "lut", e_both["luts"] - e_bs["luts"])):
        row["weight_bit_ops_per_cycle"] = ops[path]
        row["bit_ops_per_klut"] = ops[path] / (luts / 1000) if luts else None
    e_both["design"] = "engine: + LUT path (increment)"
    e_both["luts_total"], e_both["ffs_total"] = e_both["luts"], e_both["ffs"]
    e_both["luts"] -= e_bs["luts"]
    e_both["ffs"] -= e_bs["ffs"]
    a_lut["density_vs_bit_serial"] = a_lut["bit_ops_per_klut"] / a_bs["bit_ops_per_klut"]
    e_both["density_vs_bit_serial"] = e_both["bit_ops_per_klut"] / e_bs["bit_ops_per_klut"]
    return out


def _synth_rows(p, target: str, ice40: tuple[int, int], log) -> list[dict]:
    from bitmix.designs import dot_unit_info, gemv_info
    from fpga.synth import synthesize
    from hw.dot_unit import DotProductUnit
    from hw.gemv import GemvEngine
    from hw.params import DotParams

    if target.startswith("ice40"):
        p = _params(ice40[0], ice40[1], min(p.group_size, 32), tuple(fs.name for fs in p.format_sets[:1]),
                    1024, 4096)
    dp = DotParams.for_row_length(k=p.max_k, group_size=p.group_size, lanes=p.lanes,
                                  format_set=p.format_sets[0])
    rows = []
    for kind, comp, name, tag, info, lane_terms in (
            ("gemv", GemvEngine(p), "gemv", p.tag, gemv_info(p), p.rows * p.lanes),
            ("dot_unit", DotProductUnit(dp), "dot_unit", dp.tag, dot_unit_info(dp), dp.lanes)):
        log(f"[bench hw] synthesizing {kind} ({tag}) for {target} ...")
        r = synthesize(comp, target, name=name, tag=tag, info=info)
        luts = r.get("luts")
        rows.append({"target": target, "design": kind, "tag": tag, "luts": luts, "ffs": r.get("ffs"),
                     "fmax_mhz": r.get("fmax_mhz"), "lane_terms_per_cycle": lane_terms,
                     "density_per_klut": lane_terms / (luts / 1000) if luts else None})
    if rows[0]["density_per_klut"] and rows[1]["density_per_klut"]:
        rows[0]["density_vs_dot_unit"] = rows[0]["density_per_klut"] / rows[1]["density_per_klut"]
    return rows


def format_table(res: dict) -> str:
    pr = res["parameters"]
    lines = [f"GEMV engine R={pr['rows']} L={pr['lanes']} G={pr['group_size']} sets "
             f"{','.join(pr['format_sets'])}",
             "", f"{'GEMV':>11} {'prec':>4} {'measured':>9} {'model':>9} {'ideal':>9} {'util':>6} "
             f"{'ratio':>6} {'ideal r.':>8} {'bytes':>10} {'bit-exact':>9}"]
    for r in res["utilization"]:
        lines.append(f"{r['n']:>5}x{r['k']:<5} {r['precision'] or 'full':>4} {r['measured_cycles']:>9} "
                     f"{r['model_cycles']:>9} {r['ideal_cycles']:>9.0f} {r['utilization']:>6.4f} "
                     f"{r['ratio_to_full']:>6.4f} {r['ideal_ratio']:>8.4f} "
                     f"{r.get('weight_bytes', 0):>10,} {str(r['bit_exact']):>9}")
    s = res["simulation"]
    lines += ["", f"Verilator (C++ harness, -O2): {s['cycles_per_second']:,.0f} cycles/s "
                  f"({s['cycles']} cycles in {s['seconds']:.2f} s, {s['run']})"]
    lanes = [r for r in res["synthesis"] if "lane_terms_per_cycle" in r]
    if lanes:
        lines += ["", f"{'target':>11} {'design':>9} {'LUTs':>7} {'FFs':>7} {'Fmax MHz':>9} "
                      f"{'lane-terms/cyc':>14} {'per kLUT':>9} {'vs dot':>7}"]
        for r in lanes:
            fm = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-"
            dn = f"{r['density_per_klut']:.2f}" if r["density_per_klut"] else "-"
            vs = f"{r['density_vs_dot_unit']:.2f}" if r.get("density_vs_dot_unit") else ""
            lines.append(f"{r['target']:>11} {r['design']:>9} {r['luts'] or '-':>7} {r['ffs'] or '-':>7} "
                         f"{fm:>9} {r['lane_terms_per_cycle']:>14} {dn:>9} {vs:>7}")
    if res.get("lut"):
        lp = res["lut"]["parameters"]
        lines += ["", f"Shift-add LUT path of the same engine (cmd.path = 1, {lp['table_inputs']}-input "
                      f"tables; BCQ row layout, q planes, p = planes read; bytes = weight-port beats)",
                  f"{'GEMV':>11} {'q':>2} {'p':>2} {'measured':>9} {'model':>9} {'ideal':>9} {'util':>6} "
                  f"{'ratio':>6} {'p/q':>6} {'bytes':>10} {'bytes r.':>8} {'bit-exact':>9}"]
        for r in res["lut"]["rows"]:
            lines.append(f"{r['n']:>5}x{r['k']:<5} {r['planes']:>2} {r['precision']:>2} "
                         f"{r['measured_cycles']:>9} {r['model_cycles']:>9} {r['ideal_cycles']:>9.0f} "
                         f"{r['utilization']:>6.4f} {r['ratio_to_full']:>6.4f} {r['ideal_ratio']:>6.4f} "
                         f"{r['weight_bytes']:>10,} {r['bytes_ratio']:>8.4f} {str(r['bit_exact']):>9}")
    dens = [r for r in res["synthesis"] if "weight_bit_ops_per_cycle" in r]
    if dens:
        lines += ["", "Density (Yosys LUT4 counts, no place-and-route; weight-bit x activation ops "
                      "per cycle at the first size, full precision)",
                  f"{'target':>11} {'design':>31} {'LUTs':>7} {'FFs':>7} {'bit-ops/cyc':>11} "
                  f"{'per kLUT':>9} {'vs bit-serial':>13}"]
        for r in dens:
            dn = f"{r['bit_ops_per_klut']:.2f}" if r["bit_ops_per_klut"] else "-"
            vs = f"{r['density_vs_bit_serial']:.2f}" if r.get("density_vs_bit_serial") else ""
            lines.append(f"{r['target']:>11} {r['design']:>31} {r['luts'] or '-':>7} {r['ffs'] or '-':>7} "
                         f"{r['weight_bit_ops_per_cycle']:>11.1f} {dn:>9} {vs:>13}")
    lines += ["", "BitMoD simulator, Llama-2-7B, one decode step at context 256 (cycles, FP16 / x):"]
    for r in res["bitmod_decode_llama2_7b"]:
        lines.append(f"  {r['name']:<40} {r['cycles']:>14,} {r['vs_fp16']:>7.2f}x")
    return "\n".join(lines)


def run(args) -> int:
    import sys

    sets = tuple(s.strip() for s in args.format_sets.split(",") if s.strip())
    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    synth = tuple(s.strip() for s in args.synth.split(",") if s.strip())
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    res = run_bench(rows=args.rows, lanes=args.lanes, group_size=args.group_size, format_sets=sets,
                    sizes=sizes, synth=synth, ice40=(args.ice40_rows, args.ice40_lanes),
                    seed=args.seed, lut_planes=args.lut_planes,
                    lut_table_inputs=args.lut_table_inputs, log=log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hw.json").write_text(json.dumps(res, indent=1) + "\n")
    if args.json:
        print(json.dumps(res))
    else:
        print(format_table(res))
        print(f"\njson: {out / 'hw.json'}\ntotal: {res['seconds']} s")
    return 0
