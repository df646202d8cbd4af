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

__all__ = ["run_gemv", "TOP", "TEST_MODULE", "BASE_TESTS", "LUT_TESTS"]

TOP = "gemv"
TEST_MODULE = "verif.tb_gemv"
#: The cocotb tests of every engine, and those of the LUT path (engines with ``lut``); the
#: checkpoint-layer test runs when a layer is given.
BASE_TESTS = ["readies_low_in_reset", "bit_exact", "coverage", "cycle_model", "errors"]
LUT_TESTS = ["lut_bit_exact", "lut_coverage", "lut_cycle_model", "lut_errors"]


def run_gemv(p: GemvParams, *, testcase: str | list[str] | None = None, seed: int | None = None,
             idle: float = 0.3, backpressure: float = 0.3, burst: float = 0.01,
             max_k: int | None = None, max_n: int | None = None, per_precision: int = 0,
             full_size: bool = False, lut_max_k: int = 128, lut_max_n: int = 24,
             lut_layer: str | None = None) -> SimResult:
    """Run the cocotb tests for ``p``; raise :class:`verif.runner.SimFailure` on failure.

    ``idle``/``backpressure``/``burst``: stall probabilities (i.i.d. per cycle, and of a burst
    starting). ``max_k``/``max_n`` bound the GEMVs (default: the engine's maxima);
    ``per_precision`` random-shape GEMVs per set and precision beyond the fixed ones, and
    ``full_size`` one max_n x max_k GEMV per set (see :func:`verif.gemv_scenarios.bit_exact`).
    ``lut_max_k``/``lut_max_n`` bound the path-1 GEMVs (one runs at K = max K regardless);
    ``lut_layer``: a ``torch.save`` d BCQ layer (``planes``, ``exps``, ``signs``, ``layout``,
    ``group_size``, ``name``) for ``lut_checkpoint_layer``. By default every test that applies
    runs: :data:`BASE_TESTS`, with a LUT path also :data:`LUT_TESTS` (and the layer test)."""
    if testcase is None:
        testcase = BASE_TESTS + (LUT_TESTS if p.lut else []) + (
            ["lut_checkpoint_layer"] if p.lut and lut_layer else [])
    return run_cocotb(GemvEngine(p), name=TOP, tag=p.tag, test_module=TEST_MODULE,
                      testcase=testcase, seed=seed, info=gemv_info(p),
                      config={"params": p.describe(), "idle": idle, "backpressure": backpressure,
                              "burst": burst, "max_k": max_k or p.max_k, "max_n": max_n or p.max_n,
                              "per_precision": per_precision, "full_size": full_size,
                              "lut_max_k": lut_max_k, "lut_max_n": lut_max_n,
                              "lut_layer": lut_layer})
