"""The host-link wire protocol, defined once (pure Python, no Amaranth).

The gateware generator (``fpga/``), the host driver (``sw_driver/``), the testbenches and the
documentation table (``bitmix protocol``) all read this module; none keeps its own copy of a code,
a width or a layout (docs/architecture.md §5, §8).

Frame
-----
A frame is ``header | payload | crc`` (``FRAME_HEADER``: sequence number, command code, payload
length; then ``length`` payload bytes; then the CRC), COBS-encoded and followed by one ``0x00``
delimiter. Multi-byte fields are little-endian; header and payload layouts are
:class:`golden.bitfields.Layout` s of whole bytes, packed LSB first.

Why COBS. COBS removes every ``0x00`` from the encoded frame, so ``0x00`` can only be a delimiter:
after any garbage (line noise, a half-sent frame, a reset mid-frame) the receiver is in step again
at the next ``0x00``, one frame later at most, with no timeout and no escape state to get lost in
(LiteX's UARTBone needs a 100 ms timer for this). Its overhead is bounded and small: one byte per
254 plus the delimiter, 4 bytes on the largest frame (99.2 %), unlike byte stuffing (SLIP, HDLC),
which doubles a frame of escape bytes in the worst case. Encoding and decoding need one counter in
gateware.

Why CRC-32C (Castagnoli, the iSCSI/SCTP/ext4 CRC; ``CRC``). A USB-UART link corrupts data at speed
(docs/research: LiteX #91, tock #3149), and the project's target is zero undetected errors in 10⁶
fault-injected frames. A 16-bit CRC (CRC-16/CCITT-FALSE) lets one randomly corrupted frame in
65,536 through, about 15 in such a run; a 32-bit CRC one in 4.3·10⁹. Among 32-bit CRCs the
Castagnoli polynomial keeps Hamming distance 6 up to 5,243 bits (Koopman, DSN 2002), so every error
of up to 5 flipped bits in a frame of the maximum length (``MAX_FRAME`` = 520 bytes) is detected
(checked exactly by tests/golden/test_protocol.py);
the Ethernet polynomial drops to distance 4 above 2,974 bits (371 bytes). Every burst of up to 32
bits is detected by either. Gateware cost is the same for any 32-bit polynomial and small: a
32-bit register and its XOR feedback, bit-serially at 8 cycles per byte (a byte arrives every
≥ 80 cycles at 3 Mbaud and 24 MHz) or byte-parallel with ``amaranth.lib.crc.catalog.CRC32_ISCSI``,
whose parameters equal ``CRC`` (tested). Because the CRC is appended least significant byte
first, the CRC of a whole received frame, CRC included, is the constant ``CRC_RESIDUE``: the
receiver checks a frame without knowing where its payload ends.

Requests and responses
----------------------
A request carries a :class:`Command` code. The device answers every request it decodes with one
response frame with the same sequence number and command code ``cmd | RESPONSE_FLAG``; the
response payload is one :class:`ErrorCode` byte (``OK`` = ACK, anything else = NACK) followed, on
an ACK, by the command's result data. A frame that fails to decode (:class:`FrameError`) is
dropped without an answer, since the header of a damaged frame cannot be trusted; the device counts
it and keeps its error code (STATUS ``frames_bad``, ``last_frame_error``).

The host gives each new request the next sequence number (mod 256) and resends a request that got
no answer within its timeout with the same sequence number and bytes. The request or its answer
may have been lost, so the device treats a request that repeats the previous request's sequence
number and command as a retry: it answers it again with the error code of the first execution
without executing it again (a retried RUN starts one GEMV); commands without side effects
(CAPABILITIES, STATUS, READ_MEM, READ_RESULTS) return their data read anew.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import google_crc32c
from cobs import cobs

from bitmix.errors import BitmixError
from golden.bitfields import Field, Layout

__all__ = [
    "PROTOCOL_VERSION", "DELIMITER", "CrcParams", "RESPONSE_FLAG", "MAX_PAYLOAD", "HEADER_BYTES", "CRC_BYTES",
    "MAX_FRAME", "MAX_ENCODED", "CRC", "CRC_RESIDUE", "FRAME_HEADER", "PAYLOADS", "RESPONSES",
    "REQUEST_DATA", "RESPONSE_DATA",
    "Command", "ErrorCode", "Region", "EngineState", "BoardId", "Frame", "FrameError", "FrameDecoder",
    "crc32c", "encode_frame", "decode_frame", "encode_response", "split_response", "request_payload",
    "pack_bytes", "unpack_bytes", "protocol_table",
]

#: Raised by one whenever a frame, command, code or payload layout changes incompatibly; the
#: capability response reports it and the driver refuses a device with another version.
PROTOCOL_VERSION = 3

#: Frame delimiter; COBS guarantees it occurs nowhere else.
DELIMITER = 0x00

#: Set in the command code of every response (request codes stay below it).
RESPONSE_FLAG = 0x80

#: Largest payload in bytes. 512 bytes of weights per frame give ≥ 96 % payload efficiency with
#: all framing and the write address counted, fit one iCE40 block RAM pair as the frame buffer, and
#: keep the whole frame inside CRC-32C's Hamming-distance-6 length.
MAX_PAYLOAD = 512

FRAME_HEADER = Layout("frame_header", (
    Field("seq", 8, doc="sequence number, chosen by the host; a response repeats its request's"),
    Field("cmd", 8, doc="command code (`Command`), with `RESPONSE_FLAG` (0x80) set in a response"),
    Field("length", 16, doc=f"payload bytes that follow the header, 0 … {MAX_PAYLOAD}"),
))
HEADER_BYTES = FRAME_HEADER.size // 8
#: The CRC follows the payload, least significant byte first.
CRC_BYTES = 4
#: Largest frame before COBS encoding.
MAX_FRAME = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES
#: Largest COBS-encoded frame (one code byte per 254 data bytes, plus one), without the delimiter.
MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 1

@dataclass(frozen=True)
class CrcParams:
    """A CRC in the reveng catalogue's terms (what ``amaranth.lib.crc.Algorithm`` takes)."""

    name: str
    width: int
    polynomial: int
    initial_crc: int
    reflect_input: bool
    reflect_output: bool
    xor_output: int
    check: int          # CRC of b"123456789"


