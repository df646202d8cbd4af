"""The host protocol core (sw_driver/protocol.py), driven by byte strings and a hand-set clock."""

import pytest

from bitmix.errors import BitmixError
from golden.protocol import (
    PAYLOADS,
    Command,
    ErrorCode,
    Frame,
    FrameDecoder,
    encode_frame,
    encode_response,
    request_payload,
    unpack_bytes,
)
from sw_driver.protocol import DeviceError, HostProtocol


def _sent(wire: bytes) -> Frame:
    """The one frame in bytes the host sent (what a device would decode)."""
    (frame,) = FrameDecoder().feed(wire)
    assert isinstance(frame, Frame)
    return frame


def test_request_and_ack():
    host = HostProtocol(timeout=1.0, first_seq=7)
    payload = request_payload(Command.READ_MEM, region=1, offset=0x100, count=3)
    sent = _sent(host.start(Command.READ_MEM, payload, now=0.0))
    assert (sent.seq, sent.cmd) == (7, Command.READ_MEM)
    assert unpack_bytes(PAYLOADS[Command.READ_MEM], sent.payload) == \
        {"region": 1, "offset": 0x100, "count": 3}
    assert host.busy and host.deadline == 1.0
    reply = encode_response(7, Command.READ_MEM, data=b"abc")
    assert host.feed(reply[:4], now=0.1) is None              # any chunking
    assert host.feed(reply[4:], now=0.2) == b"abc"
    assert not host.busy and host.deadline is None
    assert (host.stats.requests, host.stats.acks) == (1, 1)


def test_sequence_numbers_advance_and_wrap():
    host = HostProtocol(first_seq=254)
    seen = []
    for _ in range(4):
        seq = _sent(host.start(Command.STATUS, b"", now=0)).seq
        seen.append(seq)
        assert host.feed(encode_response(seq, Command.STATUS, data=b""), now=0) == b""
    assert seen == [254, 255, 0, 1]


def test_nack_raises_device_error_naming_command_seq_and_code():
    host = HostProtocol(first_seq=3)
    host.start(Command.RUN, b"", now=0)
    with pytest.raises(DeviceError) as e:
        host.feed(encode_response(3, Command.RUN, ErrorCode.BUSY), now=0)
    assert (e.value.command, e.value.seq, e.value.error) == (Command.RUN, 3, ErrorCode.BUSY)
    assert e.value.command is Command.RUN and e.value.error is ErrorCode.BUSY
    assert str(e.value) == f"device refused RUN (seq 3): BUSY ({ErrorCode.BUSY.doc})"
    assert isinstance(e.value, BitmixError)                   # the CLI prints it as one line
    assert not host.busy and host.stats.nacks == 1
    # an error code from a newer protocol version is still reported, by number
    host.start(Command.RUN, b"", now=0)
    with pytest.raises(DeviceError, match=r"RUN \(seq 4\): 0x7e \(unknown error code\)"):
        host.feed(encode_frame(4, Command.RUN | 0x80, b"\x7e"), now=0)


def test_timeout_resends_the_same_bytes_then_fails():
    host = HostProtocol(timeout=0.5, retries=2)
    wire = host.start(Command.CAPABILITIES, b"", now=10.0)
    assert host.poll(10.4) is None                           # not yet due
    assert host.poll(10.5) == wire and host.deadline == 11.0
    assert host.poll(11.0) == wire
    with pytest.raises(DeviceError) as e:
        host.poll(11.5)
    assert e.value.error is None and e.value.seq == 0
    assert str(e.value) == "device did not answer CAPABILITIES (seq 0) after 3 tries of 0.5 s each"
    assert not host.busy and (host.stats.retries, host.stats.timeouts) == (2, 1)
    assert host.poll(100.0) is None                          # idle: nothing due


def test_damaged_stale_and_unsolicited_frames_are_dropped_and_counted():
    host = HostProtocol(first_seq=1)
    assert host.feed(encode_response(1, Command.STATUS), now=0) is None     # nothing outstanding
    host.start(Command.STATUS, b"", now=0)
    good = encode_response(1, Command.STATUS, data=b"\x02")
    damaged = bytearray(good)
    damaged[-2] ^= 0x80                                      # a CRC byte: the length still fits
    assert damaged[-2] != 0
    junk = (b"\x13\x37garbage\0" + bytes(damaged)                  # garbage, a flipped bit,
            + encode_response(0, Command.STATUS)                   # a late answer to seq 0,
            + encode_response(1, Command.RESET)                    # the right seq, wrong command,
            + encode_frame(1, Command.STATUS, b"\0"))              # a request, not a response
    assert host.feed(junk, now=0.1) is None and host.busy
    assert host.feed(good, now=0.2) == b"\x02"
    s = host.stats
    assert (s.bad_frames, s.stale, s.acks) == (2, 4, 1)
    assert s.errors == {"BAD_CRC": 1, "TRUNCATED": 1}


