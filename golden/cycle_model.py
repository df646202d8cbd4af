"""Cycle models: BitMoD's simulator, reproduced exactly, and the same workload on an engine.

Pure Python (no Amaranth, no torch), so ``bitmix bench hw`` and the docs can import it cheaply.

BitMoD's simulator model (research/bitmod.md §2, "Simulator configuration" and "Cycle model";
release code ``bitmod_sim/{pe_array,accelerator}.py`` of ``yc2367/BitMoD-HPCA-25`` @58d7bdb)
------------------------------------------------------------------------------------------------
An accelerator is an ``h × w`` array of PEs, each a ``dp``-wide dot product. The ``h`` rows hold
output channels, the ``w`` columns hold tokens. Every operator of the workload (each Linear layer,
plus the attention products QK and SV of every block) is a matrix product with

* weight ``[cout, cin]``, input ``[?, cin_i]``, output ``[tokens, cout]``;
* ``tiles = ceil(cin / dp) · ceil(cout / h) · ceil(tokens / w)``;
* ``compute = tiles · latency``, ``latency = ceil(floor(weight_bits) / 2)`` for the bit-serial
  BitMoD PE (two weight bits a cycle), 1 for the bit-parallel ANT, OliVe and FP16 PEs;
* ``dram = floor((W·fw + I·fi + O) · 8 / 256)`` with ``W = ceil(cin · weight_bits / 8) · cout``,
  ``I = ceil(cin_i · 16 / 8) · tokens``, ``O = ceil(cout · 16 / 8) · tokens`` bytes (activations
  are FP16; the attention "weight" is FP16 too), 256 bits a cycle (a 128-bit DDR bus), and the
  refetch factors ``fw, fi`` > 1 only when both W and I exceed their 512 KiB buffer;
* ``cycles = Σ_ops max(compute, dram)``.

The *generative* figure of the paper (Fig. 7) is ``prefill + 20 · decode``: one 256-token prefill
on the 32×32 array and 20 decode steps on the 64×16 array, each decode step at context 256.
The four anchors of docs/architecture.md §4 (79,493,200 BitMoD, 129,497,936 ANT, 97,236,816 OliVe and
413,518,608 FP16 for Llama-2-7B) are each **one decode step**, not that sum.

The same workload on an engine description
-------------------------------------------
:func:`engine_cycles` evaluates the Llama-2-7B workload on a bitmix GEMV engine described by
its rows R, lanes L, terms per weight T and link bits per cycle (:class:`EngineSpec`); see its
docstring for the assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from bitmix.errors import BitmixError
from golden.formats import get_format_set

__all__ = [
    "LlmShape", "LLAMA2_7B", "LLAMA2_13B", "LLAMA3_8B", "MODELS",
    "Op", "workload", "SimAccelerator", "LayerCycles",
    "bitmod_sim_layer", "bitmod_sim_layers", "bitmod_sim_cycles", "bitmod_sim_designs",
    "generative_cycles", "EngineSpec", "engine_layer", "engine_cycles", "DEFAULT_ENGINE",
    "TableRow", "bitmod_table", "gemv_rtl_cycles", "gemv_ideal_cycles", "lut_rtl_cycles",
    "lut_ideal_cycles", "gemv_lut_rtl_cycles",
]

# ---- BitMoD simulator model

#: Activation (and KV, attention-operand) precision of every design: FP16 (research/bitmod.md §2,
#: "Precision: activations FP16 (i_prec=16); in the HPCA version K/V also use 16 bits").
ACT_BITS = 16
#: DRAM: a 128-bit bus, double data rate, so 256 bits a cycle (research/bitmod.md §2, "DRAM").
DRAM_BUS_BITS = 128
DRAM_BITS_PER_CYCLE = 2 * DRAM_BUS_BITS
#: Weight SRAM and input SRAM, 512 KiB each (research/bitmod.md §2, "Buffers").
SRAM_BYTES = 512 * 1024
#: Weight bits the bit-serial BitMoD PE consumes per cycle: latency = ceil(floor(bits) / 2)
#: (research/bitmod.md §2, "Cycle model").
BIT_SERIAL_BITS_PER_CYCLE = 2
#: The paper's workload: 256-token prefill, then 20 decode steps at context 256 (research/bitmod.md
#: §2, "Workload"; ``num_token_generate = 20`` in the release's ``plot/speedup_plot.ipynb``).
CONTEXT = 256
DECODE_STEPS = 20
PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class LlmShape:
    """The shapes of a LLaMA-style decoder that the simulator needs (the HF config fields).

    Members
    -------
    name : str
    layers, hidden, heads, kv_heads, intermediate, vocab : int
        ``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
        ``num_key_value_heads``, ``intermediate_size``, ``vocab_size``.
    """

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int

    @property
    def kv_dim(self) -> int:
        """Width of K (and V) over all KV heads: ``hidden / heads · kv_heads``."""
        return self.hidden // self.heads * self.kv_heads

    def linears(self) -> list[tuple[str, int, int]]:
        """Every ``nn.Linear`` as (module name, out features, in features), in HF module order."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        per_block = [("self_attn.q_proj", h, h), ("self_attn.k_proj", kv, h),
                     ("self_attn.v_proj", kv, h), ("self_attn.o_proj", h, h),
                     ("mlp.gate_proj", i, h), ("mlp.up_proj", i, h), ("mlp.down_proj", h, i)]
        out = [(f"model.layers.{b}.{n}", co, ci) for b in range(self.layers) for n, co, ci in per_block]
        return out + [("lm_head", self.vocab, h)]


