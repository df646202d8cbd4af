"""The designs ``bitmix elaborate``, the simulation runner and the synthesis bench know by name.

A :class:`Design` ties a parameter class to its component: CLI options, how to build validated
parameters from them, how to build the component, and what the design adds to its manifest.
Adding a design is one entry in :data:`DESIGNS`; the flows (``bitmix.elaborate``,
``verif.runner``, ``fpga.synth``) take any component and need no edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bitmix.errors import BitmixError

__all__ = ["Option", "Design", "DESIGNS", "get_design", "DOT_UNIT_CYCLE_MODEL", "GEMV_CYCLE_MODEL",
           "LUT_CYCLE_MODEL"]


@dataclass(frozen=True)
class Option:
    """One ``bitmix elaborate`` flag: ``--<flag>`` stored in ``dest``; ``kind`` is ``int`` or
    ``str``; ``default`` is the value the design uses when the flag is absent."""

    flag: str
    dest: str
    default: object
    help: str
    kind: type = int


@dataclass(frozen=True)
class Design:
    name: str                                   #: CLI name and default Verilog top name
    summary: str
    options: tuple[Option, ...]
    make_params: Callable[[dict], object]       #: option values -> validated parameters
    build: Callable[[object], object]           #: parameters -> wiring.Component
    info: Callable[[object], dict]              #: parameters -> manifest sections
    describe: Callable[[object], str]           #: parameters -> the lines `elaborate` prints
    #: parameters -> {"label", "lanes", "terms_per_weight"} for the synthesis bench (optional)
    synth_figures: Callable[[object], dict] | None = None
    #: parameters -> the parameter set the synthesis bench compares it with (optional)
    synth_baseline: Callable[[object], object] | None = None


def parse_int(name: str, text) -> int:
    """An integer option value (decimal or 0x..), or a BitmixError naming the option."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    try:
        return int(str(text), 0)
    except ValueError:
        raise BitmixError(f"{name} must be an integer, got {text!r}") from None


# ---------------------------------------------------------------------------- dot unit

DOT_UNIT_CYCLE_MODEL = (
    "A group with format f costs T * G/L cycles, T = terms(f) limited by precision (0 = full). "
    "Beats, groups and rows follow each other with no bubble when the streams flow, and the "
    "dequantizer overlaps the next group, so back-to-back results are sum_g T_g*G/L cycles apart. "
    "The result of a row is valid latency_constant (= 2 PE pipeline registers + dq_steps) cycles "
    "after its last compute cycle, i.e. sum_g T_g*G/L + latency_constant cycles after its first "
    "beat is presented.")


def _dot_params(v: dict):
    from hw.params import DotParams

    return DotParams.for_row_length(
        k=parse_int("k", v["k"]), group_size=parse_int("group_size", v["group_size"]),
        lanes=parse_int("lanes", v["lanes"]), act_bits=parse_int("act_bits", v["act_bits"]),
        scale_bits=parse_int("scale_bits", v["scale_bits"]), format_set=v["format_set"])


def _dot_build(p):
    from hw.dot_unit import DotProductUnit

    return DotProductUnit(p)


def dot_unit_info(p) -> dict:
    from golden import pack

    return {
        "parameters": p.describe(),
        "format_set": {"name": p.fs.name, "hash": p.fs.hash,
                       "formats": [f.name for f in p.fs.formats], "terms": p.format_terms()},
        "derived": p.derived(),
        "packer": {"weights": pack.weight_beat_layout(p.lanes, p.fs, p.act_bits).rows(),
                   "groups": pack.group_layout(p.fs, p.scale_bits).rows()},
        "cycle_model": {"description": DOT_UNIT_CYCLE_MODEL,
                        "cycles_per_group": {f.name: t * p.beats_per_group for f, t in
                                             zip(p.fs.formats, p.format_terms())},
                        "latency_constant": p.latency_constant},
    }


