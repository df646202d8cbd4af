"""Generator parameters of the FPGA top (:class:`fpga.top.DeviceTop`), pure Python (no Amaranth).

The host driver imports this module to compute what the device's CAPABILITIES response must say
(``capabilities()``: protocol version, clock, parameter and format-table hashes, region sizes,
descriptor bytes) and how to lay out the memory regions (``region_beat_bytes``), so the gateware
and the driver read one definition. Everything is validated by :meth:`TopParams.make` before any
component exists; a bad value is a :class:`bitmix.errors.BitmixError` naming it.

Parameters
----------
The GEMV engine's (:meth:`hw.gemv_params.GemvParams.make`: rows, lanes, group_size, act_bits,
scale_bits, format_sets, max_k, max_n, and ``lut``, the shift-add LUT path: None = not generated,
descriptor ``path`` 1 is then BAD_FIELD), and:

weight_beats, act_beats, result_beats : depth of the three memory regions in beats of the
    engine's ``weights``, ``acts`` and ``results`` streams. Each beat is stored as
    ``ceil(bits / 8)`` little-endian bytes (``golden.gemv_layout``'s byte form), so a region's byte
    size is depth x beat bytes. Defaults: the activations and results of the largest layer
    (max K / L and ceil(max N / R) beats) and ``DEFAULT_WEIGHT_BEATS`` weight beats.
weight_mem : ``"bram"`` (block RAM: ECP5 DP16KD, iCE40 EBR) or ``"spram"`` (the iCE40UP5K's
    SB_SPRAM256KA, 16K x 16 bits each, at most ``SPRAM_COUNT`` side by side: a weight beat must
    fit 64 bits and the region 16K beats). Outside an iCE40 build the same top uses a behavioural
    model of the primitive, so Verilator simulates what the board runs. It also sets the
    engine's ``registered_control`` (:class:`hw.gemv_params.GemvParams`): on with block RAM
    (the ECP5 clocks), off with SPRAM (the iCE40UP5K's logic cells are full; 24 MHz has room).
clk_hz, baud : the system clock and the UART's baud rate (validated by :class:`hw.uart_params.UARTParams`).
link : ``"uart"`` (pins ``rx``/``tx``) or ``"bytes"`` (byte streams ``rx_byte``/``tx_byte`` straight
    into the frame decoder and out of the frame encoder: the virtual board's fast mode). The link
    mode is not part of :attr:`TopParams.hash`: both modes are the same device behind a
    different first stage.
leds : number of status LEDs (``leds`` port; see :mod:`fpga.top`).
board : the ``--board`` name the top is built for (``bitmix build --board`` and ``bitmix sim-board
    --board`` fill it in; "" for none); CAPABILITIES reports its ``golden.protocol.BoardId``, and it
    is part of :attr:`TopParams.hash`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bitmix.errors import BitmixError
from golden import protocol
from golden.digest import json_digest
from golden.formats import format_table_hash
from hw.gemv_params import GemvParams
from hw.params import check_int
from hw.uart_params import UARTParams

__all__ = ["TopParams", "LINK_MODES", "WEIGHT_MEMS", "SPRAM_DEPTH", "SPRAM_WIDTH", "SPRAM_COUNT",
           "DEFAULT_WEIGHT_BEATS", "MAX_REGION_BEATS", "MAX_LEDS"]

LINK_MODES = ("uart", "bytes")
WEIGHT_MEMS = ("bram", "spram")
#: SB_SPRAM256KA geometry and how many the iCE40UP5K has.
SPRAM_DEPTH, SPRAM_WIDTH, SPRAM_COUNT = 16384, 16, 4
DEFAULT_WEIGHT_BEATS = 2048
#: Largest region depth in beats (the byte size must also fit the protocol's 32-bit offsets):
#: 4 M, so that a 135 M-weight model fits the virtual board's weights region at 64 lanes
#: (``bitmix demo --model smollm2``: 2.1 M beats of 42 bytes).
MAX_REGION_BEATS = 1 << 22
MAX_LEDS = 8

_GEMV_KEYS = ("rows", "lanes", "group_size", "act_bits", "scale_bits", "format_sets", "max_k", "max_n",
              "lut")


#: Integer ranges of the top's own parameters (checked by hw.params.check_int, like the engine's).
TOP_LIMITS = {"weight_beats": (1, MAX_REGION_BEATS), "act_beats": (1, MAX_REGION_BEATS),
              "result_beats": (1, MAX_REGION_BEATS), "leds": (1, MAX_LEDS), "clk_hz": (1, (1 << 32) - 1)}


def _beats(name: str, value, default: int) -> int:
    return default if value is None else check_int(name, value, TOP_LIMITS)


@dataclass(frozen=True)
class TopParams:
    """Validated parameters of the FPGA top (see the module docstring)."""

    gemv: GemvParams
    weight_beats: int
    act_beats: int
    result_beats: int
    weight_mem: str
    clk_hz: int
    baud: int
    link: str
    leds: int
    board: str = ""

    @classmethod
    def make(cls, *, rows: int = 2, lanes: int = 4, group_size: int = 32, act_bits: int = 8,
             scale_bits: int = 8, format_sets=("bitmod4",), max_k: int = 256, max_n: int = 64,
             weight_beats: int | None = None, act_beats: int | None = None,
             result_beats: int | None = None, weight_mem: str = "bram",
             clk_hz: int = 12_000_000, baud: int = 3_000_000, link: str = "uart",
             leds: int = 4, lut=None, board: str | None = "") -> TopParams:
        gemv = GemvParams.make(rows=rows, lanes=lanes, group_size=group_size, act_bits=act_bits,
                               scale_bits=scale_bits, format_sets=format_sets, max_k=max_k,
                               max_n=max_n, lut=lut,
                               registered_control=weight_mem != "spram")
        check_int("clk_hz", clk_hz, TOP_LIMITS)
        UARTParams.make(clk_hz=clk_hz, baud=baud)
        if link not in LINK_MODES:
            raise BitmixError(f"link must be one of {', '.join(LINK_MODES)}, got {link!r}")
        if weight_mem not in WEIGHT_MEMS:
            raise BitmixError(f"weight_mem must be one of {', '.join(WEIGHT_MEMS)}, got {weight_mem!r}")
        check_int("leds", leds, TOP_LIMITS)
        board = protocol.BoardId.of(board).board_name
        p = cls(gemv, _beats("weight_beats", weight_beats, DEFAULT_WEIGHT_BEATS),
                _beats("act_beats", act_beats, gemv.buffer_depth),
                _beats("result_beats", result_beats, -(-gemv.max_n // gemv.rows)),
                weight_mem, clk_hz, baud, link, leds, board)
        if weight_mem == "spram":
            if p.spram_columns > SPRAM_COUNT:
                raise BitmixError(f"weight_mem = 'spram': a weight beat of {p.gemv.layout.weight_bits} "
                                  f"bits needs {p.spram_columns} SPRAMs side by side; the iCE40UP5K "
                                  f"has {SPRAM_COUNT} ({SPRAM_COUNT * SPRAM_WIDTH} bits)")
            if p.weight_beats > SPRAM_DEPTH:
                raise BitmixError(f"weight_beats = {p.weight_beats} exceeds the SPRAM depth "
                                  f"{SPRAM_DEPTH} with weight_mem = 'spram'")
        for r in protocol.Region:
            if p.region_bytes[r] >= 1 << 32:
                raise BitmixError(f"region {r.name} of {p.region_bytes[r]} bytes exceeds 32-bit offsets")
        return p

    @classmethod
    def from_dict(cls, d: dict) -> TopParams:
        """Inverse of :meth:`describe`; the format-set hashes must match golden's."""
        gemv = GemvParams.from_dict(d["gemv"])
        return cls.make(**{k: v for k, v in gemv.describe().items() if k in _GEMV_KEYS},
                        **{k: d[k] for k in ("weight_beats", "act_beats", "result_beats",
                                             "weight_mem", "clk_hz", "baud", "link", "leds")},
                        board=d.get("board", ""))

    def replace(self, **kw) -> TopParams:
        """A copy with some parameters changed (validated again)."""
        d = {**{k: v for k, v in self.gemv.describe().items() if k in _GEMV_KEYS},
             **{k: getattr(self, k) for k in ("weight_beats", "act_beats", "result_beats",
                                              "weight_mem", "clk_hz", "baud", "link", "leds",
                                              "board")}}
        return TopParams.make(**{**d, **kw})

    # ------------------------------------------------------------------ derived
    @property
    def divisor(self) -> int:
        """UART clock cycles per bit."""
        return UARTParams.make(clk_hz=self.clk_hz, baud=self.baud).divisor

    @cached_property
    def region_beat_bytes(self) -> dict[protocol.Region, int]:
        """Bytes per stored beat of each region (little-endian, ``golden.gemv_layout`` byte form)."""
        lay = self.gemv.layout
        return {protocol.Region.WEIGHTS: lay.beat_bytes,
                protocol.Region.ACTIVATIONS: -(-lay.acts.size // 8),
                protocol.Region.RESULTS: -(-lay.results(self.gemv.row_bits).size // 8)}

    @cached_property
    def region_beats(self) -> dict[protocol.Region, int]:
        return {protocol.Region.WEIGHTS: self.weight_beats,
                protocol.Region.ACTIVATIONS: self.act_beats,
                protocol.Region.RESULTS: self.result_beats}

    @cached_property
    def region_bytes(self) -> dict[protocol.Region, int]:
        return {r: self.region_beats[r] * self.region_beat_bytes[r] for r in protocol.Region}

    @property
    def max_precision(self) -> int:
        """Largest SET_PRECISION value: terms per weight (path 0) or planes (LUT path)."""
        g = self.gemv
        return max(g.max_terms, g.lut.max_planes if g.lut else 0)

    @property
    def desc_bytes(self) -> int:
        """Engine descriptor bytes of LOAD_LAYER (after its ``weight_base`` field): the engine's
        ``cmd`` word, little-endian, whole bytes."""
        return -(-self.gemv.layout.cmd.size // 8)

    @property
    def spram_columns(self) -> int:
        """SB_SPRAM256KA instances side by side for one weight beat (``weight_mem = 'spram'``)."""
        return -(-self.gemv.layout.weight_bits // SPRAM_WIDTH)

    def describe(self) -> dict:
        return {"gemv": self.gemv.describe(), "weight_beats": self.weight_beats,
                "act_beats": self.act_beats, "result_beats": self.result_beats,
                "weight_mem": self.weight_mem, "clk_hz": self.clk_hz, "baud": self.baud,
                "link": self.link, "leds": self.leds, "board": self.board,
                "protocol_version": protocol.PROTOCOL_VERSION}

    @property
    def hash(self) -> str:
        """What CAPABILITIES reports as ``params_hash`` (16 hex digits): every parameter except
        the link mode (see the module docstring)."""
        d = self.describe()
        d.pop("link")
        return json_digest(d, 16)

    @property
    def tag(self) -> str:
        g = self.gemv
        return (f"top_{self.link}_R{g.rows}_L{g.lanes}_G{g.group_size}_"
                f"{'+'.join(fs.name for fs in g.format_sets)}_K{g.max_k}_N{g.max_n}_"
                f"{self.weight_mem}_div{self.divisor}_{self.hash[:8]}")

    def capabilities(self) -> dict:
        """The CAPABILITIES response's fields (``golden.protocol.RESPONSES``) this device reports."""
        return {"version": protocol.PROTOCOL_VERSION, "max_payload": protocol.MAX_PAYLOAD,
                "clock_hz": self.clk_hz, "params_hash": int(self.hash, 16),
                "formats_hash": int(format_table_hash(), 16),
                "region_bytes": [self.region_bytes[r] for r in protocol.Region],
                "desc_bytes": self.desc_bytes, "board": int(protocol.BoardId.of(self.board))}

    def capabilities_bytes(self) -> bytes:
        """The ACK data of CAPABILITIES, byte for byte."""
        return protocol.pack_bytes(protocol.RESPONSES[protocol.Command.CAPABILITIES],
                                   **self.capabilities())
