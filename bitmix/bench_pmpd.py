"""`bitmix bench pmpd`: PMPD's four precision policies on held-out prompts: uniform high, uniform
low, static (n from a sweep on the validation split) and learned (golden.pmpd_learned).

Host-only, on golden's integer path (what the device computes, bit for bit; bitmix.pmpd_experiment
says how the model, the prompts and the splits are made). The static sweep decodes the validation
prompts switching after each of 0, T/3, 2T/3, T tokens and keeps the earliest switch whose mean
ROUGE-L is within ``--rouge-drop`` of all-high's. The learned scheduler is read from
``--scheduler`` and trained first (`bitmix train-scheduler`'s defaults) when the file is missing.
Per policy, mean and 95 % bootstrap interval over prompts: ROUGE-L and exact-token agreement
against the float model's continuation, the float model's perplexity of the continuation, terms
per weight and device cycles per generated token; paired differences learned − static. JSON in
``--out``/pmpd.json, a table, and a plot (``--plot``).
"""

from __future__ import annotations

import json
import pathlib
import time

__all__ = ["register", "run", "evaluate"]

METRICS = ("rougeL", "exact", "ppl", "terms", "cycles")


def register(bsub) -> None:
    from bitmix.argtypes import float_in_range, int_in_range
    from bitmix.cmd_train_scheduler import DEFAULT_PATH, add_options

    p = bsub.add_parser("pmpd", help="PMPD policies (uniform high/low, static, learned) on held-out "
                                     "prompts: ROUGE-L, exact tokens, perplexity, cycles",
                        description=__doc__.splitlines()[0])
    add_options(p)
    p.add_argument("--prompts", type=int_in_range("--prompts", 2), default=128,
                   help="held-out prompts (default 128)")
    p.add_argument("--val-prompts", type=int_in_range("--val-prompts", 2), default=64,
                   help="validation prompts of the static sweep (default 64)")
    p.add_argument("--rouge-drop", type=float_in_range("--rouge-drop", 0.0, 1.0), default=0.02,
                   help="static sweep: largest mean ROUGE-L drop vs all-high (default 0.02)")
    p.add_argument("--scheduler", default=DEFAULT_PATH, metavar="FILE",
                   help=f"trained learned scheduler (default {DEFAULT_PATH}; trained if missing)")
    p.add_argument("--seed", type=int_in_range("--seed", 0), default=1, help="prompt seed (default 1)")
    p.add_argument("--out", default="build/bench", metavar="DIR", help="folder for pmpd.json")
    p.add_argument("--plot", metavar="PNG", help="also draw ROUGE-L against cycles per token")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def static_sweep(s, tokens: int, prompt_len: int, count: int, rouge_drop: float, seed: int) -> dict:
    """The earliest switch point whose mean validation ROUGE-L is within ``rouge_drop`` of all-high's."""
    from bitmix import pmpd_experiment as px
    from golden.pmpd_learned import switch_points

    ids = px.prompt_batch("validation", count, prompt_len, seed)
    sw = switch_points(tokens)
    dec = px.branch_decodes(s, ids, tokens, sw, uniform_low=False)
    mean = {n: float(px.score(s, ids, dec["switch"][n], dec["ref"],
                              [px.precisions_of(n, tokens)] * count)["rougeL"].mean()) for n in sw}
    chosen = next(n for n in sw if mean[n] >= mean[sw[-1]] - rouge_drop)
    return {"candidates": {str(n): mean[n] for n in sw}, "chosen": chosen, "prompts": count}


def evaluate(s, clf, tokens: int, prompt_len: int, count: int, n_static: int, seed: int) -> dict:
    """Per-prompt scores of the four policies on ``count`` held-out prompts, and the learned
    scheduler's choice for each prompt."""
    import torch

    from bitmix import pmpd_experiment as px
    from golden.pmpd_learned import switch_points

    ids = px.prompt_batch("heldout", count, prompt_len, seed)
    sw = switch_points(tokens)
    dec = px.branch_decodes(s, ids, tokens, tuple(sorted(set(sw) | {n_static})))
    with torch.no_grad():
        choice = [sw[c] for c in clf(*dec["kv"]).argmax(-1).tolist()]
    learned = torch.stack([dec["switch"][n][i] for i, n in enumerate(choice)])
    pols = {"uniform high": (dec["switch"][tokens], [px.precisions_of(tokens, tokens)] * count),
            "uniform low": (dec["low"], [px.precisions_of(None, tokens)] * count),
            f"static n={n_static}": (dec["switch"][n_static], [px.precisions_of(n_static, tokens)] * count),
            "learned": (learned, [px.precisions_of(n, tokens) for n in choice])}
    per = {name: px.score(s, ids, new, dec["ref"], prec) for name, (new, prec) in pols.items()}
    return {"per_prompt": per, "learned_choice": choice}


