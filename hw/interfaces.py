"""Every stream payload and component signature of the gateware, declared and documented once.

Payloads that cross the chip boundary (what the host or a testbench packs) are derived from
the pure-Python layouts in :mod:`golden.pack`, so the packer and the RTL cannot disagree; payloads
internal to the engine (``psums``) are declared here. Widths come from :mod:`hw.params`.

Streams are ``amaranth.lib.stream`` valid/ready streams; by that library's rules a producer holds
``valid`` and the payload stable until the transfer, and the components rely on it.
"""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import pack
from golden.bitfields import Layout
from golden.formats import FormatSet
from hw.params import DotParams, exp_port_bits, id_port_bits, term_port_bits

__all__ = ["struct_layout", "weights_layout", "groups_layout", "psum_layout",
           "term_decoder_signature", "pe_signature", "dequantizer_signature", "dot_unit_signature",
           "payload_shape", "gemv_layouts", "gemv_issue_layout", "gemv_array_signature",
           "gemv_engine_signature", "lut_issue_layout", "lut_array_signature",
           "lut_layouts", "lut_unit_signature", "frame_byte_layout",
           "frame_in_layout", "VERDICT_BITS", "frame_decoder_signature", "frame_encoder_signature",
           "link_signature", "beat_memory_signature", "spram_signature", "command_unit_signature",
           "device_top_signature"]


def struct_layout(layout: Layout) -> data.StructLayout:
    """The Amaranth view of a :class:`golden.bitfields.Layout` (same fields, same offsets)."""
    members = {}
    for f in layout.fields:
        shape = signed(f.width) if f.signed else unsigned(f.width)
        members[f.name] = data.ArrayLayout(shape, f.count) if f.is_array else shape
    return data.StructLayout(members)


# ------------------------------------------------------------------------------ payloads

def weights_layout(p: DotParams) -> data.StructLayout:
    """``{codes: L x b, acts: L x signed(A)}``: L consecutive weights and their activations."""
    return struct_layout(pack.weight_beat_layout(p.lanes, p.fs, p.act_bits))


def groups_layout(p: DotParams) -> data.StructLayout:
    """``{fmt_id, u, last}``: one group's format, scale, and the end-of-row flag."""
    return struct_layout(pack.group_layout(p.fs, p.scale_bits))


def psum_layout(p: DotParams) -> data.StructLayout:
    """``{psum: signed(psum_bits), u, last}``: a group's partial sum on its way to rescaling."""
    return data.StructLayout({"psum": signed(p.psum_bits), "u": unsigned(p.scale_bits),
                              "last": unsigned(1)})


# ---------------------------------------------------------------------------- signatures

def term_decoder_signature(fs: FormatSet) -> wiring.Signature:
    """Combinational term decoder.

    Members
    -------
    fmt_id : In(id_bits)
        Format of the weight (index into the format set).
    code : In(b)
        The weight's b-bit code.
    term : In(term_bits)
        Which of the code's signed power-of-two terms (0 = largest).
    nonzero : Out(1)
        The code has that term (0 past its last term or for a padding format id).
    sign : Out(1)
        1 = the term is negative.
    exp : Out(exp_bits)
        The term is ``(-1)**sign << exp``.
    """
    return wiring.Signature({
        "fmt_id": In(id_port_bits(fs)), "code": In(fs.bits), "term": In(term_port_bits(fs)),
        "nonzero": Out(1), "sign": Out(1), "exp": Out(exp_port_bits(fs)),
    })


