"""Run the GEMV engine's checks on either simulator.

* :func:`run_gemv`: the cocotb module :mod:`verif.tb_gemv` under Verilator, through the generic
  :func:`verif.runner.run_cocotb`.
* :func:`verif.gemv_pysim.run_gemv_pysim`: the same scenarios under Amaranth's simulator.
"""

from __future__ import annotations

from bitmix.designs import gemv_info
from hw.gemv import GemvEngine
from hw.gemv_params import GemvParams
from verif.runner import SimResult, run_cocotb

__all__ = ["run_gemv", "TOP", "TEST_MODULE"]

TOP = "gemv"
TEST_MODULE = "verif.tb_gemv"


def run_gemv(p: GemvParams, *, testcase: str | list[str] | None = None, seed: int | None = None,
             idle: float = 0.3, backpressure: float = 0.3, burst: float = 0.01,
             max_k: int | None = None, max_n: int | None = None, per_precision: int = 0,
             full_size: bool = False) -> SimResult:
    """Run the cocotb tests for ``p``; raise :class:`verif.runner.SimFailure` on failure.

    ``idle``/``backpressure``/``burst``: stall probabilities (i.i.d. per cycle, and of a burst
    starting). ``max_k``/``max_n`` bound the GEMVs (default: the engine's maxima);
    ``per_precision`` random-shape GEMVs per set and precision beyond the fixed ones, and
    ``full_size`` one max_n x max_k GEMV per set (see :func:`verif.gemv_scenarios.bit_exact`)."""
    return run_cocotb(GemvEngine(p), name=TOP, tag=p.tag, test_module=TEST_MODULE,
                      testcase=testcase, seed=seed, info=gemv_info(p),
                      config={"params": p.describe(), "idle": idle, "backpressure": backpressure,
                              "burst": burst, "max_k": max_k or p.max_k, "max_n": max_n or p.max_n,
                              "per_precision": per_precision, "full_size": full_size})
