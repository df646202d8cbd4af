"""hw.uart under Amaranth's simulator: bytes, glitches, framing errors, breaks, overruns, and the
transmitter's bit timing (the cocotb + Verilator test is tests/verif/test_verif_uart.py)."""

import pytest
from amaranth.sim import Simulator

from bitmix.errors import BitmixError
from hw.uart import UART, UARTParams

DIV = 8


def _bits(byte: int, stop: int = 1) -> list[int]:
    return [0, *((byte >> i) & 1 for i in range(8)), stop]


def _run(line: list[int], *, ready_from: int = 0, send: tuple = ()):
    """Drive ``line`` (one level per clock) into rx; take rx bytes from cycle ``ready_from``;
    send ``send`` bytes on tx. Returns (bytes, frame errors, overruns, tx levels)."""
    dut = UART(UARTParams.from_divisor(DIV))
    out = {"rx": [], "fe": 0, "ov": 0, "tx": []}

    async def bench(ctx):
        pending = list(send)
        for cycle, level in enumerate(line):
            ctx.set(dut.rx, level)
            ctx.set(dut.rx_data.ready, cycle >= ready_from)
            ctx.set(dut.tx_data.valid, bool(pending))
            if pending:
                ctx.set(dut.tx_data.payload, pending[0])
            _c, _r, valid, ready, data, fe, ov, tx_ready, tx = await ctx.tick().sample(
                dut.rx_data.valid, dut.rx_data.ready, dut.rx_data.payload, dut.frame_error,
                dut.overrun, dut.tx_data.ready, dut.tx)
            if valid and ready:
                out["rx"].append(data)
            out["fe"] += fe
            out["ov"] += ov
            out["tx"].append(tx)
            if pending and tx_ready:
                pending.pop(0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def _line(*chunks) -> list[int]:
    return [lvl for chunk in chunks for lvl in chunk]


def _frame(byte, stop=1):
    return [b for b in _bits(byte, stop) for _ in range(DIV)]


def test_bytes_back_to_back_and_with_idle():
    data = [0x00, 0xFF, 0x55, 0xA5, 0x01, 0x80]
    line = _line([1] * 5, *(_frame(b) for b in data[:3]), [1] * 13, *(_frame(b) for b in data[3:]),
                 [1] * 20)
    out = _run(line)
    assert out["rx"] == data and out["fe"] == 0 and out["ov"] == 0


def test_glitch_shorter_than_half_a_bit_is_ignored():
    line = _line([1] * 5, [0] * (DIV // 2 - 2), [1] * 10, _frame(0x3C), [1] * 20)
    out = _run(line)
    assert out["rx"] == [0x3C] and out["fe"] == 0


def test_missing_stop_bit_and_break_give_one_error_then_recover():
    line = _line([1] * 5, _frame(0x42, stop=0), [0] * 100, [1] * 12, _frame(0x99), [1] * 20)
    out = _run(line)
    assert out["rx"] == [0x99] and out["fe"] == 1


def test_overrun_drops_the_new_byte_and_flags_it():
    line = _line([1] * 5, _frame(0x11), _frame(0x22), _frame(0x33), [1] * 40)
    # the first byte is taken between the second's stop bit (~cycle 165) and the third's (~245)
    out = _run(line, ready_from=25 * DIV)
    assert out["rx"] == [0x11, 0x33] and out["ov"] == 1 and out["fe"] == 0


def test_transmitter_bit_timing():
    out = _run([1] * (30 * DIV), send=(0xA7, 0x00))
    tx = out["tx"]
    start = tx.index(0)
    want = _frame(0xA7) + _frame(0x00)
    assert tx[start:start + len(want)] == want
    assert all(tx[start + len(want):])           # idle high afterwards


@pytest.mark.parametrize("clk,baud,msg", [(12e6, 4_000_000, "too fast"), (12e6, 2_500_000, "off by"),
                                           (12e6, 0, "positive integer")])
def test_bad_baud_rates_are_refused(clk, baud, msg):
    with pytest.raises(BitmixError, match=msg):
        UARTParams.make(clk_hz=clk, baud=baud)
    assert UARTParams.make(clk_hz=12e6, baud=115200).divisor == 104


def test_bitmix_elaborate_writes_a_lint_clean_uart(tmp_path, capsys):
    from bitmix.cli import main

    rc = main(["elaborate", "--design", "uart", "--clk-hz", "12000000", "--baud", "3000000",
               "--out", str(tmp_path)])
    assert rc == 0 and "divisor 4 clock cycles per bit" in capsys.readouterr().out
    assert "module uart" in (tmp_path / "uart.v").read_text()
    rc = main(["elaborate", "--design", "uart", "--baud", "4000000", "--out", str(tmp_path)])
    assert rc == 2 and "too fast for a 12 MHz clock" in capsys.readouterr().err
