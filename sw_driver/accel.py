"""Accelerated layers: a golden model's quantized linears computed on a bitmix device.

    from golden.pmpd import replace_linears
    from sw_driver.accel import Accelerator, AccelLinear
    acc = Accelerator(dev)                         # an open sw_driver.device.Device
    replace_linears(model, lambda name, lin: AccelLinear(results[name], name, acc))
    acc.precision = 1                              # the device's precision register, between tokens

    # or in one call: replace, pack, place (resident when the model fits), then decode with the hook
    placed = accelerate(model, results, acc, progress=True)
    steps = DecodeSteps(acc, len(prompt))
    generate(model, prompt, n, schedule, lambda p: setattr(acc, "precision", p), on_step=steps)
    per_forward = steps.finish()                   # the prefill's counters, then each token's

:class:`AccelLinear` is :class:`golden.pmpd.QuantLinear` (activation quantization and the float
rescale on the host, exactly as golden defines them) whose integer GEMV runs on the device. A
layer larger than the device's engine (``max_n`` rows, ``max_k`` inputs) or its weights region is
cut into tiles of whole groups; the row results of a row block's K tiles are summed (exact: the
row result is a sum over groups).

Resident or streamed. :meth:`Accelerator.place` packs every tile of the model; when they all fit
the weights region it writes each once at its own weight base (one pass, a progress bar) and from
then on a GEMV sends only the tile's LOAD_LAYER descriptor (its ``weight_base``), activations, and
reads results: per token, no weight byte crosses the link. When they do not fit (the boards' tops
hold 14 KB) or :meth:`place` was not called, the region holds one tile at a time at base 0: a tile
already in the region is not sent again (a layer that is one tile costs only activations per
token), any other tile is streamed for each use. A forward over T tokens (the prefill) runs every
token through a tile before loading the next, so a prefill streams the weights once.

With ``verify`` (default on), every device result is compared with ``golden.intref``; a difference
raises :class:`DeviceMismatch` naming the layer, the token and the row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from bitmix.errors import BitmixError
from golden import intref
from golden.cycle_model import gemv_ideal_cycles
from golden.pmpd import QuantLinear
from golden.protocol import Region
from golden.quant import QuantizedWeight
from sw_driver.protocol import DeviceError

__all__ = ["Accelerator", "AccelLinear", "AccelStats", "DeviceMismatch", "DecodeSteps", "accelerate",
           "tile_plan"]


class DeviceMismatch(BitmixError):
    """A device result differs from golden.intref.

    Members
    -------
    layer : str
    token : int
        Position of the token in the sequence (0 = the prompt's first).
    row : int
        Output row of the layer.
    got, want : int
        The device's and golden's row result.
    """

    def __init__(self, layer: str, token: int, row: int, got: int, want: int, precision: int):
        self.layer, self.token, self.row, self.got, self.want = layer, token, row, got, want
        super().__init__(f"device result differs from golden.intref: layer {layer}, token {token}, "
                         f"row {row}, precision {precision}: device {got}, golden {want}")


@dataclass
class AccelStats:
    """Counters of an :class:`Accelerator` (all since it was made, or :meth:`Accelerator.reset_stats`).

    Members
    -------
    gemvs, loads, selects : int
        Device GEMVs run, weight tiles sent, resident tiles selected (LOAD_LAYER alone).
    cycles : int
        Engine cycles of the GEMVs (STATUS ``cycles`` of each run).
    weight_bytes : int
        Packed weight bytes sent (payload).
    load_link_bytes, link_bytes : int
        Bytes on the link (both directions, framing and retries included) while loading tiles, and
        in all.
    checked_rows : int
        Row results compared with golden.intref.
    ideal_cycles : float
        The GEMVs' useful lane-term cycles (``golden.cycle_model.gemv_ideal_cycles``: N·K·T/(R·L));
        divided by ``cycles``, the engine's utilization.
    seconds_device, seconds_run, seconds_verify : float
        Wall time inside :meth:`Accelerator.matmul`; of it, from each RUN to its DONE (the
        simulated engine computing, polled over the link), and checking results against golden.
    """

    gemvs: int = 0
    loads: int = 0
    selects: int = 0
    cycles: int = 0
    weight_bytes: int = 0
    load_link_bytes: int = 0
    link_bytes: int = 0
    checked_rows: int = 0
    ideal_cycles: float = 0.0
    seconds_device: float = 0.0
    seconds_run: float = 0.0
    seconds_verify: float = 0.0
    per_layer_cycles: dict = field(default_factory=dict)


def tile_plan(n: int, k: int, max_n: int, max_k: int, group_size: int) -> list[tuple[slice, slice]]:
    """Tiles ``(rows, cols)`` covering ``W[n, k]``: row blocks of ``max_n``, column blocks of the
    largest multiple of ``group_size`` up to ``max_k``."""
    kt = max_k // group_size * group_size
    if kt == 0 or k % group_size:
        raise BitmixError(f"layer K={k} cannot be tiled into groups of {group_size} up to max K {max_k}")
    return [(slice(r, min(r + max_n, n)), slice(c, min(c + kt, k)))
            for r in range(0, n, max_n) for c in range(0, k, kt)]


class Accelerator:
    """The device side shared by the :class:`AccelLinear` layers of a model.

    Parameters
    ----------
    device : sw_driver.device.Device
        Open, capabilities checked.
    verify : bool
        Compare every result with golden.intref (:class:`DeviceMismatch`).

    Members
    -------
    device
    precision : int
        Terms per weight of the next GEMVs (the device's precision register; 0 = full).
    position : int
        Sequence position of the first token of the next forward (set by the decode loop; named
        in :class:`DeviceMismatch`).
    stats : AccelStats
    bases : dict or None
        ``{(layer, tile index): weight base}`` once :meth:`place` made the model resident; None
        while tiles are streamed.
    """

    def __init__(self, device, *, verify: bool = True):
        self._params = {"verify": verify}
        self.device = device
        self.precision = 0
        self.position = 0
        self.stats = AccelStats()
        self.bases: dict | None = None
        self._loaded = None          # (layer, tile index) whose descriptor the device holds
        self._packed: dict = {}      # (layer, tile index) -> packed weight bytes
        self._reg = None             # precision register as last set

    @property
    def verify(self) -> bool:
        return self._params["verify"]

    def reset_stats(self) -> AccelStats:
        old, self.stats = self.stats, AccelStats()
        return old

    def check_layer(self, name: str, qw: QuantizedWeight) -> None:
        """Refuse a layer the device cannot compute, naming the layer and the field."""
        g = self.device.params.gemv
        if not isinstance(qw, QuantizedWeight):
            raise BitmixError(f"layer {name}: {type(qw).__name__} is not a grouped-format layer "
                              "(the BitMoD path); the shift-add LUT path is not wired here")
        names = [fs.name for fs in g.format_sets]
        if qw.format_set.name not in names:
            raise BitmixError(f"layer {name}: format set {qw.format_set.name} is not compiled into the "
                              f"device ({', '.join(names)})")
        if qw.group_size != g.group_size:
            raise BitmixError(f"layer {name}: group size {qw.group_size}, the device's is {g.group_size}")
        if qw.zero is not None or qw.scale_kind != "int":
            raise BitmixError(f"layer {name}: zero points / power-of-two scales are not on the device")
        if int(qw.u.max()) >= 1 << g.scale_bits:
            raise BitmixError(f"layer {name}: group scale u up to {int(qw.u.max())} does not fit the "
                              f"device's {g.scale_bits} scale bits")

    def tiles(self, name: str, qw: QuantizedWeight) -> list[tuple[slice, slice, slice, bytes]]:
        """``(rows, cols, group cols, packed bytes)`` of each tile of a layer, packed once by
        ``golden.gemv_layout`` (the stream does not depend on the precision)."""
        g = self.device.params.gemv
        lay = g.layout
        fs = lay.format_sets[lay.set_index(qw.format_set.name)]
        out = []
        for ti, (rows, cols) in enumerate(tile_plan(*qw.shape, g.max_n, g.max_k, g.group_size)):
            gcols = slice(cols.start // g.group_size, cols.stop // g.group_size)
            data = self._packed.get((name, ti))
            if data is None:
                data = lay.weight_bytes(qw.codes[rows, cols], qw.fmt_ids[rows, gcols], qw.u[rows, gcols], fs,
                                        f"layer {name}")
                self._packed[(name, ti)] = data
            out.append((rows, cols, gcols, data))
        return out

    def model_bytes(self) -> int:
        """Packed weight bytes of every tile packed so far (the whole model after :meth:`tiles` of
        each layer)."""
        return sum(len(b) for b in self._packed.values())

    def place(self, layers: dict, *, progress: bool = False) -> dict:
        """Pack every tile of ``layers`` (``{name: QuantizedWeight}``); if they all fit the
        weights region, write each once at consecutive weight bases (resident: :attr:`bases`),
        else leave them to be streamed. Returns ``{"resident", "model_bytes", "region_bytes",
        "link_bytes", "seconds"}`` (the link bytes and seconds of writing the model)."""
        dev = self.device
        nb, cap = dev.params.region_beat_bytes[Region.WEIGHTS], dev.params.weight_beats
        order = [(name, ti, t[3]) for name, qw in layers.items()
                 for ti, t in enumerate(self.tiles(name, qw))]
        model = sum(len(d) for *_, d in order)
        out = {"resident": model <= cap * nb, "model_bytes": model, "region_bytes": cap * nb,
               "link_bytes": 0, "seconds": 0.0}
        if not out["resident"]:
            self.bases = None
            return out
        bases, beat = {}, 0
        for name, ti, data in order:
            bases[(name, ti)] = beat
            beat += len(data) // nb
        t0, l0 = time.time(), self._link()
        self._loaded = self.bases = None
        try:
            dev.write_mem(Region.WEIGHTS, 0, b"".join(d for *_, d in order), progress=progress)
        except DeviceError as e:
            e.args = (f"{e} while writing the model's weights ({model} bytes)",)
            e.doing = "writing the model's weights"
            raise
        self.bases = bases
        out.update(link_bytes=self._link() - l0, seconds=time.time() - t0)
        self.stats.weight_bytes += model
        return out

    def _set_precision(self, p: int) -> None:
        if p != self._reg:
            self.device.set_precision(p)
            self._reg = p

    def _link(self) -> int:
        t = self.device.transport
        return t.tx_bytes + t.rx_bytes

    def matmul(self, name: str, qw: QuantizedWeight, x_int: torch.Tensor) -> torch.Tensor:
        """Integer row results ``[T, N]`` of ``x_int[T, K]`` at :attr:`precision`, on the device."""
        dev, g, st = self.device, self.device.params.gemv, self.stats
        link0, t_start = self._link(), time.perf_counter()
        n, k = qw.shape
        prec = self.precision
        fs = qw.format_set
        out = torch.zeros(x_int.shape[0], n, dtype=torch.int64)
        si = g.layout.set_index(fs.name)
        tiles = self.tiles(name, qw)
        doing = f"starting layer {name}"
        try:
            for ti, (rows, cols, gcols, data) in enumerate(tiles):
                codes, ids, u = qw.codes[rows, cols], qw.fmt_ids[rows, gcols], qw.u[rows, gcols]
                base = None
                if self.bases is not None:
                    base = self.bases.get((name, ti))
                    if base is None:     # streaming it at base 0 would overwrite a resident tile
                        raise BitmixError(f"layer {name} was not placed on the device (Accelerator.place "
                                          "made the model resident without it)")
                if self._loaded != (name, ti):
                    self._loaded = None
                    doing = (f"{'selecting' if base is not None else 'loading'} layer {name} tile "
                             f"{ti + 1}/{len(tiles)} (token {self.position})")
                    l0 = self._link()
                    dev.load_packed(data, n=rows.stop - rows.start, k=cols.stop - cols.start, fmt_set=si,
                                    base=base or 0, write=base is None)
                    self._loaded = (name, ti)
                    if base is None:
                        st.loads += 1
                        st.weight_bytes += len(data)
                        st.load_link_bytes += self._link() - l0
                    else:
                        st.selects += 1
                self._set_precision(prec)
                t0 = time.perf_counter()
                want = (intref.row_results(codes, ids, u, x_int[:, cols], fs, g.group_size, prec or None)
                        if self.verify else None)
                st.seconds_verify += time.perf_counter() - t0
                ideal = float(gemv_ideal_cycles(g.layout, rows.stop - rows.start, cols.stop - cols.start,
                                                si, prec))
                for t in range(x_int.shape[0]):
                    doing = (f"running layer {name} tile {ti + 1}/{len(tiles)} for token "
                             f"{self.position + t}")
                    dev.write_activations(x_int[t, cols])
                    t0 = time.perf_counter()
                    run = dev.run()
                    st.seconds_run += time.perf_counter() - t0
                    got = torch.tensor(dev.read_results(), dtype=torch.int64)
                    st.gemvs += 1
                    st.cycles += run["cycles"]
                    st.ideal_cycles += ideal
                    st.per_layer_cycles[name] = st.per_layer_cycles.get(name, 0) + run["cycles"]
                    if want is not None:
                        bad = (got != want[t]).nonzero()
                        if len(bad):
                            r = int(bad[0])
                            raise DeviceMismatch(name, self.position + t, rows.start + r, int(got[r]),
                                                 int(want[t, r]), prec)
                        st.checked_rows += len(got)
                    out[t, rows] += got
        except DeviceError as e:
            e.args = (f"{e} while {doing}",)       # the same error, saying what the run was doing
            e.doing = doing
            self._loaded = self._reg = None          # the device's state is unknown now
            raise
        st.link_bytes += self._link() - link0
        st.seconds_device += time.perf_counter() - t_start
        return out


class AccelLinear(QuantLinear):
    """:class:`golden.pmpd.QuantLinear` whose integer GEMV runs on ``accel``'s device at the
    accelerator's precision (the module's own ``precision`` is not used).

    Members
    -------
    accel : Accelerator
    """

    def __init__(self, qw: QuantizedWeight, name: str, accel: Accelerator):
        accel.check_layer(name, qw)
        super().__init__(qw, name, act_bits=accel.device.params.gemv.act_bits)
        self.accel = accel

    def int_matmul(self, x_int: torch.Tensor) -> torch.Tensor:
        return self.accel.matmul(self.name, self.qw, x_int)


def accelerate(model, layers: dict, acc: Accelerator, *, progress: bool = False) -> dict:
    """Put ``model``'s linears on ``acc``'s device: each linear named in ``layers`` (``{name:
    quantized weight}``, names as ``golden.pmpd.model_linears``) is replaced by an
    :class:`AccelLinear`, every tile is packed (a bar with ``progress``) and the model placed
    (:meth:`Accelerator.place`: resident when the weights region holds it, else streamed).

    Returns :meth:`Accelerator.place`'s summary plus ``layers`` (the names replaced, in execution
    order) and ``pack_seconds`` (replacing and packing). Any model works whose linears
    ``golden.pmpd.replace_linears`` finds: the reference model, or a real LM's."""
    from tqdm import tqdm

    from golden.pmpd import replace_linears

    t0 = time.time()
    mods = replace_linears(model, lambda name, lin: AccelLinear(layers[name], name, acc)
                           if name in layers else None)
    for name in tqdm(mods, desc="pack weights", unit="layer", disable=not progress, leave=False):
        acc.tiles(name, layers[name])
    pack_seconds = time.time() - t0
    placed = acc.place({name: layers[name] for name in mods}, progress=progress)
    return {**placed, "layers": list(mods), "pack_seconds": pack_seconds}


