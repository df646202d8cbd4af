"""cocotb tests of hw.uart.UART under Verilator, against cocotbext-uart's line models.

The reference is the byte sequence itself: what ``UartSource`` puts on ``rx`` must come out of
``rx_data`` (taken with random and bursty backpressure), and what :class:`verif.stream.StreamSource`
offers on ``tx_data`` (with random and bursty idle cycles) must be what ``UartSink`` decodes on
``tx``. Garbage on the line (glitches, missing stop bits, a break) must cost only the bytes it
hits, and nothing may come out in an idle tail.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotbext.uart import UartSink, UartSource

from verif.stream import CocotbIO, StreamSink, StreamSource
from verif.tb_util import PERIOD_NS, CocotbClock, start_and_reset, tb_config


async def _setup(dut, test):
    cfg = tb_config()
    rng = random.Random(f"{cfg['seed']}:{test}")
    baud = round(1e9 / (cfg["divisor"] * PERIOD_NS))
    dut.rx.value = 1
    dut.rx_data__ready.value = 0
    dut.tx_data__valid.value = 0
    await start_and_reset(dut)
    return cfg, rng, baud


class _Errors:
    """Counts the one-cycle error pulses."""

    def __init__(self, dut):
        self.frame, self.overrun = 0, 0
        cocotb.start_soon(self._watch(dut))

    async def _watch(self, dut):
        while True:
            await RisingEdge(dut.clk)
            self.frame += int(dut.frame_error.value)
            self.overrun += int(dut.overrun.value)


async def _collect(dut, sink: StreamSink, n: int, clock, budget: int):
    for cycle in range(budget):
        await clock.edge()
        sink.drive(cycle)
        await clock.settle()
        sink.sample(cycle)
        if len(sink.items) >= n:
            return
    raise AssertionError(f"{len(sink.items)} of {n} bytes after {budget} cycles")


@cocotb.test()
async def receive_with_backpressure(dut):
    """Every byte value and random bytes, back to back; the sink stalls at random and in bursts
    (kept shorter than a byte time, so no byte may be lost)."""
    cfg, rng, baud = await _setup(dut, "receive")
    data = bytes(range(256)) + bytes(rng.randrange(256) for _ in range(cfg["bytes"]))
    errors = _Errors(dut)
    src = UartSource(dut.rx, baud=baud, bits=8)
    await src.write(data)
    sink = StreamSink(CocotbIO(dut), "rx_data", 8, rng, backpressure=0.3, signed=False,
                      burst=0.02)
    sink.stall.burst_len = (4, 2 * cfg["divisor"])
    await _collect(dut, sink, len(data), CocotbClock(dut), 12 * cfg["divisor"] * len(data) + 100)
    assert bytes(sink.items) == data
    assert errors.frame == 0 and errors.overrun == 0


@cocotb.test()
async def transmit_with_idle_source(dut):
    """Bytes offered with random and bursty gaps come out on tx exactly, in order."""
    cfg, rng, baud = await _setup(dut, "transmit")
    data = bytes([0x00, 0xFF, 0x55, 0xAA]) + bytes(rng.randrange(256) for _ in range(cfg["bytes"]))
    uart_sink = UartSink(dut.tx, baud=baud, bits=8)
    src = StreamSource(CocotbIO(dut), "tx_data", 8, rng, idle=0.3, burst=0.05)
    for b in data:
        src.push(b)
    clock = CocotbClock(dut)
    for cycle in range(12 * cfg["divisor"] * len(data) + 200):
        await clock.edge()
        src.drive(cycle)
        await clock.settle()
        src.sample(cycle)
        if src.done:
            break
    for _ in range(12 * cfg["divisor"] * 2):        # the last frames leave the shift register
        if uart_sink.count() >= len(data):
            break
        await RisingEdge(dut.clk)
    assert uart_sink.count() == len(data), f"{uart_sink.count()} of {len(data)} bytes on tx"
    assert bytes(uart_sink.read_nowait(len(data))) == data


@cocotb.test()
async def back_to_back_transmit_has_no_gap(dut):
    """With a source that never idles, frames follow each other with no idle bit time:
    n bytes take exactly 10 * n bit times on the line."""
    cfg, rng, _ = await _setup(dut, "no_gap")
    n = 20
    src = StreamSource(CocotbIO(dut), "tx_data", 8, rng)
    for _ in range(n):
        src.push(rng.randrange(256))
    clock = CocotbClock(dut)
    for cycle in range(12 * cfg["divisor"] * n):
        await clock.edge()
        src.drive(cycle)
        await clock.settle()
        src.sample(cycle)
    first, last = src.transfers[0], src.transfers[-1]
    assert last - first == (n - 1) * 10 * cfg["divisor"], src.transfers[:4]


@cocotb.test()
async def garbage_on_the_line_then_recovery(dut):
    """Glitches, a byte without stop bit and a long break give exactly one framing error and
    no byte; the valid bytes after them all arrive; an idle tail stays silent."""
    cfg, rng, baud = await _setup(dut, "garbage")
    div = cfg["divisor"]
    errors = _Errors(dut)

    async def level(v, cycles):
        dut.rx.value = v
        for _ in range(cycles):
            await FallingEdge(dut.clk)

    dut.rx_data__ready.value = 1
    got = []

    async def take():
        while True:
            await RisingEdge(dut.clk)
            if int(dut.rx_data__valid.value) and int(dut.rx_data__ready.value):
                got.append(int(dut.rx_data__payload.value))

    cocotb.start_soon(take())
    await level(1, 3 * div)
    for _ in range(5):                          # glitches shorter than half a bit
        await level(0, max(1, div // 2 - 2))
        await level(1, 2 * div)
    for bit in [0] + [rng.randrange(2) for _ in range(8)] + [0]:   # missing stop bit
        await level(bit, div)
    await level(0, 30 * div)                    # break
    await level(1, 2 * div)
    data = bytes(rng.randrange(256) for _ in range(16))
    src = UartSource(dut.rx, baud=baud, bits=8)
    await src.write(data)
    await src.wait()
    await Timer(20 * div * PERIOD_NS, "ns")     # idle tail
    assert bytes(got) == data
    assert errors.frame == 1 and errors.overrun == 0


@cocotb.test()
async def overrun_is_flagged_and_recovered(dut):
    """A sink that stops for three byte times loses exactly the bytes that arrived while the
    held one was not taken, flags each, and then receives every following byte."""
    cfg, rng, baud = await _setup(dut, "overrun")
    errors = _Errors(dut)
    src = UartSource(dut.rx, baud=baud, bits=8)
    await src.write(bytes([0x11, 0x22, 0x33]))
    await src.wait()
    await Timer(5 * cfg["divisor"] * PERIOD_NS, "ns")
    dut.rx_data__ready.value = 1
    await RisingEdge(dut.clk)
    assert int(dut.rx_data__payload.value) == 0x11
    await FallingEdge(dut.clk)
    dut.rx_data__ready.value = 0
    assert errors.overrun == 2
    data = bytes(rng.randrange(256) for _ in range(8))
    sink = StreamSink(CocotbIO(dut), "rx_data", 8, rng, signed=False)
    await src.write(data)
    await _collect(dut, sink, len(data), CocotbClock(dut), 12 * cfg["divisor"] * len(data))
    assert bytes(sink.items) == data
