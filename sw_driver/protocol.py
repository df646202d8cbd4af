"""The host side of the wire protocol, with no I/O in it (sans-I/O).

:class:`HostProtocol` turns requests into frames, matches responses to them, retries on timeouts
and turns NACKs into :class:`DeviceError`; the caller moves the bytes and supplies the time. So
the same core runs over a serial port, a pseudo-terminal or a test's byte strings, and every path
(loss, damage, late and duplicate answers, a silent device) is tested without a device. Codes,
layouts and framing come from :mod:`golden.protocol`; nothing here redefines them.

One request is outstanding at a time (stop and wait) unless the caller marks requests
``pipelined``: the device recognises a retry only by the *previous* request's sequence number and
command, so a retried RUN never starts a second GEMV (see golden/protocol.py, "Requests and
responses") only when nothing was sent in between. With up to ``window`` pipelined requests in
flight, a resent request may arrive after later ones and be executed a second time. That is
harmless exactly for idempotent requests whose effects do not overlap: the driver pipelines only
WRITE_MEM chunks of one contiguous buffer (disjoint byte ranges, the same bytes on every try) and
waits until every one is answered before it sends anything else; RUN, RESET, ABORT, LOAD_LAYER and
SET_PRECISION stay stop-and-wait. Pipelining hides the turnaround (response frame, host latency)
that would otherwise leave the line idle after every chunk. A transport's loop is::

    wire = core.start(cmd, payload, now())
    port.write(wire)
    while (data := core.feed(port.read_until_deadline(core.deadline), now())) is None:
        if (resend := core.poll(now())) is not None:
            port.write(resend)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bitmix.errors import BitmixError
from golden.protocol import (
    RESPONSE_FLAG,
    Command,
    ErrorCode,
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    split_response,
)

__all__ = ["DeviceError", "HostProtocol", "LinkStats"]


def _known(enum_type, code: int):
    """``enum_type(code)``, or the plain integer when this protocol version does not know it."""
    try:
        return enum_type(code)
    except ValueError:
        return code


def _name(enum_type, code: int) -> str:
    c = _known(enum_type, code)
    return c.name if isinstance(c, enum_type) else f"0x{code:02x}"


class DeviceError(BitmixError):
    """The device NACKed a request, or did not answer it after every retry.

    Members
    -------
    command : int
        The request's command code (a :class:`Command` when known).
    seq : int
        The request's sequence number.
    error : ErrorCode, int or None
        The device's error code; None when it did not answer.
    """

    def __init__(self, command: int, seq: int, error: int | None, detail: str = ""):
        self.command, self.seq = _known(Command, command), seq
        self.error = None if error is None else _known(ErrorCode, error)
        what = f"{_name(Command, command)} (seq {seq})"
        if error is None:
            msg = f"device did not answer {what}{detail}"
        else:
            known = _known(ErrorCode, error)
            doc = known.doc if isinstance(known, ErrorCode) else "unknown error code"
            msg = f"device refused {what}: {_name(ErrorCode, error)} ({doc}){detail}"
        super().__init__(msg)


@dataclass
class LinkStats:
    """Counters of one :class:`HostProtocol`; a transport reports them with its errors.

    Members
    -------
    requests, acks, nacks, retries, timeouts : int
        Requests started, answered with ACK / NACK, frames resent, requests failed for no answer.
    bad_frames : int
        Received frames dropped by the decoder (damage, truncation, oversize).
    recovered : int
        Requests ACKed after at least one resend.
    stale : int
        Well-formed frames that answer no outstanding request (a late or repeated answer).
    errors : dict
        ``FrameError`` counts by :class:`ErrorCode` name.
    """

    requests: int = 0
    acks: int = 0
    nacks: int = 0
    retries: int = 0
    timeouts: int = 0
    recovered: int = 0
    bad_frames: int = 0
    stale: int = 0
    errors: dict = field(default_factory=dict)


class HostProtocol:
    """Request/response matching, retries and timeouts as pure logic.

    Parameters
    ----------
    timeout : float
        Seconds to wait for an answer before a retry (the caller's clock, any unit consistent
        with ``now``).
    retries : int
        Resends after the first try before :class:`DeviceError`.
    first_seq : int
        Sequence number of the first request; each new request takes the next one, mod 256.
    window : int
        Most ``pipelined`` requests in flight at once (1: stop and wait only).

    Members
    -------
    deadline : float or None
        When :meth:`poll` must next be called (None when idle).
    outstanding : int
        Requests sent and not yet answered (``outstanding_seqs``: their sequence numbers).
    last_seq : int
        Sequence number of the request started last.
    stats : LinkStats
    """

    def __init__(self, *, timeout: float = 0.5, retries: int = 3, first_seq: int = 0, window: int = 1):
        if not timeout > 0:
            raise BitmixError(f"timeout must be > 0, got {timeout}")
        if retries < 0:
            raise BitmixError(f"retries must be >= 0, got {retries}")
        if not 1 <= window <= 64:
            raise BitmixError(f"window must be in 1 … 64 (sequence numbers wrap at 256), got {window}")
        self._params = {"timeout": timeout, "retries": retries, "window": window}
        self._decoder = FrameDecoder()
        self._seq = (first_seq - 1) % 256
        self._pending: dict[int, _Request] = {}                 # by seq, oldest first
        self.deadline: float | None = None
        self.stats = LinkStats()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    @property
    def outstanding_seqs(self) -> tuple[int, ...]:
        """Sequence numbers of the unanswered requests, oldest first."""
        return tuple(self._pending)

    @property
    def last_seq(self) -> int:
        """Sequence number of the request started last."""
        return self._seq

    def start(self, cmd: int, payload: bytes, now: float, *, pipelined: bool = False) -> bytes:
        """Begin request ``cmd``; returns the bytes to send. Only one request may be outstanding,
        unless it and every outstanding one are ``pipelined`` and fewer than ``window`` are."""
        if self._pending:
            first = next(iter(self._pending.values()))
            if not (pipelined and all(r.pipelined for r in self._pending.values())):
                raise BitmixError(f"{_name(Command, cmd)}: request {_name(Command, first.cmd)} "
                                  f"(seq {first.seq}) is still outstanding")
            if len(self._pending) >= self._params["window"]:
                raise BitmixError(f"{_name(Command, cmd)}: {len(self._pending)} pipelined requests "
                                  f"are outstanding (window {self._params['window']})")
        if cmd & RESPONSE_FLAG:
            raise BitmixError(f"command code 0x{cmd:02x} has the response flag set")
        self._seq = (self._seq + 1) % 256
        # a leading delimiter ends whatever garbage the device holds, so this frame is not lost
        wire = b"\0" + encode_frame(self._seq, cmd, payload)
        self._pending[self._seq] = _Request(cmd, self._seq, wire, pipelined, now + self._params["timeout"])
        self._update_deadline()
        self.stats.requests += 1
        return wire

    def feed(self, data: bytes, now: float) -> bytes | None:
        """Received bytes. Returns the ACK data once an outstanding request is answered (the last
        one answered by ``data``), raises :class:`DeviceError` on a NACK (abandoning every
        outstanding request); anything else (damaged, stale, unsolicited frames) is counted in
        ``stats`` and dropped, and None means keep waiting."""
        answer, nack = None, None
        for item in self._decoder.feed(data):        # count every item before raising
            if isinstance(item, FrameError):
                self.stats.bad_frames += 1
                self.stats.errors[item.error.name] = self.stats.errors.get(item.error.name, 0) + 1
                continue
            req = self._answered(item)
            if req is None or nack is not None:
                self.stats.stale += 1
                continue
            del self._pending[req.seq]
            _, error, ack = split_response(item)
            if error != ErrorCode.OK:
                self.stats.nacks += 1
                nack = DeviceError(req.cmd, req.seq, _known(ErrorCode, error))
            else:
                self.stats.acks += 1
                self.stats.recovered += req.tries > 1
                answer = ack
        if nack is not None:
            self._pending.clear()
        self._update_deadline()
        if nack is not None:
            raise nack
        return answer

    def poll(self, now: float) -> bytes | None:
        """Call when ``deadline`` has passed: returns the bytes to resend (every request that is
        due, oldest first), or raises :class:`DeviceError` when a request's every retry went
        unanswered (abandoning every outstanding one); None if nothing is due."""
        if not self._pending or now < self.deadline:
            return None
        resend = b""
        for req in self._pending.values():
            if now < req.deadline:
                continue
            if req.tries > self._params["retries"]:
                self._pending.clear()
                self._update_deadline()
                self.stats.timeouts += 1
                raise DeviceError(req.cmd, req.seq, None, f" after {req.tries} tries of "
                                                          f"{self._params['timeout']} s each")
            req.tries += 1
            req.deadline = now + self._params["timeout"]
            self.stats.retries += 1
            resend += req.wire
        self._update_deadline()
        return resend or None

    # ------------------------------------------------------------------ internals
    def _answered(self, frame: Frame) -> _Request | None:
        req = self._pending.get(frame.seq)
        if req is None or frame.cmd != req.cmd | RESPONSE_FLAG or len(frame.payload) < 1:
            return None
        return req

    def _update_deadline(self) -> None:
        self.deadline = min((r.deadline for r in self._pending.values()), default=None)


@dataclass
class _Request:
    cmd: int
    seq: int
    wire: bytes
    pipelined: bool
    deadline: float
    tries: int = 1