def pe_signature(p: DotParams) -> wiring.Signature:
    """Bit-serial processing element.

    Members
    -------
    weights : In(stream.Signature(weights_layout))
        L codes + L activations; a beat is held T cycles (T = the group's terms at the current
        precision) and transferred on its last term.
    groups : In(stream.Signature(groups_layout))
        The group's descriptor, read while the group is computed and transferred with its last
        beat.
    psums : Out(stream.Signature(psum_layout))
        ``{psum, u, last}`` per group, ``PE_PIPELINE_DEPTH`` cycles after its final term.
    precision : In(term_bits)
        Runtime nested precision: 0 = every term, t = the first t terms of each weight.
    """
    return wiring.Signature({
        "weights": In(stream.Signature(weights_layout(p))),
        "groups": In(stream.Signature(groups_layout(p))),
        "psums": Out(stream.Signature(psum_layout(p))),
        "precision": In(p.term_bits),
    })


def dequantizer_signature(p: DotParams) -> wiring.Signature:
    """Per-group dequantizer.

    Members
    -------
    psums : In(stream.Signature(psum_layout))
        Group partial sums with their scale ``u`` and end-of-row flag.
    result : Out(stream.Signature(signed(row_bits)))
        ``sum_g u_g * psum_g`` of a row, after the group with ``last`` set.
    """
    return wiring.Signature({
        "psums": In(stream.Signature(psum_layout(p))),
        "result": Out(stream.Signature(signed(p.row_bits))),
    })


def dot_unit_signature(p: DotParams) -> wiring.Signature:
    """Dot-product unit (PE + dequantizer); Verilog ports ``weights__payload`` etc.

    Members
    -------
    weights : In(stream.Signature(weights_layout))
        One beat = L consecutive weights' codes and their activations.
    groups : In(stream.Signature(groups_layout))
        One descriptor per group; ``last`` on the row's final group.
    result : Out(stream.Signature(signed(row_bits)))
        The row's exact integer result, ``golden.intref.row_results``.
    precision : In(term_bits)
        Runtime nested precision (0 = full); change it only while the unit is idle.
    """
    return wiring.Signature({
        "weights": In(stream.Signature(weights_layout(p))),
        "groups": In(stream.Signature(groups_layout(p))),
        "result": Out(stream.Signature(signed(p.row_bits))),
        "precision": In(p.term_bits),
    })


def payload_shape(signature: wiring.Signature, port: str) -> Shape | data.Layout:
    """Payload shape of a stream member (tests and harnesses read offsets from it)."""
    return signature.members[port].signature.members["payload"].shape


# ------------------------------------------------------------------------- GEMV engine
# Payloads from golden.gemv_layout (the engine's wire formats); parameters in hw.gemv_params.

def gemv_layouts(p) -> dict[str, data.StructLayout]:
    """Struct layouts of the GEMV engine's streams and status, from ``p.layout``
    (:class:`golden.gemv_layout.GemvLayout`): ``cmd``, ``acts``, ``weights``, ``results``, ``status``."""
    lay = p.layout
    return {"cmd": struct_layout(lay.cmd), "acts": struct_layout(lay.acts),
            "weights": struct_layout(lay.weights), "results": struct_layout(lay.results(p.row_bits)),
            "status": struct_layout(lay.status)}


def gemv_issue_layout(p) -> data.StructLayout:
    """What the GEMV sequencer hands the array each cycle: one term of one weight beat.

    ``valid``; ``beat`` (the weight beat, ``weights`` layout); ``term`` (which term of every
    weight); ``first`` (first term of the group's first beat: the partial sums restart);
    ``final`` (last term of the group's last beat: the partial sums go to the dequantizers);
    ``row_last`` (the group is the row's last); ``gemv_last`` (the block is the GEMV's last).
    """
    return data.StructLayout({
        "valid": 1, "beat": struct_layout(p.layout.weights), "term": unsigned(p.term_bits),
        "first": 1, "final": 1, "row_last": 1, "gemv_last": 1,
    })


