"""cocotb tests of hw.link.Link (UART + frame decoder + encoder) under Verilator, through its
pins, with cocotbext-uart's line models as the host.

Host → device: labelled byte sequences from :func:`verif.framing_harness.wire_cases` (valid,
bit-flipped, truncated, delimiter-free, garbage-prefixed, joined, short garbage) go onto ``rx``
back to back; the verdicts on ``verdict`` and the bytes of every OK frame on ``frame`` must be
golden.protocol.FrameDecoder's (sinks with random backpressure, no byte lost). Device → host:
random frames offered on ``reply`` with random and bursty gaps must reach ``tx`` as
golden.protocol.encode_frame's bytes. Idle tails follow.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.uart import UartSink, UartSource

from golden.protocol import encode_frame
from verif.framing_harness import (
    DecoderHarness,
    MismatchError,
    golden_verdicts,
    random_frame,
    raw_frame,
    wire_cases,
)
from verif.stream import CocotbIO, StreamSource, step
from verif.tb_util import PERIOD_NS, CocotbClock, start_and_reset, tb_config


async def _setup(dut, test):
    cfg = tb_config()
    rng = random.Random(f"{cfg['seed']}:{test}")
    baud = round(1e9 / (cfg["divisor"] * PERIOD_NS))
    dut.rx.value = 1
    dut.frame__ready.value = 0
    dut.verdict__ready.value = 0
    dut.reply__valid.value = 0
    await start_and_reset(dut)
    return cfg, rng, baud


@cocotb.test()
async def host_to_device_frames(dut):
    """Frames and damaged frames on the line: golden's verdicts, exact OK frames, no UART error."""
    cfg, rng, baud = await _setup(dut, "rx")
    cases = [c for c in wire_cases(rng, cfg["cases"], cfg["max_payload"]) if c[0] != "oversize"]
    wire = b"".join(w for _, w in cases)
    h = DecoderHarness(CocotbIO(dut), rng, backpressure=0.3)
    h.endpoints = (h.frame, h.verdict)              # the UART line model drives the input
    src = UartSource(dut.rx, baud=baud, bits=8)
    await src.write(wire)
    clock = CocotbClock(dut)
    errors = 0
    budget = 11 * cfg["divisor"] * len(wire) + 2000
    exp = golden_verdicts(wire)
    want = len(exp)
    while len(h.verdict.items) < want:
        await h.step(clock)
        errors += int(dut.frame_error.value) + int(dut.overrun.value)
        if h.cycle > budget:
            raise MismatchError(f"timeout: {len(h.verdict.items)} of {want} verdicts")
    await h.idle_tail(clock, 20 * cfg["divisor"])
    got = h._frames(0)
    assert [v for v, _ in got] == [int(v) for v, _ in exp]
    assert all(b == e for (_, b), (_, e) in zip(got, exp) if e is not None)
    assert errors == 0
    print(f"LINK rx cases={len(cases)} wire_bytes={len(wire)} verdicts={len(got)} "
          f"ok={sum(1 for v, _ in got if v == 0)} cycles={h.cycle}")


@cocotb.test()
async def device_to_host_frames(dut):
    """Frames offered on ``reply`` reach ``tx`` byte-identical to encode_frame."""
    cfg, rng, baud = await _setup(dut, "tx")
    frames = [random_frame(rng, cfg["max_payload"]) for _ in range(cfg["frames"])]
    want = b"".join(encode_frame(*f) for f in frames)
    sink = UartSink(dut.tx, baud=baud, bits=8)
    src = StreamSource(CocotbIO(dut), "reply", 9, rng, idle=0.2, burst=0.02)
    for f in frames:
        raw = raw_frame(*f)[:-4]
        for i, b in enumerate(raw):
            src.push(b | (i == len(raw) - 1) << 8)
    clock = CocotbClock(dut)
    for cycle in range(12 * cfg["divisor"] * len(want) + 2000):
        await step(clock, (src,), cycle)
        if sink.count() >= len(want):
            break
    for _ in range(20 * cfg["divisor"]):            # idle tail: nothing more on the line
        await RisingEdge(dut.clk)
    assert sink.count() == len(want), f"{sink.count()} of {len(want)} bytes on tx"
    assert bytes(sink.read_nowait(len(want))) == want
    print(f"LINK tx frames={len(frames)} wire_bytes={len(want)}")
