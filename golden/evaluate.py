"""Perplexity over non-overlapping windows and greedy generation.

Windows follow GPTQ's evaluation: the token stream is cut into ``len // window`` windows (the
remainder is dropped) and each window is scored independently, so numbers compare with the
published WikiText-2 protocol. Each window predicts its tokens 1..window-1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bitmix.errors import BitmixError


def num_windows(n_tokens: int, window: int, max_windows: int | None = None) -> int:
    n = n_tokens // window
    return n if max_windows is None else min(n, max_windows)


@torch.no_grad()
def window_nlls(model, ids: torch.Tensor, window: int, progress: bool = True,
                max_windows: int | None = None, batch_size: int = 8) -> torch.Tensor:
    """Summed next-token NLL of each non-overlapping window (float64 ``[n]``; window - 1 tokens each).

    Per-window sums are what a paired bootstrap over windows resamples (bitmix/stats.py).
    """
    from tqdm import tqdm

    if window < 2:
        raise BitmixError(f"perplexity: window must be at least 2, got {window}")
    ids = ids.flatten().long()
    n = num_windows(len(ids), window, max_windows)
    if n == 0:
        raise BitmixError(f"perplexity: text has {len(ids)} tokens, fewer than one window "
                          f"of {window}")
    vocab = model.config.vocab_size
    if int(ids.max()) >= vocab:
        raise BitmixError(f"perplexity: token id {int(ids.max())} >= model vocab_size {vocab}")
    windows = ids[: n * window].view(n, window)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    bar = tqdm(total=n, desc="perplexity", unit="win", disable=not progress, leave=False)
    for s in range(0, n, batch_size):
        x = windows[s:s + batch_size].to(device)
        logits = model(x[:, :-1]).float()
        # per-token losses summed in float64: a float32 running sum drifts over many tokens
        nll = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="none")
        out.append(nll.double().view(len(x), -1).sum(-1).cpu())
        bar.update(len(x))
    bar.close()
    model.train(was_training)
    return torch.cat(out)


def perplexity(model, ids: torch.Tensor, window: int, progress: bool = True,
               max_windows: int | None = None, batch_size: int = 8) -> float:
    """exp(mean next-token NLL) over non-overlapping windows of ``ids`` (1-D LongTensor)."""
    nll = window_nlls(model, ids, window, progress, max_windows, batch_size)
    return math.exp(float(nll.sum()) / (len(nll) * (window - 1)))


@torch.no_grad()
def generate(model, prompt_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding with a KV cache; returns prompt + new tokens (1-D in, 1-D out)."""
    squeeze = prompt_ids.dim() == 1
    x = prompt_ids.view(1, -1) if squeeze else prompt_ids
    if x.shape[1] == 0:
        raise BitmixError("generate: the prompt is empty")
    x = x.long().to(next(model.parameters()).device)
    cache = model.new_cache()
    logits = model(x, cache)
    out = [x]
    for i in range(max_new_tokens):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        out.append(nxt)
        if i + 1 < max_new_tokens:
            logits = model(nxt, cache)
    res = torch.cat(out, dim=1).cpu()
    return res[0] if squeeze else res
