"""Simulator-independent valid/ready stream drivers with seeded random idle and backpressure.

Every clock cycle a testbench loop calls ``drive(cycle)`` on each endpoint (inputs change),
lets combinational logic settle, then calls ``sample(cycle)`` (the handshake that the next
rising edge will perform is decided from the settled values). The same classes drive the
Verilator model under cocotb (:class:`CocotbIO`) and Amaranth's simulator (``PysimIO`` in the
unit tests), so the protocol rules live in one place:

* a source, once it raises ``valid``, keeps ``valid`` and the payload until the transfer;
  while idle it puts random garbage on the payload (the DUT must not look at it);
* a sink checks the same rule on the DUT's output (``ProtocolError`` otherwise).

Stalls come in two kinds, both seeded: i.i.d. per-cycle (``idle`` / ``backpressure``, the
probability of a stall in any one cycle) and bursts (``burst``: the probability that a burst of
``burst_len`` = (min, max) consecutive stalled cycles starts in a cycle). Bursts find what
i.i.d. stalls rarely do: a pipeline that forgets to stall one stage only loses data when a
stall lasts longer than its depth.
"""

from __future__ import annotations

import random
from collections import deque

__all__ = ["StreamSource", "StreamSink", "ProtocolError", "CocotbIO", "Stalls", "step"]


class ProtocolError(AssertionError):
    pass


class CocotbIO:
    """Read/write DUT ports by their Verilog names through cocotb handles."""

    def __init__(self, dut):
        self.dut = dut

    def set(self, name: str, value: int) -> None:
        getattr(self.dut, name).value = value

    def get(self, name: str) -> int:
        return int(getattr(self.dut, name).value)


class Stalls:
    """Decides, cycle by cycle, whether an endpoint stalls: i.i.d. with probability ``rate``,
    plus bursts of ``burst_len`` stalled cycles starting with probability ``burst``."""

    def __init__(self, rng: random.Random, rate: float = 0.0, burst: float = 0.0,
                 burst_len: tuple[int, int] = (8, 64)):
        self.rng, self.rate, self.burst, self.burst_len = rng, rate, burst, burst_len
        self.left = 0

    @property
    def any(self) -> bool:
        return bool(self.rate or self.burst)

    def __call__(self) -> bool:
        if self.left:
            self.left -= 1
            return True
        if self.burst and self.rng.random() < self.burst:
            self.left = self.rng.randint(*self.burst_len) - 1
            return True
        return bool(self.rate) and self.rng.random() < self.rate


class StreamSource:
    """Drives ``<name>__valid``/``__payload`` from a queue of payload integers."""

    def __init__(self, io, name: str, width: int, rng: random.Random, idle: float = 0.0,
                 burst: float = 0.0):
        self.io, self.name, self.width, self.rng = io, name, width, rng
        self.stall = Stalls(rng, idle, burst)
        self.queue: deque[int] = deque()
        self.holding = False
        self.transfers: list[int] = []     # cycle of every transfer
        self.first_valid: list[int] = []   # cycle each item was first presented

    def push(self, payload: int) -> None:
        self.queue.append(payload)

    def drive(self, cycle: int) -> None:
        if self.holding:
            return                                   # keep valid and payload stable
        if self.queue and not self.stall():
            self.io.set(f"{self.name}__payload", self.queue[0])
            self.io.set(f"{self.name}__valid", 1)
            self.holding = True
            self.first_valid.append(cycle)
        else:
            self.io.set(f"{self.name}__valid", 0)
            if self.stall.any:
                self.io.set(f"{self.name}__payload", self.rng.getrandbits(self.width))

    def sample(self, cycle: int) -> None:
        if self.holding and self.io.get(f"{self.name}__ready"):
            self.queue.popleft()
            self.holding = False
            self.transfers.append(cycle)

    @property
    def done(self) -> bool:
        return not self.queue and not self.holding


class StreamSink:
    """Accepts ``<name>__payload`` with random backpressure; checks the DUT keeps it stable."""

    def __init__(self, io, name: str, width: int, rng: random.Random, backpressure: float = 0.0,
                 signed: bool = True, burst: float = 0.0):
        self.io, self.name, self.width, self.rng = io, name, width, rng
        self.stall, self.signed = Stalls(rng, backpressure, burst), signed
        self.items: list[int] = []
        self.transfers: list[int] = []
        self.first_valid: list[int] = []
        self._pending: int | None = None      # payload offered but not yet taken
        self._ready = 0

    def drive(self, cycle: int) -> None:
        self._ready = int(not self.stall())
        self.io.set(f"{self.name}__ready", self._ready)

    def _value(self, raw: int) -> int:
        if self.signed and raw >> (self.width - 1):
            return raw - (1 << self.width)
        return raw

    def sample(self, cycle: int) -> None:
        valid = self.io.get(f"{self.name}__valid")
        if self._pending is not None:
            if not valid:
                raise ProtocolError(f"{self.name}: valid dropped before the transfer (cycle {cycle})")
        if not valid:
            return
        raw = self.io.get(f"{self.name}__payload")
        if self._pending is None:
            self.first_valid.append(cycle)
        elif raw != self._pending:
            raise ProtocolError(f"{self.name}: payload changed while waiting for ready "
                                f"(cycle {cycle}: {self._pending:#x} -> {raw:#x})")
        if self._ready:
            self.items.append(self._value(raw))
            self.transfers.append(cycle)
            self._pending = None
        else:
            self._pending = raw


async def step(clock, endpoints, cycle: int) -> None:
    """One cycle of a testbench loop: move to the next cycle, drive every endpoint, let the
    logic settle, sample every handshake (the order the module docstring describes)."""
    await clock.edge()
    for e in endpoints:
        e.drive(cycle)
    await clock.settle()
    for e in endpoints:
        e.sample(cycle)