LLAMA2_7B = LlmShape("llama-2-7b", layers=32, hidden=4096, heads=32, kv_heads=32,
                     intermediate=11008, vocab=32000)
LLAMA2_13B = LlmShape("llama-2-13b", layers=40, hidden=5120, heads=40, kv_heads=40,
                      intermediate=13824, vocab=32000)
LLAMA3_8B = LlmShape("llama-3-8b", layers=32, hidden=4096, heads=32, kv_heads=8,
                     intermediate=14336, vocab=128256)
MODELS = {m.name: m for m in (LLAMA2_7B, LLAMA2_13B, LLAMA3_8B)}


@dataclass(frozen=True)
class Op:
    """One operator with the simulator's ``weight_dim``, ``input_dim`` and ``output_dim``.

    Members
    -------
    name : str
    kind : str
        ``"linear"``, ``"attn_qk"`` or ``"attn_v"``.
    weight : (int, int)
        (cout, cin); for attention the FP16 operand the simulator puts in the weight slot.
    inputs : (int, int)
        (rows, cin_i); only ``cin_i`` enters the model (input bytes use the output's token count).
    outputs : (int, int)
        (tokens, cout); ``tokens`` is what the array's columns tile.
    """

    name: str
    kind: str
    weight: tuple[int, int]
    inputs: tuple[int, int]
    outputs: tuple[int, int]


def workload(model: LlmShape = LLAMA2_7B, phase: str = "decode", context: int = CONTEXT) -> tuple[Op, ...]:
    """The operators of one prefill (``context`` tokens) or one decode step (at ``context``).

    Exactly ``PE_Array._init_model_profiler`` of the release (research/bitmod.md §2, "Workload"):
    all Linear layers including ``lm_head``, then QK and SV of every block. The attention shapes are
    the simulator's own; for a decode step they are ``weight = q [1, hidden]`` with the heads as
    tokens (QK) and ``weight = scores [heads, context]`` (SV), which charge far fewer KV-cache bytes
    than a real decode step reads (see :func:`engine_layer` for the engine's accounting).
    """
    if phase not in PHASES:
        raise BitmixError(f"cycle model: phase must be one of {PHASES}, not {phase!r}")
    if context < 1:
        raise BitmixError(f"cycle model: context must be >= 1, not {context}")
    tokens = 1 if phase == "decode" else context
    ops = [Op(n, "linear", (co, ci), (tokens, ci), (tokens, co)) for n, co, ci in model.linears()]
    h, nh, kv, c = model.hidden, model.heads, model.kv_dim, context
    for b in range(model.layers):
        if phase == "decode":
            qk = ((1, h), (c, kv), (nh, c))
            sv = ((nh, c), (c, kv), (1, h))
        else:
            qk = ((c, h), (c, kv), (nh * c, c))
            sv = ((nh * c, c), (c, kv), (c, h))
        ops.append(Op(f"model.layers.{b}.self_attn.attn_qk", "attn_qk", *qk))
        ops.append(Op(f"model.layers.{b}.self_attn.attn_v", "attn_v", *sv))
    return tuple(ops)


