"""Offline English text and the byte-level tokenizer the reference model uses.

The corpus is CPython's ``pydoc_data.topics`` (the help() pages, ~466 KB on 3.11), which every
Python install ships, so training, calibration and evaluation need no download.
Split: topics sorted by name, concatenated; the topics from the point where 90 % of the bytes
are reached onwards are held out, so no held-out topic is seen (even partly) in training.
"""

from __future__ import annotations

import functools

import torch

from bitmix.errors import BitmixError

HELDOUT_FRACTION = 0.10
TOPIC_SEPARATOR = "\n\n"


@functools.lru_cache(maxsize=1)
def _split() -> tuple[bytes, bytes, tuple[str, ...]]:
    from pydoc_data import topics as t

    names = sorted(t.topics)
    texts = [(t.topics[n] + TOPIC_SEPARATOR).encode("utf-8") for n in names]
    total = sum(len(x) for x in texts)
    acc, cut = 0, len(texts)
    for i, x in enumerate(texts):
        if acc >= (1.0 - HELDOUT_FRACTION) * total:
            cut = i
            break
        acc += len(x)
    return b"".join(texts[:cut]), b"".join(texts[cut:]), tuple(names[cut:])


def reference_corpus() -> tuple[bytes, bytes]:
    """(train, heldout) bytes of pydoc_data.topics, split at a topic boundary (deterministic)."""
    train, heldout, _ = _split()
    return train, heldout


def heldout_topics() -> tuple[str, ...]:
    """Names of the held-out topics (for the model card)."""
    return _split()[2]


def encode(text: str | bytes) -> torch.Tensor:
    """Bytes of the UTF-8 encoding as token ids 0..255."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    return torch.frombuffer(bytearray(text), dtype=torch.uint8).long() if text else \
        torch.zeros(0, dtype=torch.long)


def decode(ids) -> str:
    """Inverse of :func:`encode`; invalid UTF-8 (a cut multi-byte char) becomes U+FFFD."""
    if isinstance(ids, torch.Tensor):
        ids = ids.flatten().tolist()
    if any(not 0 <= int(i) < 256 for i in ids):
        raise BitmixError("decode: token id outside the byte vocabulary 0..255")
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


def calibration_batches(n_samples: int, seqlen: int, seed: int = 0, tokenize=None) -> torch.Tensor:
    """n random windows of the TRAIN split, [n, seqlen]; held-out text never leaks into calibration.

    ``tokenize`` (text bytes -> ids) defaults to the byte tokenizer; a model with its own
    vocabulary passes its tokenizer's ``encode``.
    """
    ids = (tokenize or encode)(reference_corpus()[0])
    if seqlen >= len(ids):
        raise BitmixError(f"calibration_batches: seqlen {seqlen} exceeds the train split "
                          f"({len(ids)} tokens)")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - seqlen, (n_samples,), generator=g)
    return torch.stack([ids[s:s + seqlen] for s in starts.tolist()]) if n_samples else \
        torch.zeros(0, seqlen, dtype=torch.long)
