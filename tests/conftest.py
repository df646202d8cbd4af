"""Shared fixtures."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small-op-bound quantizer loops run faster on one torch thread on the shared 2-core runner."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-layer LLaMA (hidden 128) saved as a checkpoint folder, for `bitmix quantize` runs."""
    from golden.checkpoint import save_model
    from golden.model import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_model(LlamaForCausalLM(cfg).init_weights(0), folder)
    return folder


@pytest.fixture(scope="session")
def sim_top():
    """The default FPGA top built for the virtual board: ``sim_top(link)`` -> (executable,
    TopParams, manifest path); built once per link (cached under build/sim_board/)."""
    from verif.sim_board import build_top

    cache = {}

    def get(link: str):
        if link not in cache:
            cache[link] = build_top(link=link)
        return cache[link]

    return get


@pytest.fixture(scope="session")
def sim_top_values():
    """``sim_top_values(values, link)``: like ``sim_top`` for a top with other option values."""
    from verif.sim_board import build_top

    return lambda values, link: build_top(values, link=link)


@pytest.fixture
def sim_board(sim_top):
    """Start a virtual board of the default top: ``sim_board(link, **SimBoard options)``; every
    board started is stopped after the test."""
    from verif.sim_board import SimBoard

    boards = []

    def start(link: str = "bytes", **kw):
        exe, params, manifest = sim_top(link)
        b = SimBoard(exe, link=link, clk_hz=params.clk_hz,
                     divisor=params.divisor if link == "uart" else None, manifest=manifest, **kw)
        b.params = params
        boards.append(b)
        return b

    yield start
    for b in boards:
        b.close()
