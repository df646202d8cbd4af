"""cocotb + Verilator: hw.uart.UART against cocotbext-uart's line models (verif/tb_uart.py)."""

import pytest

from hw.uart import UART, UARTParams
from verif.runner import run_cocotb


@pytest.mark.parametrize("divisor", [16, 5], ids=["div16", "div5"])
def test_uart_cocotb(divisor):
    res = run_cocotb(UART(UARTParams.from_divisor(divisor)), name="uart", tag=f"uart_div{divisor}",
                     test_module="verif.tb_uart", config={"divisor": divisor, "bytes": 200})
    assert res.tests == 5


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_uart_cocotb_long(seed):
    res = run_cocotb(UART(UARTParams.from_divisor(8)), name="uart", tag="uart_div8",
                     test_module="verif.tb_uart", config={"divisor": 8, "bytes": 3000}, seed=seed)
    assert res.tests == 5