def _summary(per: dict, static_name: str) -> tuple[list[dict], dict]:
    import torch

    from bitmix.stats import mean_diff_ci, resample_index, verdict

    n = len(next(iter(per.values()))["rougeL"])
    idx = resample_index(n)
    rows = []
    for name, m in per.items():
        row = {"policy": name}
        for key in METRICS:
            ci = mean_diff_ci(m[key], torch.zeros_like(m[key]), idx)
            row[key], row[key + "_ci"] = ci["value"], [ci["lo"], ci["hi"]]
        rows.append(row)
    diffs = {}
    for key in ("rougeL", "exact", "terms", "cycles"):
        ci = mean_diff_ci(per["learned"][key], per[static_name][key], idx)
        diffs[key] = {**ci, "verdict": verdict(ci, "learned", "static")}
    return rows, diffs


def run(args) -> int:
    import torch

    from bitmix import pmpd_experiment as px
    from bitmix.cmd_train_scheduler import train
    from golden import pmpd_learned as pl

    torch.set_num_threads(1)
    t0 = time.monotonic()
    s = px.setup()
    path = pathlib.Path(args.scheduler)
    if not path.is_file():
        print(f"{path}: no trained scheduler; training one (bitmix train-scheduler --tokens {args.tokens} "
              f"--prompt-len {args.prompt_len})", flush=True)
        train(tokens=args.tokens, prompt_len=args.prompt_len, prompts=512, epochs=30, seed=0, out=path,
              setup=s, log=lambda m: print(m, flush=True))
    clf, extra = pl.load(path, expect={"tokens": args.tokens, "high": px.HIGH, "low": px.LOW,
                                       "quantizer": s.quantizer, "prompt_len": args.prompt_len})
    sweep = static_sweep(s, args.tokens, args.prompt_len, args.val_prompts, args.rouge_drop, args.seed)
    print(f"static sweep on {args.val_prompts} validation prompts: mean ROUGE-L by switch point "
          + ", ".join(f"{n}: {r:.3f}" for n, r in sweep["candidates"].items())
          + f" -> n = {sweep['chosen']}", flush=True)
    ev = evaluate(s, clf, args.tokens, args.prompt_len, args.prompts, sweep["chosen"], args.seed + 1)
    static_name = f"static n={sweep['chosen']}"
    rows, diffs = _summary(ev["per_prompt"], static_name)
    choices = {str(n): ev["learned_choice"].count(n) for n in pl.switch_points(args.tokens)}
    result = {"model": "reference_model", "quantizer": s.quantizer, "group_size": s.gemv.group_size,
              "precisions": {"high": f"0 (full, {s.terms[px.HIGH]} terms)", "low": "1 term"},
              "reference": "float model, greedy", "prompts": args.prompts, "prompt_len": args.prompt_len,
              "tokens": args.tokens, "static_sweep": sweep, "scheduler": {"file": str(path), **extra},
              "learned_choices": choices, "rows": rows, "learned_minus_static": diffs,
              "cycles_per_token_by_precision": {str(p): c for p, c in s.cycles.items()},
              "seconds": round(time.monotonic() - t0, 1)}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pmpd.json").write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print(json.dumps(result))
        return 0
    print(format_table(result))
    print(f"JSON: {out / 'pmpd.json'}" + (f"; plot: {args.plot}" if args.plot else ""))
    return 0


def format_table(r: dict) -> str:
    lines = [f"{r['prompts']} held-out prompts x {r['tokens']} tokens, {r['quantizer']} group "
             f"{r['group_size']}; against the float model's continuation (mean [95 % CI])",
             f"{'policy':<14} {'terms/weight':>12} {'cycles/token':>12} {'ROUGE-L':>20} "
             f"{'exact tokens':>20} {'ppl (float)':>20}"]
    def ci(w, k, f):
        return f"{w[k]:{f}} [{w[k + '_ci'][0]:{f}}, {w[k + '_ci'][1]:{f}}]"

    for w in r["rows"]:
        lines.append(f"{w['policy']:<14} {w['terms']:>12.2f} {w['cycles']:>12,.0f} "
                     f"{ci(w, 'rougeL', '.3f'):>20} {ci(w, 'exact', '.3f'):>20} {ci(w, 'ppl', '.2f'):>20}")
    lines.append("learned chose (stay high for n: prompts): "
                 + ", ".join(f"{n}: {c}" for n, c in r["learned_choices"].items()))
    lines.append("learned - static: " + "; ".join(
        f"{k} {d['value']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] {d['verdict']}"
        for k, d in r["learned_minus_static"].items()))
    return "\n".join(lines)


def plot(r: dict, path) -> pathlib.Path:
    """ROUGE-L (with its interval) against device cycles per generated token, one point per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for w in r["rows"]:
        lo, hi = w["rougeL_ci"]
        ax.errorbar(w["cycles"], w["rougeL"], yerr=[[w["rougeL"] - lo], [hi - w["rougeL"]]], fmt="o",
                    capsize=4, label=w["policy"])
    ax.set_xlabel("device cycles per generated token (golden.cycle_model)")
    ax.set_ylabel("ROUGE-L vs float model (95 % CI)")
    ax.set_title(f"PMPD on the reference model: {r['prompts']} held-out prompts x {r['tokens']} tokens")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
