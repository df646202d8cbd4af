"""The virtual board's harness (verif/sim_board) with a stand-in top (tests/verif/echo_top.py):
the pty bridge in both link modes, statistics, shutdown on hang-up and on SIGTERM, one pty per
instance, and the serial transport's stop-and-wait and pipelined requests through it."""

import os
import signal

import pytest
from echo_top import EchoTop

from golden.protocol import MAX_PAYLOAD, Command
from sw_driver.transport import SerialTransport
from verif.sim_board import SimBoard, build_board

CLK, DIV = 12_000_000, 4


@pytest.fixture(scope="module", params=["bytes", "uart"])
def echo_exe(request):
    link = request.param
    return link, build_board(EchoTop(link), tag=f"echo_{link}", info={}, link=link)


def test_requests_through_the_pty_and_hangup(echo_exe):
    link, exe = echo_exe
    board = SimBoard(exe, link=link, clk_hz=CLK, divisor=DIV)
    try:
        assert board.device.startswith("/dev/pts/") and os.path.exists(board.device)
        with SerialTransport(board.device, timeout=2.0) as t:
            for i in range(8):
                data = bytes((i * 37 + k) & 0xFF for k in range(i * 9))
                assert t.request(Command.STATUS, data) == data
            # WRITE_MEM-sized frames, pipelined; short answers keep the stand-in's UART from
            # overrunning while it echoes, so use short payloads in uart mode
            size = MAX_PAYLOAD - 1 if link == "bytes" else 16
            done = []
            n = t.pipeline([(Command.WRITE_MEM, bytes([j]) * size) for j in range(24)], done.append)
            assert n == 24 and sorted(done) == list(range(24))
            assert t.core.stats.acks == 32 and t.core.stats.nacks == 0
            st = board.stats()
            assert st["event"] == "stats" and st["link"] == link and st["connected"]
            assert st["rx_frames"] >= 32 and 32 <= st["tx_frames"] <= st["rx_frames"]   # + retries
            assert st["cycles"] > 0 and st["cycles_per_second"] > 0
            assert st["round_trips"] >= 1 and st["round_trip_cycles_min"] > 0
            if link == "uart":      # at least 10 bits of DIV cycles per byte each way
                assert st["round_trip_cycles_min"] >= 2 * 10 * DIV * 10
            # a measurement window: exactly one request's bytes in, its answer's out
            mark = board.mark()
            assert mark["event"] == "mark" and mark["round_trips"] == 0
            sent = t.core.stats.requests
            assert t.request(Command.STATUS, b"abc") == b"abc"
            w = board.stats()
            assert t.core.stats.requests == sent + 1 and w["round_trips"] == 1
            assert w["window_rx_bytes"] == 1 + 4 + 3 + 4 + 1 + 1     # 0, COBS(header|abc|crc), 0
            assert w["window_tx_bytes"] == 4 + 1 + 3 + 4 + 1 + 1      # COBS(header|OK|abc|crc), 0
            span = w["window_last_tx_cycle"] - w["window_first_rx_cycle"]
            assert span >= (w["window_rx_bytes"] + w["window_tx_bytes"]) * (10 * DIV if link == "uart" else 1)
            assert w["round_trip_cycles_last"] <= span
        ev = board.wait(10)           # the driver closed the port: the board stops by itself
        assert ev is not None and ev["reason"] == "hangup" and not board.running
    finally:
        board.close()


def test_sigterm_persist_and_two_instances(echo_exe):
    link, exe = echo_exe
    with SimBoard(exe, link=link, clk_hz=CLK, divisor=DIV, persist=True) as a, \
            SimBoard(exe, link=link, clk_hz=CLK, divisor=DIV) as b:
        assert a.device != b.device
        for _ in range(2):            # persist: a second client after the first hung up
            with SerialTransport(a.device) as t:
                assert t.request(Command.STATUS, b"ab") == b"ab"
        with SerialTransport(b.device) as t:
            assert t.request(Command.STATUS, b"cd") == b"cd"
        assert a.running
        os.kill(a.pid, signal.SIGTERM)
        ev = a.wait(10)
        assert ev is not None and ev["reason"] == "signal"
        assert ev["rx_frames"] == 2 and ev["connects"] >= 1   # a quick reopen may hide a hang-up
