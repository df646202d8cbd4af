"""cocotb + Verilator: hw.link.Link (UART + frame decoder + encoder) through its pins against
cocotbext-uart and golden.protocol (verif/tb_link.py)."""

from hw.link import Link, LinkParams
from hw.uart import UARTParams
from verif.runner import run_cocotb


def test_link_cocotb():
    # divisor 4: 40 cycles per byte, the fastest line the UART allows (the encoder's worst case)
    res = run_cocotb(Link(LinkParams(UARTParams.from_divisor(4))), name="link", tag="link_div4",
                     test_module="verif.tb_link",
                     config={"divisor": 4, "cases": 28, "frames": 6, "max_payload": 24})
    assert res.tests == 2
