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

Shift-add layers. An ``AccelLinear`` made with a ``golden.bcq.BCQWeight`` (ShiftAddLLM's binary
planes with APoT scales) is an :class:`AccelBCQLinear` on the device's shift-add LUT path
(descriptor ``path`` 1, a top generated with ``lut``); the precision is then the number of planes
read. The LUT path reads the p-plane stream (``golden.bcq_layout.EngineLutLayout``), so each tile
is packed once per plane count it runs at and :meth:`Accelerator.place` places each precision's
streams (``precisions``); tiles hold whole scale groups and few enough rows that their q-plane
stream fits the weights region, and each tile's results, in units of its own 2^E0, are shifted to
the layer's (``golden.pmpd.BCQLinear``'s units).

With ``verify`` (default on), every device result is compared with ``golden.intref`` (BitMoD
layers) or ``golden.bcq_layout.expected`` (shift-add layers); a difference raises
:class:`DeviceMismatch` naming the layer, the token and the row.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from bitmix.errors import BitmixError
from golden import intref
from golden.bcq import BCQWeight
from golden.bcq_layout import COL_REFUSAL
from golden.bcq_layout import expected as bcq_expected
from golden.cycle_model import gemv_ideal_cycles, gemv_lut_rtl_cycles
from golden.pmpd import BCQLinear, QuantLinear
from golden.protocol import Region
from golden.quant import QuantizedWeight
from sw_driver.protocol import DeviceError

__all__ = ["Accelerator", "AccelLinear", "AccelBCQLinear", "AccelStats", "DeviceMismatch", "DecodeSteps",
           "accelerate", "tile_plan", "lut_tile_plan"]


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