def _dot_describe(p) -> str:
    d = p.derived()
    return (f"  format set {p.fs.name} (hash {p.fs.hash}), L={p.lanes} G={p.group_size} "
            f"A={p.act_bits} S={p.scale_bits} max_groups={p.max_groups}\n"
            f"  psum {d['psum_bits']} bits, row {d['row_bits']} bits, dequant "
            f"{d['dq_bits_per_cycle']} bit(s)/cycle x {d['dq_steps']} cycles, latency constant "
            f"{d['latency_constant']}")


def _dot_synth_figures(p) -> dict:
    terms = p.format_terms()
    return {"label": f"L{p.lanes} G{p.group_size} {p.fs.name}", "lanes": p.lanes,
            "terms_per_weight": sum(terms) / len(terms)}


#: Format set of the plain unit every dot unit is compared with in `bitmix bench synth`.
DOT_UNIT_BASELINE_FORMAT = "int4"


DOT_UNIT = Design(
    name="dot_unit",
    summary="bit-serial dot-product unit (PE + group dequantizer), one row at a time",
    options=(
        Option("lanes", "lanes", 4, "PE lanes L (default 4)"),
        Option("group-size", "group_size", 128, "group size G, a multiple of L (default 128)"),
        Option("act-bits", "act_bits", 8, "activation bits A (default 8)"),
        Option("scale-bits", "scale_bits", 8, "group scale bits S (default 8)"),
        Option("format-set", "format_set", "bitmod4", "format set from golden (default bitmod4)",
               str),
        Option("k", "k", 4096, "longest row K the accumulator is sized for; G must divide it "
                               "(default 4096)"),
    ),
    make_params=_dot_params, build=_dot_build, info=dot_unit_info, describe=_dot_describe,
    synth_figures=_dot_synth_figures,
    synth_baseline=lambda p: p.replace(format_set=DOT_UNIT_BASELINE_FORMAT))

# -------------------------------------------------------------------------- GEMV engine

GEMV_CYCLE_MODEL = (
    "Per GEMV: 1 cycle for the descriptor (cmd), K/L cycles to load the activations, then for "
    "every row block and group G/L * T cycles, T = the largest term count among the block's "
    "row formats for that group, limited by the precision latched at cmd (0 = full). Beats, "
    "groups, blocks and GEMVs follow each other with no bubble while the streams flow; a block's "
    "result transfers `latency` cycles after its last issued term. Exact: "
    "golden.cycle_model.gemv_rtl_cycles.")


def _gemv_params(v: dict):
    from hw.gemv_params import GemvParams

    sets = tuple(s.strip() for s in str(v["format_sets"]).split(",") if s.strip())
    return GemvParams.make(
        rows=parse_int("rows", v["rows"]), lanes=parse_int("lanes", v["lanes"]),
        group_size=parse_int("group_size", v["group_size"]),
        act_bits=parse_int("act_bits", v["act_bits"]),
        scale_bits=parse_int("scale_bits", v["scale_bits"]), format_sets=sets,
        max_k=parse_int("max_k", v["max_k"]), max_n=parse_int("max_n", v["max_n"]),
        lut=_gemv_lut(v))


def _gemv_lut(v: dict) -> dict | None:
    """The LUT path parameter from the CLI options (``--lut-planes 0``: none)."""
    q = parse_int("lut_planes", v.get("lut_planes", 0))
    if not q:
        return None
    return {"max_planes": q, "apot_terms": parse_int("lut_apot_terms", v.get("lut_apot_terms", 3)),
            "shift_bits": parse_int("lut_shift_bits", v.get("lut_shift_bits", 5)),
            "table_inputs": parse_int("lut_table_inputs", v.get("lut_table_inputs", 8))}


def _gemv_build(p):
    from hw.gemv import GemvEngine

    return GemvEngine(p)


