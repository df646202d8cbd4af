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
