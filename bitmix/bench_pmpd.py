"""`bitmix bench pmpd`: PMPD precision policies on held-out prompts (uniform high, uniform low, static).

Host-only, on golden's integer path (``golden.pmpd.QuantLinear``: what the device computes, bit for
bit, as ``tests/sw_driver/test_accel.py`` checks on the virtual board): the shipped reference model
quantized as ``bitmix demo`` does (BitMoD RTN at the default top's group size, lm_head included),
``--prompts`` held-out prompts of ``--prompt-len`` bytes at evenly spaced offsets of the held-out
split, ``--tokens`` greedy tokens per policy. Against the uniform-high output: ROUGE-L F1
(``rouge-score``, words) and exact-token agreement; the float model's perplexity of each
continuation; the mean terms per weight read. JSON in ``build/bench/pmpd.json`` and a table.
"""

from __future__ import annotations

import json
import pathlib

__all__ = ["register", "run", "policies"]


def register(bsub) -> None:
    from bitmix.argtypes import int_in_range

    p = bsub.add_parser("pmpd", help="PMPD precision policies on held-out prompts: ROUGE-L, exact-token "
                                     "agreement, perplexity", description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int_in_range("--prompts", 1), default=16, help="prompts (default 16)")
    p.add_argument("--prompt-len", type=int_in_range("--prompt-len", 1), default=32,
                   help="bytes per prompt (default 32)")
    p.add_argument("--tokens", type=int_in_range("--tokens", 2), default=32,
                   help="generated tokens per prompt (default 32)")
    p.add_argument("--out", default="build/bench", metavar="DIR", help="folder for pmpd.json")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def policies(T: int) -> dict:
    """Name -> (switch after n tokens, low precision): full, 1 term, static at T/4, T/2, 3T/4."""
    return {"uniform high": (T, 1), "uniform low": (0, 1),
            **{f"static n={n}": (n, 1) for n in (T // 4, T // 2, 3 * T // 4)}}


def run(args) -> int:
    import statistics

    import torch
    from rouge_score import rouge_scorer

    from bitmix.cmd_demo import quantize_for_device
    from fpga.top_params import TopParams
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
    from golden.data import decode, reference_corpus
    from golden.pmpd import QuantLinear, generate, replace_linears, set_precision, static_schedule

    torch.set_num_threads(1)
    g = TopParams.make().gemv
    model, float_model = load_model(REFERENCE_MODEL_DIR), load_model(REFERENCE_MODEL_DIR)
    qs = quantize_for_device(model, g, "rtn", False)
    replace_linears(model, lambda name, lin: QuantLinear(qs[name], name, g.act_bits))
    held = bytes(reference_corpus()[1])
    step = (len(held) - args.prompt_len) // args.prompts
    prompts = [torch.tensor(list(held[i * step:i * step + args.prompt_len])) for i in range(args.prompts)]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pol = policies(args.tokens)
    per: dict = {name: {"rougeL": [], "exact": [], "ppl": [], "terms": []} for name in pol}
    terms = {0: g.max_terms, 1: 1}
    for ids in prompts:
        ref_ids = None
        for name, (n, low) in pol.items():
            d = generate(model, ids, args.tokens, static_schedule(n, 0, low),
                         lambda p: set_precision(model, p))
            new = d.new_ids
            if ref_ids is None:
                ref_ids = new
            with torch.no_grad():
                lg = float_model(d.ids.view(1, -1))[0, len(ids) - 1:-1].to(torch.float64)
                nll = -torch.log_softmax(lg, -1).gather(1, new.view(-1, 1)).mean()
            r = per[name]
            a, b = decode(ref_ids), decode(new)      # rouge-score scores word-free texts 0: equal is 1
            r["rougeL"].append(1.0 if a == b else scorer.score(a, b)["rougeL"].fmeasure)
            r["exact"].append(float((new == ref_ids).double().mean()))
            r["ppl"].append(float(torch.exp(nll)))
            r["terms"].append(sum(terms[p] for p in d.precisions) / len(d.precisions))
    rows = []
    for name, r in per.items():
        row = {"policy": name, "switch_after": pol[name][0]}
        for key, vals in r.items():
            row[key] = statistics.fmean(vals)
            row[key + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        rows.append(row)
    result = {"model": "reference_model", "quantizer": f"rtn-{g.format_sets[0].name}",
              "group_size": g.group_size, "prompts": args.prompts, "prompt_len": args.prompt_len,
              "tokens": args.tokens, "rows": rows}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pmpd.json").write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.prompts} held-out prompts x {args.tokens} tokens, {result['quantizer']} group "
          f"{g.group_size}; vs uniform high (mean ± sd over prompts)")
    print(f"{'policy':<16} {'terms/weight':>12} {'ROUGE-L':>14} {'exact tokens':>14} {'ppl (float)':>14}")
    for r in rows:
        print(f"{r['policy']:<16} {r['terms']:>12.2f} {r['rougeL']:>7.3f} ± {r['rougeL_sd']:.3f} "
              f"{r['exact']:>7.3f} ± {r['exact_sd']:.3f} {r['ppl']:>7.2f} ± {r['ppl_sd']:.2f}")
    print(f"JSON: {out / 'pmpd.json'}")
    return 0
