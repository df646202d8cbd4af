"""PMPD's learned ("kv_cache") precision scheduler: a small classifier on the last layer's KV
cache after the high-precision prefill, decided once per prompt (PMPD, ICLR 2025; its release
code's ``scheduler/kv_cache``; ../shared/research/shiftadd_pmpd_athena.md §B2).

Classes are "stay at the high precision for ``n`` generated tokens" with ``n`` in
:func:`switch_points` ``(T) = (0, T/3, 2T/3, T)``; the label of a prompt is the earliest switch
whose ROUGE-L against the full-precision (float) continuation is at least the all-high one's, to
3 decimals (:func:`label_from_rouge`), as PMPD's ``generate_train_dataset.py`` labels.

The network is PMPD's: per KV head, H learned queries attend over that head's keys and values;
the pooled result (averaged over the queries, flattened to H·d) goes through LayerNorm → Linear →
ReLU → Dropout → Linear to 4 logits. It is small (2 heads x 64 here: 33 k parameters) and trains
in seconds on CPU; :func:`train_scheduler` is seeded and single-threaded, so a retrain gives the
same weights. Saved as safetensors with its settings in the metadata (:func:`save` / :func:`load`).
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from bitmix.errors import BitmixError

__all__ = ["CLASSES", "switch_points", "label_from_rouge", "KVScheduler", "SchedulerConfig",
           "TrainResult", "train_scheduler", "save", "load", "learned_schedule"]

#: Number of classes: stay high for 0, T/3, 2T/3 or T tokens.
CLASSES = 4


def switch_points(tokens: int) -> tuple[int, ...]:
    """Generated tokens kept at the high precision for each class: (0, T/3, 2T/3, T)."""
    if tokens < CLASSES - 1:
        raise BitmixError(f"learned scheduler: needs at least {CLASSES - 1} generated tokens, got {tokens}")
    return tuple(tokens * c // (CLASSES - 1) for c in range(CLASSES))


def label_from_rouge(rouge: list[float]) -> int:
    """The earliest switch whose ROUGE-L (against the full-precision output) reaches the all-high
    policy's, the last entry, to 3 decimals; one score per class of :func:`switch_points`."""
    if len(rouge) != CLASSES:
        raise BitmixError(f"learned scheduler: {len(rouge)} ROUGE-L scores, want one per class ({CLASSES})")
    top = round(rouge[-1], 3)
    return next(c for c, r in enumerate(rouge) if round(r, 3) >= top)


@dataclass(frozen=True)
class SchedulerConfig:
    """What a trained scheduler was made for; :func:`load` refuses a mismatch with the decode."""

    kv_heads: int
    head_dim: int
    tokens: int                 # T of the classes
    high: int                   # precisions (golden.pmpd: 0 = full)
    low: int
    dropout: float = 0.1