def gemv_info(p) -> dict:
    from golden.bcq_layout import COL_REFUSAL

    lay = p.layout
    lut = {} if p.lut is None else {"lut_path": {
        "layouts": {"supported": ["row (group size a multiple of 8)", "block"],
                    "refused": {"col": COL_REFUSAL}},
        "packer": {"module": "golden.bcq_layout.EngineLutLayout",
                   "weights": p.lut_layout.weights.rows()},
        "cycle_model": {"description": GEMV_LUT_CYCLE_MODEL, "latency": p.lut_latency}}}
    return {**lut,
        "parameters": p.describe(),
        "format_sets": [{"name": fs.name, "hash": fs.hash, "formats": [f.name for f in fs.formats],
                         "terms": p.format_terms(i), "pad_fmt": lay.pad_fmt(i)}
                        for i, fs in enumerate(p.format_sets)],
        "derived": p.derived(),
        "packer": {"module": "golden.gemv_layout",
                   **{lt.name: lt.rows() for lt in (lay.cmd, lay.acts, lay.weights,
                                                    lay.results(p.row_bits), lay.status)},
                   "weight_beat_bytes": lay.beat_bytes},
        "cycle_model": {"description": GEMV_CYCLE_MODEL, "descriptor_cycles": 1,
                        "load_cycles_per_beat": 1, "latency": p.latency,
                        "cycles_per_group": {fs.name: {f.name: t * p.beats_per_group for f, t in
                                                       zip(fs.formats, p.format_terms(i))}
                                             for i, fs in enumerate(p.format_sets)}},
    }


def _gemv_describe(p) -> str:
    from golden.bcq_layout import COL_REFUSAL

    d = p.derived()
    lut = ("" if p.lut is None else
           f"\n  LUT path (cmd.path = 1): q <= {p.lut.max_planes} planes, {p.lut.apot_terms} APoT "
           f"terms, shift bits {p.lut.shift_bits}, {p.lanes // 8} x {8 // p.lut.table_inputs} tables x "
           f"{1 << (p.lut.table_inputs - 1)} x {p.lut.entry_bits} bits ({p.lut.table_inputs}-input), "
           f"beat {d['lut_beat_bits']} of {d['weight_beat_bits']} bits, row {d['lut_row_bits']} bits, "
           f"latency {d['lut_latency']}; BCQ layouts row, block; col refused: {COL_REFUSAL}")
    return (f"  R={p.rows} L={p.lanes} G={p.group_size} A={p.act_bits} S={p.scale_bits} "
            f"max K={p.max_k} max N={p.max_n}, format sets "
            + ", ".join(f"{fs.name} ({fs.hash})" for fs in p.format_sets) + "\n"
            f"  weight beat {d['weight_beat_bits']} bits ({d['stream_bits_per_weight']:.3f} bits/weight), "
            f"psum {d['psum_bits']} bits, row {d['row_bits']} bits, activation buffer "
            f"{d['buffer_depth']} x {p.lanes * p.act_bits} bits, latency {d['latency']}" + lut)


GEMV = Design(
    name="gemv",
    summary="GEMV engine: R rows x L lanes of bit-serial terms, activations broadcast from a buffer",
    options=(
        Option("rows", "rows", 4, "GEMV rows R computed side by side (default 4)"),
        Option("lanes", "lanes", 8, "PE lanes L (default 8)"),
        Option("group-size", "group_size", 128, "group size G, a multiple of L (default 128)"),
        Option("act-bits", "act_bits", 8, "activation bits A (default 8)"),
        Option("scale-bits", "scale_bits", 8, "group scale bits S (default 8)"),
        Option("format-sets", "format_sets", "bitmod4",
               "comma-separated format sets compiled into the GEMV engine (default bitmod4)", str),
        Option("max-k", "max_k", 4096, "largest K (activation buffer depth x L) (default 4096)"),
        Option("max-n", "max_n", 4096, "largest N (default 4096)"),
        Option("lut-planes", "lut_planes", 0,
               "shift-add LUT path (cmd.path = 1): most BCQ planes q; 0 = no LUT path (default 0)"),
        Option("lut-apot-terms", "lut_apot_terms", 3, "LUT path: APoT terms per scale (default 3)"),
        Option("lut-shift-bits", "lut_shift_bits", 5, "LUT path: bits of a term's shift (default 5)"),
        Option("lut-table-inputs", "lut_table_inputs", 8,
               "LUT path: activations per hardware table, 8, 4 or 2 (default 8)"),
    ),
    make_params=_gemv_params, build=_gemv_build, info=gemv_info, describe=_gemv_describe)

