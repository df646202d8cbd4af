"""`bitmix bench pmpd`: PMPD's precision policies on held-out prompts — uniform high, uniform low,
static and learned (`bitmix train-scheduler`'s file).

Host-only, on golden's integer path (``golden.pmpd.QuantLinear``: what the device computes, bit for
bit, as ``tests/sw_driver/test_accel.py`` checks on the virtual board): the shipped reference model
quantized as ``bitmix demo`` does (BitMoD RTN at the default top's group size, lm_head included).
``--prompts`` test prompts from the second half of the held-out split (the first half is the
static sweep's validation split), T greedy tokens each (the scheduler file's T). Each prompt is
decoded once per switch point (``golden.pmpd_sched.outcomes``); uniform high switches after T
tokens, uniform low after 0, static after the swept n, learned where its classifier says for
that prompt; the sweep's two inner switch points (T/3, 2T/3) are reported too, the fixed
schedules of the learned one's cost. Against the full-precision (float model) output: ROUGE-L F1
(``rouge-score``) and exact-token agreement; the float model's perplexity of the continuation;
terms and weight bits per weight read; device cycles per generated token from the RTL cycle model
(``golden.cycle_model.gemv_rtl_cycles`` of every tile of every layer, at the token's precision).
Means with 95 % bootstrap intervals over prompts, and paired intervals of the differences that
matter (learned vs static, static vs uniform high). JSON in ``build/bench/pmpd.json``, a table,
and a plot in ``docs/img/pmpd_policies.png`` (``--plot``).
"""

from __future__ import annotations

import json
import math
import pathlib
import random

__all__ = ["register", "run", "pmpd_model", "prompt_set", "token_cycles", "weight_bits", "bootstrap"]


def register(bsub) -> None:
    from bitmix.argtypes import int_in_range
    from bitmix.cmd_train_scheduler import DEFAULT_PATH

    p = bsub.add_parser("pmpd", help="PMPD policies (uniform high/low, static, learned) on held-out prompts: "
                                     "ROUGE-L, exact tokens, perplexity, bits, cycles",
                        description=__doc__.splitlines()[0])
    p.add_argument("--scheduler", default=DEFAULT_PATH, metavar="FILE",
                   help=f"`bitmix train-scheduler`'s file (default {DEFAULT_PATH})")
    p.add_argument("--prompts", type=int_in_range("--prompts", 2), default=48,
                   help="test prompts (default 48)")
    p.add_argument("--out", default="build/bench", metavar="DIR", help="folder for pmpd.json")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="also draw ROUGE-L against cycles per token (e.g. docs/img/pmpd_policies.png)")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def pmpd_model():
    """(quantized model with ``QuantLinear`` layers, float model, info): the reference model as
    ``bitmix demo`` quantizes it for the default top."""
    import torch

    from bitmix.cmd_demo import quantized_reference
    from fpga.top_params import TopParams
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
    from golden.pmpd import QuantLinear, replace_linears

    torch.set_num_threads(1)
    g = TopParams.make().gemv
    model, qs = quantized_reference(g)
    float_model = load_model(REFERENCE_MODEL_DIR)
    replace_linears(model, lambda name, lin: QuantLinear(qs[name], name, g.act_bits))
    return model, float_model, {"model": "reference_model", "quantizer": f"rtn-{g.format_sets[0].name}",
                                "group_size": g.group_size}


