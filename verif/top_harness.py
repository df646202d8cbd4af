"""The host side of the FPGA top (:class:`fpga.top.DeviceTop`) in a testbench, simulator-independent.

:class:`BytesHost` drives the top's byte-stream link (``rx_byte`` / ``tx_byte``) through
:mod:`verif.stream` endpoints with seeded random and bursty stalls; the same class runs under
cocotb (Verilator) and Amaranth's simulator (:mod:`verif.pysim`). :class:`verif.tb_top.UartHost`
is the same host on the UART pins (cocotbext-uart). Frames are built and parsed by
``golden.protocol`` only (``encode_frame``, ``FrameDecoder``, ``split_response``).

Every wait has a cycle budget: a device that stops answering fails the test with
:class:`HangError` instead of hanging it.
"""

from __future__ import annotations

import random

from golden.protocol import (
    MAX_ENCODED,
    Command,
    ErrorCode,
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    split_response,
)
from verif.stream import StreamSink, StreamSource, step

__all__ = ["HangError", "HostBase", "BytesHost"]


class HangError(AssertionError):
    pass


class HostBase:
    """Request/response logic over a byte transport; subclasses move the bytes.

    Members
    -------
    cycle : int
        Clock cycles simulated so far.
    frames : list
        Every frame and frame error decoded from the device's output, in order.
    """

    #: clock cycles per line byte (budgets scale with it)
    byte_cycles = 1

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.seq = rng.randrange(256)
        self.cycle = 0
        self.decoder = FrameDecoder()
        self.frames: list[Frame | FrameError] = []
        self.sent_bytes = 0

    # transport hooks -------------------------------------------------------
    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _read(self) -> bytes:
        raise NotImplementedError

    async def step(self) -> int:
        """Advance the simulation; returns the clock cycles it advanced."""
        raise NotImplementedError

    def pending(self) -> bool:
        """Bytes queued for the device and not yet taken."""
        raise NotImplementedError

    # ------------------------------------------------------------------------
    def _collect(self) -> None:
        data = self._read()
        if data:
            self.frames += self.decoder.feed(data)

    async def send(self, wire: bytes) -> None:
        self._write(wire)
        self.sent_bytes += len(wire)

    async def wait_frames(self, n: int, budget: int | None = None) -> list:
        """Step until ``n`` more frames arrived; HangError after ``budget`` cycles."""
        start = len(self.frames)
        budget = budget or self.byte_cycles * 2000 + 4000
        used = 0
        while used < budget:
            used += await self.step()
            self._collect()
            if len(self.frames) - start >= n:
                return self.frames[start:start + n]
        raise HangError(f"device silent: {len(self.frames) - start} of {n} frames after {budget} "
                        f"cycles (cycle {self.cycle})")

    async def quiet(self, cycles: int) -> None:
        """Step ``cycles`` cycles after the queued bytes went out; the device must send nothing."""
        n0 = len(self.frames)
        used = 0
        while used < cycles or self.pending():
            used += await self.step()
            self._collect()
            if used > cycles + self.byte_cycles * 4 * (MAX_ENCODED + 64):
                break
        assert not self.pending(), "the device stopped taking bytes"
        assert len(self.frames) == n0 and not self.decoder.pending, \
            f"device answered a dropped frame: {self.frames[n0:]}"

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    async def request(self, cmd: int, payload: bytes = b"", seq: int | None = None,
                      budget: int | None = None) -> tuple[int, bytes]:
        """Send one request; return ``(error code, data)`` of its one response (checked: a
        response frame, same sequence number, ``cmd | RESPONSE_FLAG``)."""
        seq = self.next_seq() if seq is None else seq
        await self.send(encode_frame(seq, cmd, payload))
        nbytes = 16 + len(payload) + 600
        (frame,) = await self.wait_frames(1, budget or self.byte_cycles * nbytes * 2 + 4000)
        assert isinstance(frame, Frame), f"damaged response to cmd 0x{cmd:02x}: {frame}"
        rcmd, code, data = split_response(frame)
        assert frame.seq == seq and rcmd == cmd, \
            f"response seq {frame.seq} cmd 0x{rcmd:02x} to request seq {seq} cmd 0x{cmd:02x}"
        if code != ErrorCode.OK:
            assert not data, f"NACK {code} carries data"
        return code, data

    async def batch(self, requests, budget: int | None = None) -> list[tuple[int, bytes]]:
        """Send ``(cmd, payload)`` requests back to back without waiting (a pipelining host);
        return each one's ``(error code, data)``, checked to answer it in order."""
        seqs = []
        for cmd, payload in requests:
            seqs.append(self.next_seq())
            await self.send(encode_frame(seqs[-1], cmd, payload))
        nbytes = sum(40 + len(p) for _, p in requests) + 600 * len(requests)
        frames = await self.wait_frames(len(requests), budget or self.byte_cycles * nbytes + 4000)
        out = []
        for (cmd, _), seq, frame in zip(requests, seqs, frames):
            assert isinstance(frame, Frame), f"damaged response to cmd 0x{cmd:02x}: {frame}"
            rcmd, code, data = split_response(frame)
            assert (frame.seq, rcmd) == (seq, cmd), \
                f"response seq {frame.seq} cmd 0x{rcmd:02x} to request seq {seq} cmd 0x{cmd:02x}"
            out.append((code, data))
        return out

    async def ok(self, cmd: int, payload: bytes = b"", **kw) -> bytes:
        code, data = await self.request(cmd, payload, **kw)
        assert code == ErrorCode.OK, \
            f"{Command(cmd).name}: {ErrorCode(code).name if code in iter(ErrorCode) else code}"
        return data

    async def nack(self, cmd: int, payload: bytes, want: ErrorCode, what: str = "", **kw) -> None:
        code, _ = await self.request(cmd, payload, **kw)
        assert code == want, (f"{what or hex(cmd)}: got {_name(code)}, want {want.name}")


def _name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"0x{code:02x}"


class BytesHost(HostBase):
    """The host on the byte-stream link (``link="bytes"``), with random and bursty stalls on
    both streams."""

    def __init__(self, io, clock, rng: random.Random, *, idle: float = 0.0,
                 backpressure: float = 0.0, burst: float = 0.0):
        super().__init__(rng)
        self.io, self.clock = io, clock
        self.src = StreamSource(io, "rx_byte", 8, rng, idle=idle, burst=burst)
        self.sink = StreamSink(io, "tx_byte", 8, rng, backpressure=backpressure, signed=False,
                               burst=burst)
        self._taken = 0

    def idle_inputs(self) -> None:
        self.io.set("rx_byte__valid", 0)
        self.io.set("tx_byte__ready", 0)

    def _write(self, data: bytes) -> None:
        for b in data:
            self.src.push(b)

    def _read(self) -> bytes:
        new = self.sink.items[self._taken:]
        self._taken = len(self.sink.items)
        return bytes(new)

    def pending(self) -> bool:
        return not self.src.done

    async def step(self) -> int:
        await step(self.clock, (self.src, self.sink), self.cycle)
        self.cycle += 1
        return 1