def test_answer_to_the_first_try_after_a_resend_completes_once():
    host = HostProtocol(timeout=1.0, first_seq=9)
    wire = host.start(Command.WRITE_MEM, request_payload(Command.WRITE_MEM, b"\1\2", region=0, offset=0),
                      now=0)
    assert host.poll(1.0) == wire                             # the answer was slow, not lost
    ack = encode_response(9, Command.WRITE_MEM)
    assert host.feed(ack + ack, now=1.1) == b""               # first try's and retry's answers
    assert host.stats.stale == 1
    host.start(Command.STATUS, b"", now=2)                    # seq 10: the retry's late answer
    assert host.feed(ack, now=2.1) is None and host.busy      # to seq 9 does not answer it
    assert host.stats.stale == 2


def test_one_request_at_a_time_and_parameter_checks():
    host = HostProtocol()
    host.start(Command.RUN, b"", now=0)
    with pytest.raises(BitmixError, match=r"STATUS: request RUN \(seq 0\) is still outstanding"):
        host.start(Command.STATUS, b"", now=0)
    with pytest.raises(BitmixError, match="response flag"):
        HostProtocol().start(Command.RUN | 0x80, b"", now=0)
    with pytest.raises(BitmixError, match="timeout must be > 0"):
        HostProtocol(timeout=0)
    with pytest.raises(BitmixError, match="retries must be >= 0"):
        HostProtocol(retries=-1)


def test_request_payload_checks_fields_and_data():
    assert request_payload(Command.SET_PRECISION, precision=3) == b"\x03"
    assert request_payload(Command.WRITE_MEM, b"xy", region=0, offset=1) == b"\0\1\0\0\0xy"
    with pytest.raises(BitmixError, match=r"READ_MEM takes fields \['count', 'offset', 'region'\]"):
        request_payload(Command.READ_MEM, region=0, offset=0)
    with pytest.raises(BitmixError, match="STATUS takes no data bytes"):
        request_payload(Command.STATUS, b"x")
    with pytest.raises(BitmixError, match="WRITE_MEM payload of 513 bytes exceeds 512"):
        request_payload(Command.WRITE_MEM, bytes(508), region=0, offset=0)
    with pytest.raises(BitmixError, match=r"set_precision.precision\[0\] = 256 does not fit"):
        request_payload(Command.SET_PRECISION, precision=256)


def _write(host, i, now=0.0):
    payload = request_payload(Command.WRITE_MEM, bytes([i]) * 4, region=0, offset=4 * i)
    return host.start(Command.WRITE_MEM, payload, now=now, pipelined=True)


def test_pipelined_window_out_of_order_answers_and_resend_of_the_due_only():
    host = HostProtocol(timeout=1.0, retries=1, window=3, first_seq=250)
    wires = [_write(host, i, now=0.1 * i) for i in range(3)]
    assert host.outstanding_seqs == (250, 251, 252) and host.deadline == 1.0
    with pytest.raises(BitmixError, match=r"3 pipelined requests are outstanding \(window 3\)"):
        _write(host, 3)
    with pytest.raises(BitmixError, match="is still outstanding"):      # not pipelined: waits
        host.start(Command.RUN, b"", now=0)
    assert host.feed(encode_response(252, Command.WRITE_MEM), now=0.5) == b""   # any order
    assert host.outstanding_seqs == (250, 251)
    assert host.poll(1.05) == wires[0] and host.deadline == 1.1           # only 250 was due
    assert host.poll(1.1) == wires[1]
    # the device executed 250 twice (harmless: the same bytes at the same place); both answers come
    ack0 = encode_response(250, Command.WRITE_MEM)
    assert host.feed(ack0 + encode_response(251, Command.WRITE_MEM) + ack0, now=1.2) == b""
    assert not host.busy and host.stats.stale == 1 and host.stats.acks == 3
    assert _sent(_write(host, 5)).seq == 253


def test_pipelined_nack_or_silence_abandons_the_window():
    host = HostProtocol(timeout=1.0, retries=0, window=4)
    for i in range(3):
        _write(host, i)
    with pytest.raises(DeviceError, match=r"WRITE_MEM \(seq 1\): OUT_OF_BOUNDS"):
        host.feed(encode_response(0, Command.WRITE_MEM) +
                  encode_response(1, Command.WRITE_MEM, ErrorCode.OUT_OF_BOUNDS), now=0.2)
    assert not host.busy and host.deadline is None and host.stats.acks == 1
    host.feed(encode_response(2, Command.WRITE_MEM), now=0.3)              # late: stale
    assert host.stats.stale == 1
    for i in range(2):
        _write(host, i)
    with pytest.raises(DeviceError, match=r"did not answer WRITE_MEM \(seq 3\) after 1 tries"):
        host.poll(5.0)
    assert not host.busy
    with pytest.raises(BitmixError, match="window must be in 1"):
        HostProtocol(window=0)
