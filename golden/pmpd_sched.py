"""PMPD's precision schedulers as its release code implements them (research notes §B2).

Both decide when the decode steps down from the high precision to the low one; the switch points
are the four classes of the learned scheduler, "stay high for 0, T/3, 2T/3, T tokens"
(:func:`switch_points`).

* **Static**: switch after n tokens, the same n for every prompt; n is the earliest switch point
  whose mean ROUGE-L against the full-precision output, on a validation split, is within a
  tolerance of uniform high's (:func:`choose_static`).
* **Learned** (:class:`KVScheduler`): a small classifier on the last decoder layer's K/V cache after
  the high-precision prefill, decided once per prompt. A learnable query ``[H, H, d]`` attends
  over each KV head's cache (``softmax(q Kᵀ/√d) V``), the result is averaged over the queries and
  flattened to ``H·d``, then LayerNorm → Linear → ReLU → dropout → Linear to the four classes.
  Label of a prompt (:func:`label`): the earliest switch point whose ROUGE-L against the
  full-precision output reaches uniform high's (3 decimals); training (:func:`train_scheduler`)
  uses class-balanced oversampling, Adam with PMPD's lr 0.0045 and weight decay 0.0803,
  cross-entropy, all seeded.

"Full precision" is the unquantized float model; ROUGE-L is ``rouge-score``'s (word tokens) on the
decoded bytes, 1 for equal texts (it scores word-free texts 0). :func:`outcomes` decodes one prompt
at every switch point; training, the validation sweep and the held-out report all read it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch
from torch import nn

from bitmix.errors import BitmixError
from golden.pmpd import generate, set_precision, static_schedule

__all__ = ["switch_points", "KVScheduler", "Outcome", "outcomes", "label", "choose_static",
           "learned_schedule",
           "train_scheduler", "save_scheduler", "load_scheduler", "rouge_l", "prefill_kv"]


def switch_points(T: int) -> list[int]:
    """Tokens at high precision of the four classes: 0, T/3, 2T/3, T (rounded)."""
    if T < 3:
        raise BitmixError(f"scheduler: T = {T} generated tokens, at least 3 needed for 4 classes")
    return [round(c * T / 3) for c in range(4)]


_SCORER = None


def rouge_l(ref: str, hyp: str) -> float:
    """ROUGE-L F1 of ``hyp`` against ``ref`` (rouge-score, word tokens); equal texts score 1."""
    global _SCORER
    if ref == hyp:
        return 1.0
    if _SCORER is None:
        from rouge_score import rouge_scorer
        _SCORER = rouge_scorer.RougeScorer(["rougeL"])
    return _SCORER.score(ref, hyp)["rougeL"].fmeasure


@torch.no_grad()
def prefill_kv(model, ids: torch.Tensor, high: int = 0) -> torch.Tensor:
    """The last decoder layer's ``[2, H_kv, len, d]`` K/V cache after prefilling ``ids`` at
    precision ``high`` (what the learned scheduler reads)."""
    set_precision(model, high)
    cache = model.new_cache()
    model(ids.view(1, -1), cache)
    return torch.stack([cache.k[-1][0], cache.v[-1][0]]).float()


@dataclass
class Outcome:
    """One prompt decoded at every switch point.

    Members
    -------
    kv : Tensor
        :func:`prefill_kv` of the prompt.
    reference : Tensor
        The full-precision (float model) greedy continuation.
    new_ids : list of Tensor
        The quantized model's continuation for each switch point.
    rouge, exact, ppl : list of float
        Per switch point: ROUGE-L and exact-token agreement with ``reference``; the float model's
        perplexity of the continuation.
    """

    kv: torch.Tensor
    reference: torch.Tensor
    new_ids: list = field(default_factory=list)
    rouge: list = field(default_factory=list)
    exact: list = field(default_factory=list)
    ppl: list = field(default_factory=list)


@torch.no_grad()
def outcomes(model, float_model, ids: torch.Tensor, T: int, high: int = 0, low: int = 1) -> Outcome:
    """Decode ``T`` tokens of prompt ``ids`` with the float model and with the quantized ``model``
    (``golden.pmpd.QuantLinear`` layers) switching ``high`` → ``low`` at each switch point."""
    from golden.data import decode

    ref = generate(float_model, ids, T, static_schedule(T), lambda p: None).new_ids
    out = Outcome(prefill_kv(model, ids, high), ref)
    for n in switch_points(T):
        new = generate(model, ids, T, static_schedule(n, high, low),
                       lambda p: set_precision(model, p)).new_ids
        lg = float_model(torch.cat([ids, new]).view(1, -1))[0, len(ids) - 1:-1].to(torch.float64)
        nll = -torch.log_softmax(lg, -1).gather(1, new.view(-1, 1)).mean()
        out.new_ids.append(new)
        out.rouge.append(rouge_l(decode(ref), decode(new)))
        out.exact.append(float((new == ref).double().mean()))
        out.ppl.append(float(torch.exp(nll)))
    return out


def label(o: Outcome) -> int:
    """PMPD's label: the earliest switch point whose ROUGE-L reaches uniform high's (the last
    point), compared at 3 decimals."""
    top = round(o.rouge[-1], 3)
    return next(c for c, r in enumerate(o.rouge) if round(r, 3) >= top)


def choose_static(val: list[Outcome], tolerance: float = 0.05) -> tuple[int, list[float]]:
    """The validation sweep: the earliest switch-point class whose mean ROUGE-L is at least
    uniform high's minus ``tolerance``; returns it and the mean ROUGE-L of every class."""
    if not val:
        raise BitmixError("static scheduler sweep: no validation prompts")
    means = [sum(o.rouge[c] for o in val) / len(val) for c in range(4)]
    return next(c for c, m in enumerate(means) if m >= means[-1] - tolerance), means