def prompt_set(kind: str, count: int, prompt_len: int, seed: int = 0) -> list:
    """Prompts (token tensors): ``train`` at random offsets of the training split with random
    lengths in [prompt_len/2, prompt_len] (seeded); ``val`` / ``test`` of ``prompt_len`` bytes
    evenly spaced in the first / second half of the held-out split."""
    import torch

    from golden.data import reference_corpus

    train, held = (bytes(b) for b in reference_corpus())
    if kind == "train":
        rng = random.Random(seed)
        out = []
        for _ in range(count):
            n = rng.randint(max(1, prompt_len // 2), prompt_len)
            o = rng.randrange(len(train) - n)
            out.append(torch.tensor(list(train[o:o + n])))
        return out
    half = held[:len(held) // 2] if kind == "val" else held[len(held) // 2:]
    step = (len(half) - prompt_len) // count
    return [torch.tensor(list(half[i * step:i * step + prompt_len])) for i in range(count)]


def token_cycles(model, gemv, precision: int) -> int:
    """Engine cycles of one generated token (every linear's tiles, one GEMV each) at ``precision``
    by the RTL cycle model (``period`` per GEMV: back-to-back GEMVs; the device's STATUS adds the
    drain latency per run)."""
    from golden.cycle_model import gemv_rtl_cycles
    from golden.pmpd import QuantLinear
    from sw_driver.accel import tile_plan

    lay, total = gemv.layout, 0
    for m in model.modules():
        if isinstance(m, QuantLinear):
            qw = m.qw
            for rows, cols in tile_plan(*qw.shape, gemv.max_n, gemv.max_k, gemv.group_size):
                ids = qw.fmt_ids[rows, cols.start // gemv.group_size:cols.stop // gemv.group_size]
                total += gemv_rtl_cycles(lay, ids, 0, precision, latency=gemv.latency)["period"]
    return total


def weight_bits(fs, precision: int) -> float:
    """Bits per weight value read at ``precision``: log2 of the distinct values a format of the set
    can give with that many terms (all its codes at 0 = full), averaged over the set's formats."""
    out = []
    for f in fs.formats:
        vals = {f.codebook[c] if not precision else f.truncated_value(c, precision)
                for c in range(1 << f.bits)}
        out.append(math.log2(len(vals)))
    return sum(out) / len(out)


def bootstrap(values, *, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95 % percentile bootstrap interval over ``values``."""
    rng = random.Random(seed)
    n = len(values)
    m = sum(values) / n
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    return m, means[int(0.025 * reps)], means[int(0.975 * reps) - 1]


def run(args) -> int:
    import sys

    from tqdm import tqdm

    from fpga.top_params import TopParams
    from golden.pmpd_sched import load_scheduler, outcomes

    show = not (args.no_progress or args.json) and sys.stderr.isatty()
    sched, meta = load_scheduler(args.scheduler)
    T, points, low = meta["tokens"], meta["switch_points"], meta["low"]
    model, float_model, info = pmpd_model()
    g = TopParams.make().gemv
    fs = g.format_sets[0]
    test = [outcomes(model, float_model, ids, T, 0, low)
            for ids in tqdm(prompt_set("test", args.prompts, meta["prompt_len"]), desc="test prompts",
                            unit="prompt", disable=not show, leave=False)]
    cyc = {0: token_cycles(model, g, 0), low: token_cycles(model, g, low)}
    terms = {0: fs.max_terms, low: min(low, fs.max_terms)}
    bits = {0: weight_bits(fs, 0), low: weight_bits(fs, low)}
    choice = {"uniform high": lambda o: 3, "uniform low": lambda o: 0,
              "static": lambda o: meta["static_class"], "learned": lambda o: sched.decide(o.kv),
              # the sweep's other switch points, for the learned scheduler's comparison at like cost
              **{f"switch after {points[c]}": (lambda o, c=c: c) for c in (1, 2)}}
    per = {}
    for name, pick in choice.items():
        cls = [pick(o) for o in test]
        n_high = [points[c] for c in cls]

        def mix(table, n_high=n_high):
            return [(n * table[0] + (T - n) * table[low]) / T for n in n_high]

        per[name] = {"class": cls, "rougeL": [o.rouge[c] for o, c in zip(test, cls, strict=True)],
                     "exact": [o.exact[c] for o, c in zip(test, cls, strict=True)],
                     "ppl": [o.ppl[c] for o, c in zip(test, cls, strict=True)],
                     "terms": mix(terms), "bits": mix(bits), "cycles": mix(cyc)}
    rows = []
    for name, r in per.items():
        row = {"policy": name, "classes": [r["class"].count(c) for c in range(4)]}
        for key in ("rougeL", "exact", "ppl", "terms", "bits", "cycles"):
            m, lo, hi = bootstrap(r[key])
            row[key], row[key + "_ci"] = m, [lo, hi]
        rows.append(row)
    diffs = {}
    for a, b in (("learned", "static"), ("static", "uniform high"), ("learned", "uniform high"),
                 ("static", "uniform low"), ("learned", "uniform low"),
                 ("learned", f"switch after {points[1]}"), ("learned", f"switch after {points[2]}")):
        for key in ("rougeL", "exact", "cycles"):
            d = [x - y for x, y in zip(per[a][key], per[b][key], strict=True)]
            m, lo, hi = bootstrap(d)
            diffs[f"{a} - {b}: {key}"] = {"mean": m, "ci": [lo, hi], "supported": lo > 0 or hi < 0}
    result = {**info, "scheduler": str(args.scheduler), "tokens": T, "switch_points": points,
              "static_n": meta["static_n"], "low": low, "prompts": args.prompts,
              "prompt_len": meta["prompt_len"], "cycles_per_token": {str(p): c for p, c in cyc.items()},
              "weight_bits": {str(p): b for p, b in bits.items()}, "rows": rows, "paired_differences": diffs}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pmpd.json").write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        _plot(rows, args.plot)
    if args.json:
        print(json.dumps(result))
        return 0
    for line in table(result):
        print(line)
    print(f"JSON: {out / 'pmpd.json'}" + (f"; plot: {args.plot}" if args.plot else ""))
    return 0


def table(result: dict) -> list[str]:
    """The text table (README's figures) of a ``bench pmpd`` result."""
    def ci(r, k, f):
        lo, hi = r[k + "_ci"]
        return f"{r[k]:{f}} [{lo:{f}}, {hi:{f}}]"

    lines = [f"{result['prompts']} held-out prompts x {result['tokens']} tokens, {result['quantizer']} group "
             f"{result['group_size']}; static n = {result['static_n']} (validation sweep); vs the float "
             "model's output; mean [95 % bootstrap CI]",
             "| policy | classes 0/T3/2T3/T | terms/weight | weight bits | device cycles/token | ROUGE-L "
             "| exact tokens | ppl (float model) |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['policy']} | {'/'.join(map(str, r['classes']))} | {r['terms']:.2f} "
                     f"| {r['bits']:.2f} "
                     f"| {r['cycles']:,.0f} | {ci(r, 'rougeL', '.3f')} | {ci(r, 'exact', '.3f')} "
                     f"| {ci(r, 'ppl', '.2f')} |")
    lines.append("paired differences (mean [95 % CI]; * = the interval excludes 0):")
    for k, d in result["paired_differences"].items():
        f = ",.0f" if k.endswith("cycles") else "+.3f"
        star = " *" if d["supported"] else ""
        lines.append(f"  {k}: {d['mean']:{f}} [{d['ci'][0]:{f}}, {d['ci'][1]:{f}}]{star}")
    return lines


def _plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        lo, hi = r["rougeL_ci"]
        ax.errorbar([r["cycles"]], [r["rougeL"]], yerr=[[r["rougeL"] - lo], [hi - r["rougeL"]]], fmt="o",
                    capsize=4, label=r["policy"])
    ax.set_xlabel("device cycles per generated token (RTL cycle model)")
    ax.set_ylabel("ROUGE-L vs float model (95 % CI)")
    ax.set_title("PMPD policies, reference model, held-out prompts")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
