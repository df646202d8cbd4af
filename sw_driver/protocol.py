"""The host side of the wire protocol, with no I/O in it (sans-I/O).

:class:`HostProtocol` turns requests into frames, matches responses to them, retries on timeouts
and turns NACKs into :class:`DeviceError`; the caller moves the bytes and supplies the time. So
the same core runs over a serial port, a pseudo-terminal or a test's byte strings, and every path
(loss, damage, late and duplicate answers, a silent device) is tested without a device. Codes,
layouts and framing come from :mod:`golden.protocol`; nothing here redefines them.

One request is outstanding at a time (stop and wait): the device recognises a retry by the
previous request's sequence number, so a retried RUN never starts a second GEMV (see
golden/protocol.py, "Requests and responses"). A transport's loop is::

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

    Members
    -------
    deadline : float or None
        When :meth:`poll` must next be called (None when idle).
    stats : LinkStats
    """

    def __init__(self, *, timeout: float = 0.5, retries: int = 3, first_seq: int = 0):
        if not timeout > 0:
            raise BitmixError(f"timeout must be > 0, got {timeout}")
        if retries < 0:
            raise BitmixError(f"retries must be >= 0, got {retries}")
        self._params = {"timeout": timeout, "retries": retries}
        self._decoder = FrameDecoder()
        self._seq = (first_seq - 1) % 256
        self._pending: tuple[int, int, bytes] | None = None      # (cmd, seq, wire bytes)
        self._tries = 0
        self.deadline: float | None = None
        self.stats = LinkStats()

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def start(self, cmd: int, payload: bytes, now: float) -> bytes:
        """Begin request ``cmd``; returns the bytes to send. Only one request may be outstanding."""
        if self._pending is not None:
            pcmd, pseq, _ = self._pending
            raise BitmixError(f"{_name(Command, cmd)}: request {_name(Command, pcmd)} (seq {pseq}) "
                              "is still outstanding")
        if cmd & RESPONSE_FLAG:
            raise BitmixError(f"command code 0x{cmd:02x} has the response flag set")
        self._seq = (self._seq + 1) % 256
        # a leading delimiter ends whatever garbage the device holds, so this frame is not lost
        wire = b"\0" + encode_frame(self._seq, cmd, payload)
        self._pending, self._tries = (cmd, self._seq, wire), 1
        self.deadline = now + self._params["timeout"]
        self.stats.requests += 1
        return wire

    def feed(self, data: bytes, now: float) -> bytes | None:
        """Received bytes. Returns the ACK data once the outstanding request is answered, raises
        :class:`DeviceError` on a NACK; anything else (damaged, stale, unsolicited frames) is
        counted in ``stats`` and dropped, and None means keep waiting."""
        answer = None
        for item in self._decoder.feed(data):        # count every item before raising
            if isinstance(item, FrameError):
                self.stats.bad_frames += 1
                self.stats.errors[item.error.name] = self.stats.errors.get(item.error.name, 0) + 1
            elif answer is None and self._answers(item):
                answer = item
            else:
                self.stats.stale += 1
        return None if answer is None else self._finish(answer)

    def poll(self, now: float) -> bytes | None:
        """Call when ``deadline`` has passed: returns the bytes to resend, or raises
        :class:`DeviceError` when every retry went unanswered; None if nothing is due."""
        if self._pending is None or now < self.deadline:
            return None
        cmd, seq, wire = self._pending
        if self._tries > self._params["retries"]:
            self._idle()
            self.stats.timeouts += 1
            raise DeviceError(cmd, seq, None, f" after {self._tries} tries of "
                                              f"{self._params['timeout']} s each")
        self._tries += 1
        self.stats.retries += 1
        self.deadline = now + self._params["timeout"]
        return wire

    # ------------------------------------------------------------------ internals
    def _answers(self, frame: Frame) -> bool:
        if self._pending is None:
            return False
        cmd, seq, _ = self._pending
        return frame.seq == seq and frame.cmd == cmd | RESPONSE_FLAG and len(frame.payload) >= 1

    def _finish(self, frame: Frame) -> bytes:
        cmd, seq, _ = self._pending
        self._idle()
        _, error, data = split_response(frame)
        if error != ErrorCode.OK:
            self.stats.nacks += 1
            raise DeviceError(cmd, seq, _known(ErrorCode, error))
        self.stats.acks += 1
        return data

    def _idle(self) -> None:
        self._pending, self.deadline = None, None
