"""cocotb + Verilator: hw.framing's decoder against golden.protocol.FrameDecoder on random /
corrupted / truncated / oversize / delimiter-free / garbage-prefixed / joined byte sequences
(400 in the default suite, 2,000 with full-size frames in the slow job) and the exhaustive
resynchronisation set (slow job: every sequence of up to 5 bytes over 6 values, 9,331); the
encoder against golden.protocol.encode_frame (verif/tb_framing.py; random and bursty stalls on
every stream, idle tails). The Amaranth-simulator tests (tests/hw/test_framing.py) run the
resynchronisation set up to 4 bytes in the default suite."""

import pytest

from hw.framing import FrameDecoder, FrameEncoder, FramingParams
from verif.runner import run_cocotb


def _decoder(config, testcase, seed=None):
    return run_cocotb(FrameDecoder(), name="framing_decoder", tag=FramingParams("decoder").tag,
                      test_module="verif.tb_framing", config=config, testcase=testcase, seed=seed)


def _encoder(config, seed=None):
    return run_cocotb(FrameEncoder(), name="framing_encoder", tag=FramingParams("encoder").tag,
                      test_module="verif.tb_framing", config=config,
                      testcase="encoder_bytes_equal_golden", seed=seed)


def test_framing_decoder_cocotb():
    assert _decoder({"cases": 400, "max_payload": 64}, "decoder_verdicts_equal_golden").tests == 1


def test_framing_encoder_cocotb():
    assert _encoder({"frames": 24}).tests == 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_framing_cocotb_long(seed):
    """2,000 sequences with full-size frames (payloads up to MAX_PAYLOAD) for the decoder and
    the resynchronisation set up to 5 bytes; more encoder frames."""
    res = _decoder({"cases": 2000, "resync_max_len": 5},
                   ["decoder_verdicts_equal_golden", "decoder_resynchronises_after_any_short_sequence"],
                   seed)
    assert res.tests == 2
    assert _encoder({"frames": 120}, seed).tests == 1
