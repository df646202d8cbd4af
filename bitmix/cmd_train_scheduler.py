"""`bitmix train-scheduler`: PMPD's learned and static precision schedulers for the reference model.

    bitmix train-scheduler                    # ~4 min on 2 cores; writes build/pmpd/scheduler.pt
    bitmix bench pmpd                         # then: the four policies on held-out prompts

On the shipped reference model quantized as ``bitmix demo`` does (BitMoD RTN at the default top's
group size, lm_head included), on golden's integer path (what the device computes, bit for bit):
``--train`` prompts from the training split (random offsets and lengths, seeded) are decoded for
``--tokens`` T tokens at full precision by the float model and by the quantized model switching
from full precision to ``--low`` terms per weight after 0, T/3, 2T/3 and T tokens; the learned
scheduler (``golden.pmpd_sched.KVScheduler``, on the last layer's KV cache after the prefill) is
trained on PMPD's labels (earliest switch whose ROUGE-L against the float output reaches uniform
high's). The static scheduler's n is chosen by a sweep on ``--val`` validation prompts (the first
half of the held-out split): the earliest switch point whose mean ROUGE-L is within
``--tolerance`` of uniform high's. Both go into one file (the classifier is 17 K parameters).
Reproducible: the same seed gives the same file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bitmix.argtypes import float_in_range, int_in_range

__all__ = ["register", "run", "DEFAULT_PATH"]

DEFAULT_PATH = "build/pmpd/scheduler.pt"


def register(sub) -> None:
    p = sub.add_parser("train-scheduler", help="train PMPD's learned scheduler and sweep the static one "
                                               "(reference model)", description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int_in_range("--train", 4), default=96, metavar="N",
                   help="training prompts (default 96)")
    p.add_argument("--val", type=int_in_range("--val", 1), default=24, metavar="N",
                   help="validation prompts for the static sweep (default 24)")
    p.add_argument("--tokens", type=int_in_range("--tokens", 3), default=24, metavar="T",
                   help="generated tokens per prompt (default 24: classes 0, 8, 16, 24)")
    p.add_argument("--prompt-len", type=int_in_range("--prompt-len", 4), default=32, metavar="BYTES",
                   help="prompt bytes (training prompts: random lengths from half this to this)")
    p.add_argument("--low", type=int_in_range("--low", 1), default=1, metavar="TERMS",
                   help="precision after the switch, terms per weight (default 1)")
    p.add_argument("--tolerance", type=float_in_range("--tolerance", 0.0, 1.0), default=0.05,
                   help="static sweep: mean ROUGE-L at most this below uniform high's (default 0.05)")
    p.add_argument("--epochs", type=int_in_range("--epochs", 1), default=30, help="default 30 (PMPD's)")
    p.add_argument("--seed", type=int_in_range("--seed", 0, 2**32 - 1), default=0)
    p.add_argument("--out", default=DEFAULT_PATH, metavar="FILE", help=f"default {DEFAULT_PATH}")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    import torch
    from tqdm import tqdm

    from bitmix.bench_pmpd import pmpd_model, prompt_set
    from golden.pmpd_sched import (
        choose_static,
        label,
        outcomes,
        save_scheduler,
        switch_points,
        train_scheduler,
    )

    show = not (args.no_progress or args.json) and sys.stderr.isatty()
    t0 = time.time()
    model, float_model, info = pmpd_model()
    T = args.tokens
    points = switch_points(T)

    def decode_all(prompts, what):
        return [outcomes(model, float_model, ids, T, 0, args.low)
                for ids in tqdm(prompts, desc=what, unit="prompt", disable=not show, leave=False)]

    # the decodes are most of the time: kept next to the output, reused for the same settings
    key = {**info, "train": args.train, "val": args.val, "tokens": T, "prompt_len": args.prompt_len,
           "low": args.low, "seed": args.seed}
    cache = Path(args.out).with_suffix(".outcomes.pt")
    data = torch.load(cache, weights_only=False) if cache.exists() else None
    if data is None or data.get("key") != key:
        data = {"key": key, **{kind: decode_all(prompt_set(kind, count, args.prompt_len, args.seed),
                                                f"{kind} prompts")
                               for kind, count in (("train", args.train), ("val", args.val))}}
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(data, cache)
    train, val = data["train"], data["val"]
    t_data = time.time() - t0
    cfg = model.config
    sched, log = train_scheduler(train, cfg.num_key_value_heads, cfg.head_dim, epochs=args.epochs,
                                 seed=args.seed)
    static_class, val_means = choose_static(val, args.tolerance)
    val_acc = sum(sched.decide(o.kv) == label(o) for o in val) / len(val)
    meta = {**info, "tokens": T, "switch_points": points, "high": 0, "low": args.low,
            "static_class": static_class, "static_n": points[static_class], "tolerance": args.tolerance,
            "val_rouge_by_class": val_means, "train_prompts": args.train, "val_prompts": args.val,
            "prompt_len": args.prompt_len, "seed": args.seed, "epochs": args.epochs,
            "class_counts": log["class_counts"], "train_accuracy": log["train_accuracy"][-1],
            "val_label_accuracy": val_acc,
            "val_class_counts": [sum(label(o) == c for o in val) for c in range(4)],
            "seconds": {"decode": t_data, "total": time.time() - t0}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_scheduler(out, sched, meta)
    if args.json:
        print(json.dumps(meta))
        return 0
    print(f"T = {T} tokens, switch points {points}; full precision -> {args.low} term(s)/weight")
    print(f"learned: {args.train} training prompts, labels per class {log['class_counts']}, "
          f"training accuracy {log['train_accuracy'][-1]:.2f}; validation labels "
          f"{meta['val_class_counts']}, accuracy {val_acc:.2f}")
    print("static sweep (validation, mean ROUGE-L vs float): "
          + ", ".join(f"n={n}: {m:.3f}" for n, m in zip(points, val_means, strict=True))
          + f" -> n = {points[static_class]} (within {args.tolerance} of uniform high)")
    print(f"wrote {out} ({time.time() - t0:.0f} s)")
    return 0
