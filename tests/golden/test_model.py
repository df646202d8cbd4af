"""golden/model.py against Hugging Face transformers' own LLaMA, loaded through golden/checkpoint.py."""

import pytest
import torch

from bitmix.errors import BitmixError
from golden.checkpoint import load_model, save_model
from golden.model import LlamaConfig, LlamaDecoderLayer, LlamaForCausalLM, linear_layers, num_parameters

transformers = pytest.importorskip("transformers")


def _hf_model(tie=False, seed=0):
    """A tiny random HF LLaMA with weights large enough that RoPE/GQA/norm mistakes show."""
    cfg = transformers.LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=500.0,
        max_position_embeddings=128, tie_word_embeddings=tie, attn_implementation="eager")
    torch.manual_seed(seed)
    m = transformers.LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.15)
    return m


def _ids(B=2, T=40, seed=1):
    return torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("tie", [False, True])
def test_logits_match_transformers(tmp_path, tie):
    hf = _hf_model(tie)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_model(tmp_path)
    ids = _ids()
    with torch.no_grad():
        ref = hf(ids).logits
        got = ours(ids)
    assert got.shape == (2, 40, 256)
    assert ref.abs().max() > 1.0  # the comparison is not between two near-zero tensors
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    assert set(ours.state_dict()) == set(hf.state_dict())
    if tie:
        assert ours.lm_head.weight is ours.model.embed_tokens.weight


def test_sharded_checkpoint_loads(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path, safe_serialization=True, max_shard_size="100KB")
    shards = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").exists()
    ours = load_model(tmp_path)
    ids = _ids(1, 17)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-5, rtol=0)


def test_saved_folder_loads_in_transformers(tmp_path):
    cfg = LlamaConfig(256, 64, 128, 2, 4, 2, tie_word_embeddings=False)
    ours = LlamaForCausalLM(cfg).init_weights(seed=3, std=0.15)
    save_model(ours, tmp_path / "m")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "m",
                                                       attn_implementation="eager").eval()
    ids = _ids(1, 30)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-5, rtol=0)


def test_layer_chaining_equals_full_forward():
    cfg = LlamaConfig(256, 64, 128, 3, 4, 1)
    m = LlamaForCausalLM(cfg).init_weights(seed=5, std=0.1).eval()
    ids = _ids(2, 25)
    with torch.no_grad():
        h = m.model.embed_tokens(ids)
        for layer in m.model.layers:
            assert isinstance(layer, LlamaDecoderLayer)
            h = layer(h)
        chained = m.lm_head(m.model.norm(h))
        torch.testing.assert_close(chained, m(ids), atol=0, rtol=0)


def test_causal_and_kv_cache_consistent():
    cfg = LlamaConfig(256, 64, 128, 2, 4, 2)
    m = LlamaForCausalLM(cfg).init_weights(seed=7, std=0.1).eval()
    ids = _ids(1, 20)
    with torch.no_grad():
        full = m(ids)
        # a future token never changes past logits
        other = ids.clone()
        other[0, 15] = (other[0, 15] + 1) % 256
        torch.testing.assert_close(m(other)[:, :15], full[:, :15], atol=1e-6, rtol=0)
        assert not torch.allclose(m(other)[:, 15:], full[:, 15:])
        # prefill 12 + chunk of 5 + 3 single steps equals one pass
        cache = m.new_cache()
        parts = [m(ids[:, :12], cache), m(ids[:, 12:17], cache)]
        parts += [m(ids[:, t:t + 1], cache) for t in range(17, 20)]
        torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=0)
        assert cache.length() == 20


def test_linear_layers_order_and_types():
    cfg = LlamaConfig(256, 64, 128, 2, 4, 2)
    m = LlamaForCausalLM(cfg)
    lin = linear_layers(m)
    names = list(lin)
    assert names[:7] == [f"model.layers.0.{n}" for n in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    assert len(names) == 14 and "lm_head" not in names
    sd = m.state_dict()
    for n, mod in lin.items():
        assert type(mod) is torch.nn.Linear and mod.bias is None
        assert sd[n + ".weight"] is not None
    assert lin["model.layers.0.self_attn.k_proj"].weight.shape == (32, 64)  # 2 kv heads x 16
    assert num_parameters(m) == sum(v.numel() for v in sd.values())


def test_config_from_dict_errors():
    good = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4)
    cfg = LlamaConfig.from_dict(good)
    assert cfg.num_key_value_heads == 4 and cfg.head_dim == 16
    d = dict(good)
    del d["intermediate_size"]
    with pytest.raises(BitmixError, match=r"^x/config.json: missing field\(s\) intermediate_size"):
        LlamaConfig.from_dict(d, source="x/config.json")
    with pytest.raises(BitmixError, match="model_type 'gpt2'"):
        LlamaConfig.from_dict({**good, "model_type": "gpt2"})
    with pytest.raises(BitmixError, match="MistralForCausalLM"):
        LlamaConfig.from_dict({**good, "architectures": ["MistralForCausalLM"]})
    with pytest.raises(BitmixError, match="num_key_value_heads 3"):
        LlamaConfig.from_dict({**good, "num_key_value_heads": 3})
    with pytest.raises(BitmixError, match="hidden_size must be a positive integer"):
        LlamaConfig.from_dict({**good, "hidden_size": "64"})
    with pytest.raises(BitmixError, match="rope_type 'llama3' is not supported"):
        LlamaConfig.from_dict({**good, "rope_parameters": {"rope_type": "llama3",
                                                           "rope_theta": 5e5, "factor": 8.0}})
    assert LlamaConfig.from_dict({**good, "rope_parameters": {"rope_type": "default",
                                                              "rope_theta": 5e5}}).rope_theta == 5e5