def gemv_array_signature(p) -> wiring.Signature:
    """The GEMV engine's compute array (R rows x L lanes, one dequantizer per row).

    Members
    -------
    issue : In(gemv_issue_layout)
        The term to compute this cycle (``valid`` = 0: none); always taken (a group's final
        term only while ``stall`` is low).
    fmt_set : In(range(sets))
        Which compiled-in format set decodes the codes; constant during a GEMV.
    x : In(ArrayLayout(signed(A), L))
        The activation beat of the term issued in the previous cycle (the buffer's read register).
    stall : Out(1)
        The array cannot take a group's final term (``issue.final``): every entry of its group
        FIFO is reserved (a register; low in a run whose results are taken). Other terms are
        always taken.
    results : Out(stream.Signature(results layout))
        One beat per row block: R signed row results and ``last``, from the dequantizers.
    """
    return wiring.Signature({
        "issue": In(gemv_issue_layout(p)),
        "fmt_set": In(range(max(2, len(p.format_sets)))),
        "x": In(data.ArrayLayout(signed(p.act_bits), p.lanes)),
        "stall": Out(1),
        "results": Out(stream.Signature(gemv_layouts(p)["results"])),
    })


def gemv_engine_signature(p) -> wiring.Signature:
    """GEMV engine; Verilog ports ``cmd__payload``, ``weights__valid`` etc.

    Members
    -------
    cmd : In(stream.Signature(cmd layout))
        Layer descriptor ``{k, n, fmt_set, path}``; accepted while no GEMV is loading or
        computing (it may overlap the previous GEMV's drain).
    precision : In(seq_bits)
        Path 0: terms per weight (1..T; 0 or >= T = full precision); path 1: binary planes read
        (1..q; 0 or >= q = all). Latched when ``cmd`` is accepted.
    abort_req : In(1)
        Flush the array and return to idle; sets ``status.err_abort`` if a GEMV was in flight.
        (Not ``abort``: Verilator warns on a port named like the C library function.)
    acts : In(stream.Signature(acts layout))
        L signed activations per beat, K/L beats after each accepted ``cmd``.
    weights : In(stream.Signature(weights layout))
        R*L codes + R group descriptors per beat, in :mod:`golden.gemv_layout`'s order; on
        path 1 the same bits are one plane of one activation word's keys and terms
        (:class:`golden.bcq_layout.EngineLutLayout`).
    results : Out(stream.Signature(results layout))
        One beat per row block: R signed row results and ``last`` (the GEMV's final block).
    status : Out(status layout)
        ``busy`` and sticky error flags (:data:`golden.gemv_layout.STATUS_FLAGS`), cleared by
        the next accepted ``cmd``.
    """
    ls = gemv_layouts(p)
    return wiring.Signature({
        "cmd": In(stream.Signature(ls["cmd"])),
        "precision": In(p.seq_bits),
        "abort_req": In(1),
        "acts": In(stream.Signature(ls["acts"])),
        "weights": In(stream.Signature(ls["weights"])),
        "results": Out(stream.Signature(ls["results"])),
        "status": Out(ls["status"]),
    })


def lut_issue_layout(p) -> data.StructLayout:
    """What the GEMV sequencer hands the LUT path each cycle: one plane of one activation word.

    ``valid``; ``beat`` (:attr:`golden.bcq_layout.EngineLutLayout.weights`); ``first`` (the
    block's first beat: the accumulators restart); ``final`` (its last: the row results leave);
    ``gemv_last`` (the block is the GEMV's last)."""
    return data.StructLayout({"valid": 1, "beat": struct_layout(p.lut_layout.weights),
                              "first": 1, "final": 1, "gemv_last": 1})


def lut_array_signature(p) -> wiring.Signature:
    """The GEMV engine's LUT path (R rows x L/8 tables, ``hw.lut_array.LutArray``).

    Members
    -------
    issue : In(lut_issue_layout)
        The beat to compute this cycle (``valid`` = 0: none); taken only while ``stall`` is low.
    x : In(ArrayLayout(signed(A), L))
        The activation word of the beat issued in the previous cycle (the buffer's read register).
    stall : Out(1)
        The path cannot take an issue: its output register is full and ``results`` not ready.
    results : Out(stream.Signature(results layout))
        One beat per row block: R signed row results (units of 2^E0) and ``last``.
    """
    return wiring.Signature({
        "issue": In(lut_issue_layout(p)),
        "x": In(data.ArrayLayout(signed(p.act_bits), p.lanes)),
        "stall": Out(1),
        "results": Out(stream.Signature(gemv_layouts(p)["results"])),
    })


