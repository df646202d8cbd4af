"""Train the shipped reference model: ``python -m golden.train_reference --out golden/reference_model``.

A 2.5 M-parameter LLaMA (hidden 256, 4 layers, 4 heads / 2 KV heads, intermediate 512: every
K dimension is a multiple of 128 so group-128 quantization applies) with a byte vocabulary,
trained on the train split of ``pydoc_data.topics`` (see golden/data.py). Seeded: the
initialisation, the batch order and the thread count are fixed, so a rerun with the same torch
build and thread count reproduces the weights bit for bit. The 700 default steps take about
8-10 min on 2 idle CPU cores; the shipped run took 27 min on a 2-core machine shared with other
jobs.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

ARCH = dict(vocab_size=256, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
            rope_theta=10000.0, max_position_embeddings=2048, tie_word_embeddings=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output model folder")
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=100)
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from golden.checkpoint import save_model
    from golden.data import encode, reference_corpus
    from golden.evaluate import perplexity
    from golden.model import LlamaConfig, LlamaForCausalLM, num_parameters

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_bytes, heldout_bytes = reference_corpus()
    train, heldout = encode(train_bytes), encode(heldout_bytes)
    model = LlamaForCausalLM(LlamaConfig(**ARCH)).init_weights(args.seed)
    n_params = num_parameters(model)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10 %
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    g = torch.Generator().manual_seed(args.seed)
    log = []
    t0 = time.time()
    ema = None
    print(f"params {n_params}, train {len(train)} bytes, heldout {len(heldout)} bytes", flush=True)
    for step in range(args.steps):
        starts = torch.randint(0, len(train) - args.seqlen - 1, (args.batch,), generator=g)
        x = torch.stack([train[s:s + args.seqlen + 1] for s in starts.tolist()])
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            ppl = perplexity(model, heldout, args.seqlen, progress=False)
            model.train()
            rec = {"step": step + 1, "train_loss_ema": round(ema, 4),
                   "heldout_ppl": round(ppl, 4), "elapsed_s": round(time.time() - t0, 1)}
            log.append(rec)
            print(json.dumps(rec), flush=True)
    wall = time.time() - t0
    model.eval()
    out = save_model(model, args.out)
    summary = {"params": n_params, "steps": args.steps, "batch": args.batch,
               "seqlen": args.seqlen, "tokens_seen": args.steps * args.batch * args.seqlen,
               "wall_s": round(wall, 1), "final_train_loss_ema": round(ema, 4),
               "heldout_ppl": log[-1]["heldout_ppl"], "log": log, "args": vars(args)}
    (pathlib.Path(out) / "training_log.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "log"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
