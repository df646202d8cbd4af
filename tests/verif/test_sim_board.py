"""The virtual board's harness (verif/sim_board) running the FPGA top (fpga.top.DeviceTop): the
pty bridge in both link modes, statistics and measurement windows, shutdown on hang-up and on
SIGTERM, one pty per instance, and the serial transport's requests through it."""

import os
import signal

import pytest
import torch

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


def test_model_sized_weights_region_is_the_verilog_memory_model(sim_top_values):
    """A weights region above ``EXTERNAL_WEIGHT_BEATS`` is built as ``beat_memory.v`` (no
    initialiser to elaborate): byte-masked writes at any offset read back exactly, beats at both
    ends of the region included, and a GEMV from a weight base near its end equals golden.intref."""
    import random

    from golden import intref
    from sw_driver.device import Device
    from verif.sim_board import EXTERNAL_WEIGHT_BEATS, SimBoard

    exe, p, manifest = sim_top_values({"rows": 1, "lanes": 4, "max_k": 64, "max_n": 8,
                                       "weight_beats": EXTERNAL_WEIGHT_BEATS + 3}, "bytes")
    assert "bitmix_beat_memory" in (exe.parent.parent / "rtl" / "top.v").read_text()
    nb, beats = p.region_beat_bytes[Region.WEIGHTS], p.weight_beats
    rnd = random.Random(1)
    with SimBoard(exe, link="bytes", clk_hz=p.clk_hz, manifest=manifest) as board, \
            Device.open(board.device, expect=manifest, progress=False) as dev:
        image = {}
        for off, n in ((0, 3 * nb + 1), (5, 2), (nb * (beats - 2) - 3, 2 * nb + 3), (7 * nb + 2, 600)):
            data = bytes(rnd.randrange(256) for _ in range(n))
            dev.write_mem(Region.WEIGHTS, off, data)
            image.update((off + i, b) for i, b in enumerate(data))
        for lo, hi in ((0, 3 * nb + 1), (7 * nb, 7 * nb + 602), (nb * (beats - 2) - 3, nb * beats)):
            got = dev.read_mem(Region.WEIGHTS, lo, hi - lo)
            assert all(got[i - lo] == image[i] for i in range(lo, hi) if i in image)
        g = p.gemv
        fs = g.format_sets[0]
        codes = torch.randint(0, 1 << fs.bits, (8, 64), generator=torch.Generator().manual_seed(2))
        ids = torch.randint(0, len(fs.formats), (8, 2), generator=torch.Generator().manual_seed(3))
        u = torch.randint(0, 256, (8, 2), generator=torch.Generator().manual_seed(4))
        base = beats - 8 * 64 // g.lanes
        dev.load_layer(codes, ids, u, base=base)
        x = torch.randint(-128, 128, (64,), generator=torch.Generator().manual_seed(5))
        for prec in range(g.max_terms + 1):
            want = intref.row_results(codes, ids, u, x.view(1, -1), fs, g.group_size, prec or None)
            assert dev.gemv(x, precision=prec) == want[0].tolist()
