"""`bitmix train-reference`: train the shipped reference model from scratch (golden/train_reference.py)."""

from __future__ import annotations

import dataclasses

from bitmix.argtypes import float_in_range, int_in_range

#: option -> (converter, help); the defaults are golden.train_reference.TrainConfig's
_OPTIONS = {
    "steps": (int_in_range("--steps", 1), "optimizer steps"),
    "batch": (int_in_range("--batch", 1), "windows per batch"),
    "seqlen": (int_in_range("--seqlen", 2), "bytes per training window"),
    "lr": (float_in_range("--lr", 0.0), "peak learning rate"),
    "warmup": (int_in_range("--warmup", 0), "linear warm-up steps"),
    "weight_decay": (float_in_range("--weight-decay", 0.0), "AdamW weight decay on matrices"),
    "seed": (int_in_range("--seed", 0), "seed of the initialisation and the batch order"),
    "threads": (int_in_range("--threads", 1), "torch threads (the weights depend on it)"),
    "eval_every": (int_in_range("--eval-every", 1), "held-out perplexity every N steps"),
}


def register(sub) -> None:
    from golden.train_reference import TrainConfig

    p = sub.add_parser("train-reference", help="train the shipped 2.5 M-parameter reference model",
                       description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, metavar="FOLDER", help="output model folder")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        conv, text = _OPTIONS[f.name]
        default = getattr(defaults, f.name)
        p.add_argument("--" + f.name.replace("_", "-"), type=conv, default=default,
                       help=f"{text} (default {default})")
    p.set_defaults(func=run)


def run(args) -> int:
    from golden.train_reference import TrainConfig, train

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    train(args.out, cfg, log=lambda s: print(s, flush=True))
    return 0
