"""Automated bit allocation: criterion, exact DP vs brute force, budget, 80/20 heuristic."""

import random

import pytest
import torch

from bitmix.errors import BitmixError
from golden import bitalloc
from golden.bcq import quantize_bcq
from golden.gptq import prepare_hessian


def _random_costs(rng, L):
    costs = []
    for _ in range(L):
        s = rng.random() * 10
        c4 = s * rng.random() * 0.3
        c3 = c4 + s * rng.random()
        c2 = c3 + s * rng.random() * 4
        costs.append({2: c2, 3: c3, 4: c4})
    return costs


@pytest.mark.parametrize("weighted", [False, True])
def test_dp_equals_brute_force(weighted):
    rng = random.Random(1 + weighted)
    for _ in range(150):
        L = rng.randint(1, 7)
        costs = _random_costs(rng, L)
        if rng.random() < 0.3:                       # non-monotone costs too: the DP must not assume order
            costs[0] = {2: rng.random(), 3: rng.random(), 4: rng.random()}
        sizes = [rng.choice([1, 2, 3, 8]) * 4096 for _ in range(L)] if weighted else None
        budget = rng.choice([2.0, 2.2, 2.5, 2.9, 3.0, 3.4, 4.0])
        best, _ = bitalloc.brute_force(costs, budget, sizes)
        got = bitalloc.allocate(costs, budget, sizes)
        assert abs(sum(c[b] for c, b in zip(costs, got)) - best) < 1e-9
        assert bitalloc.average_bits(got, sizes) <= budget + 1e-9


def test_budget_limits_and_errors():
    costs = [{2: 5.0, 3: 2.0, 4: 1.0}] * 5
    assert bitalloc.allocate(costs, 2.0) == [2] * 5
    assert bitalloc.allocate(costs, 4.0) == [4] * 5
    got = bitalloc.allocate(costs, 2.2)                # 0.2 * 5 = 1 extra bit
    assert sorted(got) == [2, 2, 2, 2, 3]
    with pytest.raises(BitmixError, match="below"):
        bitalloc.allocate(costs, 1.5)
    with pytest.raises(BitmixError, match="sizes"):
        bitalloc.allocate(costs, 3, [1, 2])


def test_parameter_weighting_changes_the_answer():
    # the big layer is the most sensitive per layer, but a bit for it costs 8x the budget
    costs = [{2: 10.0, 3: 0.0, 4: 0.0}, {2: 6.0, 3: 0.0, 4: 0.0}, {2: 6.0, 3: 0.0, 4: 0.0}]
    sizes = [8, 1, 1]
    assert bitalloc.allocate(costs, 2.2, sizes) == [2, 3, 3]
    assert bitalloc.allocate(costs, 2.34) == [3, 2, 2]


def test_criterion_matches_formula():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 64, generator=g, dtype=torch.float64) \
        * torch.linspace(0.1, 3, 64, dtype=torch.float64)
    H = 2 * X.T @ X / 500
    W = torch.randn(32, 64, generator=g, dtype=torch.float64)
    IS = bitalloc.saliency(W, H)
    Hd, _, _ = prepare_hessian(H)
    d = torch.diag(torch.linalg.cholesky(torch.linalg.inv(Hd), upper=True))
    assert torch.allclose(IS, W / d[None, :])
    assert abs(bitalloc.criterion(IS) - float(IS.norm() * IS.std() ** 2)) < 1e-12
    # measured per-width costs fall with more bits
    c = bitalloc.layer_costs(W, H, lambda w, b: quantize_bcq(w, b, 32, rounds=5).dequantize())
    assert c[2] > c[3] > c[4] > 0
    o = bitalloc.output_costs(W, H, lambda w, b: quantize_bcq(w, b, 32, rounds=5).dequantize())
    assert o[2] > o[3] > o[4] > 0


def test_80_20_heuristic():
    scores = [5, 1, 9, 3, 7, 2, 8, 4, 6, 0]
    got = bitalloc.allocate_80_20(scores)
    assert got.count(3) == 2 and got.count(2) == 8
    assert got[2] == 3 and got[6] == 3          # the two highest scores
    assert bitalloc.average_bits(got) == pytest.approx(2.2)
    # by parameters: a big sensitive layer uses up the 20 % on its own
    sizes = [1, 1, 4, 1, 1, 1, 4, 1, 1, 5]
    got = bitalloc.allocate_80_20(scores, sizes=sizes)
    assert got[2] == 3 and got[6] == 2 and bitalloc.average_bits(got, sizes) <= 2.2 + 1e-12
