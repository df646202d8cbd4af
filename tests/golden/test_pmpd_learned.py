"""golden/pmpd_learned.py: PMPD's learned scheduler: classes, labels, a classifier that learns a
separable rule reproducibly, the safetensors file and its checks, and the schedule it drives."""

import pytest
import torch

from bitmix.errors import BitmixError
from golden import pmpd_learned as pl
from golden.model import LlamaConfig, LlamaForCausalLM
from golden.pmpd import QuantLinear, generate, replace_linears, set_precision
from golden.quant import quantize_rtn


def test_switch_points_and_labels():
    assert pl.switch_points(24) == (0, 8, 16, 24) and pl.switch_points(3) == (0, 1, 2, 3)
    with pytest.raises(BitmixError, match="at least 3 generated tokens"):
        pl.switch_points(2)
    assert pl.label_from_rouge([0.5, 0.6, 0.7, 0.7]) == 2        # earliest reaching all-high
    assert pl.label_from_rouge([0.8, 0.6, 0.7, 0.7]) == 0        # low already as good
    assert pl.label_from_rouge([0.5, 0.6, 0.6999, 0.7]) == 2     # equal to 3 decimals
    assert pl.label_from_rouge([0.1, 0.2, 0.3, 0.9]) == 3
    with pytest.raises(BitmixError, match="one per class"):
        pl.label_from_rouge([0.1, 0.2])


def _features(n, seed):
    """Keys/values [n, 2, 6, 8] whose class is which head-0 value channel is largest."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, pl.CLASSES, (n,), generator=g)
    k = torch.randn(n, 2, 6, 8, generator=g)
    v = torch.randn(n, 2, 6, 8, generator=g) * 0.1
    v[torch.arange(n), 0, :, labels] += 2.0
    return k, v, labels


def test_train_learns_a_separable_rule_reproducibly(tmp_path):
    k, v, labels = _features(200, 0)
    cfg = pl.SchedulerConfig(kv_heads=2, head_dim=8, tokens=6, high=0, low=1)
    a = pl.train_scheduler(k, v, labels, cfg, seed=3, epochs=15)
    b = pl.train_scheduler(k, v, labels, cfg, seed=3, epochs=15)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[n], sb[n]) for n in sa)
    assert a.val_accuracy >= 0.9 and a.train_accuracy >= 0.9 and a.majority_val_accuracy < 0.5
    assert sum(a.class_counts) == 180
    kt, vt, lt = _features(100, 9)                      # unseen samples of the same rule
    with torch.no_grad():
        assert float((a.model(kt, vt).argmax(-1) == lt).double().mean()) >= 0.9
    path = tmp_path / "s.safetensors"
    pl.save(a.model, path, {"quantizer": "rtn-x"})
    m, extra = pl.load(path, expect={"tokens": 6, "quantizer": "rtn-x"})
    assert extra == {"quantizer": "rtn-x"}
    with torch.no_grad():
        assert torch.equal(m(kt, vt), a.model.eval()(kt, vt))
    with pytest.raises(BitmixError, match="trained for tokens = 6, this decode uses 9"):
        pl.load(path, expect={"tokens": 9})
    with pytest.raises(BitmixError, match="trained for quantizer = 'rtn-x'"):
        pl.load(path, expect={"quantizer": "gptq"})
    with pytest.raises(BitmixError, match="no trained scheduler here"):
        pl.load(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(BitmixError, match="bad.safetensors: not a bitmix scheduler file"):
        pl.load(tmp_path / "bad.safetensors")
    with pytest.raises(BitmixError, match="need as many of each"):
        pl.train_scheduler(k, v, labels[:5], cfg)


def test_learned_schedule_decides_once_after_the_prefill():
    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1)
    model = LlamaForCausalLM(cfg).init_weights(3)
    replace_linears(model, lambda name, lin: QuantLinear(
        quantize_rtn(lin.weight.data.to(torch.float64), "bitmod4", 32), name))
    clf = pl.KVScheduler(pl.SchedulerConfig(kv_heads=1, head_dim=32, tokens=6, high=0, low=1)).eval()
    for cls in range(pl.CLASSES):
        with torch.no_grad():                              # force the class through the last bias
            clf.head[-1].bias.copy_(torch.eye(pl.CLASSES)[cls] * 1e4)
        sched = pl.learned_schedule(clf)
        with pytest.raises(BitmixError, match="before the prefill"):
            sched(1)
        out = generate(model, torch.tensor([5, 6, 7]), 6, sched, lambda p: set_precision(model, p),
                       after_prefill=sched.after_prefill)
        n = (0, 2, 4, 6)[cls]
        assert sched.n_high == n
        assert out.precisions == [0] * max(1, n) + [1] * (6 - max(1, n))
