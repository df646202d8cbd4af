"""Paired bootstrap intervals: exact where the answer is known, paired where pairing matters."""

import math

import pytest
import torch

from bitmix.stats import mean_diff_ci, ppl_ratio_ci, resample_index, verdict


def test_identical_rows_give_a_zero_interval_and_a_constant_shift_is_exact():
    nll = torch.rand(40, dtype=torch.float64) * 100
    ci = ppl_ratio_ci(nll, nll.clone(), 255)
    assert ci == {"value": 0.0, "lo": 0.0, "hi": 0.0} and verdict(ci) == "n.s."
    shifted = ppl_ratio_ci(nll + 255 * 0.01, nll, 255)      # +0.01 nats per token in every window
    for k in ("value", "lo", "hi"):
        assert shifted[k] == pytest.approx(math.exp(0.01) - 1, rel=1e-9)
    assert verdict(shifted, "a", "b") == "a > b"


def test_pairing_detects_a_small_consistent_gain_that_window_noise_hides():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(64, generator=g, dtype=torch.float64) * 400 + 300     # windows differ a lot
    better = base - 255 * 0.002 + torch.randn(64, generator=g, dtype=torch.float64) * 0.05
    ci = ppl_ratio_ci(better, base, 255)
    assert ci["hi"] < 0 and verdict(ci, "new", "old") == "new < old"
    # unpaired (independent resamples for the two rows) cannot see it
    i1, i2 = resample_index(64, 2000, 1), resample_index(64, 2000, 2)
    unpaired = torch.exp((better[i1].mean(-1) - base[i2].mean(-1)) / 255) - 1
    assert float(torch.quantile(unpaired, 0.025)) < 0 < float(torch.quantile(unpaired, 0.975))


def test_mean_diff_interval_covers_the_truth():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(500, generator=g, dtype=torch.float64)
    ci = mean_diff_ci(a + 0.1 + torch.randn(500, generator=g, dtype=torch.float64) * 0.01, a)
    assert ci["lo"] < 0.1 < ci["hi"] and ci["hi"] - ci["lo"] < 0.01


def test_unpaired_rows_are_refused():
    with pytest.raises(ValueError, match="same windows"):
        ppl_ratio_ci(torch.zeros(3), torch.zeros(4), 10)
