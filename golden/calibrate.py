"""Layer-by-layer quantization of a whole LLaMA model (GPTQ's llama driver, generalised).

The calibration batches go through the embeddings once; then, one decoder layer at a time:

1. for each true-sequential sub-group ``[q, k, v] → [o] → [gate, up] → [down]``, forward hooks
   accumulate ``H = 2XXᵀ`` for the group's linears while the layer is re-run on the calibration
   inputs — only up to the group's last linear (a hook stops the forward there), and with the
   earlier sub-groups already replaced by their dequantized weights, so later sublayers see
   quantized earlier ones;
2. each linear is quantized (:class:`Method`), its weight replaced by the dequantized one and its
   Hessian dropped;
3. the quantized layer's outputs become the next layer's inputs.

Only one layer's statistics are in memory at a time. Methods that need no statistics (RTN,
BCQ, MX without a bit budget) skip the calibration passes.

With a bit budget, a first pass over the *float* model collects each linear's Hessian, turns it
into per-width costs (:func:`golden.bitalloc.layer_costs`) and frees it; the exact allocation
then fixes every linear's width before the quantization pass.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import torch

from bitmix.errors import BitmixError
from golden import bitalloc
from golden.bcq import quantize_bcq
from golden.formats import FORMAT_SETS, get_format_set
from golden.gptq import BCQAdapter, MXAdapter, RTNAdapter, collect_hessians, gptq
from golden.quant import quantize_mx, quantize_rtn

__all__ = ["Method", "METHODS", "SEQUENTIAL", "quantize_model", "format_for_bits", "QuantReport",
           "group_size_for"]

METHODS = ("rtn", "gptq", "bcq", "shiftadd", "mx")
#: True-sequential order inside a decoder layer (GPTQ's --true-sequential, HF names).
SEQUENTIAL = (("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
              ("self_attn.o_proj",),
              ("mlp.gate_proj", "mlp.up_proj"),
              ("mlp.down_proj",))


def group_size_for(model, preferred: int = 128) -> int:
    """``preferred``, halved until it divides every decoder linear's input size (SmolLM2: 576 → 64)."""
    from golden.model import linear_layers

    ks = {lin.in_features for lin in linear_layers(model).values()}
    g = preferred
    while g > 1 and any(k % g for k in ks):
        g //= 2
    return g


def format_for_bits(fs_name: str, bits: int) -> str:
    """The same family at another width: bitmod4 → bitmod3, int4_asym → int2_asym, ant3 → ant4."""
    cand = re.sub(r"\d", str(bits), fs_name, count=1)
    if cand not in FORMAT_SETS or FORMAT_SETS[cand].bits != bits:
        raise BitmixError(f"format set {fs_name!r} has no {bits}-bit member (tried {cand!r})")
    return cand


