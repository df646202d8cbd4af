"""Run :class:`verif.gemv_harness.GemvHarness` under Amaranth's Python simulator (fast unit tests)."""

from __future__ import annotations

import random

from hw.gemv import GemvEngine
from hw.gemv_params import GemvParams
from verif.gemv_harness import GemvHarness
from verif.pysim import run_harness

__all__ = ["run_gemv_pysim"]


def run_gemv_pysim(p: GemvParams, script, *, seed: int = 0, idle: float = 0.0,
                   backpressure: float = 0.0, burst: float = 0.0, vcd: str | None = None) -> GemvHarness:
    """Simulate; ``script(h, clock)`` is an async function driving the harness."""
    return run_harness(GemvEngine(p),
                       lambda io: GemvHarness(p, io, random.Random(seed), idle, backpressure, burst),
                       script, vcd=vcd)
