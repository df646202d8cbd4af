"""The driver API (sw_driver/device.py) against the virtual board running the FPGA top (not a
mock): the capability check and its refusals, memory writes and reads, a layer of the shipped
reference model (golden quantizer -> golden.gemv_layout packer) run at every precision bit-exact
with golden.intref, and the engine commands."""

import json
import random
import re

import pytest
import torch
from safetensors import safe_open

from bitmix.errors import BitmixError
from golden import intref
from golden.checkpoint import REFERENCE_MODEL_DIR
from golden.protocol import PROTOCOL_VERSION, Command, EngineState, ErrorCode, Region
from golden.quant import quantize_activations, quantize_rtn
from sw_driver.device import CapabilityMismatch, Device, check_capabilities, load_expectation
from sw_driver.protocol import DeviceError


@pytest.fixture
def board(sim_board):
    return sim_board("bytes", persist=True)


def test_capabilities_checked_and_mismatches_refused_by_name(board, tmp_path):
    p = board.params
    with Device.open(board.device, expect=board.manifest) as dev:
        assert dev.capabilities == p.capabilities()
    # the sim-board device file works as the expectation too
    f = tmp_path / "board.json"
    f.write_text(json.dumps({"device": board.device, "manifest": str(board.manifest)}))
    assert load_expectation(f) == p
    other = p.replace(max_n=32)                    # another bitstream: other parameters
    with pytest.raises(CapabilityMismatch, match=r"field params_hash is [0-9a-f]{16} on the device") as e:
        Device.open(board.device, expect=other)
    assert e.value.field == "params_hash" and e.value.expected == int(other.hash, 16)
    caps = dict(p.capabilities())
    for field, value, name in (("version", PROTOCOL_VERSION + 1, "version"),
                               ("formats_hash", 1, "formats_hash"),
                               ("region_bytes", [1, 2, 3], "region_bytes[WEIGHTS]"),
                               ("desc_bytes", 9, "desc_bytes"), ("clock_hz", 1, "clock_hz"),
                               ("board", 1, "board")):
        with pytest.raises(CapabilityMismatch, match=rf"field {re.escape(name)} is"):
            check_capabilities({**caps, field: value}, p)
    with pytest.raises(BitmixError, match="no 'parameters'"):
        f.write_text("{}")
        load_expectation(f)


def test_write_read_verify_and_bounds(board):
    p = board.params
    rng = random.Random(1)
    with Device.open(board.device, expect=p, progress=False, timeout=3.0) as dev:   # no retry under load
        size = p.region_bytes[Region.WEIGHTS]
        data = bytes(rng.randrange(256) for _ in range(size))
        dev.write_mem(Region.WEIGHTS, 0, data, verify=True)           # 29 pipelined chunks
        assert dev.read_mem(Region.WEIGHTS, 0, size) == data
        acts = bytes(rng.randrange(256) for _ in range(p.region_bytes[Region.ACTIVATIONS]))
        dev.write_mem(Region.ACTIVATIONS, 0, acts)
        assert dev.read_mem(Region.ACTIVATIONS, 0, len(acts)) == acts
        assert dev.read_mem(Region.WEIGHTS, 3, 5) == data[3:8]
        with pytest.raises(DeviceError) as e:
            dev.write_mem(Region.WEIGHTS, size - 2, b"abc")
        assert e.value.command is Command.WRITE_MEM and e.value.error is ErrorCode.OUT_OF_BOUNDS
        assert f"(seq {e.value.seq})" in str(e.value)
        with pytest.raises(DeviceError, match="BAD_FIELD"):
            dev.set_precision(p.gemv.max_terms + 1)
        assert dev.read_mem(Region.WEIGHTS, size - 2, 2) == data[-2:]   # nothing written
        assert dev.transport.core.stats.retries == 0


def _reference_layer():
    """k_proj of layer 0 of the shipped reference model ([128, 256]) and an activation vector."""
    with safe_open(str(REFERENCE_MODEL_DIR / "model.safetensors"), "pt") as f:
        W = f.get_tensor("model.layers.0.self_attn.k_proj.weight").to(torch.float64)
        x = f.get_tensor("model.embed_tokens.weight")[ord("b")].to(torch.float64)
    return W, x