#: CRC-32C: reflected polynomial 0x1EDC6F41, init and final XOR all ones.
CRC = CrcParams("CRC-32/ISCSI", 32, 0x1EDC6F41, 0xFFFFFFFF, True, True, 0xFFFFFFFF, 0xE3069283)
#: CRC of any valid frame including its own CRC bytes.
CRC_RESIDUE = 0x48674BC7


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (``CRC``). Google's C implementation (``google-crc32c``) takes 0.2 µs
    for a maximum frame; the pure-Python ``crc`` package took 4.4 ms, too slow for the host to
    keep a 3 Mbaud link busy. Tests check it against a bitwise reference and Amaranth's."""
    return google_crc32c.value(bytes(data))


class _Coded(enum.IntEnum):
    """An integer code with a one-line doc string (``.doc``), for tables and error messages."""

    def __new__(cls, value: int, doc: str):
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.doc = doc
        return obj


class Command(_Coded):
    """Request command codes (< ``RESPONSE_FLAG``). ``PAYLOADS``/``RESPONSES`` give the layouts."""

    CAPABILITIES = 0x01, ("protocol version, generator-parameter and format-table hashes, memory "
                          "sizes, clock: the driver refuses a device that differs from its golden model")
    STATUS = 0x02, "engine state, precision, engine error flags, cycles of the last run, link counters"
    WRITE_MEM = 0x03, "write the payload's data bytes to a memory region at a byte offset"
    READ_MEM = 0x04, "read bytes of a memory region"
    LOAD_LAYER = 0x05, ("load a layer: where its weights start in the weights region, then the "
                        "engine's `cmd` word (golden.gemv_layout), little-endian, in whole bytes")
    SET_PRECISION = 0x06, "set the runtime precision of the next runs (0 = full, docs/architecture.md §2.6)"
    RUN = 0x07, "start a GEMV of the loaded layer; the ACK means started, STATUS tells when it is done"
    READ_RESULTS = 0x08, "read bytes of the results of the last finished run"
    RESET = 0x09, "reset the engine and its error flags (the link and the memories keep their state)"
    ABORT = 0x0A, "stop a running GEMV; its results are void"