def _check_positive(where: str, **values) -> None:
    for k, v in values.items():
        if not v > 0:
            raise BitmixError(f"{where}: {k} must be > 0, not {v!r}")


@dataclass(frozen=True)
class SimAccelerator:
    """One design of BitMoD's simulator (research/bitmod.md §2, "Simulator configuration").

    Members
    -------
    name : str
    rows, cols : int
        PE array ``h × w``: rows tile output channels, columns tile tokens.
    dot_width : int
        Products per PE per cycle (``pe_dp_size``: 4 for BitMoD, 1 otherwise).
    weight_bits : Fraction
        Storage bits per weight including group metadata (3.0625 = 3 + 8/128 for BitMoD lossy
        decode); it sets the DRAM bytes and, for a bit-serial PE, the latency.
    bit_serial : bool
        Bit-serial weights: ``latency = ceil(floor(weight_bits) / 2)`` cycles a tile, else 1.
    act_bits, dram_bits_per_cycle, sram_bytes : int
        FP16 activations, 256 bits/cycle, 512 KiB weight and input buffers.
    """

    name: str
    rows: int
    cols: int
    dot_width: int
    weight_bits: Fraction
    bit_serial: bool
    act_bits: int = ACT_BITS
    dram_bits_per_cycle: int = DRAM_BITS_PER_CYCLE
    sram_bytes: int = SRAM_BYTES

    def __post_init__(self):
        object.__setattr__(self, "weight_bits", Fraction(self.weight_bits))
        _check_positive(f"BitMoD simulator design {self.name!r}", rows=self.rows, cols=self.cols,
                        dot_width=self.dot_width, weight_bits=self.weight_bits, act_bits=self.act_bits,
                        dram_bits_per_cycle=self.dram_bits_per_cycle, sram_bytes=self.sram_bytes)

    @property
    def latency(self) -> int:
        """Cycles per tile; the release applies it to the attention ops too."""
        if not self.bit_serial:
            return 1
        return math.ceil(math.floor(self.weight_bits) / BIT_SERIAL_BITS_PER_CYCLE)


@dataclass(frozen=True)
class LayerCycles:
    """Cycles of one operator: compute and memory, and the larger one that counts.

    Members
    -------
    name, kind : str
    compute : int
        Datapath cycles (tiles × latency for the simulator).
    memory : int
        DRAM (link) cycles.
    bytes : int
        Bytes moved over DRAM, refetches included.
    """

    name: str
    kind: str
    compute: int
    memory: int
    bytes: int

    @property
    def cycles(self) -> int:
        return max(self.compute, self.memory)

    @property
    def memory_bound(self) -> bool:
        return self.memory > self.compute


def _refetch(acc: SimAccelerator, w_bytes: int, i_bytes: int) -> tuple[int, int]:
    """(weight fetches, input fetches): ``Accelerator._calc_num_mem_refetch`` of the release."""
    if w_bytes <= acc.sram_bytes or i_bytes <= acc.sram_bytes:
        return 1, 1
    weight_refetch = math.ceil(i_bytes / acc.sram_bytes)   # weights again for every input tile
    input_refetch = math.ceil(w_bytes / acc.sram_bytes)    # inputs again for every weight tile
    if weight_refetch * w_bytes + i_bytes < input_refetch * i_bytes + w_bytes:
        return weight_refetch, 1
    return 1, input_refetch


