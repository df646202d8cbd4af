"""Progressive mixed-precision decoding (PMPD, ICLR 2025) on the integer path.

The model's quantized linears become :class:`QuantLinear` modules that compute exactly what the
hardware computes (``QuantizedWeight.forward_integer``: INT activations per token, integer row
sums, one float rescale) at a *precision*: 0 = every term of every weight, p > 0 = each weight's
first p signed power-of-two terms (golden.intref's ``nterms``, the device's precision register).

:func:`generate` is the greedy decode loop with a precision schedule: the prompt is prefilled at
the schedule's first precision and the precision can only step down between generated tokens
(:func:`static_schedule`: PMPD's static scheduler, "switch after n tokens"). The precision is
handed to a ``set_precision`` callable, so the same loop drives the host-only reference
(:func:`set_precision`) and a device (``sw_driver.accel``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from bitmix.errors import BitmixError
from golden.quant import QuantizedWeight, quantize_activations

__all__ = ["QuantLinear", "BCQLinear", "replace_linears", "set_precision", "static_schedule", "Decoded",
           "generate", "model_linears"]


class QuantLinear(nn.Module):
    """A linear layer on the integer path at a settable precision (see the module doc).

    Parameters
    ----------
    qw : QuantizedWeight
        The layer, as ``golden.quant`` / ``golden.gptq`` return it.
    name : str
        Its state_dict prefix (named in errors).
    act_bits : int
        Activation bits (per-token symmetric INT, ``golden.quant.quantize_activations``).

    Members
    -------
    qw, name, act_bits
    precision : int
        Terms per weight of the next forward; 0 = full.
    """

    def __init__(self, qw: QuantizedWeight, name: str, act_bits: int = 8):
        super().__init__()
        self._params = {"act_bits": act_bits}
        self.qw, self.name, self.act_bits = qw, name, act_bits
        self.precision = 0
        self._dense: dict[int, torch.Tensor | None] = {}

    def int_matmul(self, x_int: torch.Tensor) -> torch.Tensor:
        """Integer row results ``[T, N]`` (int64) of ``x_int[T, K]`` at :attr:`precision`.

        ``QuantizedWeight.int_matmul``'s exact result, computed as one float64 matrix product with
        the layer's integer weights ``u_g (v - z)`` (cached per precision): every partial sum is an
        integer below 2^53, so float64 is exact and 10-20x faster than the int64 group sums (the
        schedulers' training decodes thousands of tokens). A layer whose sums could reach 2^53
        takes the int64 path."""
        w = self._dense.get(self.precision, False)
        if w is False:
            w = self._dense[self.precision] = _dense_weight(self.qw, self.precision or None, self.act_bits)
        if w is None:
            return self.qw.int_matmul(x_int, nterms=self.precision or None)
        return (x_int.to(torch.float64) @ w.T).round().to(torch.int64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.qw.shape[1]
        x_int, sx = quantize_activations(x.reshape(-1, k), self.act_bits)
        acc = self.int_matmul(x_int)
        y = acc.to(torch.float64) * self.out_scale * sx.reshape(-1, 1)
        return y.reshape(*x.shape[:-1], -1).to(x.dtype)

    @property
    def out_scale(self):
        """What an integer row result is multiplied by (with the activations' scale): the rows'
        float scales."""
        return self.qw.row_scale


class BCQLinear(QuantLinear):
    """:class:`QuantLinear` for a ``golden.bcq.BCQWeight`` layer (ShiftAddLLM's binary planes with
    APoT scales: the shift-add LUT path). Its :attr:`precision` is the number of binary planes
    read, most significant first (0 = all q): PMPD's nested precision for this path.

    Integer results are in units of ``2^e0``, ``e0`` the smallest APoT exponent of all q planes
    (``BCQWeight.exp_offset()``), at every precision, so they do not depend on how the layer is
    cut (a device's tiles shift their own results to it) and :attr:`out_scale` is ``2^e0``.

    Members
    -------
    qw, name, act_bits, precision
    e0 : int
    """

    def __init__(self, qw, name: str, act_bits: int = 8):
        super().__init__(qw, name, act_bits)
        self.e0 = qw.exp_offset()

    def int_matmul(self, x_int: torch.Tensor) -> torch.Tensor:
        """Integer row results ``[T, N]`` (units of ``2^e0``) at :attr:`precision` planes: the
        float64 product with the cached integer weights when every sum is exact there (as
        :meth:`QuantLinear.int_matmul`), else ``BCQWeight.int_matmul`` shifted to ``e0``."""
        p = self.precision or None
        w = self._dense.get(self.precision, False)
        if w is False:
            A, e0 = self.qw.int_alpha(p)                 # [p, R, C] in units of 2^E0(p)
            rs, cs = self.qw.spans
            a = A.repeat_interleave(rs, 1).repeat_interleave(cs, 2)
            w = ((self.qw.planes[:a.shape[0]].to(torch.int64) * 2 - 1) * a).sum(0)
            w = w << (e0 - self.e0) if (w != 0).any() else w
            exact = int(w.abs().sum(1).max()) << (self.act_bits - 1) < 1 << 53
            w = self._dense[self.precision] = w.to(torch.float64) if exact else None
        if w is None:
            y, e0 = self.qw.int_matmul(x_int, p)
            return y << (e0 - self.e0) if (y != 0).any() else y
        return (x_int.to(torch.float64) @ w.T).round().to(torch.int64)

    @property
    def out_scale(self) -> float:
        return math.ldexp(1.0, self.e0)


def _dense_weight(qw: QuantizedWeight, nterms: int | None, act_bits: int) -> torch.Tensor | None:
    """``[N, K]`` float64 integer weights ``u_g (v - z)`` at ``nterms``, or None when a row sum
    with ``act_bits`` activations could leave float64's exact integers."""
    from golden.intref import weight_values

    vals = weight_values(qw.codes, qw.fmt_ids, qw.format_set, qw.group_size, nterms, qw.zero)
    w = vals * qw.u.to(torch.int64).repeat_interleave(qw.group_size, 1)
    if int(w.abs().sum(1).max()) << (act_bits - 1) >= 1 << 53:
        return None
    return w.to(torch.float64)


def model_linears(model) -> dict[str, nn.Module]:
    """Every projection by state_dict prefix in execution order, ``lm_head`` last."""
    from golden.model import linear_layers

    return {**linear_layers(model), "lm_head": model.lm_head}


def replace_linears(model, make: Callable[[str, nn.Module], nn.Module | None]) -> dict[str, nn.Module]:
    """Replace each projection (:func:`model_linears`) by ``make(name, linear)`` unless it returns
    None; the new modules by name."""
    out = {}
    for name, lin in model_linears(model).items():
        new = make(name, lin)
        if new is None:
            continue
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        setattr(parent, name.rsplit(".", 1)[-1], new)
        out[name] = new
    return out


def set_precision(model, precision: int) -> None:
    """Set every :class:`QuantLinear` of ``model`` to ``precision``."""
    for m in model.modules():
        if isinstance(m, QuantLinear):
            m.precision = precision


def static_schedule(n_high: int, high: int = 0, low: int = 1) -> Callable[[int], int]:
    """PMPD's static scheduler: precision ``high`` for the first ``n_high`` generated tokens, then
    ``low`` (precisions as above: 0 = full, so ``high=0`` is the top)."""
    if n_high < 0:
        raise BitmixError(f"static schedule: n_high must be >= 0, got {n_high}")
    return lambda step: high if step < n_high else low


@dataclass
class Decoded:
    """One decode: ``ids`` (prompt + generated), the precision each generated token's forward ran
    at, and each generated token's log-probability under the model that chose it."""

    ids: torch.Tensor
    prompt_len: int
    precisions: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)

    @property
    def new_ids(self) -> torch.Tensor:
        return self.ids[self.prompt_len:]

    def perplexity(self) -> float:
        """exp(mean NLL) of the generated tokens under the decoding model itself."""
        return math.exp(-sum(self.logprobs) / len(self.logprobs)) if self.logprobs else float("nan")


def _rank(p: int) -> float:
    return math.inf if p == 0 else p           # 0 = full, the highest precision


@torch.no_grad()
def generate(model, prompt_ids: torch.Tensor, max_new_tokens: int, schedule: Callable[[int], int],
             apply: Callable[[int], None], *, on_step: Callable[[int, int], None] | None = None,
             after_prefill: Callable[[object], None] | None = None, stop_ids=()) -> Decoded:
    """Greedy decoding with a KV cache and a precision schedule.

    ``schedule(i)`` is the precision of the forward that produces generated token ``i`` (the
    prefill produces token 0, so it runs at ``schedule(0)``); ``apply(p)`` sets it (on the model,
    or on a device); ``on_step(i, p)`` is called before each forward; ``after_prefill(cache)``
    once after the prefill, with the KV cache (a learned scheduler decides there). The precision may only step
    down (PMPD); a schedule that raises it is a :class:`BitmixError`. Decoding ends early after a
    token of ``stop_ids`` (a chat model's end of turn; it is kept in ``ids``).
    """
    ids = prompt_ids.reshape(-1).long()
    if ids.numel() == 0:
        raise BitmixError("generate: the prompt is empty")
    cache = model.new_cache()
    out = Decoded(ids, ids.numel())
    x = ids.view(1, -1)
    new = []
    for i in range(max_new_tokens):
        p = schedule(i)
        if out.precisions and _rank(p) > _rank(out.precisions[-1]):
            raise BitmixError(f"precision schedule raises the precision at token {i} "
                              f"({out.precisions[-1]} -> {p}); PMPD only steps down")
        if on_step:
            on_step(i, p)
        apply(p)
        logits = model(x, cache)[0, -1].to(torch.float64)
        if i == 0 and after_prefill:
            after_prefill(cache)
        nxt = int(logits.argmax())
        out.precisions.append(p)
        out.logprobs.append(float(torch.log_softmax(logits, -1)[nxt]))
        new.append(nxt)
        if nxt in stop_ids:
            break
        x = torch.tensor([[nxt]])
    out.ids = torch.cat([ids, torch.tensor(new, dtype=torch.long)])
    return out