# -------------------------------------------------------------------------------- UART

def _uart_params(v: dict):
    from hw.uart import UARTParams

    return UARTParams.make(clk_hz=parse_int("clk_hz", v["clk_hz"]), baud=parse_int("baud", v["baud"]))


def _uart_build(p):
    from hw.uart import UART

    return UART(p)


def _uart_info(p) -> dict:
    return {"parameters": {"divisor": p.divisor},
            "framing": "8N1, LSB first; a frame is 10 * divisor clock cycles"}


UART_DESIGN = Design(
    name="uart", summary="8N1 UART receiver + transmitter with byte streams (host link)",
    options=(Option("clk-hz", "clk_hz", 12_000_000, "clock frequency in Hz (default 12000000)"),
             Option("baud", "baud", 3_000_000, "baud rate (default 3000000)")),
    make_params=_uart_params, build=_uart_build, info=_uart_info,
    describe=lambda p: f"  divisor {p.divisor} clock cycles per bit")

# ------------------------------------------------------------------------ shift-add LUT unit

GEMV_LUT_CYCLE_MODEL = (
    "Path 1 of the GEMV engine: 1 cycle for the descriptor, K/L for the activation load, then one "
    "cycle per row block, activation word and plane read (ceil(N/R) * K/L * p); tables are rebuilt "
    "from every word read, so they never stall. A block's result transfers `latency` cycles after "
    "its last beat. A GEMV whose path differs from the previous one's first waits for the previous "
    "results to drain. Exact: golden.cycle_model.gemv_lut_rtl_cycles.")

LUT_CYCLE_MODEL = (
    "Per GEMV: 1 cycle for the descriptor (cmd), 1 for the first table, then one query cycle per "
    "row block, 8-input chunk and plane read (ceil(N/R) * K/8 * p); the table of the next chunk is "
    "built in parallel and registered with the previous chunk's last query, so tables never stall "
    "the queries. A block's result transfers `latency` cycles after its last query. Exact: "
    "golden.cycle_model.lut_rtl_cycles.")


def _lut_params(v: dict):
    from hw.lut_params import LutParams

    return LutParams.make(**{k: parse_int(k, v[k]) for k in ("rows", "max_planes", "apot_terms",
                                                              "shift_bits", "act_bits", "max_k",
                                                              "max_n")})


def _lut_build(p):
    from hw.lut_unit import LutUnit

    return LutUnit(p)


def lut_unit_info(p) -> dict:
    from golden.bcq_layout import COL_REFUSAL

    lay = p.layout
    return {
        "parameters": p.describe(),
        "derived": p.derived(),
        "layouts": {"supported": ["row (group size a multiple of 8)", "block"],
                    "refused": {"col": COL_REFUSAL}},
        "packer": {"module": "golden.bcq_layout",
                   **{lt.name: lt.rows() for lt in (lay.cmd, lay.acts, lay.keys, lay.scales,
                                                    lay.results(p.row_bits), lay.status)}},
        "cycle_model": {"description": LUT_CYCLE_MODEL, "descriptor_cycles": 1,
                        "first_table_cycles": 1, "latency": p.latency},
    }