def bitmod_sim_layer(acc: SimAccelerator, op: Op) -> LayerCycles:
    """One operator on one simulator design (research/bitmod.md §2, "Cycle model")."""
    (cout, cin), (_, cin_i), (tokens, _) = op.weight, op.inputs, op.outputs
    tiles = math.ceil(cin / acc.dot_width) * math.ceil(cout / acc.rows) * math.ceil(tokens / acc.cols)
    w_bits = acc.weight_bits if op.kind == "linear" else acc.act_bits
    w_bytes = math.ceil(cin * w_bits / 8) * cout
    i_bytes = math.ceil(Fraction(cin_i * acc.act_bits, 8)) * tokens
    o_bytes = math.ceil(Fraction(cout * acc.act_bits, 8)) * tokens
    fw, fi = _refetch(acc, w_bytes, i_bytes)
    moved = w_bytes * fw + i_bytes * fi + o_bytes
    # The release sums three float quotients and truncates with int(); each is exact (a multiple of
    # 1/32 at 256 bits a cycle), so this exact floor is the same number.
    return LayerCycles(op.name, op.kind, tiles * acc.latency, moved * 8 // acc.dram_bits_per_cycle, moved)


def bitmod_sim_layers(acc: SimAccelerator, ops: tuple[Op, ...]) -> list[LayerCycles]:
    return [bitmod_sim_layer(acc, op) for op in ops]


def bitmod_sim_cycles(acc: SimAccelerator, ops: tuple[Op, ...]) -> int:
    """Total cycles: ``Σ max(compute, dram)`` over the operators (``Accelerator.calc_cycle``)."""
    return sum(lc.cycles for lc in bitmod_sim_layers(acc, ops))


#: Per-model decode weight bits of ANT and OliVe, "profiled offline" in the release's
#: ``test_ant.py`` / ``test_olive.py`` (research/bitmod.md §2, table "Simulator configuration").
ANT_DECODE_BITS = {"llama-2-7b": Fraction(5), "llama-2-13b": Fraction(5), "llama-3-8b": Fraction(9, 2)}
OLIVE_DECODE_BITS = {"llama-2-7b": Fraction(15, 4), "llama-2-13b": Fraction(15, 4),
                     "llama-3-8b": Fraction(7, 2)}
#: BitMoD metadata: 8 bits per 128-weight group (research/bitmod.md §1, "Scale format").
BITMOD_GROUP_BITS = Fraction(8, 128)


def bitmod_sim_designs(phase: str = "decode", model: LlmShape = LLAMA2_7B) -> dict[str, SimAccelerator]:
    """The five designs of the paper's Fig. 7, for one phase and model (release ``test_*.py``).

    Arrays are (prefill / decode): FP16 32×24 / 64×12, ANT 32×32 / 64×16, OliVe 36×32 / 72×16,
    BitMoD 32×32 / 64×16 with 4-wide bit-serial PEs; BitMoD lossy weights are 4 + 8/128 bits in
    prefill and 3 + 8/128 in decode, lossless 6 + 8/128 in both.
    """
    if phase not in PHASES:
        raise BitmixError(f"cycle model: phase must be one of {PHASES}, not {phase!r}")
    if model.name not in ANT_DECODE_BITS:
        raise BitmixError(f"cycle model: no ANT/OliVe precisions for model {model.name!r}; "
                          f"known: {', '.join(ANT_DECODE_BITS)}")
    d = phase == "decode"
    ant_bits = ANT_DECODE_BITS[model.name] if d else Fraction(11, 2)
    olive_bits = OLIVE_DECODE_BITS[model.name] if d else Fraction(9, 2)
    lossy_bits = (3 if d else 4) + BITMOD_GROUP_BITS
    r, c = (64, 16) if d else (32, 32)
    designs = [
        SimAccelerator("FP16", (64 if d else 32), (12 if d else 24), 1, Fraction(16), False),
        SimAccelerator("ANT", r, c, 1, ant_bits, False),
        SimAccelerator("OliVe", (72 if d else 36), c, 1, olive_bits, False),
        SimAccelerator("BitMoD lossless", r, c, 4, 6 + BITMOD_GROUP_BITS, True),
        SimAccelerator("BitMoD", r, c, 4, lossy_bits, True),
    ]
    return {a.name: a for a in designs}


def generative_cycles(design: str, model: LlmShape = LLAMA2_7B, decode_steps: int = DECODE_STEPS,
                      context: int = CONTEXT) -> int:
    """The paper's generative figure: one prefill plus ``decode_steps`` decode steps (Fig. 7)."""
    def phase(name: str) -> int:
        designs = bitmod_sim_designs(name, model)
        if design not in designs:
            raise BitmixError(f"cycle model: unknown design {design!r}; known: {', '.join(designs)}")
        return bitmod_sim_cycles(designs[design], workload(model, name, context))

    return phase("prefill") + decode_steps * phase("decode")


# ---- BitMoD's workload on a bitmix engine description (comparison row)

@dataclass(frozen=True)
class EngineSpec:
    """A bitmix GEMV engine, as far as a cycle count needs it (issue 7; docs/architecture.md §4).

    Members
    -------
    name : str
    rows, lanes : int
        R output rows × L lanes; one activation beat (L activations) is shared by the R rows.
    terms : int
        T, bit-serial terms per weight at the running precision (2 for full bitmod3/bitmod4).
    weight_bits : Fraction
        Stored bits per weight including group metadata (3 + 8/128 for bitmod3 at G = 128).
    link_bits_per_cycle : int
        Bits per engine cycle of the weight link (DRAM or host).
    kv_bits, kv_terms : int
        Precision of the attention operands (K, V cache) and terms per element if the attention
        products run on the same datapath: FP16, 8 radix-4 digits (BitMoD's INT decoding).
    overlap_activation_load : bool
        False charges ``ceil(K / L)`` cycles per GEMV to load its activations (issue 7 item 2's
        upper bound); True assumes the load hides under the previous GEMV's tail.
    clock_hz : float or None
        Only to convert cycles to time; the comparison itself is in cycles.
    """

    name: str
    rows: int
    lanes: int
    terms: int
    weight_bits: Fraction
    link_bits_per_cycle: int = DRAM_BITS_PER_CYCLE
    kv_bits: int = ACT_BITS
    kv_terms: int = ACT_BITS // BIT_SERIAL_BITS_PER_CYCLE
    act_bits: int = ACT_BITS
    overlap_activation_load: bool = False
    clock_hz: float | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "weight_bits", Fraction(self.weight_bits))
        _check_positive(f"engine {self.name!r}", rows=self.rows, lanes=self.lanes, terms=self.terms,
                        weight_bits=self.weight_bits, link_bits_per_cycle=self.link_bits_per_cycle,
                        kv_bits=self.kv_bits, kv_terms=self.kv_terms, act_bits=self.act_bits)

    @classmethod
    def for_format_set(cls, format_set: str, *, rows: int, lanes: int, precision: int | None = None,
                       group_size: int = 128, group_bits: int = 8, **kw) -> EngineSpec:
        """Engine running ``format_set`` (golden.formats) at ``precision`` terms (None = full).

        ``group_bits`` is the per-group metadata (format id + scale ``u``), 8 bits in bitmix's
        BitMoD sets as in BitMoD's 3.0625 / 4.0625 bits per weight.
        """
        fs = get_format_set(format_set)
        t = fs.max_terms if precision in (None, 0) else precision
        if not 1 <= t <= fs.max_terms:
            raise BitmixError(f"engine {format_set}: precision must be 1..{fs.max_terms} terms, not {t}")
        name = kw.pop("name", f"bitmix {format_set} R={rows} L={lanes} T={t}")
        return cls(name, rows, lanes, t, fs.bits + Fraction(group_bits, group_size), **kw)