class ErrorCode(_Coded):
    """First byte of every response payload: ``OK`` is an ACK, any other code a NACK. The frame
    errors (``BAD_CRC`` … ``BAD_LENGTH``) are also what :class:`FrameDecoder` reports."""

    OK = 0x00, "no error (ACK)"
    BAD_CRC = 0x01, "the frame's CRC-32C does not match"
    TRUNCATED = 0x02, ("the frame ended (delimiter) before its header, payload and CRC were "
                       "complete, or its COBS encoding was cut")
    OVERSIZE = 0x03, (f"more than {MAX_ENCODED} bytes arrived before a delimiter, or the "
                      f"length field exceeds {MAX_PAYLOAD}")
    BAD_LENGTH = 0x04, ("the frame is longer than its length field says (e.g. a lost delimiter "
                        "joined two frames), or the payload length is wrong for the command")
    UNKNOWN_COMMAND = 0x05, "the command code is not a `Command`"
    BAD_FIELD = 0x06, "a payload field is out of its legal range (region, precision, descriptor)"
    OUT_OF_BOUNDS = 0x07, "the access runs past the end of the memory region"
    BUSY = 0x08, ("the command needs an idle engine (write weights or activations, load, "
                  "set precision, run) and a GEMV is running")
    NOT_READY = 0x09, "RUN before a layer was loaded, or READ_RESULTS before a run finished"
    ENGINE_ERROR = 0x0A, "the engine rejected the layer or the run; STATUS has its error flags"


class Region(_Coded):
    """Memory regions of WRITE_MEM/READ_MEM; their sizes are in the capability response."""

    WEIGHTS = 0x00, "packed weight beats (golden.gemv_layout `weights`), in stream order"
    ACTIVATIONS = 0x01, "packed activation beats (golden.gemv_layout `acts`)"
    RESULTS = 0x02, "result rows of the last run (read only)"


class EngineState(_Coded):
    """``state`` field of the STATUS response."""

    IDLE = 0x00, "no run since reset, or the last run was aborted"
    RUNNING = 0x01, "a GEMV is running"
    DONE = 0x02, "the last run finished; its results can be read"
    ERROR = 0x03, "the last run failed; `flags` says why"


class BoardId(_Coded):
    """``board`` field of the CAPABILITIES response: the board a top was built for
    (``fpga.boards``; the member name is the ``--board`` name in upper case, ``-`` as ``_``)."""

    NONE = 0x00, "no board: a top from `bitmix elaborate` or the virtual board without `--board`"
    ICEBREAKER = 0x01, "1BitSquared iCEBreaker (iCE40UP5K)"
    ULX3S_85F = 0x02, "Radiona ULX3S (LFE5U-85F)"
    ORANGECRAB_25F = 0x03, "Good Stuff Department OrangeCrab r0.2 (LFE5U-25F)"

    @classmethod
    def of(cls, board: str | None) -> BoardId:
        """The id of ``--board`` name ``board`` (None or "": ``NONE``)."""
        if not board:
            return cls.NONE
        try:
            return cls[board.upper().replace("-", "_")]
        except KeyError:
            raise BitmixError(f"board {board!r} has no protocol board id (golden.protocol.BoardId: "
                              + ", ".join(b.board_name for b in cls if b) + ")") from None

    @property
    def board_name(self) -> str:
        """The ``--board`` name ("" for ``NONE``)."""
        return "" if self == BoardId.NONE else self.name.lower().replace("_", "-")