def _lut_describe(p) -> str:
    d = p.derived()
    return (f"  R={p.rows} max planes={p.max_planes} APoT terms={p.apot_terms} shift bits="
            f"{p.shift_bits} (span <= 2^{d['max_shift']}) A={p.act_bits} max K={p.max_k} "
            f"max N={p.max_n}\n"
            f"  table {d['lut_entries']} x {d['lut_bits']} bits (mirror-halved), row {d['row_bits']} "
            f"bits, key beat {d['key_beat_bits']} bits, scale beat {d['scale_beat_bits']} bits, "
            f"latency {d['latency']}")


LUT_UNIT = Design(
    name="lut_unit",
    summary="shift-add LUT unit (ShiftAddLLM/FIGLUT): BCQ planes query 8-input sum tables, APoT shifts",
    options=(
        Option("rows", "rows", 8, "rows R queried side by side per cycle (default 8)"),
        Option("max-planes", "max_planes", 4, "most binary planes q of a layer (default 4)"),
        Option("apot-terms", "apot_terms", 3, "APoT terms per scale, 1..3 (default 3)"),
        Option("shift-bits", "shift_bits", 5, "bits of a term's shift e - E0 (default 5: span <= 2^31)"),
        Option("act-bits", "act_bits", 8, "activation bits A (default 8)"),
        Option("max-k", "max_k", 4096, "largest K, a multiple of 8 (default 4096)"),
        Option("max-n", "max_n", 4096, "largest N (default 4096)"),
    ),
    make_params=_lut_params, build=_lut_build, info=lut_unit_info, describe=_lut_describe)


# ------------------------------------------------------------------------ link layer framing

def _framing_info(p) -> dict:
    return {"framing": {"kind": p.kind, "wire_format": "golden.protocol: COBS, 0x00 delimiter, CRC-32C",
                        "max_payload": p.max_payload, "max_frame": p.max_frame,
                        "max_encoded": p.max_encoded}}


def _framing_design(kind: str, summary: str, note: str) -> Design:
    """The frame decoder or encoder: no options (the protocol fixes every limit)."""
    def make(_v: dict):
        return _framing_design_params(kind)

    def build(p):
        from hw.framing import FrameDecoder, FrameEncoder

        return FrameDecoder() if p.kind == "decoder" else FrameEncoder()

    return Design(name=f"framing_{kind}", summary=summary, options=(), make_params=make,
                  build=build, info=_framing_info,
                  describe=lambda p: f"  no parameters: {note}, limits and CRC from golden.protocol")


FRAMING_DECODER = _framing_design(
    "decoder", "host-link frame decoder: COBS bytes in, frame bytes + CRC-32C/length verdict out",
    "verdicts equal golden.protocol.FrameDecoder's")
FRAMING_ENCODER = _framing_design(
    "encoder", "host-link frame encoder: frame bytes in, CRC-32C appended, COBS + delimiter out",
    "2 x 256-byte block buffer in one memory")


def _link_params(v: dict):
    from hw.link import LinkParams

    return LinkParams(_uart_params(v))


def _link_build(p):
    from hw.link import Link

    return Link(p)


def _link_info(p) -> dict:
    info = _framing_info(_framing_design_params("decoder"))
    info["framing"].pop("kind")
    return {**_uart_info(p.uart), **info}


def _framing_design_params(kind: str):
    from hw.framing import FramingParams

    return FramingParams(kind)


LINK_DESIGN = Design(
    name="link", summary="host link: UART + COBS/CRC-32C frame decoder and encoder",
    options=UART_DESIGN.options, make_params=_link_params, build=_link_build, info=_link_info,
    describe=lambda p: f"  divisor {p.uart.divisor} clock cycles per bit; framing from golden.protocol")


# ------------------------------------------------------------------------------ FPGA top