@dataclass
class Method:
    """What to do with every linear layer."""

    method: str = "gptq"                 # rtn | gptq | bcq | shiftadd | mx
    format_set: str | None = "bitmod4"   # rtn / gptq; mx: an element format (fp4, fp3)
    bits: int | None = None              # bcq / shiftadd
    group_size: int = 128                # mx defaults to 32
    act_order: bool = False
    layout: str | None = None            # bcq: row (default); shiftadd: col (Acc, default) or block (Lat)
    rounds: int = 50                     # BCQ alternating rounds
    apot_terms: int = 3
    percdamp: float = 0.01

    def __post_init__(self):
        if self.method not in METHODS:
            raise BitmixError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        if self.method in ("bcq", "shiftadd"):
            if self.bits is None:
                raise BitmixError(f"method {self.method} needs --bits (2, 3 or 4)")
            self.format_set = None
            if self.layout is None:
                self.layout = "row" if self.method == "bcq" else "col"
        elif self.method == "mx":
            self.format_set = self.format_set or "fp4"
            if self.format_set not in ("fp3", "fp4"):
                raise BitmixError(f"method mx takes an element format fp3 or fp4, got {self.format_set!r}")
        else:
            if self.format_set is None:
                raise BitmixError(f"method {self.method} needs --format (e.g. bitmod4)")
            get_format_set(self.format_set)      # raises BitmixError naming the unknown set

    @property
    def needs_calibration(self) -> bool:
        return self.method in ("gptq", "shiftadd")

    @property
    def default_bits(self) -> int:
        if self.bits is not None:
            return self.bits
        return get_format_set(self.format_set).bits

    def available_bits(self) -> tuple[int, ...]:
        if self.method in ("bcq", "shiftadd"):
            return bitalloc.BITS
        if self.method == "mx":
            return (3, 4)
        out = []
        for b in bitalloc.BITS:
            try:
                format_for_bits(self.format_set, b)
                out.append(b)
            except BitmixError:
                pass
        return tuple(out)

    def describe(self, bits: int | None = None) -> str:
        b = bits or self.default_bits
        if self.method in ("bcq", "shiftadd"):
            return f"{self.method}{b}-{self.layout}"
        return f"{self.method}-{self._fs(b)}"

    def _fs(self, bits: int | None) -> str:
        if bits is None or bits == get_format_set(self.format_set).bits:
            return self.format_set
        return format_for_bits(self.format_set, bits)

    def quantize(self, W: torch.Tensor, H: torch.Tensor | None, bits: int | None = None,
                 name: str = "weight"):
        """Quantize one weight matrix; returns a QuantizedWeight or BCQWeight."""
        b = bits or self.default_bits
        m = self.method
        if m == "rtn":
            return quantize_rtn(W, self._fs(b), self.group_size, name=name)
        if m == "mx":
            fmt = f"fp{b}"
            if H is not None:
                return gptq(W, H, MXAdapter(fmt, self.group_size), percdamp=self.percdamp,
                            act_order=self.act_order, name=name)
            return quantize_mx(W, fmt, self.group_size, name=name)
        if m == "bcq":
            return quantize_bcq(W, b, self.group_size, self.layout, self.rounds, self.apot_terms, name=name)
        if H is None:
            raise BitmixError(f"{name}: method {m} needs calibration statistics")
        if m == "gptq":
            ad = RTNAdapter(self._fs(b), self.group_size)
        else:
            ad = BCQAdapter(b, self.group_size, self.layout, self.rounds, self.apot_terms)
        return gptq(W, H, ad, percdamp=self.percdamp, act_order=self.act_order, name=name)

    def quantize_rtn_at(self, W: torch.Tensor, bits: int) -> torch.Tensor:
        """Dequantized RTN-style output at ``bits`` (the residual that bit allocation scores)."""
        if self.method in ("bcq", "shiftadd"):
            return quantize_bcq(W, bits, self.group_size, "row", min(self.rounds, 10),
                                self.apot_terms).dequantize()
        if self.method == "mx":
            return quantize_mx(W, f"fp{bits}", self.group_size).dequantize()
        return quantize_rtn(W, self._fs(bits), self.group_size).dequantize()


@dataclass
class QuantReport:
    results: dict                       # name -> QuantizedWeight | BCQWeight
    bits: dict                          # name -> width
    seconds: float
    allocation: dict = field(default_factory=dict)   # costs / budget / heuristic, when a budget is used

    def effective_bits(self) -> float:
        """Parameter-weighted storage bits per weight over all quantized linears (all metadata)."""
        return bitalloc.weighted_bits(self.results)

    def nominal_bits(self) -> float:
        """Parameter-weighted mean of the per-layer widths (the bit budget's measure)."""
        return bitalloc.weighted_bits(self.results, self.bits)


def _embed(model, calib: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model.model.embed_tokens(calib[i:i + batch_size]) for i in range(0, len(calib), batch_size)]


def _collect(layer, names: tuple[str, ...], inputs: list[torch.Tensor], stop_after: str | None) -> dict:
    """Run ``layer`` on every input batch, accumulating Hessians of ``names``; stop after ``stop_after``."""
    return collect_hessians(dict(layer.named_modules()), names, inputs, layer, stop_after)


def _forward(layer, inputs):
    with torch.no_grad():
        return [layer(h) for h in inputs]


def _layers(model):
    return list(model.model.layers)


def quantize_model(model, method: Method, calib: torch.Tensor | None = None,
                   bit_budget: float | None = None, batch_size: int = 8, progress: bool = True,
                   budget_weights: str = "params", threads: int | None = 1,
                   allocator: str = "dp", alloc_cost: str = "criterion") -> QuantReport:
    """Quantize every decoder linear of ``model`` in place (weights ← dequantized); return the results.

    ``threads`` sets torch's thread count for the duration (restored after): the per-column loops
    are small-op bound and one thread is several times faster on a busy 2-core machine.
    ``allocator`` picks the per-layer widths under a bit budget: ``dp`` (exact, default) or
    ``80/20`` (the ShiftAddLLM release heuristic). ``alloc_cost`` is what the DP minimises:
    ``criterion`` (the paper's ``‖IS‖_F·std(IS)²`` on each width's residual) or ``output`` (each
    width's layer output error ``tr(ΔHΔᵀ)``).
    """
    if alloc_cost not in ("criterion", "output"):
        raise BitmixError(f"alloc_cost must be 'criterion' or 'output', got {alloc_cost!r}")
    if allocator not in ("dp", "80/20"):
        raise BitmixError(f"allocator must be 'dp' or '80/20', got {allocator!r}")
    prev = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _quantize_model(model, method, calib, bit_budget, batch_size, progress, budget_weights,
                               allocator, alloc_cost)
    finally:
        torch.set_num_threads(prev)