#: A ``golden.digest.json_digest`` hash (16 hex digits) travels as a 64-bit field.
_HASH_BITS = 64

_ADDR = (Field("region", 8, doc="memory region (`Region`)"),
         Field("offset", 32, doc="byte offset in the region"))

#: Fixed part of each request payload (WRITE_MEM's data bytes follow its fields). A command that is
#: not listed takes an empty payload.
PAYLOADS: dict[Command, Layout] = {
    Command.WRITE_MEM: Layout("write_mem", _ADDR),
    Command.READ_MEM: Layout("read_mem", (*_ADDR, Field("count", 16, doc="bytes to read"))),
    # a base lets every layer of a model stay resident: the host writes each layer once at its
    # own base and runs any of them by loading its descriptor (no weights re-sent per use)
    Command.LOAD_LAYER: Layout("load_layer", (
        Field("weight_base", 32, doc="first beat of the layer's weights in the weights region "
                                     "(beats of the region's beat size); base + the layer's "
                                     "weight beats must fit the region"),)),
    Command.SET_PRECISION: Layout("set_precision", (
        Field("precision", 8, doc="terms or bit-planes per weight; 0 = full precision"),)),
    Command.READ_RESULTS: Layout("read_results", (
        Field("offset", 32, doc="byte offset in the results"), Field("count", 16, doc="bytes to read"))),
}

#: Variable-length parts: what follows a request's fixed fields, and an ACK's data where it is
#: not a fixed layout.
REQUEST_DATA = {Command.WRITE_MEM: "data bytes",
                Command.LOAD_LAYER: "engine descriptor (`desc_bytes` bytes)"}
RESPONSE_DATA = {Command.READ_MEM: "`count` data bytes", Command.READ_RESULTS: "`count` data bytes"}

#: Result data of an ACK (after the error byte), where it is a fixed layout.
RESPONSES: dict[Command, Layout] = {
    Command.CAPABILITIES: Layout("capabilities", (
        Field("version", 8, doc="`PROTOCOL_VERSION` of the device"),
        Field("max_payload", 16, doc="largest payload the device accepts"),
        Field("clock_hz", 32, doc="system clock in Hz"),
        Field("params_hash", _HASH_BITS, doc="generator parameters' hash (json_digest, 16 hex digits)"),
        Field("formats_hash", _HASH_BITS, doc="format table's hash (golden.formats.format_table_hash)"),
        Field("region_bytes", 32, len(Region), doc="size of each `Region` in bytes", array=True),
        Field("desc_bytes", 8, doc="engine descriptor bytes that follow LOAD_LAYER's fields"),
        Field("board", 8, doc="`BoardId` of the board the top was built for (0: none)"),
    )),
    Command.STATUS: Layout("status", (
        Field("state", 8, doc="`EngineState`"),
        Field("precision", 8, doc="precision of the next run"),
        Field("flags", 8, doc="engine status flags (golden.gemv_layout.STATUS_FLAGS, bit order)"),
        Field("cycles", 32, doc="clock cycles of the last run"),
        Field("frames_ok", 16, doc="frames decoded since power-up (wraps)"),
        Field("frames_bad", 16, doc="frames dropped for a frame error since power-up (wraps)"),
        Field("last_frame_error", 8, doc="`ErrorCode` of the last dropped frame (OK if none)"),
    )),
}