class KVScheduler(nn.Module):
    """PMPD's learned scheduler (see the module doc).

    Parameters
    ----------
    kv_heads, head_dim : int
        The model's KV heads and head size.
    dropout : float
    classes : int

    Members
    -------
    query : Parameter ``[H, H, d]``
    head : nn.Sequential
        LayerNorm, Linear, ReLU, Dropout, Linear.
    """

    def __init__(self, kv_heads: int, head_dim: int, *, dropout: float = 0.1, classes: int = 4):
        super().__init__()
        self._params = {"kv_heads": kv_heads, "head_dim": head_dim, "dropout": dropout, "classes": classes}
        h, d = kv_heads, head_dim
        self.query = nn.Parameter(torch.randn(h, h, d) / math.sqrt(d))
        self.head = nn.Sequential(nn.LayerNorm(h * d), nn.Linear(h * d, h * d), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(h * d, classes))

    def forward(self, kv: torch.Tensor) -> torch.Tensor:
        """Class logits of one ``[2, H, len, d]`` K/V cache."""
        k, v = kv[0], kv[1]
        att = torch.softmax(self.query @ k.transpose(1, 2) / math.sqrt(k.shape[-1]), -1)   # [H, H, len]
        return self.head((att @ v).mean(1).flatten())

    @torch.no_grad()
    def decide(self, kv: torch.Tensor) -> int:
        """The class for one prompt (eval mode)."""
        was = self.training
        self.eval()
        c = int(self(kv).argmax())
        self.train(was)
        return c


def learned_schedule(sched: KVScheduler, T: int, high: int = 0, low: int = 1):
    """``(schedule, after_prefill, decision)`` for ``golden.pmpd.generate``: the prefill at
    ``high``; ``after_prefill(cache)`` runs the classifier on the last layer's KV cache and the
    decode stays at ``high`` for its class's share of ``T`` tokens (0, T/3, 2T/3, T: the classes
    are fractions of the decode, so a scheduler trained at another T applies); ``decision`` gets
    ``class`` and ``n_high``."""
    decision: dict = {}

    def after_prefill(cache) -> None:
        c = sched.decide(torch.stack([cache.k[-1][0], cache.v[-1][0]]).float())
        decision.update({"class": c, "n_high": round(c * T / 3)})

    def schedule(i: int) -> int:
        return high if i == 0 or i < decision["n_high"] else low

    return schedule, after_prefill, decision


def train_scheduler(data: list[Outcome], kv_heads: int, head_dim: int, *, epochs: int = 30,
                    lr: float = 0.0045, weight_decay: float = 0.0803, accumulate: int = 32,
                    seed: int = 0) -> tuple[KVScheduler, dict]:
    """Train a :class:`KVScheduler` on ``data`` (labels by :func:`label`), classes balanced by
    oversampling; PMPD's optimiser settings (an Adam step per ``accumulate`` examples);
    deterministic for a seed. Returns it and a log (class counts, training accuracy per epoch)."""
    if not data:
        raise BitmixError("train_scheduler: no training prompts")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    labels = [label(o) for o in data]
    by = {c: [i for i, y in enumerate(labels) if y == c] for c in range(4)}
    most = max(len(v) for v in by.values())
    model = KVScheduler(kv_heads, head_dim)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    acc = []
    for _ in range(epochs):
        order = [i for v in by.values() if v for i in v + [rng.choice(v) for _ in range(most - len(v))]]
        rng.shuffle(order)
        model.train()
        for j in range(0, len(order), accumulate):
            opt.zero_grad()
            batch = order[j:j + accumulate]
            for i in batch:
                loss = nn.functional.cross_entropy(model(data[i].kv).view(1, -1), torch.tensor([labels[i]]))
                (loss / len(batch)).backward()
            opt.step()
        acc.append(sum(model.decide(o.kv) == y for o, y in zip(data, labels, strict=True)) / len(data))
    return model, {"class_counts": [len(by[c]) for c in range(4)], "train_accuracy": acc}


def save_scheduler(path, model: KVScheduler, meta: dict) -> None:
    """The classifier's weights and parameters with ``meta`` (T, static class, ...), one file."""
    torch.save({"params": model._params, "state": model.state_dict(), "meta": meta}, path)


def load_scheduler(path) -> tuple[KVScheduler, dict]:
    """:func:`save_scheduler`'s file: the classifier (eval mode) and its ``meta``."""
    try:
        d = torch.load(path, weights_only=True)
        p = d["params"]
        model = KVScheduler(p["kv_heads"], p["head_dim"], dropout=p["dropout"], classes=p["classes"])
        model.load_state_dict(d["state"])
    except (OSError, KeyError, RuntimeError) as e:
        raise BitmixError(f"cannot read the scheduler {path}: {e} "
                          "(make it with `bitmix train-scheduler`)") from None
    return model.eval(), d["meta"]