def _top_params(v: dict):
    from fpga.top_params import TopParams

    gemv = _gemv_params(v)
    beats = {k: (None if v[k] in (None, 0, "0") else parse_int(k, v[k]))
             for k in ("weight_beats", "act_beats", "result_beats")}
    d = gemv.describe()
    return TopParams.make(**{k: d[k] for k in ("rows", "lanes", "group_size", "act_bits",
                                               "scale_bits", "format_sets", "max_k", "max_n",
                                               "lut") if k in d},
                          **beats, weight_mem=v["weight_mem"], link=v["link"],
                          clk_hz=parse_int("clk_hz", v["clk_hz"]), baud=parse_int("baud", v["baud"]),
                          leds=parse_int("leds", v["leds"]), board=v.get("board") or "")


def _top_build(p):
    from fpga.top import DeviceTop

    return DeviceTop(p)


def top_info(p) -> dict:
    from golden.protocol import PROTOCOL_VERSION

    return {"parameters": p.describe(), "params_hash": p.hash,
            "capabilities": {**p.capabilities(), "params_hash": p.hash,
                             "formats_hash": f"{p.capabilities()['formats_hash']:016x}"},
            "regions": {r.name: {"beats": p.region_beats[r], "beat_bytes": p.region_beat_bytes[r],
                                 "bytes": p.region_bytes[r]} for r in p.region_beats},
            "protocol": {"module": "golden.protocol", "version": PROTOCOL_VERSION},
            "engine": gemv_info(p.gemv)}


def _top_describe(p) -> str:
    return (f"  link {p.link}, {p.clk_hz / 1e6:g} MHz, {p.baud} baud (divisor {p.divisor}), "
            f"params hash {p.hash}\n"
            + "".join(f"  region {r.name}: {p.region_beats[r]} beats x {p.region_beat_bytes[r]} "
                      f"bytes = {p.region_bytes[r]} bytes\n" for r in p.region_beats)
            + _gemv_describe(p.gemv))


TOP = Design(
    name="top",
    summary="the device: host link + command unit + memory regions + GEMV engine (golden.protocol)",
    options=(*(o for o in GEMV.options if o.dest not in ("max_k", "max_n", "group_size", "rows",
                                                         "lanes")),
             Option("rows", "rows", 2, "GEMV rows R (default 2)"),
             Option("lanes", "lanes", 4, "PE lanes L (default 4)"),
             Option("group-size", "group_size", 32, "group size G (default 32)"),
             Option("max-k", "max_k", 256, "largest K (default 256)"),
             Option("max-n", "max_n", 64, "largest N (default 64)"),
             Option("weight-beats", "weight_beats", 0,
                    "weights region depth in beats (default 0: 2048)"),
             Option("act-beats", "act_beats", 0, "activations region depth (default 0: max K / L)"),
             Option("result-beats", "result_beats", 0,
                    "results region depth (default 0: ceil(max N / R))"),
             Option("weight-mem", "weight_mem", "bram", "weights memory: bram or spram (default bram)",
                    str),
             Option("link", "link", "uart", "uart (rx/tx pins) or bytes (byte streams; default uart)",
                    str),
             Option("clk-hz", "clk_hz", 12_000_000, "clock frequency in Hz (default 12000000)"),
             Option("baud", "baud", 3_000_000, "UART baud rate (default 3000000)"),
             Option("leds", "leds", 4, "status LEDs (default 4)"),
             Option("board", "board", "", "board the top is built for, reported by CAPABILITIES "
                    "(golden.protocol.BoardId; default none)", str)),
    make_params=_top_params, build=_top_build, info=top_info, describe=_top_describe)


#: Every design, by CLI name.
DESIGNS: dict[str, Design] = {d.name: d for d in (DOT_UNIT, GEMV, UART_DESIGN, LUT_UNIT,
                                                   FRAMING_DECODER, FRAMING_ENCODER, LINK_DESIGN,
                                                   TOP)}


def get_design(name: str) -> Design:
    try:
        return DESIGNS[name]
    except KeyError:
        raise BitmixError(f"unknown design {name!r}; choose from {', '.join(DESIGNS)}") from None
