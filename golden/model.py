"""A float LLaMA-architecture decoder whose parameter names and numerics match Hugging Face's.

Keeping HF's state_dict keys and the "rotate_half" RoPE convention means any HF LLaMA folder
loads unchanged, and quantizers can address layers by the same names HF tools print.
Every projection is a plain ``nn.Linear(bias=False)`` so a quantizer only has to overwrite
``weight.data`` with dequantized values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from bitmix.errors import BitmixError

_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads")


@dataclass
class LlamaConfig:
    """The subset of HF's LlamaConfig that changes the computation (field names as in config.json)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    head_dim: int | None = None  # HF default: hidden_size // num_attention_heads

    def __post_init__(self) -> None:
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict, source: str = "config.json") -> LlamaConfig:
        """Validate an HF config dict; reject what this decoder would silently compute wrong."""
        if not isinstance(d, dict):
            raise BitmixError(f"{source}: expected a JSON object, got {type(d).__name__}")
        mt = d.get("model_type", "llama")
        if mt != "llama":
            raise BitmixError(f"{source}: unsupported model_type {mt!r} (only 'llama' is supported)")
        archs = d.get("architectures") or ["LlamaForCausalLM"]
        if any(a != "LlamaForCausalLM" for a in archs):
            raise BitmixError(f"{source}: unsupported architectures {archs} "
                              "(only LlamaForCausalLM is supported)")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise BitmixError(f"{source}: missing field(s) {', '.join(missing)}")
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise BitmixError(f"{source}: unsupported hidden_act {act!r} (only 'silu')")
        for flag in ("attention_bias", "mlp_bias"):
            if d.get(flag):
                raise BitmixError(f"{source}: {flag}=true is not supported")
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d and d[f.name] is not None}
        # transformers >= 5 writes RoPE settings as "rope_parameters", older ones as
        # "rope_theta" + "rope_scaling"; only plain (unscaled) RoPE is implemented.
        for key in ("rope_parameters", "rope_scaling"):
            rp = d.get(key)
            if rp is None:
                continue
            if not isinstance(rp, dict):
                raise BitmixError(f"{source}: field {key} must be an object, got {rp!r}")
            rtype = rp.get("rope_type", rp.get("type", "default"))
            if rtype != "default":
                raise BitmixError(f"{source}: {key} rope_type {rtype!r} is not supported "
                                  "(only unscaled RoPE)")
            if "rope_theta" in rp:
                kw["rope_theta"] = rp["rope_theta"]
        kw.setdefault("num_key_value_heads", d["num_attention_heads"])
        for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads", "head_dim"):
            v = kw.get(k, 1)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise BitmixError(f"{source}: field {k} must be a positive integer, got {v!r}")
        for k in ("rms_norm_eps", "rope_theta"):
            v = kw.get(k, 1.0)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise BitmixError(f"{source}: field {k} must be a positive number, got {v!r}")
        cfg = cls(**kw)
        if cfg.num_attention_heads % cfg.num_key_value_heads:
            raise BitmixError(f"{source}: num_attention_heads {cfg.num_attention_heads} is not a "
                              f"multiple of num_key_value_heads {cfg.num_key_value_heads}")
        if cfg.head_dim % 2:
            raise BitmixError(f"{source}: head_dim {cfg.head_dim} must be even for RoPE")
        return cfg

    def to_dict(self) -> dict:
        """HF-compatible config.json contents (transformers can load the folder too)."""
        d = asdict(self)
        d.update(model_type="llama", architectures=["LlamaForCausalLM"], hidden_act="silu",
                 attention_bias=False, mlp_bias=False, rope_scaling=None, torch_dtype="float32",
                 rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta})
        return d


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """cos/sin tables [T, head_dim] in HF's layout (the two halves repeat the same frequencies)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64,
                                             device=positions.device).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class KVCache:
    """Per-layer keys/values for incremental decoding; layers append to it in place."""

    def __init__(self, n_layers: int):
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers

    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[2]


class LlamaAttention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        hd, nh, nkv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
        self.q_proj = nn.Linear(cfg.hidden_size, nh * hd, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, nkv * hd, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, nkv * hd, bias=False)
        self.o_proj = nn.Linear(nh * hd, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                layer_idx: int = 0) -> torch.Tensor:
        cfg = self.cfg
        B, T, _ = x.shape
        hd, nh, nkv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
        q = self.q_proj(x).view(B, T, nh, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, nkv, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, nkv, hd).transpose(1, 2)
        start = 0 if cache is None or cache.k[layer_idx] is None else cache.k[layer_idx].shape[2]
        pos = torch.arange(start, start + T, device=x.device)
        cos, sin = rope_cos_sin(pos, hd, cfg.rope_theta, q.dtype)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if cache is not None:
            if cache.k[layer_idx] is not None:
                k = torch.cat((cache.k[layer_idx], k), dim=2)
                v = torch.cat((cache.v[layer_idx], v), dim=2)
            cache.k[layer_idx], cache.v[layer_idx] = k, v
        if nkv != nh:  # grouped-query attention: each KV head serves nh // nkv query heads
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
        S = k.shape[2]
        if T == 1:
            mask = None  # one new query attends to every cached position
        else:
            # query i (absolute position start+i) sees keys 0..start+i
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0 / math.sqrt(hd))
        return self.o_proj(out.transpose(1, 2).reshape(B, T, nh * hd))


class LlamaMLP(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm attention + SwiGLU block; usable alone (GPTQ-style drivers run one layer at a time)."""

    def __init__(self, cfg: LlamaConfig, layer_idx: int = 0):
        super().__init__()
        self.layer_idx = layer_idx
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, hidden: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        h = hidden + self.self_attn(self.input_layernorm(hidden), cache, self.layer_idx)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(LlamaDecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        h = self.embed_tokens(input_ids)
        for layer in self.layers:
            h = layer(h, cache)
        return self.norm(h)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def init_weights(self, seed: int = 0, std: float = 0.02) -> LlamaForCausalLM:
        """HF's initialisation (normal(0, 0.02), norms at 1), seeded for reproducible training."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("layernorm.weight") or name == "model.norm.weight":
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * std)
        return self

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
        return self.lm_head(self.model(input_ids, cache))

    def new_cache(self) -> KVCache:
        return KVCache(self.config.num_hidden_layers)


def linear_layers(model: LlamaForCausalLM) -> dict[str, nn.Linear]:
    """Quantizable projections by state_dict prefix, per layer in execution order (lm_head excluded)."""
    out: dict[str, nn.Linear] = {}
    for i, layer in enumerate(model.model.layers):
        p = f"model.layers.{i}"
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out[f"{p}.self_attn.{n}"] = getattr(layer.self_attn, n)
        for n in ("gate_proj", "up_proj", "down_proj"):
            out[f"{p}.mlp.{n}"] = getattr(layer.mlp, n)
    return out


def num_parameters(model: nn.Module) -> int:
    """Unique parameters (a tied lm_head is counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
