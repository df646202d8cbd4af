"""`bitmix quantize`: quantize a model folder layer by layer and write a quantized-model folder.

With no arguments it quantizes the shipped reference model with GPTQ + BitMoD 4-bit (group 128);
``--model smollm2`` quantizes SmolLM2-135M-Instruct (optional package; golden/smollm2.py), whose
tokenizer is copied into the output folder so `bitmix eval --model OUT` tokenizes alike.
The output folder holds dequantized float weights (``bitmix eval --model OUT`` works), the
hardware tensors (``quantized.safetensors``) and ``manifest.json`` (see golden/qmodel.py).
"""

from __future__ import annotations

import json

from bitmix.argtypes import float_in_range, int_in_range

METHOD_HELP = ("rtn: round-to-nearest per group; gptq: second-order error compensation; "
               "bcq: binary-coding (ShiftAddLLM's format) without compensation; "
               "shiftadd: GPTQ + BCQ (ShiftAddLLM); mx: MX-FP shared power-of-two scales")


def register(sub) -> None:
    p = sub.add_parser("quantize", help="quantize a model folder (RTN/GPTQ/BCQ/ShiftAdd/MX, bit allocation)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--model", metavar="FOLDER|smollm2",
                   help="HF-style LLaMA folder or smollm2; default: the shipped reference model")
    p.add_argument("--method", default="gptq", choices=("rtn", "gptq", "bcq", "shiftadd", "mx"),
                   help=METHOD_HELP + " (default gptq)")
    p.add_argument("--format", dest="format_set", metavar="SET",
                   help="format set from `bitmix formats` for rtn/gptq (default bitmod4; e.g. bitmod3, "
                        "ant4, int4_asym); element format fp4/fp3 for mx")
    p.add_argument("--bits", type=int, metavar="Q", help="BCQ planes for bcq/shiftadd (2, 3 or 4)")
    p.add_argument("--group-size", type=int_in_range("--group-size", 1), metavar="G",
                   help="inputs per group (default 128, or 64 for models whose inputs are not a multiple of "
                        "128, e.g. SmolLM2's 576; mx: 32). BCQ column/block layouts: rows per group")
    p.add_argument("--layout", choices=("row", "col", "block"),
                   help="BCQ scale layout (bcq default row; shiftadd default col = ShiftAddLLM Acc, "
                        "block = Lat)")
    p.add_argument("--rounds", type=int_in_range("--rounds", 0), default=50, metavar="T",
                   help="BCQ alternating rounds (default 50)")
    p.add_argument("--calib-samples", type=int_in_range("--calib-samples", 1), default=32, metavar="N",
                   help="calibration windows from the reference train split (default 32)")
    p.add_argument("--calib-seqlen", type=int_in_range("--calib-seqlen", 2), default=256, metavar="T",
                   help="tokens per window (default 256)")
    p.add_argument("--seed", type=int_in_range("--seed", 0, 2**32 - 1), default=0,
                   help="calibration sampling seed (default 0)")
    p.add_argument("--bit-budget", type=float_in_range("--bit-budget", 1.0, 16.0), metavar="B",
                   help="average bits per weight (e.g. 2.2): choose 2/3/4 bits per layer by the exact "
                        "allocation of golden/bitalloc.py")
    p.add_argument("--allocator", choices=("dp", "80/20"), default="dp",
                   help="with --bit-budget: exact DP (default) or ShiftAddLLM's 80/20 release heuristic")
    p.add_argument("--alloc-cost", choices=("criterion", "output"), default="criterion",
                   help="with --bit-budget: per-width cost the DP minimises: the paper's sensitivity "
                        "criterion on the residual (default) or the layer output error")
    p.add_argument("--act-order", action="store_true",
                   help="GPTQ act-order (group-aware; see golden/gptq.py)")
    p.add_argument("--threads", type=int_in_range("--threads", 1), default=1, metavar="N",
                   help="torch threads (default 1: the loops are small-op bound)")
    p.add_argument("--out", metavar="FOLDER", help="output folder (default build/quantized/<model>-<method>)")
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def method_from_args(args, default_group: int = 128):
    from bitmix.errors import BitmixError
    from golden.calibrate import Method

    m = args.method
    if m in ("bcq", "shiftadd"):
        if args.format_set:
            raise BitmixError(f"--format does not apply to --method {m}; use --bits")
        if args.bits is None:
            raise BitmixError(f"--method {m} needs --bits (2, 3 or 4)")
    elif args.bits is not None:
        raise BitmixError(f"--bits applies to bcq/shiftadd only; --method {m} takes --format")
    if args.layout and m not in ("bcq", "shiftadd"):
        raise BitmixError("--layout applies to bcq/shiftadd only")
    fs = args.format_set or ("fp4" if m == "mx" else "bitmod4")
    g = args.group_size or (32 if m == "mx" else default_group)
    try:
        return Method(method=m, format_set=fs, bits=args.bits, group_size=g, act_order=args.act_order,
                      layout=args.layout, rounds=args.rounds)
    except BitmixError as exc:
        raise BitmixError(f"--format {fs}: {exc}" if args.format_set else str(exc)) from None


