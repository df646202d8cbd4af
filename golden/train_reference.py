"""Train the shipped reference model (the command is ``bitmix train-reference --out golden/reference_model``).

A 2.5 M-parameter LLaMA (hidden 256, 4 layers, 4 heads / 2 KV heads, intermediate 512: every
K dimension is a multiple of 128 so group-128 quantization applies) with a byte vocabulary,
trained on the train split of ``pydoc_data.topics`` (see golden/data.py). Seeded: the
initialisation, the batch order and the thread count are fixed, so a rerun with the same torch
build and thread count reproduces the weights bit for bit. The 700 default steps take about
8-10 min on 2 idle CPU cores; the shipped run took 27 min on a 2-core machine shared with other
jobs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time

__all__ = ["ARCH", "TrainConfig", "train"]

ARCH = dict(vocab_size=256, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
            rope_theta=10000.0, max_position_embeddings=2048, tie_word_embeddings=False)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults made the shipped model (``bitmix train-reference`` exposes each)."""

    steps: int = 700
    batch: int = 16
    seqlen: int = 256
    lr: float = 2e-3
    warmup: int = 50
    weight_decay: float = 0.1
    seed: int = 0
    threads: int = 2
    eval_every: int = 100


def train(out, cfg: TrainConfig = TrainConfig(), log=print) -> dict:
    """Train, write ``out`` (config.json, model.safetensors, training_log.json); return the summary."""
    import torch
    import torch.nn.functional as F

    from golden.checkpoint import save_model
    from golden.data import encode, reference_corpus
    from golden.evaluate import perplexity
    from golden.model import LlamaConfig, LlamaForCausalLM, num_parameters

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_bytes, heldout_bytes = reference_corpus()
    train_ids, heldout = encode(train_bytes), encode(heldout_bytes)
    model = LlamaForCausalLM(LlamaConfig(**ARCH)).init_weights(cfg.seed)
    n_params = num_parameters(model)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10 %
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    g = torch.Generator().manual_seed(cfg.seed)
    history = []
    t0 = time.time()
    ema = None
    log(f"params {n_params}, train {len(train_ids)} bytes, heldout {len(heldout)} bytes")
    for step in range(cfg.steps):
        starts = torch.randint(0, len(train_ids) - cfg.seqlen - 1, (cfg.batch,), generator=g)
        x = torch.stack([train_ids[s:s + cfg.seqlen + 1] for s in starts.tolist()])
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            ppl = perplexity(model, heldout, cfg.seqlen, progress=False)
            model.train()
            rec = {"step": step + 1, "train_loss_ema": round(ema, 4),
                   "heldout_ppl": round(ppl, 4), "elapsed_s": round(time.time() - t0, 1)}
            history.append(rec)
            log(json.dumps(rec))
    wall = time.time() - t0
    model.eval()
    folder = save_model(model, out)
    summary = {"params": n_params, "steps": cfg.steps, "batch": cfg.batch,
               "seqlen": cfg.seqlen, "tokens_seen": cfg.steps * cfg.batch * cfg.seqlen,
               "wall_s": round(wall, 1), "final_train_loss_ema": round(ema, 4),
               "heldout_ppl": history[-1]["heldout_ppl"], "log": history,
               "args": {"out": str(out), **dataclasses.asdict(cfg)}}
    (pathlib.Path(folder) / "training_log.json").write_text(json.dumps(summary, indent=1) + "\n")
    log(json.dumps({k: v for k, v in summary.items() if k != "log"}))
    return summary
