"""`bitmix run --port` on the virtual board's pty (the demo's flow after the capability check):
every linear of the reference model on the device, verified, through a link with injected faults,
the tokens equal golden's host-only decode with the same schedule, and the report's figures; a
wrong expectation or port is one line.
The full `bitmix demo` (8 tokens, about 4 minutes) is the slow test."""

import json

import pytest
import torch

from bitmix.cli import main
from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
from golden.data import decode, encode
from golden.pmpd import QuantLinear, generate, replace_linears, set_precision, static_schedule


def _golden_text(g, prompt, n, switch):
    from bitmix.cmd_demo import quantize_for_device

    model = load_model(REFERENCE_MODEL_DIR)
    qs = quantize_for_device(model, g, "rtn", False)
    replace_linears(model, lambda name, lin: QuantLinear(qs[name], name, g.act_bits))
    d = generate(model, encode(prompt), n, static_schedule(switch), lambda p: set_precision(model, p))
    return decode(d.new_ids)


def test_run_on_the_virtual_board_pty(sim_board, capsys):
    board = sim_board("bytes", persist=True)
    g = board.params.gemv
    rc = main(["run", "--port", board.device, "--expect", str(board.manifest), "--prompt", "The ",
               "--max-new-tokens", "2", "--switch-after", "1", "--fault", "3e-6", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # a damaged link (flips and drops, both ways) is recovered by retries: still golden's tokens
    f = s["faults"]
    assert sum(f["flipped"].values()) + sum(f["dropped"].values()) > 0 and s["retries"] > 0
    assert s["precisions"] == [0, 1] and s["verified"] and s["checked_rows"] > 0
    assert s["text"] == _golden_text(g, "The ", 2, 1)
    # every linear, lm_head included, ran on the device: 4 prefill tokens + 1 decode token
    n_rows = sum(m.out_features for m in load_model(REFERENCE_MODEL_DIR).modules()
                 if isinstance(m, torch.nn.Linear))
    assert s["checked_rows"] >= 5 * n_rows
    assert s["decode"]["tokens"] == 1 and s["decode"]["cycles_per_token"] > 0
    assert s["model_bytes"] > s["weights_region_bytes"]                   # streamed per use
    assert s["resident"] is False and s["weights_load"]["link_bytes"] == 0
    assert s["decode"]["weight_link_bytes_per_token"] > s["model_bytes"]   # the whole model, framed
    assert {b["board"] for b in s["boards"]} == {"icebreaker", "ulx3s-85f", "orangecrab-25f"}
    for b in s["boards"]:
        assert b["resident_tokens_per_s"] > b["streamed_tokens_per_s"] > 0


def test_run_refuses_another_top_and_a_missing_port(sim_board, capsys):
    board = sim_board("bytes", persist=True)
    assert main(["run", "--port", board.device, "--board", "icebreaker"]) == 2
    assert "device refused: CAPABILITIES field params_hash" in capsys.readouterr().err
    assert main(["run", "--port", "/dev/does-not-exist"]) == 2
    assert "cannot open serial port /dev/does-not-exist" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_defaults(capsys):
    assert main(["demo", "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["precisions"] == [0] * 4 + [1] * 4 and s["verified"]
    by = s["decode"]["cycles_per_token_by_precision"]
    assert by["1"] < by["0"]


def test_run_with_the_learned_scheduler(sim_board, tmp_path, capsys):
    """--scheduler learned: the classifier decides once, on the prefill's KV cache (here a file
    whose output bias forces class 0: switch right after the prefill); the device decode equals
    golden's with that schedule, and the decision is reported."""
    from golden.pmpd_sched import KVScheduler, save_scheduler

    board = sim_board("bytes", persist=True)
    cfg = load_model(REFERENCE_MODEL_DIR).config
    sched = KVScheduler(cfg.num_key_value_heads, cfg.head_dim)
    with torch.no_grad():
        sched.head[-1].bias.copy_(torch.tensor([100.0, 0.0, 0.0, 0.0]))
    save_scheduler(tmp_path / "s.pt", sched, {"tokens": 24})
    assert main(["run", "--port", board.device, "--expect", str(board.manifest), "--prompt", "The ",
                 "--max-new-tokens", "2", "--scheduler", "learned", "--scheduler-file",
                 str(tmp_path / "s.pt"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["schedule"]["kind"] == "learned" and s["schedule"]["decision"] == {"class": 0, "n_high": 0}
    assert s["precisions"] == [0, 1] and s["text"] == _golden_text(board.params.gemv, "The ", 2, 1)
    assert main(["run", "--port", board.device, "--scheduler", "learned", "--scheduler-file",
                 str(tmp_path / "none.pt")]) == 2
    assert "bitmix train-scheduler" in capsys.readouterr().err


def test_run_shift_add_on_a_device_without_the_lut_path_is_refused(sim_board, capsys):
    board = sim_board("bytes", persist=True)
    assert main(["run", "--port", board.device, "--expect", str(board.manifest),
                 "--method", "shift-add"]) == 2
    assert "--method shift-add: this device has no shift-add LUT path" in capsys.readouterr().err


@pytest.mark.slow          # ~1.5 min: BCQ twice (device and golden), 4 prompt tokens + 1, streamed
def test_run_shift_add_on_the_lut_board_equals_golden(sim_top_values, capsys):
    """`bitmix run --method bcq` on a virtual board with the LUT path: every linear as BCQ planes
    on the shift-add path, verified, stepping from 3 planes to 2; the text is golden's host-only
    decode (golden.pmpd.BCQLinear) with that schedule."""
    from bitmix.cmd_demo import LUT_BOARD, quantize_for_device
    from golden.pmpd import BCQLinear
    from verif.sim_board import SimBoard

    exe, p, manifest = sim_top_values(LUT_BOARD, "bytes")
    with SimBoard(exe, link="bytes", clk_hz=p.clk_hz, manifest=manifest, persist=True) as board:
        assert main(["run", "--port", board.device, "--expect", str(manifest), "--method", "bcq",
                     "--prompt", "The ", "--max-new-tokens", "2", "--switch-after", "1", "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["method"] == "bcq3-block" and s["path"] == "shift-add LUT" and s["precisions"] == [0, 2]
    n_rows = sum(m.out_features for m in load_model(REFERENCE_MODEL_DIR).modules()
                 if isinstance(m, torch.nn.Linear))
    assert s["verified"] and s["checked_rows"] >= 5 * n_rows
    by = s["decode"]["cycles_per_token_by_precision"]
    assert s["prefill"]["cycles"] / 4 > by["2"] > 0          # 2 planes read: fewer cycles than 3
    model = load_model(REFERENCE_MODEL_DIR)
    qs = quantize_for_device(model, p.gemv, "bcq", False)
    replace_linears(model, lambda name, lin: BCQLinear(qs[name], name, p.gemv.act_bits))
    d = generate(model, encode("The "), 2, static_schedule(1, 0, 2), lambda q: set_precision(model, q))
    assert s["text"] == decode(d.new_ids)
