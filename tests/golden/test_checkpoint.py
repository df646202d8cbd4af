"""Each way a model folder can be broken gives a one-line BitmixError naming the file and tensor."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from bitmix.errors import BitmixError
from golden.checkpoint import load_model, read_config, save_model
from golden.model import LlamaConfig, LlamaForCausalLM

Q = "model.layers.1.self_attn.q_proj.weight"


@pytest.fixture
def folder(tmp_path):
    m = LlamaForCausalLM(LlamaConfig(256, 64, 128, 2, 4, 2)).init_weights(seed=1)
    return save_model(m, tmp_path / "model"), m


def _raises(match, folder):
    with pytest.raises(BitmixError, match=match) as ei:
        load_model(folder)
    assert "\n" not in str(ei.value)
    return str(ei.value)


def _rewrite(folder, edit):
    sd = load_file(folder / "model.safetensors")
    edit(sd)
    save_file(sd, folder / "model.safetensors")


def test_roundtrip_exact(folder):
    path, m = folder
    loaded = load_model(path)
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert read_config(path) == m.config
    ids = torch.randint(0, 256, (1, 9))
    assert torch.equal(loaded(ids), m.eval()(ids))


def test_bfloat16_load(folder):
    path, m = folder
    assert load_model(path, dtype=torch.bfloat16).lm_head.weight.dtype == torch.bfloat16


def test_tied_roundtrip(tmp_path):
    m = LlamaForCausalLM(LlamaConfig(256, 64, 128, 1, 4, 2, tie_word_embeddings=True))
    m.init_weights(seed=2)
    save_model(m, tmp_path / "t")
    assert "lm_head.weight" not in load_file(tmp_path / "t" / "model.safetensors")
    t = load_model(tmp_path / "t")
    assert t.lm_head.weight is t.model.embed_tokens.weight
    assert torch.equal(t.lm_head.weight, m.lm_head.weight)


def test_save_into_existing_folder_keeps_other_files(folder):
    path, m = folder
    (path / "quant_meta.json").write_text("{}")
    with torch.no_grad():
        m.model.norm.weight.fill_(2.0)
    save_model(m, path)
    assert (path / "quant_meta.json").read_text() == "{}"
    assert torch.equal(load_model(path).model.norm.weight, torch.full((64,), 2.0))
    assert [p.name for p in path.iterdir() if p.name.startswith(".")] == []


def test_missing_folder(tmp_path):
    _raises(rf"^{tmp_path}/nope: model folder not found$", tmp_path / "nope")


def test_missing_config(folder):
    path, _ = folder
    (path / "config.json").unlink()
    _raises(r"config.json: config.json not found", path)


def test_config_missing_field(folder):
    path, _ = folder
    d = json.loads((path / "config.json").read_text())
    del d["num_hidden_layers"]
    (path / "config.json").write_text(json.dumps(d))
    msg = _raises(r"missing field\(s\) num_hidden_layers", path)
    assert str(path / "config.json") in msg


def test_config_invalid_json(folder):
    path, _ = folder
    (path / "config.json").write_text("{not json")
    _raises(r"config.json: invalid JSON", path)


def test_unsupported_architecture(folder):
    path, _ = folder
    d = json.loads((path / "config.json").read_text())
    d.update(model_type="mistral", architectures=["MistralForCausalLM"])
    (path / "config.json").write_text(json.dumps(d))
    _raises(r"config.json: unsupported model_type 'mistral'", path)


def test_missing_safetensors(folder):
    path, _ = folder
    (path / "model.safetensors").unlink()
    _raises(r"no model.safetensors or model.safetensors.index.json found", path)


@pytest.mark.parametrize("keep", [0.5, 0.999, 20])
def test_truncated_safetensors(folder, keep):
    path, _ = folder
    f = path / "model.safetensors"
    data = f.read_bytes()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    f.write_bytes(data[:n])
    msg = _raises(r"corrupt or truncated safetensors file", path)
    assert msg.startswith(str(f) + ":")


def test_garbage_safetensors(folder):
    path, _ = folder
    (path / "model.safetensors").write_bytes(b"\xff" * 64)
    _raises(r"model.safetensors: corrupt or truncated safetensors file", path)


def test_shape_mismatch(folder):
    path, _ = folder
    _rewrite(path, lambda sd: sd.__setitem__(Q, torch.zeros(64, 32)))
    _raises(rf"model.safetensors: tensor {Q} has shape \[64, 32\], "
            r"config.json implies \[64, 64\]$", path)


def test_missing_tensor(folder):
    path, _ = folder
    _rewrite(path, lambda sd: sd.pop("model.layers.0.mlp.down_proj.weight"))
    _raises(r"tensor model.layers.0.mlp.down_proj.weight missing", path)


def test_unexpected_tensor(folder):
    path, _ = folder
    _rewrite(path, lambda sd: sd.__setitem__("model.layers.9.mlp.up_proj.weight",
                                             torch.zeros(2, 2)))
    _raises(r"unexpected tensor model.layers.9.mlp.up_proj.weight", path)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_weights(folder, bad):
    path, _ = folder

    def poison(sd):
        sd[Q][3, 5] = bad
    _rewrite(path, poison)
    _raises(rf"model.safetensors: tensor {Q} contains 1 NaN/Inf value", path)


def test_sharded_missing_shard(folder):
    path, _ = folder
    sd = load_file(path / "model.safetensors")
    names = sorted(sd)
    half = len(names) // 2
    save_file({k: sd[k] for k in names[:half]}, path / "model-00001-of-00002.safetensors")
    save_file({k: sd[k] for k in names[half:]}, path / "model-00002-of-00002.safetensors")
    (path / "model.safetensors").unlink()
    wm = {k: ("model-00001-of-00002.safetensors" if i < half else
              "model-00002-of-00002.safetensors") for i, k in enumerate(names)}
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    load_model(path)  # the hand-made sharded folder is valid
    (path / "model-00002-of-00002.safetensors").unlink()
    _raises(r"model-00002-of-00002.safetensors: safetensors file not found", path)