def _quantize_model(model, method, calib, bit_budget, batch_size, progress, budget_weights, allocator,
                    alloc_cost="criterion"):
    from tqdm import tqdm

    t0 = time.time()
    layers = _layers(model)
    needs_h = method.needs_calibration or bit_budget is not None
    if needs_h and (calib is None or len(calib) == 0):
        raise BitmixError(f"method {method.method}" + (" with a bit budget" if bit_budget else "")
                          + " needs calibration samples")
    bits: dict[str, int] = {}
    allocation: dict = {}
    if bit_budget is not None:
        bits, allocation = _allocate(model, method, calib, bit_budget, batch_size, progress,
                                     budget_weights, alloc_cost)
        if allocator == "80/20":
            bits = dict(allocation["heuristic_80_20"])
        allocation["used"] = allocator
    results: dict = {}
    hidden = _embed(model, calib, batch_size) if method.needs_calibration else None
    bar = tqdm(layers, desc=f"quantize {method.describe()}", unit="layer", disable=not progress)
    for li, layer in enumerate(bar):
        prefix = f"model.layers.{li}."
        mods = dict(layer.named_modules())
        for group in SEQUENTIAL:
            Hs = _collect(layer, group, hidden, group[-1]) if method.needs_calibration else {}
            for n in group:
                full = prefix + n
                bar.set_postfix_str(n.split(".")[-1])
                mod = mods[n]
                res = method.quantize(mod.weight.data, Hs.pop(n, None), bits.get(full), name=full)
                mod.weight.data = res.dequantize().to(mod.weight.dtype)
                results[full] = res
                bits.setdefault(full, method.default_bits)
            del Hs
        if method.needs_calibration and li + 1 < len(layers):
            hidden = _forward(layer, hidden)
    bar.close()
    return QuantReport(results, bits, time.time() - t0, allocation)


def _allocate(model, method: Method, calib, budget, batch_size, progress, budget_weights,
              alloc_cost="criterion"):
    """Float pass: per-linear costs at each width, then the exact allocation (and the 80/20 heuristic)."""
    from tqdm import tqdm

    widths = method.available_bits()
    if not widths or budget < min(widths) - 1e-12 or budget > max(widths) + 1e-12:
        raise BitmixError(f"bit budget {budget} outside the widths {list(widths)} available "
                          f"for {method.describe()}")
    names, costs, sizes, scores = [], [], [], []
    hidden = _embed(model, calib, batch_size)
    layers = _layers(model)
    all_names = tuple(n for g in SEQUENTIAL for n in g)
    for li, layer in enumerate(tqdm(layers, desc="bit allocation", unit="layer", disable=not progress)):
        Hs = _collect(layer, all_names, hidden, None)
        mods = dict(layer.named_modules())
        for n in all_names:
            W = mods[n].weight.data.to(torch.float64)
            H = Hs.pop(n)
            names.append(f"model.layers.{li}.{n}")
            costs.append(bitalloc.layer_costs(W, H, method.quantize_rtn_at, widths, method.percdamp)
                         if alloc_cost == "criterion" else
                         bitalloc.output_costs(W, H, method.quantize_rtn_at, widths))
            scores.append(bitalloc.criterion(bitalloc.saliency(W, H, method.percdamp)))
            sizes.append(W.numel())
        del Hs
        if li + 1 < len(layers):
            hidden = _forward(layer, hidden)
    if budget_weights not in ("params", "layers"):
        raise BitmixError(f"budget weights must be 'params' or 'layers', got {budget_weights!r}")
    choice = bitalloc.allocate(costs, budget, sizes if budget_weights == "params" else None)
    low = min(widths)
    high = sorted(widths)[1] if len(widths) > 1 else low
    frac = min(1.0, max(0.0, (budget - low) / max(high - low, 1)))      # 0.2 at a 2.2-bit budget
    heur = bitalloc.allocate_80_20(scores, low, high, frac,
                                   sizes if budget_weights == "params" else None)
    info = {"budget": budget, "budget_weights": budget_weights, "cost": alloc_cost, "widths": list(widths),
            "average_bits": bitalloc.average_bits(choice, sizes),
            "total_cost": sum(c[b] for c, b in zip(costs, choice)),
            "heuristic_80_20": dict(zip(names, heur)),
            "heuristic_average_bits": bitalloc.average_bits(heur, sizes),
            "heuristic_cost": sum(c[b] for c, b in zip(costs, heur)),
            "criterion": dict(zip(names, scores)),
            "costs": {n: {str(b): v for b, v in c.items()} for n, c in zip(names, costs)}}
    return dict(zip(names, choice)), info
