"""Run the shift-add LUT unit's cocotb tests (:mod:`verif.tb_lut`) under Verilator through the
generic :func:`verif.runner.run_cocotb`."""

from __future__ import annotations

from bitmix.designs import lut_unit_info
from hw.lut_params import LutParams
from hw.lut_unit import LutUnit
from verif.runner import SimResult, run_cocotb

__all__ = ["run_lut_unit", "TOP", "TEST_MODULE"]

TOP = "lut_unit"
TEST_MODULE = "verif.tb_lut"


def run_lut_unit(p: LutParams, *, testcase: str | list[str] | None = None, seed: int | None = None,
                 idle: float = 0.3, backpressure: float = 0.3, blocks: int = 4,
                 groups: tuple[int, ...] = (16,)) -> SimResult:
    """Run the cocotb tests for ``p``; raise :class:`verif.runner.SimFailure` on failure.

    ``idle``/``backpressure``: per-cycle stall probabilities (the tests add bursts of their
    own); ``blocks``: row blocks per coverage GEMV; ``groups``: row-layout group sizes tried."""
    return run_cocotb(LutUnit(p), name=TOP, tag=p.tag, test_module=TEST_MODULE, testcase=testcase,
                      seed=seed, info=lut_unit_info(p),
                      config={"params": p.describe(), "idle": idle, "backpressure": backpressure,
                              "blocks": blocks, "groups": list(groups)})
