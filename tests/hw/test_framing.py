"""hw.framing under Amaranth's simulator: the decoder's verdicts equal golden.protocol's
FrameDecoder on valid, corrupted, truncated, oversize and garbage input, the encoder's bytes equal
encode_frame's, with random and bursty stalls; the exhaustive resynchronisation check (the
cocotb + Verilator tests are tests/verif/test_verif_framing.py)."""

import json
import random

import pytest
from amaranth.lib.crc import catalog
from amaranth.sim import Simulator

from golden.protocol import CRC, CRC_RESIDUE, MAX_ENCODED, MAX_PAYLOAD, ErrorCode, encode_frame
from hw.framing import FrameDecoder, FrameEncoder, crc_parameters
from verif.framing_harness import (
    RESYNC_ALPHABET,
    RESYNC_MAX_LEN,
    DecoderHarness,
    EncoderHarness,
    MismatchError,
    random_frame,
    raw_frame,
    resync_cases,
    wire_cases,
)
from verif.pysim import PysimClock, PysimIO


def _sim(dut, body):
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        await body(ctx)

    sim.add_testbench(bench)
    sim.run()


def test_crc_parameters_are_golden_crc32c():
    p = crc_parameters()
    alg = catalog.CRC32_ISCSI
    for name in ("crc_width", "polynomial", "initial_crc", "reflect_input", "reflect_output",
                 "xor_output"):
        assert getattr(p.algorithm, name) == getattr(alg, name), name
    assert p.compute(b"123456789") == CRC.check
    assert p.residue() ^ CRC.xor_output == CRC_RESIDUE


def _decode(chunks, *, seed=0, idle=0.0, backpressure=0.0, burst=0.0, tail=True):
    dut = FrameDecoder()
    counts = {}

    async def body(ctx):
        h = DecoderHarness(PysimIO(dut, ctx), random.Random(seed), idle, backpressure, burst)
        h.idle_inputs()
        clock = PysimClock(ctx)
        for label, wire in chunks:
            await h.run(clock, wire, label)
        if tail:
            await h.idle_tail(clock)
        counts.update(h.counts)

    _sim(dut, body)
    return counts


def test_decoder_edge_cases():
    cases = [
        ("empty frames are idle fill", b"\0\0\0"),
        ("minimal frame", encode_frame(1, 2)),
        ("max frame, no zeros", encode_frame(3, 4, bytes([7]) * MAX_PAYLOAD)),
        ("max frame, zeros", encode_frame(3, 4, bytes(MAX_PAYLOAD))),
        ("payload ends at a block", encode_frame(5, 6, bytes([9]) * 250)),
        ("code past delimiter", b"\x05\x01\x02\0"),
        ("0xFF code cut", b"\xff\x01\0"),
        ("only a code byte", b"\x01\0"),
        ("header only", b"\x05\x01\x02\x03\x04\0"),
        ("length says 513", b"\x03\x01\x02\x03\x01\x02\0"),
        ("oversize then frame", b"\x55" * 600 + b"\0" + encode_frame(7, 8, b"abc")),
        ("exactly MAX_ENCODED", b"\x55" * 523 + b"\0"),
        ("bad crc", encode_frame(1, 1, b"xyz")[:-2] + b"\x01\0"),
        ("joined", encode_frame(1, 1, b"a")[:-1] + encode_frame(2, 2, b"b")),
    ]
    counts = _decode(cases)
    assert set(counts) == {"OK", "TRUNCATED", "OVERSIZE", "BAD_CRC", "BAD_LENGTH"}, counts


def test_decoder_detects_a_wrong_expectation():
    """The harness fails when the gateware disagrees (here: an expected frame that is not there)."""
    dut = FrameDecoder()

    async def body(ctx):
        h = DecoderHarness(PysimIO(dut, ctx), random.Random(0))
        h.idle_inputs()
        clock = PysimClock(ctx)
        await h.run(clock, encode_frame(1, 2, b"ab"))
        h.verdict.items[-1] = ErrorCode.BAD_CRC      # tamper with what the DUT said
        with pytest.raises(MismatchError):
            h.frame.items.append(0)                   # and a stray byte
            h.frame.transfers.append(h.cycle)
            h._frames(0)

    _sim(dut, body)


@pytest.mark.parametrize("stalls", [(0.1, 0.2, 0.03)], ids=["random_and_bursty"])
def test_decoder_random_cases_equal_golden(stalls):
    rng = random.Random(f"dec{stalls}")
    cases = wire_cases(rng, 24)     # the 2,000-case comparison runs under Verilator
    counts = _decode(cases, seed=1, idle=stalls[0], backpressure=stalls[1], burst=stalls[2])
    print(dict(counts))
    assert counts["OK"] >= 6 and counts["BAD_CRC"] + counts["TRUNCATED"] >= 6


def test_resynchronisation_exhaustive():
    """Exhaustive resynchronisation: for EVERY byte sequence of length 0..RESYNC_MAX_LEN (4) over
    RESYNC_ALPHABET (0x00, 0x01, 0x02, 0x05, 0x80, 0xFF: the delimiter, short codes, codes that
    point past the frame, 0xFF = 254 bytes without zero), 1,555 sequences, the sequence followed
    by a delimiter and a valid frame yields golden's verdicts for the garbage and then exactly
    that frame (OK, its bytes). The decoder starts each sequence in the state the previous
    frame's delimiter left, which is its reset state."""
    seqs = resync_cases()
    assert len(seqs) == sum(len(RESYNC_ALPHABET) ** n for n in range(RESYNC_MAX_LEN + 1))
    frames = [(0x12, 0x34, b""), (0x01, 0x02, b"\0\x01\xff")]
    dut = FrameDecoder()
    oks = []

    async def body(ctx):
        h = DecoderHarness(PysimIO(dut, ctx), random.Random(0))
        h.idle_inputs()
        clock = PysimClock(ctx)
        for i, g in enumerate(seqs):
            f = frames[i % 2]
            got = await h.run(clock, g + b"\0" + encode_frame(*f), f"garbage {g.hex()}")
            assert got[-1] == (ErrorCode.OK, raw_frame(*f)), g.hex()
            oks.append(1)

    _sim(dut, body)
    assert len(oks) == len(seqs)


