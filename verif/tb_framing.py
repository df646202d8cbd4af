"""cocotb tests of hw.framing's FrameDecoder and FrameEncoder under Verilator, against
golden.protocol (through :mod:`verif.framing_harness`).

The decoder gets ``cases`` labelled byte sequences (valid, bit-flipped, truncated, oversize,
delimiter-free, garbage-prefixed, joined, short garbage) and must give golden's
``FrameDecoder`` verdicts and, for every OK frame, exactly its bytes; the encoder gets
``frames`` random frames up to ``MAX_FRAME`` and must put ``encode_frame``'s bytes on the wire.
Every stream stalls at random and in bursts; an idle tail follows.
"""

from __future__ import annotations

import random
from collections import Counter

import cocotb

from golden.protocol import encode_frame
from verif.framing_harness import (
    DecoderHarness,
    EncoderHarness,
    random_frame,
    raw_frame,
    resync_cases,
    wire_cases,
)
from verif.stream import CocotbIO
from verif.tb_util import CocotbClock, start_and_reset, tb_config

#: (idle, backpressure, burst) stall mixes, one per quarter of the run.
STALLS = ((0.0, 0.0, 0.0), (0.3, 0.3, 0.0), (0.05, 0.1, 0.02), (0.2, 0.4, 0.05))


async def _setup(dut, harness_cls, test: str):
    cfg = tb_config()
    rng = random.Random(f"{cfg['seed']}:{test}")
    h = harness_cls(CocotbIO(dut), rng)
    h.idle_inputs()
    await start_and_reset(dut)
    return cfg, rng, h


def _set_stalls(h, endpoints, mix) -> None:
    idle, back, burst = mix
    for e in endpoints:
        e.stall.rate = idle if hasattr(e, "queue") else back
        e.stall.burst = burst


@cocotb.test()
async def decoder_verdicts_equal_golden(dut):
    """``cases`` byte sequences: verdicts and OK frames equal golden.protocol's FrameDecoder."""
    cfg, rng, h = await _setup(dut, DecoderHarness, "decoder")
    cases = wire_cases(rng, cfg["cases"], cfg.get("max_payload", 512))
    clock = CocotbClock(dut)
    kinds = Counter()
    for i, (kind, wire) in enumerate(cases):
        _set_stalls(h, h.endpoints, STALLS[4 * i // len(cases)])
        await h.run(clock, wire, f"case {i} ({kind})")
        kinds[kind] += 1
    await h.idle_tail(clock)
    dut._log.info(f"decoder: {len(cases)} byte sequences {dict(kinds)}; verdicts {dict(h.counts)}; "
                  f"{h.cycle} cycles")
    print(f"FRAMING decoder cases={len(cases)} kinds={dict(kinds)} verdicts={dict(h.counts)}")
    assert h.counts["OK"] and h.counts["BAD_CRC"] and h.counts["TRUNCATED"]
    assert h.counts["OVERSIZE"] and h.counts["BAD_LENGTH"]


@cocotb.test()
async def decoder_resynchronises_after_any_short_sequence(dut):
    """Every sequence of ``resync_max_len`` bytes or fewer over
    verif.framing_harness.RESYNC_ALPHABET, then a delimiter and a valid frame: that frame comes
    out exactly (and the garbage's verdicts equal golden's)."""
    cfg, rng, h = await _setup(dut, DecoderHarness, "resync")
    clock = CocotbClock(dut)
    frames = [(0x12, 0x34, b""), (0x01, 0x02, b"\0\x01\xff")]
    seqs = resync_cases(cfg["resync_max_len"])
    for i, g in enumerate(seqs):
        f = frames[i % 2]
        got = await h.run(clock, g + b"\0" + encode_frame(*f), f"garbage {g.hex()}")
        assert got[-1] == (0, raw_frame(*f)), g.hex()
    await h.idle_tail(clock)
    print(f"FRAMING resync max_len={cfg['resync_max_len']} sequences={len(seqs)} "
          f"verdicts={dict(h.counts)}")


@cocotb.test()
async def encoder_bytes_equal_golden(dut):
    """``frames`` random frames up to MAX_FRAME: the wire carries exactly encode_frame's bytes."""
    cfg, rng, h = await _setup(dut, EncoderHarness, "encoder")
    frames = [random_frame(rng) for _ in range(cfg["frames"])]
    clock = CocotbClock(dut)
    per = max(1, len(frames) // len(STALLS))
    for k, mix in enumerate(STALLS):
        _set_stalls(h, h.endpoints, mix)
        chunk = frames[k * per:(k + 1) * per if k < len(STALLS) - 1 else None]
        if chunk:
            await h.run(clock, chunk)
    await h.idle_tail(clock)
    print(f"FRAMING encoder frames={len(frames)} bytes={sum(len(raw_frame(*f)) for f in frames)} "
          f"cycles={h.cycle}")