class KVScheduler(nn.Module):
    """The classifier (see the module doc).

    Parameters
    ----------
    cfg : SchedulerConfig

    Members
    -------
    query : Parameter [H, H, d]
        Learned queries, H per KV head.
    head : Sequential
        LayerNorm → Linear → ReLU → Dropout → Linear(H·d, 4).
    """

    def __init__(self, cfg: SchedulerConfig):
        super().__init__()
        self._params = cfg
        h, d = cfg.kv_heads, cfg.head_dim
        self.query = nn.Parameter(torch.randn(h, h, d) / math.sqrt(d))
        self.head = nn.Sequential(nn.LayerNorm(h * d), nn.Linear(h * d, h * d), nn.ReLU(),
                                  nn.Dropout(cfg.dropout), nn.Linear(h * d, CLASSES))

    @property
    def config(self) -> SchedulerConfig:
        return self._params

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, 4]`` of last-layer keys and values ``[B, H, S, d]``."""
        d = k.shape[-1]
        att = torch.softmax(torch.einsum("hqd,bhsd->bhqs", self.query, k) / math.sqrt(d), -1)
        pooled = torch.einsum("bhqs,bhsd->bhqd", att, v).mean(2)
        return self.head(pooled.flatten(1))


@dataclass
class TrainResult:
    model: KVScheduler
    train_accuracy: float
    val_accuracy: float
    majority_val_accuracy: float    # always predicting the training set's most common class
    class_counts: list[int]


def train_scheduler(k: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, cfg: SchedulerConfig, *,
                    seed: int = 0, epochs: int = 30, lr: float = 4.5e-3, weight_decay: float = 0.0803,
                    val_fraction: float = 0.1, batch: int = 32,
                    log: Callable[[str], None] | None = None) -> TrainResult:
    """Train on ``(k, v)`` features ``[N, H, S, d]`` and ``labels [N]`` as PMPD does: 10 % held
    out, class-balanced oversampling of the rest, Adam with weight decay, cross-entropy (PMPD's
    hyper-parameters); seeded and single-threaded, so reproducible."""
    n = labels.numel()
    if k.shape[0] != n or v.shape[0] != n or n < 2:
        raise BitmixError(f"learned scheduler: {k.shape[0]} key sets, {v.shape[0]} value sets and {n} "
                          "labels; need as many of each, at least 2")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        perm = torch.randperm(n, generator=gen)
        n_val = max(1, int(round(n * val_fraction)))
        val, tr = perm[:n_val], perm[n_val:]
        counts = torch.bincount(labels[tr], minlength=CLASSES)
        weights = 1.0 / counts.clamp(min=1).double()
        model = KVScheduler(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        for ep in range(epochs):
            model.train()
            order = tr[torch.multinomial(weights[labels[tr]], len(tr), replacement=True, generator=gen)]
            for i in range(0, len(order), batch):
                b = order[i:i + batch]
                loss = nn.functional.cross_entropy(model(k[b], v[b]), labels[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if log and (ep + 1) % 10 == 0:
                log(f"epoch {ep + 1}/{epochs}: loss {float(loss.detach()):.3f}")
        model.eval()
        with torch.no_grad():
            pred = model(k, v).argmax(-1)
        acc = lambda idx: float((pred[idx] == labels[idx]).double().mean())  # noqa: E731
        majority = int(counts.argmax())
        return TrainResult(model, acc(tr), acc(val), float((labels[val] == majority).double().mean()),
                           counts.tolist())
    finally:
        torch.set_num_threads(threads)


def save(model: KVScheduler, path: str | pathlib.Path, extra: dict | None = None) -> None:
    """Weights as safetensors; the config (and ``extra``, e.g. the quantizer) in its metadata."""
    from safetensors.torch import save_file

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": json.dumps(asdict(model.config)), "extra": json.dumps(extra or {})}
    save_file({k: t.contiguous() for k, t in model.state_dict().items()}, str(path), metadata=meta)


def load(path: str | pathlib.Path, *, expect: dict | None = None) -> tuple[KVScheduler, dict]:
    """A saved scheduler and its ``extra``; a clear error naming the file when it is missing,
    unreadable, or was trained for other settings than ``expect`` (config or extra fields)."""
    from safetensors import SafetensorError, safe_open

    path = pathlib.Path(path)
    if not path.is_file():
        raise BitmixError(f"{path}: no trained scheduler here (train one with `bitmix train-scheduler`)")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        cfg = SchedulerConfig(**json.loads(meta["config"]))
        extra = json.loads(meta.get("extra", "{}"))
    except (KeyError, TypeError, ValueError, OSError, SafetensorError) as e:
        raise BitmixError(f"{path}: not a bitmix scheduler file ({type(e).__name__}: {e})") from None
    for key, want in (expect or {}).items():
        have = getattr(cfg, key) if hasattr(cfg, key) else extra.get(key)
        if have != want:
            raise BitmixError(f"{path}: trained for {key} = {have!r}, this decode uses {want!r}; retrain "
                              "with `bitmix train-scheduler`")
    model = KVScheduler(cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise BitmixError(f"{path}: weights do not fit the scheduler ({e})") from None
    model.eval()
    return model, extra


class learned_schedule:  # noqa: N801 - used like static_schedule
    """A schedule for :func:`golden.pmpd.generate`: high for the prefill, then high for the
    class's number of generated tokens, chosen once from the prefill's last-layer KV cache
    (pass :meth:`after_prefill` as ``generate``'s hook). :attr:`n_high` is the decision."""

    def __init__(self, model: KVScheduler):
        self.model, self.n_high = model, None

    def after_prefill(self, cache) -> None:
        with torch.no_grad():
            c = int(self.model(cache.k[-1], cache.v[-1]).argmax(-1)[0])
        self.n_high = switch_points(self.model.config.tokens)[c]

    def __call__(self, step: int) -> int:
        cfg = self.model.config
        if step == 0:
            return cfg.high
        if self.n_high is None:
            raise BitmixError("learned schedule: asked for a decode step before the prefill's KV cache "
                              "was seen (pass after_prefill to generate)")
        return cfg.high if step < max(1, self.n_high) else cfg.low
