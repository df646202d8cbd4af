"""The host driver's API: a bitmix device (a board, or the virtual board) behind a serial port.

    from sw_driver.device import Device
    with Device.open("/dev/ttyUSB1") as dev:          # or the pty `bitmix sim-board` printed
        dev.load_layer(codes, fmt_ids, u)              # golden quantizer output, packed here
        dev.load_packed(data, n=n, k=k, base=b)        # at weight beat b (resident layers: write=False)
        rows = dev.gemv(x_int, precision=0)            # == golden.intref.row_results(...)
        dev.load_bcq_layer(bw, precision=2)            # shift-add LUT path (a top with --lut-planes)
        rows = dev.gemv(x_int, precision=2)            # == golden.bcq's integer reference

:meth:`Device.open` reads CAPABILITIES first and refuses a device whose protocol version,
parameter hash, format-table hash, region sizes, descriptor size, payload limit or clock differ
from the local expectation (:class:`fpga.top_params.TopParams`, from the caller, the virtual
board's manifest, or the defaults), naming the field (:class:`CapabilityMismatch`). Every layout
comes from ``golden`` (``golden.protocol`` for the link, ``golden.gemv_layout`` for weights,
activations, descriptor and results) and every size from ``TopParams``, so the driver keeps no
table of its own. Every device failure is a :class:`sw_driver.protocol.DeviceError` naming the
command, the sequence number and the device's error code; a device that stops answering is one
after the transport's retries.

Opening with CAPABILITIES also keeps the retry rule safe across sessions: the device recognises
a retry by the previous request's sequence number and command, so a new session's first request
could be mistaken for the last session's; CAPABILITIES has no side effects, and after it the
sequence numbers have moved on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bitmix.errors import BitmixError
from golden.protocol import (
    MAX_PAYLOAD,
    PAYLOADS,
    PROTOCOL_VERSION,
    RESPONSES,
    Command,
    EngineState,
    Region,
    request_payload,
    unpack_bytes,
)
from sw_driver.protocol import DeviceError
from sw_driver.transport import FaultInjector, SerialTransport

__all__ = ["Device", "CapabilityMismatch", "load_expectation", "check_capabilities"]

#: Bytes of a WRITE_MEM chunk's data: the payload limit less the address fields.
WRITE_CHUNK = MAX_PAYLOAD - PAYLOADS[Command.WRITE_MEM].size // 8
#: Bytes of a READ_MEM / READ_RESULTS chunk: the answer carries the error byte too.
READ_CHUNK = MAX_PAYLOAD - 1


class CapabilityMismatch(BitmixError):
    """The device is not the one the host expects (another bitstream or protocol version).

    Members
    -------
    field : str
        The CAPABILITIES field that differs (``region_bytes[WEIGHTS]`` for a region).
    device, expected
        Its value on the device and the local expectation.
    """

    def __init__(self, field: str, device, expected, source: str):
        self.field, self.device, self.expected = field, device, expected
        super().__init__(f"device refused: CAPABILITIES field {field} is {_show(field, device)} on the "
                         f"device, {_show(field, expected)} expected ({source}); build and load the "
                         "bitstream for these parameters, or open with the matching parameters")


def _show(field: str, v) -> str:
    return f"{v:016x}" if field.endswith("_hash") and isinstance(v, int) else str(v)


def load_expectation(expect=None):
    """``TopParams`` from: a ``TopParams``; its ``describe()`` dict; a path to the top's manifest
    (``bitmix elaborate --design top`` / the virtual board's ``rtl/top.json``) or to a
    ``bitmix sim-board --device-file`` JSON; or None for the defaults."""
    from fpga.top_params import TopParams

    if expect is None:
        return TopParams.make()
    if isinstance(expect, TopParams):
        return expect
    if isinstance(expect, dict):
        return TopParams.from_dict(expect.get("parameters", expect))
    path = Path(expect)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BitmixError(f"cannot read the device expectation {path}: {e}") from None
    if "manifest" in doc and "parameters" not in doc:        # a sim-board device file
        return load_expectation(doc["manifest"])
    if "parameters" not in doc:
        raise BitmixError(f"{path}: no 'parameters' (not a top manifest)")
    return TopParams.from_dict(doc["parameters"])


def check_capabilities(caps: dict, params, source: str = "local TopParams") -> None:
    """Raise :class:`CapabilityMismatch` for the first field of ``caps`` (a decoded CAPABILITIES
    answer) that differs from ``params.capabilities()``; the protocol version is checked first
    (a device with another version may lay out the rest differently)."""
    want = params.capabilities()
    order = ["version", "params_hash", "formats_hash", "region_bytes", "desc_bytes", "max_payload",
             "clock_hz"]
    for name in order + [k for k in want if k not in order]:
        got, exp = caps.get(name), want[name]
        if name == "region_bytes":
            for r in Region:
                if got[r] != exp[r]:
                    raise CapabilityMismatch(f"region_bytes[{r.name}]", got[r], exp[r], source)
        elif got != exp:
            raise CapabilityMismatch(name, got, exp, source)


class Device:
    """An open device. Use :meth:`open`; a context manager that closes the port.

    Parameters
    ----------
    transport : SerialTransport
    params : fpga.top_params.TopParams
        What the device is (checked against its CAPABILITIES by :meth:`open`).
    progress : bool
        Show a tqdm bar while streaming large writes (weights).

    Members
    -------
    params : TopParams
    capabilities : dict
        The device's CAPABILITIES answer, decoded.
    transport : SerialTransport
        Its ``core.stats`` count requests, retries and damaged frames.
    layer : dict or None
        ``{"n", "k", "fmt_set", "base"}`` of the loaded layer (``{"n", "k", "path": 1, "planes",
        "precision"}`` on the LUT path).
    """

    def __init__(self, transport: SerialTransport, params, *, progress: bool = True):
        self._params = {"progress": progress}
        self.transport, self.params = transport, params
        self.capabilities: dict = {}
        self.layer: dict | None = None
        self._layout = params.gemv.layout
        self._row_bits = params.gemv.row_bits       # a computed property: once

    @classmethod
    def open(cls, port, *, expect=None, check: bool = True, baud: int | None = None, timeout: float = 1.0,
             retries: int = 3, window: int = 4, fault: FaultInjector | None = None,
             progress: bool = True) -> Device:
        """Open ``port`` (a path, pyserial URL or open port), read CAPABILITIES and check them
        against ``expect`` (see :func:`load_expectation`) unless ``check`` is False."""
        params = load_expectation(expect)
        source = "local TopParams" if expect is None or not isinstance(expect, str | Path) else str(expect)
        t = SerialTransport(port, baud=baud or params.baud, timeout=timeout, retries=retries,
                            window=window, fault=fault)
        dev = cls(t, params, progress=progress)
        try:
            dev.capabilities = dev.read_capabilities()
            if check:
                check_capabilities(dev.capabilities, params, source)
        except BaseException:
            t.close()
            raise
        return dev

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ commands
    def request(self, cmd: Command, data: bytes = b"", **fields) -> bytes:
        """One request (``golden.protocol.request_payload`` fields); its ACK data."""
        return self.transport.request(cmd, request_payload(cmd, data, **fields))

    def read_capabilities(self) -> dict:
        caps = self._decode(Command.CAPABILITIES, self.request(Command.CAPABILITIES))
        if caps["version"] != PROTOCOL_VERSION:       # the rest may be laid out differently
            raise CapabilityMismatch("version", caps["version"], PROTOCOL_VERSION, "this driver")
        return caps

    def status(self) -> dict:
        """STATUS, decoded; ``state`` as an :class:`EngineState`."""
        st = self._decode(Command.STATUS, self.request(Command.STATUS))
        if st["state"] in {int(s) for s in EngineState}:
            st["state"] = EngineState(st["state"])
        return st

    def write_mem(self, region: Region, offset: int, data: bytes, *, verify: bool = False,
                  progress: bool | None = None) -> None:
        """Write ``data`` at byte ``offset`` of ``region`` in chunks of at most ``WRITE_CHUNK``
        bytes, pipelined (disjoint chunks of one buffer: see sw_driver/protocol.py); with
        ``verify``, read it back and compare (a :class:`DeviceError` names the first differing
        byte)."""
        region, data = Region(region), bytes(data)
        chunks = [(Command.WRITE_MEM, request_payload(Command.WRITE_MEM, data[i:i + WRITE_CHUNK],
                                                      region=region, offset=offset + i))
                  for i in range(0, len(data), WRITE_CHUNK)]
        show = self._params["progress"] if progress is None else progress
        bar = None
        if show and len(chunks) > 8:
            from tqdm import tqdm
            bar = tqdm(total=len(data), unit="B", unit_scale=True, desc=f"write {region.name.lower()}",
                       leave=False)
        sizes = [len(p) - PAYLOADS[Command.WRITE_MEM].size // 8 for _, p in chunks]
        try:
            self.transport.pipeline(chunks, (lambda i: bar.update(sizes[i])) if bar else None)
        finally:
            if bar:
                bar.close()
        if verify:
            back = self.read_mem(region, offset, len(data))
            if back != data:
                i = next(j for j in range(len(data)) if back[j] != data[j])
                raise DeviceError(Command.READ_MEM, self.transport.core.last_seq, None,
                                  f": read-back of {region.name} differs at byte {offset + i} "
                                  f"(wrote 0x{data[i]:02x}, read 0x{back[i]:02x})")

    def read_mem(self, region: Region, offset: int, count: int) -> bytes:
        """``count`` bytes of ``region`` from ``offset``, in chunks of ``READ_CHUNK``."""
        out = bytearray()
        for i in range(0, count, READ_CHUNK):
            n = min(READ_CHUNK, count - i)
            out += self._exact(Command.READ_MEM, n, region=Region(region), offset=offset + i, count=n)
        return bytes(out)

    def read_results_bytes(self, offset: int, count: int) -> bytes:
        out = bytearray()
        for i in range(0, count, READ_CHUNK):
            n = min(READ_CHUNK, count - i)
            out += self._exact(Command.READ_RESULTS, n, offset=offset + i, count=n)
        return bytes(out)

    def set_precision(self, precision: int) -> None:
        """Terms (or bit-planes) per weight of the next runs; 0 = full (docs/architecture.md §2.6)."""
        self.request(Command.SET_PRECISION, precision=precision)

    def reset(self) -> None:
        """Reset the engine and its error flags (the link and the memories keep their state)."""
        self.request(Command.RESET)

    def abort(self) -> None:
        """Stop a running GEMV (its results are void)."""
        self.request(Command.ABORT)

    # ------------------------------------------------------------------ layers and GEMVs
    def load_layer(self, codes, fmt_ids, u, *, fmt_set=0, base: int = 0, verify: bool = False) -> dict:
        """Pack a quantized layer ``W[N, K]`` (codes, format ids and scales per group, as
        ``golden.quant`` returns them) with ``golden.gemv_layout``, stream it into the weights
        region (from weight beat ``base``) and load its descriptor. ``fmt_set``: a format-set index
        or name."""
        lay = self._layout
        si = lay.set_index(fmt_set) if not isinstance(fmt_set, int) else fmt_set
        if not 0 <= si < len(lay.format_sets):
            raise BitmixError(f"layer: format set index {si} is not compiled in "
                              f"({', '.join(fs.name for fs in lay.format_sets)})")
        n, k = (int(s) for s in codes.shape)
        data = lay.to_bytes(lay.weight_beats(codes, fmt_ids, u, lay.format_sets[si]))
        return self.load_packed(data, n=n, k=k, fmt_set=si, base=base, verify=verify)

    def load_packed(self, data: bytes, *, n: int, k: int, fmt_set: int = 0, base: int = 0,
                    write: bool = True, verify: bool = False, path: int = 0, planes: int = 0,
                    precision: int | None = None) -> dict:
        """:meth:`load_layer` for a layer already packed (``GemvLayout.to_bytes(weight_beats(...))``
        with format set index ``fmt_set``): callers that stream the same layer again pack it once.
        ``base``: the weight beat the layer starts at (``weight_base``); with ``write`` False the
        weights are already there (a resident layer: only the descriptor is sent). ``path`` 1:
        a shift-add LUT-path stream (``EngineLutLayout``) of a layer of ``planes`` planes, packed
        for ``precision`` planes (what :meth:`gemv` then checks)."""
        beats = self._fit(data, base, f"layer N={n} K={k}")
        if write:
            self.write_mem(Region.WEIGHTS, base * self.params.region_beat_bytes[Region.WEIGHTS], data,
                           verify=verify)
        self._load_descriptor(self._layout.cmd_word(k=k, n=n, fmt_set=fmt_set, path=path, planes=planes),
                              base)
        self.layer = {"n": n, "k": k, "fmt_set": fmt_set, "base": base}
        if path:
            self.layer.update(path=path, planes=planes, precision=precision)
        return {**self.layer, "weight_bytes": len(data), "beats": beats}

    def _fit(self, data: bytes, base: int, what: str) -> int:
        """Beats of ``data`` (whole beats); a BitmixError naming ``what`` unless they fit the
        weights region from beat ``base``."""
        nb, cap = self.params.region_beat_bytes[Region.WEIGHTS], self.params.weight_beats
        beats = -(-len(data) // nb)
        if base < 0 or base + beats > cap:
            raise BitmixError(f"{what}: {len(data)} weight bytes ({beats} beats) from beat {base} "
                              f"exceed the device's weights region of {cap} beats "
                              f"({cap * nb} bytes)")
        return beats

    def _load_descriptor(self, word: int, base: int) -> None:
        """LOAD_LAYER: the weight base, then the engine's ``cmd`` word (golden.protocol)."""
        self.request(Command.LOAD_LAYER, word.to_bytes(self.params.desc_bytes, "little"), weight_base=base)

    def load_bcq_layer(self, bw, *, precision: int = 0, verify: bool = False) -> dict:
        """The shift-add LUT path (descriptor ``path`` 1; a top generated with ``lut``): a
        ``golden.bcq.BCQWeight`` of q planes, packed by ``golden.bcq_layout.EngineLutLayout`` for
        ``precision`` p (0 = all q planes). The engine reads the p-plane stream, so each precision
        is a load of its own; :meth:`gemv` must then run at that precision."""
        g = self.params.gemv
        if g.lut is None:
            raise BitmixError("layer: this device has no shift-add LUT path (generate the top with "
                              "--lut-planes)")
        n, k = bw.shape
        data = g.lut_layout.weight_bytes(bw, precision or None)
        self._fit(data, 0, f"BCQ layer N={n} K={k} at precision {precision}")
        out = self.load_packed(data, n=n, k=k, verify=verify, path=1, planes=bw.bits, precision=precision)
        return {f: out[f] for f in ("n", "k", "path", "planes", "precision", "weight_bytes")}

    def write_activations(self, x_int) -> None:
        """Integer activations (``golden.quant.quantize_activations``) into their region."""
        nb = self.params.region_beat_bytes[Region.ACTIVATIONS]
        beats = self._layout.act_beats(x_int)
        self.write_mem(Region.ACTIVATIONS, 0, b"".join(b.to_bytes(nb, "little") for b in beats),
                       progress=False)

    def run(self, *, wait: bool = True, timeout: float = 30.0, poll: float = 0.002) -> dict:
        """RUN the loaded layer; with ``wait``, poll STATUS until it finishes (its STATUS).
        A run that ends in ERROR (or is aborted) is a :class:`DeviceError`; one that does not
        finish within ``timeout`` seconds is aborted and reported."""
        self.request(Command.RUN)
        if not wait:
            return {}
        return self.wait(timeout=timeout, poll=poll)

    def wait(self, *, timeout: float = 30.0, poll: float = 0.002) -> dict:
        end = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["state"] == EngineState.DONE:
                return st
            if st["state"] != EngineState.RUNNING:
                raise DeviceError(Command.RUN, self.transport.core.last_seq, None,
                                  f": the run ended in state {getattr(st['state'], 'name', st['state'])} "
                                  f"(engine flags 0b{st['flags']:b})")
            if time.monotonic() > end:
                self.abort()
                raise DeviceError(Command.RUN, self.transport.core.last_seq, None,
                                  f": still running after {timeout} s; aborted")
            time.sleep(poll)

    def read_results(self) -> list[int]:
        """Row results (signed integers, padding rows dropped) of the last finished run."""
        if self.layer is None:
            raise BitmixError("read_results: no layer loaded")
        lay, n = self._layout, self.layer["n"]
        nb = self.params.region_beat_bytes[Region.RESULTS]
        raw = self.read_results_bytes(0, lay.blocks(n) * nb)
        beats = [int.from_bytes(raw[i:i + nb], "little") for i in range(0, len(raw), nb)]
        return lay.unpack_results(beats, self._row_bits, n)

    def gemv(self, x_int, *, precision: int = 0, timeout: float = 30.0) -> list[int]:
        """One GEMV of the loaded layer: activations, precision, run, results."""
        if self.layer and self.layer.get("path") == 1 and precision != self.layer["precision"]:
            raise BitmixError(f"gemv: the LUT-path layer was streamed for precision "
                              f"{self.layer['precision']}, not {precision}: load_bcq_layer(bw, "
                              f"precision={precision}) first")
        self.write_activations(x_int)
        self.set_precision(precision)
        self.run(timeout=timeout)
        return self.read_results()

    # ------------------------------------------------------------------ internals
    def _decode(self, cmd: Command, data: bytes) -> dict:
        try:
            return unpack_bytes(RESPONSES[cmd], data)
        except BitmixError as e:
            raise DeviceError(cmd, self.transport.core.last_seq, None, f": malformed answer ({e})") from None

    def _exact(self, cmd: Command, n: int, **fields) -> bytes:
        data = self.request(cmd, **fields)
        if len(data) != n:
            raise DeviceError(cmd, self.transport.core.last_seq, None,
                              f": answered {len(data)} bytes, {n} requested")
        return data

