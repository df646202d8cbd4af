"""golden/pmpd_sched.py: PMPD's switch points, labels, static sweep and the learned KV-cache
scheduler (shapes, seeded training that learns a separable rule, save/load)."""

import pytest
import torch

from bitmix.errors import BitmixError
from golden.pmpd_sched import (
    KVScheduler,
    Outcome,
    choose_static,
    label,
    load_scheduler,
    rouge_l,
    save_scheduler,
    switch_points,
    train_scheduler,
)


def _o(rouge, kv=None):
    return Outcome(kv if kv is not None else torch.zeros(2, 2, 5, 8), torch.tensor([1]), rouge=list(rouge))


def test_switch_points_and_rouge():
    assert switch_points(24) == [0, 8, 16, 24] and switch_points(32) == [0, 11, 21, 32]
    with pytest.raises(BitmixError, match="T = 2"):
        switch_points(2)
    assert rouge_l("if x", "if x") == 1.0 and rouge_l("", "") == 1.0      # equal texts, even word-free
    assert rouge_l("the cat sat", "the dog sat") == pytest.approx(2 / 3)


def test_label_is_the_earliest_switch_reaching_uniform_high():
    assert label(_o([0.2, 0.5, 0.5004, 0.5])) == 1          # compared at 3 decimals
    assert label(_o([0.9, 0.1, 0.1, 0.5])) == 0             # early switch happens to score higher
    assert label(_o([0.1, 0.2, 0.3, 0.6])) == 3


def test_static_sweep_picks_the_earliest_point_within_tolerance():
    val = [_o([0.5, 0.8, 0.9, 1.0]), _o([0.3, 0.8, 0.9, 0.8])]
    c, means = choose_static(val, 0.05)
    assert means == pytest.approx([0.4, 0.8, 0.9, 0.9]) and c == 2
    assert choose_static(val, 0.1)[0] == 1 and choose_static(val, 0.0)[0] == 2
    with pytest.raises(BitmixError, match="no validation prompts"):
        choose_static([])


def test_learned_scheduler_learns_a_rule_in_the_kv_cache_and_is_reproducible(tmp_path):
    """Prompts whose V cache leans one way should stay high (class 3), the other way switch at
    once (class 0): the classifier learns it from PMPD's labels, and the same seed gives the same
    weights; the saved file decides the same."""
    gen = torch.Generator().manual_seed(0)
    data = []
    for i in range(24):
        kv = torch.randn(2, 2, 6, 8, generator=gen)
        s = 2.0 if i % 2 else -2.0                      # a pattern across dims (LayerNorm keeps it)
        kv[1, :, :, :4] += s
        kv[1, :, :, 4:] -= s
        data.append(_o([0.2, 0.2, 0.2, 0.9] if i % 2 else [0.9, 0.9, 0.9, 0.9], kv))
    m1, log = train_scheduler(data, 2, 8, epochs=8, accumulate=1, seed=3)
    m2, _ = train_scheduler(data, 2, 8, epochs=8, accumulate=1, seed=3)
    assert log["class_counts"] == [12, 0, 0, 12] and log["train_accuracy"][-1] == 1.0
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert m1(data[0].kv).shape == (4,)
    path = tmp_path / "s.pt"
    save_scheduler(path, m1, {"tokens": 6})
    m3, meta = load_scheduler(path)
    assert meta == {"tokens": 6} and [m3.decide(o.kv) for o in data] == [m1.decide(o.kv) for o in data]
    with pytest.raises(BitmixError, match="bitmix train-scheduler"):
        load_scheduler(tmp_path / "missing.pt")
    assert isinstance(KVScheduler(2, 8).head[0], torch.nn.LayerNorm)


def test_learned_schedule_decides_once_after_the_prefill():
    """generate() calls the hook once with the prefill's cache; the classifier's class on that
    cache sets how long the decode stays high (a fraction of this decode's T)."""
    from golden.model import LlamaConfig, LlamaForCausalLM
    from golden.pmpd import generate
    from golden.pmpd_sched import learned_schedule

    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1)
    model = LlamaForCausalLM(cfg).init_weights(1)
    sched = KVScheduler(1, 32).eval()
    seen = []
    for c in range(4):                                   # force each class through the last bias
        with torch.no_grad():
            sched.head[-1].bias.copy_(torch.tensor([100.0 if j == c else 0.0 for j in range(4)]))
        schedule, hook, decision = learned_schedule(sched, 6, 0, 1)

        def spy(cache, hook=hook):
            seen.append(cache.k[-1].shape[2])
            hook(cache)

        out = generate(model, torch.tensor([5, 6, 7]), 6, schedule, lambda p: None, after_prefill=spy)
        assert decision == {"class": c, "n_high": 2 * c}
        assert out.precisions == [0] * max(1, 2 * c) + [1] * (6 - max(1, 2 * c))
    assert seen == [3, 3, 3, 3]                          # once per decode, the prompt's 3 positions