def test_reference_layer_every_precision_bit_exact(board):
    p = board.params
    g = p.gemv
    W, x = _reference_layer()
    fs = g.format_sets[0]
    q = quantize_rtn(W, fs, g.group_size, scale_bits=g.scale_bits)
    x_int, _ = quantize_activations(x, bits=g.act_bits)
    with Device.open(board.device, expect=p, progress=False) as dev:
        # N = 128 > max N = 64: two row blocks of the layer, one after the other
        for lo in range(0, W.shape[0], g.max_n):
            rows = slice(lo, lo + g.max_n)
            info = dev.load_layer(q.codes[rows], q.fmt_ids[rows], q.u[rows], fmt_set=fs.name, verify=lo == 0)
            assert info["n"] == g.max_n and info["k"] == W.shape[1]
            for prec in range(g.max_terms + 1):
                got = dev.gemv(x_int, precision=prec)
                want = intref.row_results(q.codes[rows], q.fmt_ids[rows], q.u[rows], x_int, fs,
                                          g.group_size, prec or None).tolist()
                assert got == want, f"rows {lo}+, precision {prec}"
                st = dev.status()
                assert st["state"] is EngineState.DONE and st["precision"] == prec and st["cycles"] > 0
        assert dev.transport.core.stats.nacks == 0


def test_engine_commands_reset_abort_and_not_ready(board):
    p = board.params
    with Device.open(board.device, expect=p, progress=False) as dev:
        dev.reset()
        assert dev.status()["state"] is EngineState.IDLE
        with pytest.raises(DeviceError) as e:
            dev.run()                                            # nothing loaded
        assert e.value.error in (ErrorCode.NOT_READY,) and e.value.command is Command.RUN
        with pytest.raises(BitmixError, match="no layer loaded"):
            dev.read_results()
        codes = torch.zeros(4, p.gemv.group_size, dtype=torch.int64)
        ids = torch.zeros(4, 1, dtype=torch.int64)
        dev.load_layer(codes, ids, ids)
        assert dev.gemv(torch.ones(p.gemv.group_size, dtype=torch.int64)) == [0, 0, 0, 0]
        dev.abort()
        dev.reset()
        assert dev.status()["state"] is EngineState.IDLE


def test_a_board_that_stops_answering_is_a_clear_error_then_recovers(board):
    import os
    import signal
    import time

    with Device.open(board.device, expect=board.params, progress=False, timeout=0.2, retries=2) as dev:
        os.kill(board.pid, signal.SIGSTOP)                     # the board freezes
        try:
            t0 = time.monotonic()
            with pytest.raises(DeviceError, match=r"did not answer STATUS \(seq \d+\) after 3 tries") as e:
                dev.status()
            assert e.value.error is None and time.monotonic() - t0 < 3
        finally:
            os.kill(board.pid, signal.SIGCONT)
        # the three tries reach the board when it resumes; their late answers are stale
        assert dev.status()["state"] is EngineState.IDLE


@pytest.mark.slow
def test_reference_layer_shift_add_path_every_precision(sim_top_values):
    """A top with the LUT path (L = 8, q <= 3): the reference k_proj quantized by golden.bcq
    (row layout, APoT scales) at every precision through the driver, bit-exact with golden.bcq;
    then a bit-serial GEMV on the same device."""
    from golden.bcq import quantize_bcq
    from verif.lut_stimulus import LutGemv, expected
    from verif.sim_board import SimBoard

    exe, p, manifest = sim_top_values({"lanes": 8, "lut_planes": 3}, "bytes")
    g = p.gemv
    W, x = _reference_layer()
    W = W[:32]                   # the q-plane stream must fit the weights region (2,048 beats)
    x_int, _ = quantize_activations(x, bits=g.act_bits)
    bw = quantize_bcq(W, 3, 32, layout="row", rounds=10)
    with SimBoard(exe, link="bytes", clk_hz=p.clk_hz, manifest=manifest) as board, \
            Device.open(board.device, expect=manifest, progress=False) as dev:
        for prec in range(1, bw.bits + 1):
            dev.load_bcq_layer(bw, precision=prec)
            assert dev.gemv(x_int, precision=prec) == expected(g.lut, LutGemv(bw, x_int, prec))
        with pytest.raises(BitmixError, match="streamed for precision 3, not 1"):
            dev.gemv(x_int, precision=1)
        q = quantize_rtn(W, g.format_sets[0], g.group_size, scale_bits=g.scale_bits)
        dev.load_layer(q.codes, q.fmt_ids, q.u)
        assert dev.gemv(x_int) == intref.row_results(q.codes, q.fmt_ids, q.u, x_int, g.format_sets[0],
                                                     g.group_size).tolist()
