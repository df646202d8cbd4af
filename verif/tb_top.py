"""cocotb tests of the FPGA top (:class:`fpga.top.DeviceTop`) under Verilator, through its link:
the UART pins with cocotbext-uart's line models (``link="uart"``), or the byte streams with random
and bursty stalls (``link="bytes"``).

The config names the top's parameters (``TopParams.describe()``), the scenarios of
:mod:`verif.top_scenarios` to run in order (``options``: keyword arguments per scenario), and the
stall rates (byte streams) or the longest random pause before a request (UART). An idle tail follows the last
scenario: the device must stay silent and still answer afterwards.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import ClockCycles
from cocotbext.uart import UartSink, UartSource

from fpga.top_params import TopParams
from golden.protocol import Command
from verif.stream import CocotbIO
from verif.tb_util import PERIOD_NS, CocotbClock, start_and_reset, tb_config
from verif.top_harness import BytesHost, HostBase
from verif.top_scenarios import SCENARIOS


class UartHost(HostBase):
    """The host on the UART pins; random pauses before each send (the line itself paces bytes)."""

    def __init__(self, dut, rng: random.Random, divisor: int, pause: int):
        super().__init__(rng)
        self.dut = dut
        self.byte_cycles = 10 * divisor
        self.chunk = 2 * divisor                   # cycles per step: a fifth of a byte time
        self.pause = pause
        baud = round(1e9 / (divisor * PERIOD_NS))
        self.src = UartSource(dut.rx, baud=baud, bits=8)
        self.sink = UartSink(dut.tx, baud=baud, bits=8)

    def idle_inputs(self) -> None:
        self.dut.rx.value = 1

    def _write(self, data: bytes) -> None:
        self.src.write_nowait(data)

    def _read(self) -> bytes:
        n = self.sink.count()
        return bytes(self.sink.read_nowait(n)) if n else b""

    def pending(self) -> bool:
        return not self.src.empty() or not self.src.idle()

    async def send(self, wire: bytes) -> None:
        if self.pause:
            await ClockCycles(self.dut.clk, self.rng.randrange(self.pause))
        await super().send(wire)

    async def step(self) -> int:
        await ClockCycles(self.dut.clk, self.chunk)
        self.cycle += self.chunk
        return self.chunk


@cocotb.test()
async def top_scenarios(dut):
    """The configured scenarios through the link, then an idle tail."""
    cfg = tb_config()
    tp = TopParams.from_dict(cfg["params"])
    rng = random.Random(f"{cfg['seed']}:top")
    if tp.link == "uart":
        host = UartHost(dut, rng, tp.divisor, cfg.get("pause", 0))
    else:
        host = BytesHost(CocotbIO(dut), CocotbClock(dut), rng, idle=cfg.get("idle", 0.0),
                         backpressure=cfg.get("backpressure", 0.0), burst=cfg.get("burst", 0.0))
    host.idle_inputs()
    await start_and_reset(dut)
    counts = {}
    for name in cfg["scenarios"]:
        counts[name] = await SCENARIOS[name](host, tp, rng, **cfg.get("options", {}).get(name, {}))
        dut._log.info(f"TOP {tp.link} {name}: {counts[name]} (cycle {host.cycle})")
    await host.quiet(host.byte_cycles * 50 + 500)     # idle tail: nothing more on the line
    assert await host.ok(Command.CAPABILITIES) == tp.capabilities_bytes()
    print(f"TOP {tp.link} params {tp.hash} scenarios={len(counts)} cycles={host.cycle} "
          f"sent_bytes={host.sent_bytes} frames={len(host.frames)} {counts}")
