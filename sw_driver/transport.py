"""The host link over a serial port: :class:`HostProtocol` driven by pyserial.

The same code runs over a USB-UART (``/dev/ttyUSB*``), a USB CDC-ACM device (``/dev/ttyACM*``) and
the virtual board's pseudo-terminal (``/dev/pts/N``): all are pyserial ports. The port is opened
non-blocking and the transport waits in ``select()`` until bytes arrive or the protocol core's
deadline passes, so every request ends, answered or with :class:`DeviceError` after the core's
retries; a write that cannot complete within ``write_timeout`` ends the same way. Nothing here
blocks without a deadline.

:class:`FaultInjector` flips and drops bytes in both directions at set rates (benchmarks and tests
of the retry path): the CRC and the retries must turn every fault into a retry, never a wrong
result.
"""

from __future__ import annotations

import random
import select
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bitmix.errors import BitmixError
from sw_driver.protocol import DeviceError, HostProtocol

__all__ = ["SerialTransport", "FaultInjector"]


@dataclass
class FaultInjector:
    """Corrupts bytes: each byte is dropped with probability ``drop`` or has one random bit
    flipped with probability ``flip``, independently per direction.

    Members
    -------
    flipped, dropped : dict
        Counts per direction (``"tx"``: host to device, ``"rx"``: device to host).
    """

    flip: float = 0.0
    drop: float = 0.0
    seed: int = 0
    flipped: dict = field(default_factory=lambda: {"tx": 0, "rx": 0})
    dropped: dict = field(default_factory=lambda: {"tx": 0, "rx": 0})

    def __post_init__(self):
        for name in ("flip", "drop"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise BitmixError(f"fault rate {name} must be in [0, 1), got {v}")
        self._rng = random.Random(self.seed)

    def __call__(self, data: bytes, direction: str) -> bytes:
        if not data or (self.flip == 0 and self.drop == 0):
            return data
        out = bytearray()
        rng = self._rng
        for b in data:
            r = rng.random()
            if r < self.drop:
                self.dropped[direction] += 1
                continue
            if r < self.drop + self.flip:
                b ^= 1 << rng.randrange(8)
                self.flipped[direction] += 1
            out.append(b)
        return bytes(out)


class SerialTransport:
    """Requests over a serial port, one at a time or pipelined.

    Parameters
    ----------
    port : str or serial.Serial
        A device path or pyserial URL, or an open port.
    baud : int
        Line rate set on the port (a pty ignores it).
    timeout : float
        Seconds to wait for each answer before resending (:class:`HostProtocol`).
    retries : int
        Resends before :class:`DeviceError`.
    window : int
        Pipelined requests in flight at most (:meth:`pipeline`).
    write_timeout : float
        Seconds a write may block before it fails.
    fault : FaultInjector, optional
        Corrupt the bytes in both directions (tests, ``bitmix bench link``).

    Members
    -------
    core : HostProtocol
        The protocol state; ``core.stats`` counts requests, retries, bad and stale frames.
    port : serial.Serial
    tx_bytes, rx_bytes : int
        Bytes written to and read from the port (frames, retries and all: the link's load).
    """

    def __init__(self, port, *, baud: int = 3_000_000, timeout: float = 1.0, retries: int = 3,
                 window: int = 8, write_timeout: float = 10.0, fault: FaultInjector | None = None):
        import serial

        self._params = {"baud": baud, "timeout": timeout, "retries": retries, "window": window}
        if isinstance(port, str):
            try:
                port = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=write_timeout)
            except (serial.SerialException, OSError, ValueError) as e:
                raise BitmixError(f"cannot open serial port {port}: {e}") from None
        self.port = port
        self._fault = fault
        self.tx_bytes = self.rx_bytes = 0
        self.core = HostProtocol(timeout=timeout, retries=retries, window=window)
        try:
            self._fd = port.fileno()
        except Exception:                              # e.g. a loop:// test port
            self._fd = None

    @property
    def fault(self) -> FaultInjector | None:
        """The fault injector (its counts), or None."""
        return self._fault

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> SerialTransport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def request(self, cmd: int, payload: bytes = b"") -> bytes:
        """Send one request and wait for its answer (stop and wait); the ACK data, or
        :class:`DeviceError` on a NACK or after the retries."""
        self._write(self.core.start(cmd, payload, time.monotonic()), cmd)
        while True:
            data = self._pump(cmd)
            if data is not None and not self.core.busy:
                return data

    def pipeline(self, requests: Iterable[tuple[int, bytes]],
                 on_done: Callable[[int], None] | None = None) -> int:
        """Send ``requests`` with up to ``window`` in flight and wait until every one is ACKed.
        Only for idempotent requests with disjoint effects (WRITE_MEM chunks of one buffer; see
        sw_driver/protocol.py). ``on_done(i)`` is called with each request's index as it is
        answered. Returns the number of requests; a NACK or a silent device raises
        :class:`DeviceError` (the requests still in flight are abandoned)."""
        it = iter(requests)
        index: dict[int, int] = {}                      # seq -> request index
        n, more, cmd = 0, True, 0
        while True:
            while more and self.core.outstanding < self._params["window"]:
                try:
                    cmd, payload = next(it)
                except StopIteration:
                    more = False
                    break
                self._write(self.core.start(cmd, payload, time.monotonic(), pipelined=True), cmd)
                index[self.core.last_seq] = n
                n += 1
            if not more and not self.core.busy:
                return n
            before = set(self.core.outstanding_seqs)
            self._pump(cmd)
            if on_done:
                for seq in before - set(self.core.outstanding_seqs):
                    on_done(index.pop(seq))

    # ------------------------------------------------------------------ internals
    def _pump(self, cmd: int) -> bytes | None:
        """Wait for bytes until the core's deadline; feed them; resend what is due."""
        now = time.monotonic()
        wait = max(0.0, min(self.core.deadline - now, 0.2)) if self.core.deadline else 0.05
        data = self._read(wait, cmd)
        answer = self.core.feed(data, time.monotonic()) if data else None
        resend = self.core.poll(time.monotonic())
        if resend:
            self._write(resend, cmd)
        return answer

    def _read(self, wait: float, cmd: int) -> bytes:
        import serial

        try:
            if self._fd is not None:
                ready, _, _ = select.select([self._fd], [], [], wait)
                data = self.port.read(65536) if ready else b""
            else:
                data = self.port.read(65536)
                if not data:
                    time.sleep(min(wait, 0.005))
        except (serial.SerialException, OSError) as e:
            raise DeviceError(cmd, self.core.last_seq, None, f": reading {self.port.name} failed: {e}") \
                from None
        self.rx_bytes += len(data)
        if data and self._fault:
            data = self._fault(data, "rx")
        return data

    def _write(self, data: bytes, cmd: int) -> None:
        import serial

        if self._fault:
            data = self._fault(data, "tx")
        self.tx_bytes += len(data)
        try:
            self.port.write(data)
        except serial.SerialTimeoutException:
            raise DeviceError(cmd, self.core.last_seq, None,
                              f": writing to {self.port.name} timed out (is the board reading?)") from None
        except (serial.SerialException, OSError) as e:
            raise DeviceError(cmd, self.core.last_seq, None, f": writing to {self.port.name} failed: {e}") \
                from None