def _gemvs(spec: EngineSpec, n: int, k: int, terms: int, count: int) -> int:
    """Compute cycles of ``count`` GEMVs of N outputs × K inputs at ``terms`` per element."""
    load = 0 if spec.overlap_activation_load else math.ceil(k / spec.lanes)
    return count * (math.ceil(n / spec.rows) * math.ceil(k / spec.lanes) * terms + load)


def engine_layer(spec: EngineSpec, op: Op, model: LlmShape = LLAMA2_7B) -> LayerCycles:
    """One operator of :func:`workload` on the engine. Assumptions, stated once:

    * The engine computes GEMVs only and keeps no weights on chip between tokens, so an operator
      over ``tokens`` tokens is ``tokens`` GEMVs that each stream the whole matrix again.
    * A Linear layer ``[N, K]`` takes ``ceil(N/R) · ceil(K/L) · T`` cycles per token (R·L terms a
      cycle, no bubbles), plus the activation load, and streams ``N·K·weight_bits`` bits, plus FP16
      inputs and outputs, over the link.
    * Attention runs as real decode-time GEMVs at context ``c`` (the simulator's shapes undercount
      the KV cache): QK is, per head, ``K_cache [c, d_head] · q``; SV is ``V_cacheᵀ [d_head, c] · p``;
      each streams its cache (``c · kv_dim`` elements at ``kv_bits``) with ``kv_terms`` terms per
      element. Prefill repeats this per token at the full context, as the simulator does.
    * Cycles per operator are ``max(compute, link)``, the simulator's rule.
    """
    tokens = op.outputs[0] if op.kind == "linear" else _attn_tokens(op, model)
    c, d_head, heads = op.inputs[0], model.hidden // model.heads, model.heads
    if op.kind == "linear":
        n, k = op.weight
        compute = _gemvs(spec, n, k, spec.terms, tokens)
        bits = tokens * (math.ceil(n * k * spec.weight_bits) + (k + n) * spec.act_bits)
    else:
        n, k = (c, d_head) if op.kind == "attn_qk" else (d_head, c)
        compute = _gemvs(spec, n, k, spec.kv_terms, tokens * heads)
        cache = c * model.kv_dim * spec.kv_bits
        bits = tokens * (cache + heads * (k + n) * spec.act_bits)
    nbytes = math.ceil(Fraction(bits, 8))
    return LayerCycles(op.name, op.kind, compute, math.ceil(Fraction(bits, spec.link_bits_per_cycle)), nbytes)