class DecodeSteps:
    """The ``on_step`` hook of ``golden.pmpd.generate`` for a model on an :class:`Accelerator`:
    before each forward it closes the previous one (its :class:`AccelStats` and wall time) and
    points the accelerator at the next forward's sequence position and precision. The counters
    start at zero when the hook is made.

    Parameters
    ----------
    acc : Accelerator
    prompt_len : int
        Tokens of the prompt (the prefill is forward 0; forward i > 0 is at position
        ``prompt_len + i - 1``).
    on_token : callable, optional
        Called after each decode forward is closed (a progress bar's update).

    Members
    -------
    steps : list of dict
        One per finished forward, the prefill first: the :class:`AccelStats` fields and
        ``seconds`` (wall time from the hook's call before the forward to the next).
    """

    def __init__(self, acc: Accelerator, prompt_len: int, on_token=None):
        self._params = {"prompt_len": prompt_len}
        self.acc, self.on_token = acc, on_token
        self.steps: list[dict] = []
        self._t = time.perf_counter()
        acc.reset_stats()

    def _close(self) -> None:
        self.steps.append({**vars(self.acc.reset_stats()), "seconds": time.perf_counter() - self._t})

    def __call__(self, i: int, p: int) -> None:
        if i:
            self._close()
            if self.on_token:
                self.on_token()
        self._t = time.perf_counter()
        self.acc.position = self._params["prompt_len"] + i - 1 if i else 0
        self.acc.precision = p

    def finish(self) -> list[dict]:
        """Close the last forward; :attr:`steps`."""
        self._close()
        if self.on_token:
            self.on_token()
        return self.steps
