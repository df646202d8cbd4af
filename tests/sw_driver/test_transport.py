"""The serial transport without a board: a silent device ends in DeviceError after the retries
(never a hang), the fault injector's rates, and port errors named."""

import os
import time

import pytest
import serial

from bitmix.errors import BitmixError
from golden.protocol import Command, FrameDecoder, encode_response
from sw_driver.protocol import DeviceError
from sw_driver.transport import FaultInjector, SerialTransport


def test_silent_device_is_a_clear_error_after_the_retries():
    master, slave = os.openpty()
    try:
        with SerialTransport(os.ttyname(slave), timeout=0.1, retries=2) as t:
            t0 = time.monotonic()
            with pytest.raises(DeviceError, match=r"did not answer STATUS \(seq 0\) after 3 tries"):
                t.request(Command.STATUS)
            assert 0.25 < time.monotonic() - t0 < 2.0
            assert t.core.stats.retries == 2 and not t.core.busy
            sent = os.read(master, 4096)
            frames = [f for f in FrameDecoder().feed(sent)]
            assert len(frames) == 3 and len(set(frames)) == 1          # the same request 3 times
            # pipelined requests to a silent device fail the same way
            with pytest.raises(DeviceError, match="did not answer WRITE_MEM"):
                t.pipeline([(Command.WRITE_MEM, b"\0" * 9)] * 3)
    finally:
        os.close(master)
        os.close(slave)


def test_answers_over_a_pty_and_a_nack():
    master, slave = os.openpty()
    try:
        with SerialTransport(os.ttyname(slave), timeout=1.0) as t:
            os.write(master, encode_response(0, Command.STATUS, data=b"xy"))
            assert t.request(Command.STATUS) == b"xy"
            os.write(master, encode_response(1, Command.RUN, error=8))
            with pytest.raises(DeviceError, match=r"refused RUN \(seq 1\): BUSY"):
                t.request(Command.RUN)
    finally:
        os.close(master)
        os.close(slave)


def test_fault_injector_rates_and_checks():
    f = FaultInjector(flip=0.01, drop=0.02, seed=3)
    data = bytes(range(256)) * 400
    out = f(data, "tx")
    n = len(data)
    assert abs(f.dropped["tx"] - 0.02 * n) < 5 * (0.02 * n) ** 0.5
    assert abs(f.flipped["tx"] - 0.01 * n) < 5 * (0.01 * n) ** 0.5
    assert len(out) == n - f.dropped["tx"] and f.dropped["rx"] == 0
    assert FaultInjector()(data, "rx") == data
    with pytest.raises(BitmixError, match="fault rate drop"):
        FaultInjector(drop=1.0)


def test_unopenable_port_is_named():
    with pytest.raises(BitmixError, match="cannot open serial port /dev/nonexistent-bitmix"):
        SerialTransport("/dev/nonexistent-bitmix")
    assert serial  # pyserial is the transport's dependency
