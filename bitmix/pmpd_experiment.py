"""PMPD on the shipped reference model: prompts, branch decodes, labels and per-prompt scores,
shared by `bitmix train-scheduler` and `bitmix bench pmpd`.

The model is quantized as `bitmix demo` quantizes it (BitMoD RTN at the default top's group
size, ``lm_head`` included) and runs golden's integer path (``golden.pmpd.QuantLinear``: what the
device computes, bit for bit). Precisions: high = 0 (every term, the full BitMoD weight), low = 1
(each weight's first signed power-of-two term). Every PMPD policy prefills at high; "stay high
for n" keeps the first ``max(1, n)`` generated tokens at high (the prefill makes token 0).

Prompts are ``length`` bytes at seeded random offsets of one split of ``golden.data``'s corpus:
the scheduler trains on the first 90 % of the training split, the static sweep picks ``n`` on
its last 10 % (validation), and policies are compared on the held-out split. The reference for
ROUGE-L and exact-token agreement is the float (unquantized) model's greedy continuation.
Decodes are batched (``golden.pmpd.generate_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bitmix.errors import BitmixError

__all__ = ["Setup", "setup", "prompt_batch", "split_bytes", "branch_decodes", "score", "precisions_of"]

HIGH, LOW = 0, 1
SPLITS = ("train", "validation", "heldout")


@dataclass
class Setup:
    """The quantized model on golden's integer path, its float twin, the engine's parameters and
    the device cycles of one decode token's forward at each precision (``golden.cycle_model``)."""

    model: object
    float_model: object
    gemv: object
    quantizer: str
    cycles: dict[int, int]
    terms: dict[int, int]


def setup() -> Setup:
    from bitmix.cmd_demo import quantize_for_device
    from fpga.top_params import TopParams
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
    from golden.cycle_model import gemv_rtl_cycles
    from golden.pmpd import QuantLinear, replace_linears

    g = TopParams.make().gemv
    model, float_model = load_model(REFERENCE_MODEL_DIR), load_model(REFERENCE_MODEL_DIR)
    qs = quantize_for_device(model, g, "rtn", False)
    replace_linears(model, lambda name, lin: QuantLinear(qs[name], name, g.act_bits))
    cycles = {p: sum(gemv_rtl_cycles(g.layout, qw.fmt_ids, 0, p, latency=g.latency)["period"]
                     for qw in qs.values()) for p in (HIGH, LOW)}
    return Setup(model, float_model, g, f"rtn-{g.format_sets[0].name}", cycles,
                 {HIGH: g.max_terms, LOW: min(LOW, g.max_terms)})


def split_bytes(split: str) -> bytes:
    """The bytes of ``split`` (one of :data:`SPLITS`)."""
    from golden.data import reference_corpus

    train, held = (bytes(b) for b in reference_corpus())
    cut = len(train) * 9 // 10
    parts = {"train": train[:cut], "validation": train[cut:], "heldout": held}
    if split not in parts:
        raise BitmixError(f"PMPD: unknown split {split!r} (one of {', '.join(SPLITS)})")
    return parts[split]


def prompt_batch(split: str, count: int, length: int, seed: int) -> torch.Tensor:
    """``[count, length]`` byte ids at seeded random offsets of ``split``."""
    data = split_bytes(split)
    if len(data) <= length:
        raise BitmixError(f"PMPD: split {split} has {len(data)} bytes, prompts need more than {length}")
    g = torch.Generator().manual_seed(seed)
    offs = torch.randint(0, len(data) - length, (count,), generator=g).tolist()
    return torch.tensor([list(data[o:o + length]) for o in offs], dtype=torch.long)


def precisions_of(n_high: int | None, tokens: int) -> list[int]:
    """Per generated token: ``None`` = uniform low; else high for ``max(1, n_high)`` tokens."""
    if n_high is None:
        return [LOW] * tokens
    k = min(tokens, max(1, n_high))
    return [HIGH] * k + [LOW] * (tokens - k)


def _decode(s: Setup, prompts: torch.Tensor, tokens: int, n_high: int | None, batch: int):
    from golden.pmpd import generate_batch, set_precision

    prec = precisions_of(n_high, tokens)
    outs, ks, vs = [], [], []
    for i in range(0, len(prompts), batch):
        new, (k, v) = generate_batch(s.model, prompts[i:i + batch], tokens, lambda j: prec[j],
                                     lambda p: set_precision(s.model, p))
        outs.append(new)
        ks.append(k)
        vs.append(v)
    return torch.cat(outs), torch.cat(ks), torch.cat(vs)


def branch_decodes(s: Setup, prompts: torch.Tensor, tokens: int, switches: tuple[int, ...], *,
                   uniform_low: bool = True, batch: int = 64, progress=None) -> dict:
    """Greedy continuations of every prompt: ``ref`` (float model), ``switch[n]`` for each n of
    ``switches`` and ``low`` (uniform low); ``kv`` = the high prefill's last-layer (keys, values)."""
    from golden.pmpd import generate_batch

    out: dict = {"switch": {}}
    refs = []
    for i in range(0, len(prompts), batch):
        refs.append(generate_batch(s.float_model, prompts[i:i + batch], tokens, lambda j: HIGH,
                                   lambda p: None)[0])
    out["ref"] = torch.cat(refs)
    todo = list(switches) + ([None] if uniform_low else [])
    for n in todo:
        new, k, v = _decode(s, prompts, tokens, n, batch)
        if n is None:
            out["low"] = new
        else:
            out["switch"][n] = new
            out.setdefault("kv", (k, v))
        if progress:
            progress(n)
    return out


def score(s: Setup, prompts: torch.Tensor, new: torch.Tensor, ref: torch.Tensor,
          precisions: list[list[int]]) -> dict[str, torch.Tensor]:
    """Per prompt: ROUGE-L F1 (words, ``rouge-score``) and exact-token agreement against ``ref``;
    the float model's perplexity of the continuation; mean terms per weight and device cycles
    per generated token (each token's forward at its precision)."""
    from rouge_score import rouge_scorer

    from golden.data import decode

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = []
    for a_ids, b_ids in zip(ref, new):
        a, b = decode(a_ids), decode(b_ids)
        rouge.append(1.0 if a == b else scorer.score(a, b)["rougeL"].fmeasure)
    with torch.no_grad():
        full = torch.cat([prompts, new], 1)
        lg = s.float_model(full)[:, prompts.shape[1] - 1:-1].to(torch.float64)
        nll = -torch.log_softmax(lg, -1).gather(2, new.unsqueeze(2)).squeeze(2).mean(1)
    return {"rougeL": torch.tensor(rouge, dtype=torch.float64),
            "exact": (new == ref).double().mean(1),
            "ppl": torch.exp(nll),
            "terms": torch.tensor([sum(s.terms[p] for p in pr) / len(pr) for pr in precisions],
                                  dtype=torch.float64),
            "cycles": torch.tensor([sum(s.cycles[p] for p in pr) / len(pr) for pr in precisions],
                                   dtype=torch.float64)}