# ------------------------------------------------------------------------ shift-add LUT unit
# Payloads from golden.bcq_layout (the LUT path's wire formats); parameters in hw.lut_params.

def lut_layouts(p) -> dict[str, data.StructLayout]:
    """Struct layouts of the LUT unit's streams and status, from ``p.layout``
    (:class:`golden.bcq_layout.LutLayout`): ``cmd``, ``acts``, ``keys``, ``scales``, ``results``,
    ``status``."""
    lay = p.layout
    return {"cmd": struct_layout(lay.cmd), "acts": struct_layout(lay.acts),
            "keys": struct_layout(lay.keys), "scales": struct_layout(lay.scales),
            "results": struct_layout(lay.results(p.row_bits)), "status": struct_layout(lay.status)}


def lut_unit_signature(p) -> wiring.Signature:
    """Shift-add LUT unit (ShiftAddLLM query-and-add); Verilog ports ``keys__payload`` etc.

    Members
    -------
    cmd : In(stream.Signature(cmd layout))
        Layer descriptor ``{k, n, planes, group_chunks}``; accepted while no GEMV is computing
        (it may overlap the previous GEMV's drain).
    precision : In(plane_bits)
        Planes to read (1..planes; 0 or >= planes = all); latched when ``cmd`` is accepted.
    acts : In(stream.Signature(acts layout))
        8 signed activations (one chunk) per beat; K/8 beats per row block.
    keys : In(stream.Signature(keys layout))
        R plane keys per beat: chunk by chunk, p planes per chunk, most significant first.
    scales : In(stream.Signature(scales layout))
        R rows' APoT terms of one plane, at the chunks that start a scale group.
    results : Out(stream.Signature(results layout))
        One beat per row block: R signed row results (units of 2^E0) and ``last``.
    status : Out(status layout)
        ``busy`` and sticky error flags (:data:`golden.bcq_layout.LUT_STATUS_FLAGS`), cleared
        by the next accepted ``cmd``.
    """
    ls = lut_layouts(p)
    return wiring.Signature({
        "cmd": In(stream.Signature(ls["cmd"])),
        "precision": In(p.plane_bits),
        "acts": In(stream.Signature(ls["acts"])),
        "keys": In(stream.Signature(ls["keys"])),
        "scales": In(stream.Signature(ls["scales"])),
        "results": Out(stream.Signature(ls["results"])),
        "status": Out(ls["status"]),
    })


# ---------------------------------------------------------------------- link layer (framing)
# Constants and the frame format come from golden.protocol; the components are in hw.framing.

#: Width of a frame verdict: a ``golden.protocol.ErrorCode`` byte, as the STATUS response's
#: ``last_frame_error`` field and a NACK carry it.
VERDICT_BITS = 8


def frame_byte_layout() -> data.StructLayout:
    """A decoded frame byte: ``data``; ``first`` on the frame's first byte, ``last`` on its last."""
    return data.StructLayout({"data": 8, "first": 1, "last": 1})


def frame_in_layout() -> data.StructLayout:
    """A frame byte to send (header or payload): ``data``; ``last`` on the frame's last byte."""
    return data.StructLayout({"data": 8, "last": 1})


