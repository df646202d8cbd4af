"""Link fuzzing through the virtual board (verif/link_fuzz.py): 2,000 damaged, truncated,
oversized, delimiter-free and random sequences (1,800 over the byte-stream link, 200 through the
UART pins bit by bit) interleaved with valid commands. The device drops exactly the frames golden's
decoder drops (STATUS frames_bad), NACKs every intact fuzz frame, answers every valid command, and
the memory it was written reads back."""

import random

import pytest

from golden.protocol import FrameDecoder, FrameError
from sw_driver.device import Device
from verif.link_fuzz import KINDS, fuzz_device, fuzz_sequence


def test_fuzz_sequences_are_what_they_claim():
    rng = random.Random(0)
    for kind in KINDS:
        for _ in range(50):
            wire = fuzz_sequence(rng, kind)
            assert wire.endswith(b"\0")
            items = FrameDecoder().feed(wire)
            bad = sum(isinstance(i, FrameError) for i in items)
            if kind in ("flip", "truncated", "oversize", "no_delimiter", "joined"):
                assert bad >= 1, kind
            if kind in ("unknown_command", "bad_field"):
                assert bad == 0 and len(items) == 1, kind


def _check(res: dict, n: int) -> None:
    print(res)
    assert res["sequences"] == n and min(res["by_kind"].values()) >= n // len(KINDS)
    assert res["device_frames_bad"] == res["expected_frames_bad"] > n // 2
    assert res["nacks_seen"] >= res["expected_nacks"] > 0
    if res["retries"] == 0:
        assert res["nacks_seen"] == res["expected_nacks"]
    assert res["valid_commands"] == n


@pytest.mark.parametrize("link,n", [("bytes", 1800), ("uart", 200)])
def test_fuzz_through_the_virtual_board(sim_board, link, n):
    board = sim_board(link)
    with Device.open(board.device, expect=board.params, progress=False, timeout=2.0) as dev:
        _check(fuzz_device(dev, n, seed=n), n)


@pytest.mark.slow
def test_fuzz_uart_long(sim_board):
    board = sim_board("uart")
    with Device.open(board.device, expect=board.params, progress=False, timeout=2.0) as dev:
        _check(fuzz_device(dev, 2000, seed=7), 2000)
