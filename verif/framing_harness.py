"""Drive the link layer's frame decoder and encoder and check them against ``golden.protocol``.

Simulator-independent like :mod:`verif.harness` (a *clock* with ``edge()``/``settle()``; cocotb's
:class:`verif.tb_util.CocotbClock` or Amaranth's :class:`verif.pysim.PysimClock`). The expected
values are ``golden.protocol``'s: the verdicts of its streaming ``FrameDecoder`` on the same bytes,
and ``encode_frame``'s bytes. :func:`wire_cases` builds the decoder's stimulus (valid frames
mixed with bit-flipped, truncated, oversize, delimiter-free and garbage-prefixed ones), and
:func:`resync_cases` the exhaustive resynchronisation set.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

from golden.protocol import (
    CRC_BYTES,
    DELIMITER,
    FRAME_HEADER,
    MAX_ENCODED,
    MAX_FRAME,
    MAX_PAYLOAD,
    ErrorCode,
    Frame,
    FrameDecoder,
    crc32c,
    encode_frame,
    pack_bytes,
)
from verif.stream import Stalls, StreamSink, StreamSource, step

__all__ = ["DecoderHarness", "EncoderHarness", "MismatchError", "golden_verdicts", "raw_frame",
           "random_frame", "wire_cases", "resync_cases", "RESYNC_ALPHABET", "RESYNC_MAX_LEN"]

#: Exhaustive resynchronisation bound: every sequence of up to RESYNC_MAX_LEN bytes over this
#: alphabet (the delimiter, short and long code bytes, 0xFF = "254 bytes, no zero", data bytes).
RESYNC_ALPHABET = (0x00, 0x01, 0x02, 0x05, 0x80, 0xFF)
RESYNC_MAX_LEN = 4


class MismatchError(AssertionError):
    pass


def raw_frame(seq: int, cmd: int, payload: bytes) -> bytes:
    """A frame before COBS: header, payload, CRC-32C (what the decoder outputs for it)."""
    raw = pack_bytes(FRAME_HEADER, seq=seq, cmd=cmd, length=len(payload)) + bytes(payload)
    return raw + crc32c(raw).to_bytes(CRC_BYTES, "little")


def random_frame(rng: random.Random, max_payload: int = MAX_PAYLOAD) -> tuple[int, int, bytes]:
    """(seq, cmd, payload): lengths biased to the edges (0, 250..260 around a COBS block,
    the maximum), bytes with many zeros or none."""
    n = rng.choice([0, 1, rng.randrange(1, 40), rng.randrange(240, 262),
                    max_payload, rng.randrange(max_payload + 1)])
    n = min(n, max_payload)
    kind = rng.randrange(3)
    if kind == 0:
        payload = bytes(rng.randrange(256) for _ in range(n))
    elif kind == 1:
        payload = bytes(rng.randrange(1, 256) for _ in range(n))         # no zero: long blocks
    else:
        payload = bytes(rng.choice((0, 0, rng.randrange(256))) for _ in range(n))
    return rng.randrange(256), rng.randrange(256), payload


def golden_verdicts(wire: bytes) -> list[tuple[int, bytes | None]]:
    """``(ErrorCode, raw frame bytes or None)`` per frame, by ``golden.protocol.FrameDecoder``."""
    out = []
    for r in FrameDecoder().feed(wire):
        if isinstance(r, Frame):
            out.append((ErrorCode.OK, raw_frame(r.seq, r.cmd, r.payload)))
        else:
            out.append((r.error, None))
    return out


def _flip(rng: random.Random, wire: bytes) -> bytes:
    b = bytearray(wire[:-1])
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b) + wire[-1:]


def wire_cases(rng: random.Random, count: int, max_payload: int = MAX_PAYLOAD) -> list[tuple[str, bytes]]:
    """``count`` labelled byte sequences, each ending in a delimiter so that it yields its
    verdicts before the next one starts: valid frames, 1-3 bit flips (which may hit a delimiter
    or create one), truncations (cut anywhere), oversize runs (> MAX_ENCODED bytes), long
    delimiter-free garbage, garbage prefixes before a valid frame, and a frame whose length
    field lies (two frames joined)."""
    kinds = ["valid", "flip", "truncated", "oversize", "no_delimiter", "garbage_prefix", "joined",
             "short_garbage"]
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        wire = encode_frame(*random_frame(rng, max_payload))
        if kind == "flip":
            wire = _flip(rng, wire)
        elif kind == "truncated":
            wire = wire[:rng.randrange(1, len(wire) - 1)] + bytes([DELIMITER])
        elif kind == "oversize":
            wire = bytes(rng.randrange(1, 256) for _ in range(MAX_ENCODED + rng.randint(1, 40))) \
                + bytes([DELIMITER])
        elif kind == "no_delimiter":           # garbage without a zero, then the frame
            wire = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 80))) + wire
        elif kind == "garbage_prefix":         # garbage with zeros, a delimiter, then the frame
            wire = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30))) \
                + bytes([DELIMITER]) + wire
        elif kind == "joined":                 # a lost delimiter joins two frames
            wire = wire[:-1] + encode_frame(*random_frame(rng, 20))
        elif kind == "short_garbage":
            wire = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8))) + bytes([DELIMITER])
        out.append((kind, wire))
    return out


def resync_cases(max_len: int = RESYNC_MAX_LEN) -> list[bytes]:
    """Every byte sequence of length 0..max_len over RESYNC_ALPHABET."""
    return [bytes(s) for n in range(max_len + 1)
            for s in itertools.product(RESYNC_ALPHABET, repeat=n)]


class _Harness:
    """Stream endpoints stepped together (``self.endpoints``, set by the subclass)."""

    endpoints: tuple = ()
    cycle = 0

    def idle_inputs(self) -> None:
        """Before reset: no source valid, no sink ready."""
        for e in self.endpoints:
            self.io.set(f"{e.name}__{'valid' if isinstance(e, StreamSource) else 'ready'}", 0)

    async def step(self, clock) -> None:
        await step(clock, self.endpoints, self.cycle)
        self.cycle += 1


class DecoderHarness(_Harness):
    """Feeds wire bytes to ``hw.framing.FrameDecoder`` and groups its output per verdict."""

    def __init__(self, io, rng: random.Random, idle: float = 0.0, backpressure: float = 0.0,
                 burst: float = 0.0):
        self.io = io
        self.wire = StreamSource(io, "wire", 8, rng, idle, burst)
        self.frame = StreamSink(io, "frame", 10, rng, backpressure, signed=False, burst=burst)
        self.verdict = StreamSink(io, "verdict", 8, rng, backpressure, signed=False, burst=burst)
        self.endpoints = (self.wire, self.frame, self.verdict)
        self.cycle = 0
        self.counts: Counter = Counter()
        self._bytes_seen = 0



    def _frames(self, n0: int) -> list[tuple[int, bytes]]:
        """(verdict, bytes since the previous verdict) for verdicts n0.., checking first/last."""
        out, beats = [], self.frame.items[self._bytes_seen:]
        # verdict i belongs to the bytes transferred before it (bytes never overtake a verdict)
        vt = self.verdict.transfers
        ft = self.frame.transfers[self._bytes_seen:]
        k = 0
        for i in range(n0, len(self.verdict.items)):
            group = []
            while k < len(beats) and ft[k] < vt[i]:
                group.append(beats[k])
                k += 1
            for j, beat in enumerate(group):
                first, last = beat >> 8 & 1, beat >> 9 & 1
                if first != (j == 0) or last != (j == len(group) - 1):
                    raise MismatchError(f"verdict {i}: byte {j} of {len(group)} has first={first} "
                                        f"last={last}")
            if len(group) > MAX_FRAME:
                raise MismatchError(f"verdict {i}: {len(group)} bytes > MAX_FRAME")
            out.append((self.verdict.items[i], bytes(b & 0xFF for b in group)))
        self._bytes_seen += k
        if k != len(beats):
            raise MismatchError(f"{len(beats) - k} frame bytes after the last verdict")
        return out

    async def run(self, clock, wire: bytes, label: str = "", *, timeout: int | None = None):
        """Feed ``wire``; the verdicts (and an OK frame's bytes) must equal golden's."""
        want = golden_verdicts(wire)
        n0 = len(self.verdict.items)
        for b in wire:
            self.wire.push(b)
        budget = timeout or 40 * len(wire) + 400
        start = self.cycle
        while not self.wire.done or len(self.verdict.items) < n0 + len(want):
            await self.step(clock)
            if self.cycle - start > budget:
                raise MismatchError(f"{label}: timeout, {len(self.verdict.items) - n0} of "
                                    f"{len(want)} verdicts, {len(self.wire.queue)} bytes not taken")
        for _ in range(4):          # a spurious extra verdict would show up here
            await self.step(clock)
        got = self._frames(n0)
        if len(got) != len(want):
            raise MismatchError(f"{label}: {len(got)} verdicts, golden {len(want)}: "
                                f"{[v for v, _ in got]} vs {[int(v) for v, _ in want]}")
        for i, ((gv, gb), (wv, wb)) in enumerate(zip(got, want)):
            if gv != wv or (wb is not None and gb != wb):
                raise MismatchError(f"{label}: frame {i}: dut {ErrorCode(gv).name} "
                                    f"({len(gb)} bytes), golden {ErrorCode(wv).name} "
                                    f"({None if wb is None else len(wb)} bytes); wire "
                                    f"{wire[:24].hex()}{'...' if len(wire) > 24 else ''}")
            self.counts[ErrorCode(wv).name] += 1
        return got

    async def idle_tail(self, clock, cycles: int = 64) -> None:
        """Cycles with no input and ready sinks: nothing may come out."""
        nf, nv = len(self.frame.items), len(self.verdict.items)
        saved = self.frame.stall, self.verdict.stall
        self.frame.stall = self.verdict.stall = Stalls(self.frame.rng)
        for _ in range(cycles):
            await self.step(clock)
        self.frame.stall, self.verdict.stall = saved
        if len(self.frame.items) != nf or len(self.verdict.items) != nv:
            raise MismatchError("output in the idle tail")


class EncoderHarness(_Harness):
    """Feeds frames to ``hw.framing.FrameEncoder``; its wire bytes must equal encode_frame's."""

    def __init__(self, io, rng: random.Random, idle: float = 0.0, backpressure: float = 0.0,
                 burst: float = 0.0):
        self.io = io
        self.frame = StreamSource(io, "frame", 9, rng, idle, burst)
        self.wire = StreamSink(io, "wire", 8, rng, backpressure, signed=False, burst=burst)
        self.endpoints = (self.frame, self.wire)
        self.cycle = 0



    async def run(self, clock, frames: list[tuple[int, int, bytes]], *, timeout: int | None = None):
        """Send ``frames`` back to back; the wire must carry exactly their ``encode_frame``."""
        want = b"".join(encode_frame(*f) for f in frames)
        n0 = len(self.wire.items)
        for seq, cmd, payload in frames:
            raw = raw_frame(seq, cmd, payload)[:-CRC_BYTES]
            for i, b in enumerate(raw):
                self.frame.push(b | (i == len(raw) - 1) << 8)
        budget = timeout or 40 * len(want) + 600
        start = self.cycle
        while len(self.wire.items) < n0 + len(want):
            await self.step(clock)
            if self.cycle - start > budget:
                raise MismatchError(f"timeout: {len(self.wire.items) - n0} of {len(want)} bytes")
        got = bytes(self.wire.items[n0:])
        if got != want:
            i = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            raise MismatchError(f"wire byte {i} of {len(want)}: dut {got[i:i + 8].hex()} "
                                f"golden {want[i:i + 8].hex()}")
        if not self.frame.done:
            raise MismatchError("wire complete but frame bytes not all taken")
        return got

    async def idle_tail(self, clock, cycles: int = 64) -> None:
        n0 = len(self.wire.items)
        saved, self.wire.stall = self.wire.stall, Stalls(self.wire.rng)
        for _ in range(cycles):
            await self.step(clock)
        self.wire.stall = saved
        if len(self.wire.items) != n0:
            raise MismatchError(f"{len(self.wire.items) - n0} wire byte(s) in the idle tail")
