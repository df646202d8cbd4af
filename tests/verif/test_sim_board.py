"""The virtual board's harness (verif/sim_board) running the FPGA top (fpga.top.DeviceTop): the
pty bridge in both link modes, statistics and measurement windows, shutdown on hang-up and on
SIGTERM, one pty per instance, and the serial transport's requests through it."""

import os
import signal

import pytest

from golden.protocol import RESPONSES, Command, Region, request_payload, unpack_bytes
from sw_driver.transport import SerialTransport


def _status(t: SerialTransport) -> dict:
    return unpack_bytes(RESPONSES[Command.STATUS], t.request(Command.STATUS))


@pytest.mark.parametrize("link", ["bytes", "uart"])
def test_requests_through_the_pty_window_and_hangup(sim_board, link):
    board = sim_board(link)
    p = board.params
    assert board.device.startswith("/dev/pts/") and os.path.exists(board.device)
    with SerialTransport(board.device, timeout=2.0) as t:
        caps = unpack_bytes(RESPONSES[Command.CAPABILITIES], t.request(Command.CAPABILITIES))
        assert caps == p.capabilities()
        data = bytes(range(200))
        w = Region.WEIGHTS
        t.request(Command.WRITE_MEM, request_payload(Command.WRITE_MEM, data, region=w, offset=8))
        back = t.request(Command.READ_MEM, request_payload(Command.READ_MEM, region=w, offset=8, count=200))
        assert back == data
        st = board.stats()
        assert st["event"] == "stats" and st["link"] == link and st["connected"]
        assert st["rx_frames"] == st["tx_frames"] == 3 and st["round_trips"] == 3
        assert st["cycles"] > 0 and st["cycles_per_second"] > 0
        # a measurement window: exactly one request's bytes in, its answer's out
        mark = board.mark()
        assert mark["event"] == "mark" and mark["round_trips"] == 0
        assert _status(t)["frames_ok"] == 4 and t.core.stats.retries == 0
        w = board.stats()
        assert w["round_trips"] == 1
        assert w["window_rx_bytes"] == 1 + 1 + 4 + 4 + 1        # 0, COBS code, header, CRC, 0
        n_status = RESPONSES[Command.STATUS].size // 8
        assert w["window_tx_bytes"] >= 4 + 1 + n_status + 4 + 1 + 1
        per_byte = 10 * p.divisor if link == "uart" else 1
        span = w["window_last_tx_cycle"] - w["window_first_rx_cycle"]
        assert span >= (w["window_rx_bytes"] + w["window_tx_bytes"]) * per_byte
        assert w["round_trip_cycles_last"] <= span
    ev = board.wait(10)           # the driver closed the port: the board stops by itself
    assert ev is not None and ev["reason"] == "hangup" and not board.running


def test_sigterm_sigint_persist_and_two_instances(sim_board):
    a, b = sim_board("bytes", persist=True), sim_board("bytes", persist=True)
    assert a.device != b.device
    for _ in range(2):            # persist: a second client after the first hung up
        with SerialTransport(a.device) as t:
            assert _status(t)["state"] == 0
    with SerialTransport(b.device) as t:
        assert _status(t)["frames_ok"] == 1             # its own device: one frame so far
    assert a.running
    os.kill(a.pid, signal.SIGTERM)
    ev = a.wait(10)
    assert ev is not None and ev["reason"] == "signal"
    assert ev["rx_frames"] == 2 and ev["connects"] >= 1   # a quick reopen may hide a hang-up
    os.kill(b.pid, signal.SIGINT)                         # Ctrl-C in a terminal
    ev = b.wait(10)
    assert ev is not None and ev["reason"] == "signal" and ev["rx_frames"] == 1
