"""Perplexity, generation, the corpus split, the shipped reference model and `bitmix eval`."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from bitmix.cli import main
from bitmix.errors import BitmixError
from golden.checkpoint import REFERENCE_MODEL_DIR, load_model, save_model
from golden.data import calibration_batches, decode, encode, heldout_topics, reference_corpus
from golden.evaluate import generate, num_windows, perplexity
from golden.model import LlamaConfig, LlamaForCausalLM


def _tiny(seed=0, std=0.1):
    return LlamaForCausalLM(LlamaConfig(256, 64, 128, 2, 4, 2)).init_weights(seed, std).eval()


def test_uniform_model_has_perplexity_256():
    m = _tiny()
    with torch.no_grad():
        m.lm_head.weight.zero_()  # every logit 0 -> uniform over 256 bytes
    ids = torch.randint(0, 256, (1000,))
    assert perplexity(m, ids, 100, progress=False) == pytest.approx(256.0, rel=1e-7)


def test_windows_are_non_overlapping_and_tail_dropped():
    m = _tiny()
    ids = torch.randint(0, 256, (1000,), generator=torch.Generator().manual_seed(0))
    assert num_windows(1000, 128) == 7 and num_windows(1000, 128, max_windows=3) == 3
    w = ids[: 7 * 128].view(7, 128)
    with torch.no_grad():
        nll = F.cross_entropy(m(w[:, :-1]).flatten(0, 1), w[:, 1:].flatten())
    got = perplexity(m, ids, 128, progress=False, batch_size=3)
    assert got == pytest.approx(math.exp(nll.item()), rel=1e-5)
    changed = ids.clone()
    changed[7 * 128:] = 0  # the dropped tail does not count
    assert perplexity(m, changed, 128, progress=False) == pytest.approx(got, rel=1e-6)
    first3 = perplexity(m, ids, 128, progress=False, max_windows=3)
    assert first3 == pytest.approx(perplexity(m, ids[:384], 128, progress=False), rel=1e-6)
    with pytest.raises(BitmixError, match="fewer than one window"):
        perplexity(m, ids[:50], 128, progress=False)


def test_generate_is_greedy_deterministic_and_matches_no_cache():
    m = _tiny(seed=4, std=0.2)
    prompt = encode("def f(x):")
    a = generate(m, prompt, 12)
    assert torch.equal(a, generate(m, prompt, 12))
    assert a.shape == (len(prompt) + 12,) and torch.equal(a[: len(prompt)], prompt)
    seq = prompt.view(1, -1)
    with torch.no_grad():
        for _ in range(12):  # the slow way: full recompute each step, no cache
            seq = torch.cat([seq, m(seq)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(a, seq[0])
    assert torch.equal(generate(m, prompt, 0), prompt)


def test_corpus_split_and_tokenizer():
    train, heldout = reference_corpus()
    assert len(heldout) > 30_000 and len(train) > 9 * len(heldout)
    topics = heldout_topics()
    assert len(topics) >= 3
    from pydoc_data import topics as t
    for name in topics:  # held-out topics are whole and absent from train
        body = t.topics[name].encode()
        assert body in heldout and body[:2000] not in train
    assert decode(encode("naïve π")) == "naïve π" and encode("é").tolist() == [195, 169]
    c = calibration_batches(4, 64, seed=1)
    assert c.shape == (4, 64) and torch.equal(c, calibration_batches(4, 64, seed=1))
    assert bytes(c[0].tolist()) in train


def test_reference_model_heldout_perplexity():
    m = load_model(REFERENCE_MODEL_DIR)
    cfg = m.config
    assert cfg.hidden_size % 128 == 0 and cfg.intermediate_size % 128 == 0
    ppl = perplexity(m, encode(reference_corpus()[1]), 256, progress=False, max_windows=8)
    assert 1.0 < ppl < 8.0  # uniform guessing is 256


def test_cli_eval_json(capsys):
    assert main(["eval", "--max-windows", "2", "--json", "--prompt", "The ",
                 "--max-new-tokens", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["windows"] == 2 and out["window"] == 256 and out["tokens_scored"] == 510
    assert 1.0 < out["perplexity"] < 8.0
    assert len(out["generated"].encode()) <= 8 and out["prompt"] == "The "


def test_cli_eval_text_file_and_quantized_style_folder(tmp_path, capsys):
    folder = save_model(_tiny(), tmp_path / "q")
    (folder / "bitmix_quant.json").write_text("{}")  # extra files beside the weights are fine
    text = tmp_path / "t.txt"
    text.write_text("Hello wörld. " * 40, encoding="utf-8")
    assert main(["eval", "--model", str(folder), "--text", str(text), "--window", "64"]) == 0
    out = capsys.readouterr().out
    assert "windows:    8 x 64" in out and "perplexity:" in out


def test_cli_eval_bad_model_path(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"bitmix: error: {tmp_path / 'missing'}: model folder not found\n"


def test_cli_eval_bad_text(tmp_path, capsys):
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"ok \xff\xfe")
    assert main(["eval", "--text", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: not UTF-8 text (byte offset 3)" in err


def test_docs_python_example_runs():
    import pathlib
    import re
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[2]
    from _readme import section
    doc = section("The model")
    example = re.search(r"```python\n(from golden.checkpoint.*?)```", doc, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True,
                         check=True, cwd=root).stdout.splitlines()
    assert 1.0 < float(out[0]) < 8.0 and out[1].startswith("The if statement ")