def _attn_tokens(op: Op, model: LlmShape) -> int:
    """Query tokens of an attention op in the simulator's shapes (1 in decode, c in prefill)."""
    return op.outputs[0] // model.heads if op.kind == "attn_qk" else op.outputs[0]


def engine_cycles(spec: EngineSpec, model: LlmShape = LLAMA2_7B, phase: str = "decode",
                  context: int = CONTEXT, kinds: tuple[str, ...] = ("linear", "attn_qk", "attn_v")) -> int:
    """Cycles of the simulator's workload (one ``phase``) on ``spec``; ``kinds`` filters operators."""
    return sum(engine_layer(spec, op, model).cycles for op in workload(model, phase, context)
               if op.kind in kinds)


#: A comparison engine until the RTL's own parameters are fixed: bitmod3 at full precision with
#: as many lanes as BitMoD's decode array has PEs (64 × 16) and BitMoD's 256 DRAM bits a cycle.
DEFAULT_ENGINE = EngineSpec.for_format_set("bitmod3", rows=64, lanes=16)


class TableRow(NamedTuple):
    """One row of :func:`bitmod_table`: cycles and FP16's cycles divided by them (speed-up)."""

    name: str
    cycles: int
    vs_fp16: float


def bitmod_table(phase: str = "decode", model: LlmShape = LLAMA2_7B,
                 engine: EngineSpec | None | bool = True) -> list[TableRow]:
    """Rows (name, cycles, FP16 cycles ÷ cycles) for ``bitmix bench hw``.

    ``phase`` is ``"decode"`` (one decode step at context 256: the architecture.md §4 anchors), ``"prefill"``
    or ``"generative"`` (prefill + 20 decode steps, the paper's Fig. 7). ``engine`` adds a row for
    an :class:`EngineSpec` (True: :data:`DEFAULT_ENGINE`; None/False: no engine row).
    """
    if phase == "generative":
        cycles = {n: generative_cycles(n, model) for n in bitmod_sim_designs("decode", model)}
    else:
        ops = workload(model, phase)
        cycles = {n: bitmod_sim_cycles(a, ops) for n, a in bitmod_sim_designs(phase, model).items()}
    if engine is True:
        engine = DEFAULT_ENGINE
    if engine:
        if phase == "generative":
            cycles[engine.name] = (engine_cycles(engine, model, "prefill")
                                   + DECODE_STEPS * engine_cycles(engine, model, "decode"))
        else:
            cycles[engine.name] = engine_cycles(engine, model, phase)
    fp16 = cycles["FP16"]
    return [TableRow(n, c, fp16 / c) for n, c in cycles.items()]


# ---- The bitmix GEMV engine's RTL, exactly (hw.gemv.GemvEngine; issue 7 part 8(a))