def request_payload(cmd: Command, data: bytes = b"", **fields) -> bytes:
    """Payload of request ``cmd``: its ``PAYLOADS`` fields, then ``data`` where ``REQUEST_DATA``
    allows it. A missing, extra or out-of-range field is a BitmixError naming the command."""
    cmd = Command(cmd)
    layout = PAYLOADS.get(cmd)
    names = {f.name for f in layout.fields} if layout else set()
    if set(fields) != names:
        raise BitmixError(f"{cmd.name} takes fields {sorted(names)}, got {sorted(fields)}")
    if data and cmd not in REQUEST_DATA:
        raise BitmixError(f"{cmd.name} takes no data bytes")
    payload = (pack_bytes(layout, **fields) if layout else b"") + bytes(data)
    if len(payload) > MAX_PAYLOAD:
        raise BitmixError(f"{cmd.name} payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return payload


def pack_bytes(layout: Layout, **values) -> bytes:
    """``layout.pack`` as little-endian bytes (layouts of whole bytes only)."""
    assert layout.size % 8 == 0, layout.name
    return layout.pack(**values).to_bytes(layout.size // 8, "little")


def unpack_bytes(layout: Layout, data: bytes) -> dict:
    """Fields of the first ``layout.size // 8`` bytes of ``data``; a short ``data`` is a
    BitmixError naming the layout."""
    n = layout.size // 8
    if len(data) < n:
        raise BitmixError(f"{layout.name}: {len(data)} bytes, needs {n}")
    return layout.unpack(int.from_bytes(data[:n], "little"))


@dataclass(frozen=True)
class Frame:
    """A decoded frame whose CRC and length checked out."""

    seq: int
    cmd: int
    payload: bytes


@dataclass(frozen=True)
class FrameError:
    """A dropped frame: ``error`` says why; ``seq``/``cmd`` are the header bytes as received
    (unverified; None when the header did not arrive)."""

    error: ErrorCode
    seq: int | None = None
    cmd: int | None = None


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise BitmixError(f"frame {name} = {value} does not fit one byte")


def encode_frame(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    """The frame on the wire: COBS(header | payload | CRC) followed by the delimiter."""
    _check_byte("seq", seq)
    _check_byte("cmd", cmd)
    if len(payload) > MAX_PAYLOAD:
        raise BitmixError(f"frame payload of {len(payload)} bytes exceeds {MAX_PAYLOAD} "
                          f"(command 0x{cmd:02x})")
    raw = pack_bytes(FRAME_HEADER, seq=seq, cmd=cmd, length=len(payload)) + bytes(payload)
    raw += crc32c(raw).to_bytes(CRC_BYTES, "little")
    return cobs.encode(raw) + bytes([DELIMITER])


def decode_frame(encoded: bytes) -> Frame | FrameError:
    """One frame from the bytes between two delimiters (neither included)."""
    if len(encoded) > MAX_ENCODED:
        return FrameError(ErrorCode.OVERSIZE)
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError:
        return FrameError(ErrorCode.TRUNCATED)
    if len(raw) < HEADER_BYTES:
        return FrameError(ErrorCode.TRUNCATED)
    h = unpack_bytes(FRAME_HEADER, raw)
    seq, cmd, need = h["seq"], h["cmd"], HEADER_BYTES + h["length"] + CRC_BYTES
    if h["length"] > MAX_PAYLOAD:
        return FrameError(ErrorCode.OVERSIZE, seq, cmd)
    if len(raw) != need:
        return FrameError(ErrorCode.TRUNCATED if len(raw) < need else ErrorCode.BAD_LENGTH, seq, cmd)
    if crc32c(raw) != CRC_RESIDUE:
        return FrameError(ErrorCode.BAD_CRC, seq, cmd)
    return Frame(seq, cmd, raw[HEADER_BYTES:-CRC_BYTES])


class FrameDecoder:
    """Streaming receiver: feed it byte chunks of any size, get frames and frame errors.

    Bytes are collected up to each delimiter and decoded there (:func:`decode_frame`). An empty
    frame (two delimiters in a row) is idle fill and yields nothing, so a sender may lead with a
    delimiter to flush a receiver's garbage. A frame that grows past ``MAX_ENCODED`` bytes is
    not stored: its bytes are dropped up to the next delimiter, which yields one ``OVERSIZE``
    error. Memory use is bounded by ``MAX_ENCODED`` whatever arrives.

    Members
    -------
    pending : int
        Bytes received since the last delimiter (those of an oversize frame included).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._dropped = 0

    @property
    def pending(self) -> int:
        return len(self._buf) + self._dropped

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Frames and errors completed by ``data``, in arrival order (a list: nothing is left
        unprocessed however the caller iterates)."""
        data, start, out = bytes(data), 0, []
        while True:
            end = data.find(DELIMITER, start)
            part = data[start:] if end < 0 else data[start:end]
            if self._dropped or len(self._buf) + len(part) > MAX_ENCODED:
                self._dropped += len(self._buf) + len(part)
                self._buf.clear()
            else:
                self._buf += part
            if end < 0:
                return out
            start = end + 1
            if self._dropped:
                self._dropped = 0
                out.append(FrameError(ErrorCode.OVERSIZE))
            elif self._buf:
                out.append(decode_frame(bytes(self._buf)))
                self._buf.clear()


def encode_response(seq: int, cmd: int, error: ErrorCode = ErrorCode.OK, data: bytes = b"") -> bytes:
    """The device's answer to request ``cmd``: an ACK with ``data`` or a NACK with ``error``."""
    if error != ErrorCode.OK and data:
        raise BitmixError(f"NACK {ErrorCode(error).name} of command 0x{cmd:02x} carries no data")
    return encode_frame(seq, (cmd | RESPONSE_FLAG) & 0xFF, bytes([error]) + bytes(data))


def split_response(frame: Frame) -> tuple[int, int, bytes]:
    """``(request command code, error code, data)`` of a response frame; the codes stay plain
    integers when they are unknown to this protocol version. A frame that is not a response is a
    BitmixError naming its sequence number."""
    if not frame.cmd & RESPONSE_FLAG or not frame.payload:
        raise BitmixError(f"frame seq {frame.seq} cmd 0x{frame.cmd:02x} is not a response")
    return frame.cmd & ~RESPONSE_FLAG & 0xFF, frame.payload[0], frame.payload[1:]


def _layout_text(layout: Layout | None) -> str:
    if layout is None:
        return ""
    return ", ".join(f"{f.name}: u{f.width}" + (f"×{f.count}" if f.is_array else "") for f in layout.fields)


def protocol_table() -> list[tuple[str, list[dict]]]:
    """The protocol as documentation tables: ``(title, rows)`` for the frame, the commands, the
    error codes, the memory regions and each payload layout (byte offsets)."""
    frame = [{"field": f.name, "bytes": f.size // 8, "meaning": f.doc} for f in FRAME_HEADER.fields]
    frame += [{"field": "payload", "bytes": f"0 … {MAX_PAYLOAD}", "meaning": "command payload"},
              {"field": "crc", "bytes": CRC_BYTES,
               "meaning": "CRC-32C of header and payload, least significant byte first"}]
    commands = []
    for c in Command:
        req = ", ".join(x for x in (_layout_text(PAYLOADS.get(c)), REQUEST_DATA.get(c)) if x) or "—"
        resp = RESPONSE_DATA.get(c) or _layout_text(RESPONSES.get(c)) or "—"
        commands.append({"code": f"0x{c:02x}", "command": c.name, "request": req, "ack data": resp,
                         "meaning": c.doc})
    errors = [{"code": f"0x{e:02x}", "error": e.name, "meaning": e.doc} for e in ErrorCode]
    regions = [{"id": int(r), "region": r.name, "meaning": r.doc} for r in Region]
    boards = [{"id": int(b), "board": b.name, "`--board`": b.board_name or "—", "meaning": b.doc}
              for b in BoardId]
    tables = [("frame (before COBS)", frame), ("commands", commands), ("error codes", errors),
              ("memory regions", regions), ("boards", boards)]
    for kind, layouts in (("request", PAYLOADS), ("response", RESPONSES)):
        for cmd, lay in layouts.items():
            rows = [{"field": r["field"], "byte": r["offset"] // 8,
                     "type": f"u{r['width']}" + (f"×{r['count']}" if r["count"] > 1 else ""),
                     "meaning": r["doc"]} for r in lay.rows()]
            tables.append((f"{cmd.name} {kind}", rows))
    return tables
