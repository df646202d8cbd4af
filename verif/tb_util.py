"""What every cocotb testbench module needs: its config, a clock adapter, a reset."""

from __future__ import annotations

import json
import os

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from verif.runner import CONFIG_ENV

__all__ = ["tb_config", "CocotbClock", "start_and_reset", "PERIOD_NS"]

PERIOD_NS = 10


def tb_config() -> dict:
    """The config :func:`verif.runner.run_cocotb` wrote (its ``config`` + ``seed`` + ``ports``)."""
    with open(os.environ[CONFIG_ENV]) as f:
        return json.load(f)


class CocotbClock:
    """The clock protocol of the simulator-independent harnesses (see :mod:`verif.stream`):
    ``edge()`` moves to the falling edge, where inputs change; ``settle()`` waits until the
    combinational logic has settled, so the sampled values decide the next rising edge."""

    def __init__(self, dut):
        self.dut = dut

    async def edge(self):
        await FallingEdge(self.dut.clk)

    async def settle(self):
        await Timer(1, unit="ns")


async def start_and_reset(dut, cycles: int = 3) -> None:
    """Start ``clk`` and hold ``rst`` high for ``cycles`` rising edges."""
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