def gemv_rtl_cycles(layout, fmt_ids, fmt_set: int = 0, precision: int = 0, *, latency: int) -> dict:
    """Cycles of one GEMV on the RTL engine, exact when its streams never stall.

    ``layout`` is the engine's :class:`golden.gemv_layout.GemvLayout` (R, L, G, format sets),
    ``fmt_ids`` the layer's ``[N][K/G]`` format ids, ``precision`` the terms per weight it runs at
    (0 = full) and ``latency`` the RTL's pipeline constant (``hw.gemv_params.GemvParams.latency``).

    * descriptor: 1 cycle (the ``cmd`` beat is accepted in the idle cycle after the previous
      GEMV's last issued term);
    * activation load: K/L cycles;
    * compute: for every row block j and group g, ``G/L · T_jg`` cycles with
      ``T_jg = min(precision, max over the block's rows r of T(f_rg))``, ``T(f)`` the terms of
      format f (>= 1) and padding rows counted with the set's cheapest format (the packer's choice);
    * the next GEMV's descriptor follows immediately: ``period = 1 + K/L + compute``;
    * its last result leaves ``latency`` cycles after its last issued term:
      ``to_last_result = period - 1 + latency`` cycles after its descriptor.
    """
    rows = fmt_ids.tolist() if hasattr(fmt_ids, "tolist") else [list(r) for r in fmt_ids]
    fs = layout.format_sets[fmt_set]
    terms = [max(1, f.max_terms) for f in fs.formats]
    n, ng = len(rows), len(rows[0])
    k = ng * layout.group_size
    pad = terms[layout.pad_fmt(fmt_set)]
    bpg = layout.group_size // layout.lanes
    compute = 0
    for j in range(0, n, layout.rows):
        block = rows[j:j + layout.rows]
        for g in range(ng):
            t = max(terms[r[g]] for r in block)
            if len(block) < layout.rows:
                t = max(t, pad)
            if precision:
                t = min(t, precision)
            compute += bpg * t
    load = k // layout.lanes
    period = 1 + load + compute
    return {"descriptor": 1, "load": load, "compute": compute, "period": period,
            "to_last_result": period - 1 + latency,
            "ideal": gemv_ideal_cycles(layout, n, k, fmt_set, precision)}


def gemv_ideal_cycles(layout, n: int, k: int, fmt_set: int = 0, precision: int = 0) -> Fraction:
    """Ideal cycles ``N·K·T / (R·L)``, T the set's terms per weight at ``precision`` (issue 7
    item 9): the utilization of a run is this divided by its measured cycles."""
    fs = layout.format_sets[fmt_set]
    t = fs.max_terms if not precision else min(precision, fs.max_terms)
    return Fraction(n * k * t, layout.rows * layout.lanes)


# ---- the shift-add LUT path (hw.lut_unit)

def lut_rtl_cycles(layout, n: int, k: int, planes: int, *, latency: int) -> dict:
    """Cycles of one GEMV on the RTL LUT unit, exact when its streams never stall.

    ``layout`` is the unit's :class:`golden.bcq_layout.LutLayout` (R rows), ``planes`` the p
    planes read and ``latency`` the RTL's constant (``hw.lut_params.LutParams.latency``).

    * descriptor: 1 cycle; first table: 1 cycle (the first chunk's table is registered);
    * queries: one cycle per row block, 8-input chunk and plane, ``ceil(N/R) · K/8 · p`` — each
      next table is built in the cycle the previous chunk's last query issues, so table builds
      add no cycles;
    * ``period = 2 + queries`` to the next GEMV's descriptor; the last result leaves ``latency``
      cycles after the last query: ``to_last_result = period - 1 + latency``.
    """
    queries = layout.blocks(n) * (k // 8) * planes
    period = 2 + queries
    return {"descriptor": 1, "first_table": 1, "queries": queries, "period": period,
            "to_last_result": period - 1 + latency, "ideal": lut_ideal_cycles(layout, n, k, planes)}


def lut_ideal_cycles(layout, n: int, k: int, planes: int) -> Fraction:
    """Ideal cycles ``N · K/8 · p / R``: the queries the LUT datapath must issue at R per cycle
    (issue 8 item 7); the utilization of a run is this divided by its measured cycles."""
    return Fraction(n * (k // 8) * planes, layout.rows)


def gemv_lut_rtl_cycles(layout, n: int, k: int, planes: int, *, latency: int) -> dict:
    """Cycles of one path-1 (shift-add LUT) GEMV on the RTL GEMV engine, exact when its streams
    never stall and the previous GEMV ran on the same path (a path switch adds the drain wait).

    ``layout`` is the engine's :class:`golden.gemv_layout.GemvLayout`, ``planes`` the planes
    read (p) and ``latency`` ``hw.gemv_params.GemvParams.lut_latency``: descriptor 1 cycle,
    activation load K/L, compute ``ceil(N/R) · K/L · p`` (one plane of one activation word per
    cycle), ``period = 1 + K/L + compute``, ``to_last_result = period − 1 + latency``."""
    words = k // layout.lanes
    compute = layout.blocks(n) * words * planes
    period = 1 + words + compute
    return {"descriptor": 1, "load": words, "compute": compute, "period": period,
            "to_last_result": period - 1 + latency,
            "ideal": Fraction(n * k * planes, layout.rows * layout.lanes)}