def precheck(model, folder, method) -> None:
    """Reject layers the method cannot represent before any work, naming file and tensor."""
    from golden.model import linear_layers
    from golden.quant import check_weight

    g = method.group_size if method.layout in (None, "row") else (8 if method.layout == "block" else 1)
    for name, lin in linear_layers(model).items():
        check_weight(lin.weight.data, g, name=f"{folder}: tensor {name}.weight")


def run(args) -> int:
    import pathlib
    import sys
    import time

    from golden.bitalloc import bits_histogram
    from golden.calibrate import group_size_for, quantize_model
    from golden.data import calibration_batches
    from golden.formats import get_format_set
    from golden.lm import load_lm
    from golden.qmodel import save_quantized

    method = method_from_args(args)          # bad options fail before any model is loaded
    lm = load_lm(args.model)
    model, folder = lm.model, lm.source
    if args.group_size is None and method.method != "mx":
        method = method_from_args(args, group_size_for(model))
    precheck(model, folder, method)
    needs_calib = method.needs_calibration or args.bit_budget is not None
    calib = None
    if needs_calib:
        calib = calibration_batches(args.calib_samples, args.calib_seqlen, seed=args.seed,
                                    tokenize=lm.tokenizer.encode)
    desc = method.describe() + (f"-mix{args.bit_budget:g}" if args.bit_budget is not None else "")
    out = pathlib.Path(args.out) if args.out else \
        pathlib.Path("build") / "quantized" / f"{lm.name}-{desc}"
    t0 = time.time()
    report = quantize_model(model, method, calib, bit_budget=args.bit_budget, threads=args.threads,
                            allocator=args.allocator, alloc_cost=args.alloc_cost,
                            progress=not (args.no_progress or args.json) and sys.stderr.isatty())
    fs = method.format_set if method.method in ("rtn", "gptq", "mx") else None
    manifest = {
        "method": method.method, "description": desc,
        "format_set": fs, "format_set_hash": get_format_set(fs).hash if fs else None,
        "bits": method.default_bits, "group_size": method.group_size, "act_order": method.act_order,
        "bcq": ({"layout": method.layout, "rounds": method.rounds, "apot_terms": method.apot_terms}
                if method.method in ("bcq", "shiftadd") else None),
        "calibration": ({"source": "reference train split (pydoc_data.topics)", "samples": args.calib_samples,
                         "seqlen": args.calib_seqlen, "seed": args.seed, "percdamp": method.percdamp}
                        if needs_calib else None),
        "bit_budget": args.bit_budget,
        "allocation": ({k: v for k, v in report.allocation.items() if k not in ("costs", "criterion")}
                       if report.allocation else None),
        "per_layer_bits": report.bits,
        "source_model": str(folder), "tokenizer": lm.tokenizer.name, "seconds": round(time.time() - t0, 2),
    }
    save_quantized(model, report.results, out, manifest, tokenizer=lm.tokenizer)
    eff = report.effective_bits()
    summary = {"out": str(out), "method": desc, "layers": len(report.results),
               "effective_bits": eff, "seconds": manifest["seconds"]}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"quantized:       {folder} -> {out}")
    print(f"method:          {desc} (group {method.group_size}{', act-order' if method.act_order else ''})")
    print(f"layers:          {len(report.results)} linears")
    if args.bit_budget is not None:
        hist = bits_histogram(report.bits)
        print("bits per layer:  " + ", ".join(f"{n} x {b}-bit" for b, n in sorted(hist.items())))
    print(f"effective bits:  {eff:.4f} per weight (all metadata included)")
    print(f"time:            {manifest['seconds']:.1f} s")
    print(f"evaluate with:   bitmix eval --model {out}")
    return 0