def frame_decoder_signature() -> wiring.Signature:
    """COBS + CRC-32C frame decoder (:class:`hw.framing.FrameDecoder`).

    Members
    -------
    wire : In(stream.Signature(8))
        Bytes from the line (the UART receiver): COBS-encoded frames, each ended by ``0x00``.
    frame : Out(stream.Signature(frame_byte_layout()))
        Decoded bytes (header, payload, CRC) of every frame that decoded to at least one byte,
        from ``first`` to ``last``; at most ``MAX_FRAME`` bytes per frame (a longer one cannot
        be valid). The bytes are unverified until the frame's ``verdict``.
    verdict : Out(stream.Signature(VERDICT_BITS))
        One ``golden.protocol.ErrorCode`` per non-empty frame (a delimiter after at least one
        byte), exactly what ``golden.protocol.FrameDecoder`` reports: ``OK``, ``BAD_CRC``,
        ``TRUNCATED``, ``OVERSIZE`` or ``BAD_LENGTH``. It becomes valid only after the frame's
        ``last`` byte was taken, so a consumer that buffers the bytes commits them on ``OK``
        and discards them otherwise.
    """
    return wiring.Signature({"wire": In(stream.Signature(8)),
                             "frame": Out(stream.Signature(frame_byte_layout())),
                             "verdict": Out(stream.Signature(VERDICT_BITS))})


def frame_encoder_signature() -> wiring.Signature:
    """COBS + CRC-32C frame encoder (:class:`hw.framing.FrameEncoder`).

    Members
    -------
    frame : In(stream.Signature(frame_in_layout()))
        Header and payload bytes of one frame after another, ``last`` on each frame's last byte.
    wire : Out(stream.Signature(8))
        COBS(frame | CRC-32C, least significant byte first) and a ``0x00`` delimiter per frame,
        byte-identical to ``golden.protocol.encode_frame``; to the UART transmitter.
    """
    return wiring.Signature({"frame": In(stream.Signature(frame_in_layout())),
                             "wire": Out(stream.Signature(8))})


def link_signature() -> wiring.Signature:
    """UART + frame decoder + frame encoder (:class:`hw.link.Link`): the host link as the command
    unit sees it.

    Members
    -------
    rx : In(1)
        Receive line (idle high), asynchronous.
    tx : Out(1)
        Transmit line (idle high).
    frame : Out(stream.Signature(frame_byte_layout()))
        Decoded request bytes (see :func:`frame_decoder_signature`).
    verdict : Out(stream.Signature(VERDICT_BITS))
        One ``golden.protocol.ErrorCode`` per received frame, after its last byte.
    reply : In(stream.Signature(frame_in_layout()))
        Response bytes (header and payload, ``last`` on each frame's last) to send.
    frame_error, overrun : Out(1)
        The UART receiver's one-cycle error pulses (a dropped byte; the frame it belonged to
        fails its CRC or length check).
    """
    return wiring.Signature({"rx": In(1, init=1), "tx": Out(1, init=1),
                             "frame": Out(stream.Signature(frame_byte_layout())),
                             "verdict": Out(stream.Signature(VERDICT_BITS)),
                             "reply": In(stream.Signature(frame_in_layout())),
                             "frame_error": Out(1), "overrun": Out(1)})


# ------------------------------------------------------------------ FPGA top: memories, commands
# The top's parameters are fpga.top_params.TopParams; its components are hw.memories,
# hw.command_unit and fpga.top.

def beat_memory_signature(depth: int, nbytes: int) -> wiring.Signature:
    """One memory region of ``depth`` beats of ``nbytes`` bytes (:class:`hw.memories.BeatMemory`).

    Members
    -------
    addr : In(range(depth))
        Beat address of a read or write.
    re : In(1)
        Read ``addr``: ``rdata`` has the beat in the next cycle and holds it until the next read.
    we : In(nbytes)
        Byte write mask (byte i of ``wdata`` to byte i of beat ``addr``).
    wdata : In(8 * nbytes)
        Bytes to write.
    rdata : Out(8 * nbytes)
        The beat of the last read.
    """
    return wiring.Signature({"addr": In(range(max(2, depth))), "re": In(1), "we": In(nbytes),
                             "wdata": In(8 * nbytes), "rdata": Out(8 * nbytes)})