def lut_tile_plan(params, bw: BCQWeight, name: str = "layer") -> list[tuple[slice, slice]]:
    """Tiles of a shift-add (BCQ) layer for a top's LUT path (``params``: its
    :class:`fpga.top_params.TopParams`): columns in multiples of the engine's L and G and of the
    layer's scale-group width, rows in whole scale groups, and few enough rows that the tile's
    q-plane stream fits the weights region (LOAD_LAYER checks its base against it)."""
    g = params.gemv
    rs, cs = bw.spans
    step = math.lcm(g.lanes, g.group_size, cs)
    kt = g.max_k // step * step
    words, q = (min(kt, bw.shape[1]) // g.lanes), bw.bits
    unit = math.lcm(g.rows, rs)
    nt = min(g.max_n, params.weight_beats // max(1, words * q) * g.rows) // unit * unit
    if kt == 0 or nt == 0 or bw.shape[1] % step:
        raise BitmixError(f"layer {name}: a {bw.shape[0]} x {bw.shape[1]} {bw.layout}-layout BCQ layer "
                          f"(scale groups of {rs} x {cs}, {q} planes) cannot be cut into tiles of whole "
                          f"groups of {step} inputs up to max K {g.max_k} and max N {g.max_n} whose "
                          f"{q}-plane stream fits the {params.weight_beats}-beat weights region")
    return tile_plan(*bw.shape, nt, kt, step)


@dataclass
class _Tile:
    """One GEMV's worth of a layer at one precision: where its results go, its packed stream
    (``key`` in the packed cache and the resident bases), LOAD_LAYER's descriptor, golden's
    results of ``x_int[T, cols]`` (``want``) and the left shift of its results into the layer's
    units (the LUT path's tiles each count in 2^E0 of their own)."""

    rows: slice
    cols: slice
    key: tuple
    data: bytes
    desc: dict
    want: object
    shift: int
    ideal: float


class Accelerator:
    """The device side shared by the :class:`AccelLinear` layers of a model.

    Parameters
    ----------
    device : sw_driver.device.Device
        Open, capabilities checked.
    verify : bool
        Compare every result with golden (:class:`DeviceMismatch`).

    Members
    -------
    device
    precision : int
        Terms per weight (BitMoD layers) or binary planes (shift-add layers) of the next GEMVs
        (the device's precision register; 0 = full).
    position : int
        Sequence position of the first token of the next forward (set by the decode loop; named
        in :class:`DeviceMismatch`).
    stats : AccelStats
    bases : dict or None
        ``{tile key: weight base}`` once :meth:`place` made the model resident (a BitMoD tile's
        key is ``(layer, tile index)``, a shift-add tile's ``(layer, tile index, planes)``);
        None while tiles are streamed.
    """

    def __init__(self, device, *, verify: bool = True):
        self._params = {"verify": verify}
        self.device = device
        self.precision = 0
        self.position = 0
        self.stats = AccelStats()
        self.bases: dict | None = None
        self._loaded = None          # key of the tile whose descriptor the device holds
        self._packed: dict = {}      # tile key -> packed weight bytes
        self._reg = None             # precision register as last set

    @property
    def verify(self) -> bool:
        return self._params["verify"]

    def reset_stats(self) -> AccelStats:
        old, self.stats = self.stats, AccelStats()
        return old

    def check_layer(self, name: str, qw) -> None:
        """Refuse a layer the device cannot compute, naming the layer and the field: a BitMoD
        ``QuantizedWeight`` on the bit-serial path, a ``BCQWeight`` on the shift-add LUT path."""
        g = self.device.params.gemv
        if isinstance(qw, BCQWeight):
            self._check_bcq(name, qw)
            return
        if not isinstance(qw, QuantizedWeight):
            raise BitmixError(f"layer {name}: {type(qw).__name__} is neither a grouped-format layer "
                              "(golden.quant, the bit-serial path) nor a BCQ layer (golden.bcq, the "
                              "shift-add LUT path)")
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

    def _check_bcq(self, name: str, bw: BCQWeight) -> None:
        g = self.device.params.gemv
        if g.lut is None:
            raise BitmixError(f"layer {name}: a shift-add (BCQ) layer, but this device has no shift-add "
                              "LUT path (a top generated with --lut-planes)")
        if bw.layout == "col":
            raise BitmixError(f"layer {name}: BCQ layout 'col': {COL_REFUSAL}")
        if bw.bits > g.lut.max_planes:
            raise BitmixError(f"layer {name}: {bw.bits} binary planes, the device's LUT path computes at "
                              f"most {g.lut.max_planes}")
        plan = lut_tile_plan(self.device.params, bw, name)
        for ti, (rows, cols) in enumerate(plan):
            g.lut_layout.check_weight(bw.tile(rows, cols), f"layer {name} tile {ti + 1}/{len(plan)}")

    def tiles(self, name: str, qw: QuantizedWeight) -> list[tuple[slice, slice, slice, bytes]]:
        """``(rows, cols, group cols, packed bytes)`` of each tile of a BitMoD layer, packed once by
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

    @staticmethod
    def planes_read(bw: BCQWeight, precision: int) -> int:
        """Planes a shift-add GEMV reads at ``precision`` (0 or more than q: all q), as the device
        caps the register."""
        return bw.bits if not precision or precision >= bw.bits else precision

    def _bcq_stream(self, name: str, ti: int, tile: BCQWeight, p: int) -> bytes:
        """The tile's p-plane stream (``EngineLutLayout``), packed once."""
        key = (name, ti, p)
        data = self._packed.get(key)
        if data is None:
            lay = self.device.params.gemv.lut_layout
            data = self._packed[key] = lay.weight_bytes(tile, p, f"layer {name}")
        return data

    def _plan(self, name: str, qw, prec: int) -> list[_Tile]:
        """Every tile of a layer at precision ``prec``, packed (cached), with golden's reference."""
        g = self.device.params.gemv
        out = []
        if isinstance(qw, BCQWeight):
            p = self.planes_read(qw, prec)
            e0 = qw.exp_offset()
            for ti, (rows, cols) in enumerate(lut_tile_plan(self.device.params, qw, name)):
                t = qw.tile(rows, cols)
                e0t = g.lut.layout.exp_base(t)
                n, k = t.shape
                ideal = gemv_lut_rtl_cycles(g.layout, n, k, p, latency=0)["ideal"]

                def want(x, t=t, p=p, e0t=e0t, n=n):
                    return torch.tensor(bcq_expected(t, x, p, e0t), dtype=torch.int64).expand(x.shape[0], n)

                out.append(_Tile(rows, cols, (name, ti, p), self._bcq_stream(name, ti, t, p),
                                 {"n": n, "k": k, "path": 1, "planes": qw.bits, "precision": p}, want,
                                 e0t - e0 if (t.signs != 0).any() else 0, float(ideal)))
            return out
        fs = qw.format_set
        si = g.layout.set_index(fs.name)
        for ti, (rows, cols, gcols, data) in enumerate(self.tiles(name, qw)):
            codes, ids, u = qw.codes[rows, cols], qw.fmt_ids[rows, gcols], qw.u[rows, gcols]

            def want(x, codes=codes, ids=ids, u=u):
                return intref.row_results(codes, ids, u, x, fs, g.group_size, prec or None)

            n, k = rows.stop - rows.start, cols.stop - cols.start
            out.append(_Tile(rows, cols, (name, ti), data, {"n": n, "k": k, "fmt_set": si}, want, 0,
                             float(gemv_ideal_cycles(g.layout, n, k, si, prec))))
        return out

    def pack(self, name: str, qw, precisions=(0,)) -> None:
        """Pack every tile of a layer (a shift-add layer's once per precision of ``precisions``)."""
        for p in precisions if isinstance(qw, BCQWeight) else (0,):
            self._plan(name, qw, p)

    def weight_bytes(self, layers: dict, precision: int) -> int:
        """Packed weight bytes one forward at ``precision`` reads from ``layers`` (``{name:
        quantized weight}``): every BitMoD tile, a shift-add layer's tiles at that plane count."""
        return sum(len(t.data) for name, qw in layers.items()
                   for t in self._plan(name, qw, precision if isinstance(qw, BCQWeight) else 0))

    def model_bytes(self) -> int:
        """Packed weight bytes of every tile packed so far (the whole model after :meth:`tiles` of
        each layer)."""
        return sum(len(b) for b in self._packed.values())

    def place(self, layers: dict, *, precisions=(0,), progress: bool = False) -> dict:
        """Pack every tile of ``layers`` (``{name: QuantizedWeight or BCQWeight}``); if they all fit
        the weights region, write each once at consecutive weight bases (resident: :attr:`bases`),
        else leave them to be streamed. A shift-add layer's stream depends on the planes read,
        so it is placed once per precision of ``precisions`` (those the decode will use; a GEMV
        at another precision is refused while resident). Returns ``{"resident", "model_bytes",
        "region_bytes", "link_bytes", "seconds"}`` (the link bytes and seconds of writing the
        model)."""
        dev = self.device
        nb, cap = dev.params.region_beat_bytes[Region.WEIGHTS], dev.params.weight_beats
        low, full = [], []               # LOAD_LAYER bounds a LUT tile's base by its q-plane stream:
        for name, qw in layers.items():  # its lower-precision streams go first, the full ones last
            if isinstance(qw, BCQWeight):
                ps = sorted({self.planes_read(qw, p) for p in precisions})
                q_beats = [len(t.data) // nb for t in self._plan(name, qw, 0)]
                for p in ps:
                    for t, qb in zip(self._plan(name, qw, p), q_beats, strict=True):
                        (full if p == qw.bits else low).append((t.key, t.data, qb))
            else:
                full += [((name, ti), t[3], len(t[3]) // nb) for ti, t in enumerate(self.tiles(name, qw))]
        order = low + full
        model = sum(len(d) for _, d, _ in order)
        bases, beat, fits = {}, 0, True
        for key, data, q_beats in order:
            bases[key] = beat
            fits &= beat + q_beats <= cap
            beat += len(data) // nb
        out = {"resident": model <= cap * nb and fits, "model_bytes": model, "region_bytes": cap * nb,
               "link_bytes": 0, "seconds": 0.0}
        if not out["resident"]:
            self.bases = None
            return out
        t0, l0 = time.time(), self._link()
        self._loaded = self.bases = None
        try:
            dev.write_mem(Region.WEIGHTS, 0, b"".join(d for _, d, _ in order), progress=progress)
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

    def matmul(self, name: str, qw, x_int: torch.Tensor) -> torch.Tensor:
        """Integer row results ``[T, N]`` of ``x_int[T, K]`` at :attr:`precision`, on the device
        (a shift-add layer's in units of 2^E0 of its q planes, as ``golden.pmpd.BCQLinear``)."""
        dev, st = self.device, self.stats
        link0, t_start = self._link(), time.perf_counter()
        n = qw.shape[0]
        prec = self.precision
        out = torch.zeros(x_int.shape[0], n, dtype=torch.int64)
        tiles = self._plan(name, qw, prec)
        doing = f"starting layer {name}"
        try:
            for ti, tile in enumerate(tiles):
                rows, cols = tile.rows, tile.cols
                base = None
                if self.bases is not None:
                    base = self.bases.get(tile.key)
                    if base is None:     # streaming it at base 0 would overwrite a resident tile
                        raise BitmixError(
                            f"layer {name} was not placed on the device" + (
                                f" for {tile.key[2]} planes (Accelerator.place's precisions)"
                                if len(tile.key) > 2 and any(k[0] == name for k in self.bases) else
                                " (Accelerator.place made the model resident without it)"))
                if self._loaded != tile.key:
                    self._loaded = None
                    doing = (f"{'selecting' if base is not None else 'loading'} layer {name} tile "
                             f"{ti + 1}/{len(tiles)} (token {self.position})")
                    l0 = self._link()
                    dev.load_packed(tile.data, base=base or 0, write=base is None, **tile.desc)
                    self._loaded = tile.key
                    if base is None:
                        st.loads += 1
                        st.weight_bytes += len(tile.data)
                        st.load_link_bytes += self._link() - l0
                    else:
                        st.selects += 1
                self._set_precision(prec)
                t0 = time.perf_counter()
                want = tile.want(x_int[:, cols]) if self.verify else None
                st.seconds_verify += time.perf_counter() - t0
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
                    st.ideal_cycles += tile.ideal
                    st.per_layer_cycles[name] = st.per_layer_cycles.get(name, 0) + run["cycles"]
                    if want is not None:
                        bad = (got != want[t]).nonzero()
                        if len(bad):
                            r = int(bad[0])
                            raise DeviceMismatch(name, self.position + t, rows.start + r, int(got[r]),
                                                 int(want[t, r]), prec)
                        st.checked_rows += len(got)
                    out[t, rows] += got << tile.shift
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
    accelerator's precision (the module's own ``precision`` is not used). Made with a
    ``golden.bcq.BCQWeight``, it is a :class:`golden.pmpd.BCQLinear` on the device's shift-add
    LUT path (``AccelLinear(bw, ...)`` returns an :class:`AccelBCQLinear`).

    Members
    -------
    accel : Accelerator
    """

    def __new__(cls, qw, name: str, accel: Accelerator):
        if cls is AccelLinear and isinstance(qw, BCQWeight):
            cls = AccelBCQLinear
        return super().__new__(cls)

    def __init__(self, qw, name: str, accel: Accelerator):
        accel.check_layer(name, qw)
        super().__init__(qw, name, act_bits=accel.device.params.gemv.act_bits)
        self.accel = accel

    def int_matmul(self, x_int: torch.Tensor) -> torch.Tensor:
        return self.accel.matmul(self.name, self.qw, x_int)


class AccelBCQLinear(AccelLinear, BCQLinear):
    """:class:`golden.pmpd.BCQLinear` (a shift-add layer; precision = planes read) whose integer
    GEMV runs on the device's LUT path, tile by tile (each tile's results shifted to the layer's
    2^E0)."""


def accelerate(model, layers: dict, acc: Accelerator, *, precisions=(0,), progress: bool = False) -> dict:
    """Put ``model``'s linears on ``acc``'s device: each linear named in ``layers`` (``{name:
    quantized weight}``, names as ``golden.pmpd.model_linears``) is replaced by an
    :class:`AccelLinear`, every tile is packed (a bar with ``progress``) and the model placed
    (:meth:`Accelerator.place`: resident when the weights region holds it, else streamed;
    shift-add layers' streams for each precision of ``precisions``, those the decode will use).

    Returns :meth:`Accelerator.place`'s summary plus ``layers`` (the names replaced, in execution
    order) and ``pack_seconds`` (replacing and packing). Any model works whose linears
    ``golden.pmpd.replace_linears`` finds: the reference model, or a real LM's."""
    from tqdm import tqdm

    from golden.pmpd import replace_linears

    t0 = time.time()
    mods = replace_linears(model, lambda name, lin: AccelLinear(layers[name], name, acc)
                           if name in layers else None)
    for name in tqdm(mods, desc="pack weights", unit="layer", disable=not progress, leave=False):
        acc.pack(name, layers[name], precisions)
    pack_seconds = time.time() - t0
    placed = acc.place({name: layers[name] for name in mods}, precisions=precisions, progress=progress)
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
