"""Run :class:`verif.lut_harness.LutHarness` under Amaranth's Python simulator (fast unit tests)."""

from __future__ import annotations

import random

from hw.lut_params import LutParams
from hw.lut_unit import LutUnit
from verif.lut_harness import LutHarness
from verif.pysim import run_harness

__all__ = ["run_lut_pysim"]


def run_lut_pysim(p: LutParams, script, *, seed: int = 0, idle: float = 0.0,
                  backpressure: float = 0.0, burst: float = 0.0) -> LutHarness:
    """Simulate; ``script(h, clock)`` is an async function driving the harness."""
    return run_harness(LutUnit(p),
                       lambda io: LutHarness(p, io, random.Random(seed), idle, backpressure, burst),
                       script)