def spram_signature() -> wiring.Signature:
    """The iCE40 UltraPlus SB_SPRAM256KA's ports (16K x 16 bits), for its behavioural model.

    Members
    -------
    ADDRESS : In(14)
    DATAIN : In(16)
    MASKWREN : In(4)
        Nibble write mask.
    WREN, CHIPSELECT : In(1)
        Write (``WREN``) or read (``~WREN``) when ``CHIPSELECT``.
    STANDBY, SLEEP : In(1)
        Low-power modes (tied low).
    POWEROFF : In(1)
        Active low: high in operation.
    DATAOUT : Out(16)
        The word of the last read.
    """
    return wiring.Signature({"ADDRESS": In(14), "DATAIN": In(16), "MASKWREN": In(4), "WREN": In(1),
                             "CHIPSELECT": In(1), "STANDBY": In(1), "SLEEP": In(1),
                             "POWEROFF": In(1, init=1), "DATAOUT": Out(16)})


def command_unit_signature(tp) -> wiring.Signature:
    """The command unit (:class:`hw.command_unit.CommandUnit`) for top parameters ``tp``
    (:class:`fpga.top_params.TopParams`).

    Members
    -------
    frame : In(stream.Signature(frame_byte_layout()))
        Decoded request bytes from the frame decoder.
    verdict : In(stream.Signature(VERDICT_BITS))
        Each frame's ``golden.protocol.ErrorCode``; only ``OK`` frames are executed.
    reply : Out(stream.Signature(frame_in_layout()))
        Response frames (header and payload) to the frame encoder.
    engine : In(gemv_engine_signature)
        The GEMV engine's ports, driven by the command unit (``cmd``, ``precision``,
        ``abort_req``, ``acts``, ``weights``) and read by it (``results``, ``status``).
    engine_reset : Out(1)
        One-cycle pulse: reset the engine (RESET).
    weights_mem, activations_mem, results_mem : In(beat_memory_signature)
        The three regions' memory ports (``golden.protocol.Region``).
    state : Out(2)
        ``golden.protocol.EngineState`` of the last run.
    activity : Out(1)
        Toggles on every decoded request (a status LED).
    """
    g = tp.gemv
    from golden.protocol import Region

    mems = {f"{r.name.lower()}_mem": In(beat_memory_signature(tp.region_beats[r], tp.region_beat_bytes[r]))
            for r in Region}
    return wiring.Signature({
        "frame": In(stream.Signature(frame_byte_layout())),
        "verdict": In(stream.Signature(VERDICT_BITS)),
        "reply": Out(stream.Signature(frame_in_layout())),
        "engine": In(gemv_engine_signature(g)),
        "engine_reset": Out(1),
        **mems,
        "state": Out(2),
        "activity": Out(1),
    })


def device_top_signature(tp) -> wiring.Signature:
    """The FPGA top (:class:`fpga.top.DeviceTop`); Verilog ports ``rx``, ``tx`` (or
    ``rx_byte__payload/__valid/__ready``, ``tx_byte__...``), ``leds``, ``clk``, ``rst``.

    Members
    -------
    rx : In(1)
        ``link="uart"``: the UART receive line (idle high).
    tx : Out(1)
        ``link="uart"``: the UART transmit line (idle high).
    rx_byte : In(stream.Signature(8))
        ``link="bytes"``: line bytes (COBS frames and delimiters) into the frame decoder.
    tx_byte : Out(stream.Signature(8))
        ``link="bytes"``: line bytes out of the frame encoder.
    leds : Out(tp.leds)
        Status LEDs (:mod:`fpga.top`).
    """
    if tp.link == "uart":
        members = {"rx": In(1, init=1), "tx": Out(1, init=1)}
    else:
        members = {"rx_byte": In(stream.Signature(8)), "tx_byte": Out(stream.Signature(8))}
    return wiring.Signature({**members, "leds": Out(tp.leds)})
