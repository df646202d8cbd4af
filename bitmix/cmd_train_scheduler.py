"""`bitmix train-scheduler`: train PMPD's learned precision scheduler on the reference model.

For ``--prompts`` prompts of the training split (bitmix.pmpd_experiment) it decodes ``--tokens``
tokens with the float model and with the quantized model switching from high to low precision
after each of 0, T/3, 2T/3 and T tokens, labels each prompt with the earliest switch whose
ROUGE-L against the float output reaches the all-high one (golden.pmpd_learned), and trains the
classifier on the high prefill's last-layer KV cache. Seeded and single-threaded: the same
command gives the same file. Output: ``--out`` (safetensors) and a JSON summary beside it.
"""

from __future__ import annotations

import json
import pathlib
import time

from bitmix.argtypes import int_in_range

__all__ = ["register", "run", "train", "DEFAULT_PATH"]

DEFAULT_PATH = "build/pmpd/scheduler.safetensors"


def add_options(p) -> None:
    p.add_argument("--tokens", type=int_in_range("--tokens", 3), default=24,
                   help="generated tokens T per prompt; classes stay high for 0, T/3, 2T/3, T (default 24)")
    p.add_argument("--prompt-len", type=int_in_range("--prompt-len", 1), default=32,
                   help="bytes per prompt (default 32)")


def register(sub) -> None:
    p = sub.add_parser("train-scheduler", help="train PMPD's learned precision scheduler (reference model)",
                       description=__doc__.splitlines()[0])
    add_options(p)
    p.add_argument("--prompts", type=int_in_range("--prompts", 8), default=512,
                   help="training prompts (default 512)")
    p.add_argument("--epochs", type=int_in_range("--epochs", 1), default=30, help="epochs (default 30)")
    p.add_argument("--seed", type=int_in_range("--seed", 0), default=0, help="seed (default 0)")
    p.add_argument("--out", default=DEFAULT_PATH, metavar="FILE",
                   help=f"output file (default {DEFAULT_PATH})")
    p.set_defaults(func=run)


def train(*, tokens: int, prompt_len: int, prompts: int, epochs: int, seed: int, out, setup=None,
          log=print) -> dict:
    """Build the labelled set, train, save ``out``; the summary dict (also written as JSON)."""
    import torch

    from bitmix import pmpd_experiment as px
    from golden import pmpd_learned as pl

    t0 = time.monotonic()
    s = setup or px.setup()
    ids = px.prompt_batch("train", prompts, prompt_len, seed)
    sw = pl.switch_points(tokens)
    log(f"decoding {prompts} training prompts x {tokens} tokens: float, then high -> low after "
        f"{', '.join(map(str, sw))} tokens")
    dec = px.branch_decodes(
        s, ids, tokens, sw, uniform_low=False,
        progress=lambda n: log(f"  switch after {n}: done ({time.monotonic() - t0:.0f} s)"))
    rouge = torch.stack([px.score(s, ids, dec["switch"][n], dec["ref"],
                                  [px.precisions_of(n, tokens)] * prompts)["rougeL"] for n in sw], 1)
    labels = torch.tensor([pl.label_from_rouge(r.tolist()) for r in rouge])
    k, v = dec["kv"]
    cfg = pl.SchedulerConfig(kv_heads=k.shape[1], head_dim=k.shape[3], tokens=tokens, high=px.HIGH,
                             low=px.LOW)
    res = pl.train_scheduler(k, v, labels, cfg, seed=seed, epochs=epochs, log=log)
    extra = {"quantizer": s.quantizer, "prompt_len": prompt_len, "prompts": prompts, "seed": seed}
    pl.save(res.model, out, extra)
    summary = {**extra, "tokens": tokens, "switch_points": list(sw), "class_counts": res.class_counts,
               "train_accuracy": res.train_accuracy, "val_accuracy": res.val_accuracy,
               "majority_val_accuracy": res.majority_val_accuracy,
               "mean_rougeL_by_switch": [float(r) for r in rouge.mean(0)],
               "seconds": round(time.monotonic() - t0, 1)}
    out = pathlib.Path(out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    log(f"labels (stay high for {', '.join(map(str, sw))}): {res.class_counts} in the training part; "
        f"accuracy train {res.train_accuracy:.3f}, held-out 10 % {res.val_accuracy:.3f} "
        f"(majority class {res.majority_val_accuracy:.3f})")
    log(f"scheduler: {out} ({summary['seconds']} s)")
    return summary


def run(args) -> int:
    import torch

    torch.set_num_threads(1)
    train(tokens=args.tokens, prompt_len=args.prompt_len, prompts=args.prompts, epochs=args.epochs,
          seed=args.seed, out=args.out)
    return 0