def _encode(frames, *, seed=0, idle=0.0, backpressure=0.0, burst=0.0):
    dut = FrameEncoder()

    async def body(ctx):
        h = EncoderHarness(PysimIO(dut, ctx), random.Random(seed), idle, backpressure, burst)
        h.idle_inputs()
        clock = PysimClock(ctx)
        await h.run(clock, frames)
        await h.idle_tail(clock)

    _sim(dut, body)


def test_encoder_edge_cases():
    frames = [(1, 2, b""), (0, 0, b"\0" * 9), (3, 4, bytes([7]) * MAX_PAYLOAD),
              (5, 6, bytes(MAX_PAYLOAD)), (7, 8, bytes([9]) * 246), (7, 8, bytes([9]) * 250),
              (9, 9, bytes([1]) * 250 + b"\0")]
    # a payload whose CRC has a zero byte (the frame ends in a zero: an empty final block)
    for i in range(2000):
        raw = raw_frame(1, 1, i.to_bytes(2, "little"))
        if raw[-1] == 0:
            frames.append((1, 1, i.to_bytes(2, "little")))
            break
    _encode(frames)


@pytest.mark.parametrize("stalls", [(0.3, 0.3, 0), (0.1, 0.2, 0.03)], ids=["random", "bursty"])
def test_encoder_random_frames_equal_golden(stalls):
    rng = random.Random(f"enc{stalls}")
    _encode([random_frame(rng) for _ in range(12)], seed=2, idle=stalls[0],
            backpressure=stalls[1], burst=stalls[2])


def _line_idle(frames, byte_time=40):
    """Send ``frames`` back to back from a source that never idles into a sink that behaves like
    the UART transmitter (takes a byte, then is busy for ``byte_time`` cycles). Returns the idle
    gaps (cycles the line waits for the encoder) after the line's first byte, and the wire bytes;
    the first block's fill before the first byte is latency, not idle time."""
    dut = FrameEncoder()
    out = {"gaps": [], "wire": bytearray()}

    async def body(ctx):
        words = []
        for f in frames:
            raw = raw_frame(*f)[:-4]
            words += [b | (i == len(raw) - 1) << 8 for i, b in enumerate(raw)]
        want = sum(len(encode_frame(*f)) for f in frames)
        free_at, cycle = 0, 0
        while len(out["wire"]) < want:
            ctx.set(dut.frame.valid, bool(words))
            if words:
                ctx.set(dut.frame.payload.as_value(), words[0])
            ready = cycle >= free_at
            ctx.set(dut.wire.ready, ready)
            in_ready = ctx.get(dut.frame.ready)
            valid, data = ctx.get(dut.wire.valid), ctx.get(dut.wire.payload)
            if words and in_ready:
                words.pop(0)
            if ready and valid:
                if out["wire"]:
                    out["gaps"].append(cycle - free_at)
                out["wire"].append(data)
                free_at = cycle + byte_time
            await ctx.tick()
            cycle += 1

    _sim(dut, body)
    return out


_RUN = bytes([0x5A]) * 300
LINE_CASES = {
    "payload 300 x 0x5A (header without zeros), twice": [(1, 2, _RUN)] * 2,
    "zero, then 300 x 0x5A": [(1, 2, b"\0" + _RUN)],
    "max payload of 0x5A (length 0x0200 has a zero)": [(1, 2, bytes([0x5A]) * MAX_PAYLOAD)],
    "max payload of zeros": [(1, 2, bytes(MAX_PAYLOAD))],
}


@pytest.mark.parametrize("name", [
    *list(LINE_CASES)[:2], *(pytest.param(n, marks=pytest.mark.slow) for n in list(LINE_CASES)[2:])])
def test_encoder_line_idle_is_bounded(name):
    """Measured with a 40-cycle byte time and an input that never idles: the line waits for the
    encoder only where a block of up to 254 bytes follows a short one (its fill, 254 cycles, is
    longer than the short block's drain); each such gap is at most 256 - 40 = 216 cycles, and a
    run of 254-byte blocks (a frame whose header has no zero byte) leaves no gap at all, also
    between frames."""
    fs = LINE_CASES[name]
    out = _line_idle(fs)
    assert bytes(out["wire"]) == b"".join(encode_frame(*f) for f in fs)
    gaps = [g for g in out["gaps"] if g]
    print(f"{name}: {len(out['wire'])} wire bytes, line idle {sum(gaps)} cycles in "
          f"{len(gaps)} gap(s), longest {max(gaps, default=0)}")
    assert max(gaps, default=0) <= 216
    if name.startswith("payload 300") or name.endswith("zeros"):
        assert not gaps


@pytest.mark.parametrize("design", ["framing_decoder", "framing_encoder"])
def test_bitmix_elaborate_writes_lint_clean_verilog(design, tmp_path, capsys):
    from bitmix.cli import main

    assert main(["elaborate", "--design", design, "--out", str(tmp_path)]) == 0
    assert "lint: passed" in capsys.readouterr().out
    man = json.loads((tmp_path / f"{design}.json").read_text())
    assert man["framing"]["max_encoded"] == MAX_ENCODED
    assert main(["elaborate", "--design", design, "--baud", "9600", "--out", str(tmp_path)]) == 2
