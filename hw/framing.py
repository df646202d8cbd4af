"""The host link's frame layer in gateware: COBS + CRC-32C decoder and encoder (issue 9).

The wire format is ``golden.protocol``'s (docs/architecture.md §5): a frame is
``header | payload | CRC-32C`` (CRC least significant byte first), COBS-encoded and ended by one
``0x00`` delimiter. Every constant here (``MAX_ENCODED``, ``MAX_FRAME``, ``MAX_PAYLOAD``, the
header's ``length`` field, the CRC parameters and error codes) is read from that module.

:class:`FrameDecoder` gives the same verdict as ``golden.protocol.FrameDecoder`` for every byte
sequence (tested on random, corrupted, truncated, oversize, delimiter-free and garbage-prefixed
input, and exhaustively on short sequences). Since ``0x00`` is only ever a delimiter, it resets
the decoder whatever came before: there is no state a garbage byte sequence can leave behind
(proven by k-induction in verif/framing_formal.py: after any prefix, a delimiter and a valid frame
yield exactly that frame).

How a consumer learns that a frame is bad: the decoder streams a frame's bytes as they arrive
(one byte behind the wire, because COBS only tells at the delimiter that the last block's implied
zero is not data) and then sends the frame's verdict on a separate stream, only after the frame's
``last`` byte was taken. The consumer (the command unit) writes the bytes into its frame buffer
and acts on them only when the verdict is ``OK``; any other verdict discards the buffer. This
keeps one frame buffer in the design (the consumer's), not a second one in the decoder.

:class:`FrameEncoder` needs COBS's lookahead: a block's code byte (its length) goes before the
block's up to 254 bytes. It keeps two block buffers in one ``amaranth.lib.memory.Memory`` of
2 x 256 bytes (one iCE40 EBR): one fills from the input at one byte per cycle while the other
drains to the line. Costs: a block is complete one cycle after its terminating zero, 254th byte
or frame end (the 4 CRC bytes take 4 cycles after the frame's last byte), and its code byte is
offered the cycle after that. The line (≥ 40 cycles per byte at 3 Mbaud from 12 MHz; 10 x
divisor cycles in general) can therefore idle only while the first block of a frame is being
filled, or when a block of up to 254 bytes must be filled while the previous, short block drains:
at most 256 cycles (with an input that delivers one byte per cycle), 6.4 byte times at 40 cycles
per byte. Within a long run of non-zero bytes (254-byte blocks) the line never waits.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import crc, wiring
from amaranth.lib.memory import Memory

from bitmix.errors import BitmixError
from golden.protocol import (
    CRC,
    CRC_BYTES,
    DELIMITER,
    FRAME_HEADER,
    HEADER_BYTES,
    MAX_ENCODED,
    MAX_FRAME,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    ErrorCode,
)
from hw.interfaces import frame_decoder_signature, frame_encoder_signature

__all__ = ["crc_parameters", "FramingParams", "FrameDecoder", "FrameEncoder", "COBS_BLOCK",
           "ENCODER_DEPTH"]

#: Longest COBS block (data bytes after one code byte); code 0xFF means "254 bytes, no zero".
COBS_BLOCK = 254
#: Encoder memory: two block buffers of 256 bytes (ping-pong).
ENCODER_DEPTH = 512
#: Byte offset of the header's little-endian ``length`` field.
_LENGTH_AT = FRAME_HEADER.offset("length") // 8
_LENGTH_BYTES = FRAME_HEADER.field("length").width // 8
# Decoder states are not needed (the delimiter resets everything); encoder drain phases, from 1
# (Yosys writes `x == 0` as `!x`, which Verilator's -Wall flags).
_CODE, _DATA, _DELIM = 1, 2, 3
assert DELIMITER == 0, "COBS removes zeros: the delimiter is 0x00"


@dataclass(frozen=True)
class FramingParams:
    """The link layer has no generator parameters of its own: the frame limits and the CRC are
    ``golden.protocol``'s, so gateware and host cannot disagree. This record names a build
    (``tag``) and carries those limits into the manifest."""

    kind: str                     # "decoder" or "encoder"
    max_payload: int = MAX_PAYLOAD
    max_frame: int = MAX_FRAME
    max_encoded: int = MAX_ENCODED

    def __post_init__(self):
        if self.kind not in ("decoder", "encoder"):
            raise BitmixError(f"framing kind must be 'decoder' or 'encoder', got {self.kind!r}")

    @property
    def tag(self) -> str:
        return f"framing_{self.kind}_v{PROTOCOL_VERSION}"


def crc_parameters() -> crc.Parameters:
    """``amaranth.lib.crc`` parameters built from ``golden.protocol.CRC`` (one source of truth;
    tests check they equal the catalogue's CRC-32/ISCSI and give ``CRC_RESIDUE``)."""
    alg = crc.Algorithm(crc_width=CRC.width, polynomial=CRC.polynomial,
                        initial_crc=CRC.initial_crc, reflect_input=CRC.reflect_input,
                        reflect_output=CRC.reflect_output, xor_output=CRC.xor_output)
    return alg(data_width=8)


class FrameDecoder(wiring.Component):
    """COBS frame decoder with CRC-32C residue check; ports in
    :func:`hw.interfaces.frame_decoder_signature`.

    It takes one wire byte per cycle while its outputs are taken; after a delimiter it waits
    until the verdict is taken (two cycles with a ready consumer). It has no parameters: every
    limit is ``golden.protocol``'s.

    Verdict, in ``golden.protocol.decode_frame``'s order: more than ``MAX_ENCODED`` bytes before
    the delimiter → ``OVERSIZE`` (the bytes after that are dropped); a code byte that points past
    the delimiter, or fewer than ``HEADER_BYTES`` decoded bytes → ``TRUNCATED``; a ``length``
    field over ``MAX_PAYLOAD`` → ``OVERSIZE``; fewer / more bytes than the length says →
    ``TRUNCATED`` / ``BAD_LENGTH``; a CRC register that is not the residue → ``BAD_CRC``.
    """

    def __init__(self):
        self._params = FramingParams("decoder")
        super().__init__(frame_decoder_signature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc32c = crc_unit = crc_parameters().create()

        enc = Signal(range(MAX_ENCODED + 2))      # wire bytes since the delimiter (saturating)
        left = Signal(8)                          # bytes left in the current COBS block
        ff = Signal()                             # the current block's code was 0xFF (no zero)
        n = Signal(range(MAX_ENCODED + 1))        # decoded bytes
        length = Signal(8 * _LENGTH_BYTES)
        hold = Signal(8)                          # the newest decoded byte: last or not?
        hold_first = Signal()
        hold_valid = Signal()
        pending = Signal()                        # a verdict waits
        verdict = Signal(8)

        out = self.frame
        with m.If(out.valid & out.ready):
            m.d.sync += out.valid.eq(0)
        m.d.comb += [self.verdict.valid.eq(pending & ~out.valid), self.verdict.payload.eq(verdict)]
        with m.If(self.verdict.valid & self.verdict.ready):
            m.d.sync += pending.eq(0)

        byte = self.wire.payload
        delim = ~byte.any()                       # DELIMITER is 0 (`== 0` would be a lint warning)
        take = Signal()
        m.d.comb += [self.wire.ready.eq(~pending & (~out.valid | out.ready)),
                     take.eq(self.wire.valid & self.wire.ready)]

        # one decoded byte per wire byte at most: a code byte yields the zero its predecessor
        # block implied (not after a 0xFF block, not at the frame's start), a data byte itself
        produce = Signal()
        decoded = Signal(8)
        with m.If(take & ~delim & (enc <= MAX_ENCODED)):
            m.d.sync += enc.eq(enc + 1)
            with m.If(left.any()):
                m.d.comb += [produce.eq(1), decoded.eq(byte)]
                m.d.sync += left.eq(left - 1)
            with m.Else():
                m.d.comb += [produce.eq(enc.any() & ~ff), decoded.eq(0)]
                m.d.sync += [left.eq(byte - 1), ff.eq(byte == 0xFF)]

        m.d.comb += [crc_unit.start.eq(~n.any()), crc_unit.valid.eq(produce),
                     crc_unit.data.eq(decoded)]
        with m.If(produce):
            m.d.sync += n.eq(n + 1)
            for i in range(_LENGTH_BYTES):
                with m.If(n == _LENGTH_AT + i):
                    m.d.sync += length[8 * i:8 * i + 8].eq(decoded)
            with m.If(n < MAX_FRAME):             # a longer frame cannot be valid
                m.d.sync += [hold.eq(decoded), hold_first.eq(~n.any()), hold_valid.eq(1)]
                with m.If(hold_valid):
                    m.d.sync += [out.payload.data.eq(hold), out.payload.first.eq(hold_first),
                                 out.payload.last.eq(0), out.valid.eq(1)]

        with m.If(take & delim):
            m.d.sync += [enc.eq(0), left.eq(0), ff.eq(0), n.eq(0), hold_valid.eq(0)]
            with m.If(hold_valid):
                m.d.sync += [out.payload.data.eq(hold), out.payload.first.eq(hold_first),
                             out.payload.last.eq(1), out.valid.eq(1)]
            with m.If(enc.any()):                 # two delimiters in a row are idle fill
                m.d.sync += pending.eq(1)
                need = length + (HEADER_BYTES + CRC_BYTES)
                with m.If(enc > MAX_ENCODED):
                    m.d.sync += verdict.eq(ErrorCode.OVERSIZE)
                with m.Elif(left.any() | (n < HEADER_BYTES)):
                    m.d.sync += verdict.eq(ErrorCode.TRUNCATED)
                with m.Elif(length > MAX_PAYLOAD):
                    m.d.sync += verdict.eq(ErrorCode.OVERSIZE)
                with m.Elif(n < need):
                    m.d.sync += verdict.eq(ErrorCode.TRUNCATED)
                with m.Elif(n > need):
                    m.d.sync += verdict.eq(ErrorCode.BAD_LENGTH)
                with m.Elif(~crc_unit.match_detected):
                    m.d.sync += verdict.eq(ErrorCode.BAD_CRC)
                with m.Else():
                    m.d.sync += verdict.eq(ErrorCode.OK)
        return m


class FrameEncoder(wiring.Component):
    """CRC-32C + COBS frame encoder with a two-block buffer; ports in
    :func:`hw.interfaces.frame_encoder_signature`.

    The fill side takes one frame byte per cycle (then generates the 4 CRC bytes), writes the
    non-zero bytes of the current block into its half of the memory and closes the block at a
    zero byte, at the 254th byte or at the frame's end (``golden.protocol.encode_frame``'s COBS:
    a frame ending in a zero byte gets a final empty block, code 0x01; one ending exactly at a
    254-byte block does not). The drain side sends a closed block's code byte, its bytes from
    the memory and, after the frame's last block, the delimiter. No parameters: the CRC is
    ``golden.protocol.CRC``.
    """

    def __init__(self):
        self._params = FramingParams("encoder")
        super().__init__(frame_encoder_signature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc32c = crc_unit = crc_parameters().create()
        m.submodules.mem = mem = Memory(shape=8, depth=ENCODER_DEPTH, init=[])
        wr = mem.write_port()
        rd = mem.read_port()

        # ---- fill side
        in_crc = Signal()                         # sending the CRC bytes
        crc_idx = Signal(range(CRC_BYTES))
        sof = Signal(init=1)                      # the next input byte starts a frame
        fill_len = Signal(range(COBS_BLOCK + 1))
        fill_bank = Signal()
        closed = Signal()                         # a closed block waits for the drain side
        c_code = Signal(8)
        c_len = Signal(range(COBS_BLOCK + 1))
        c_final = Signal()
        tail = Signal()                           # the frame ended in a zero: an empty block follows

        src_valid, src_data, src_last, take = Signal(), Signal(8), Signal(), Signal()
        crc_byte = Signal(8)                      # CRC byte crc_idx, least significant first
        for i in range(CRC_BYTES):                # an If chain: word_select's shift is 32 bits wide
            with (m.If if i == 0 else m.Elif)(~crc_idx.any() if i == 0 else crc_idx == i):
                m.d.comb += crc_byte.eq(crc_unit.crc[8 * i:8 * i + 8])
        m.d.comb += [
            self.frame.ready.eq(~in_crc & ~closed & ~tail),
            crc_unit.start.eq(sof), crc_unit.data.eq(self.frame.payload.data),
            crc_unit.valid.eq(self.frame.valid & self.frame.ready),
            src_valid.eq(Mux(in_crc, ~closed & ~tail, self.frame.valid & self.frame.ready)),
            src_data.eq(Mux(in_crc, crc_byte, self.frame.payload.data)),
            src_last.eq(in_crc & (crc_idx == CRC_BYTES - 1)),
            take.eq(src_valid),
            wr.addr.eq(Cat(fill_len[:8], fill_bank)), wr.data.eq(src_data),
            wr.en.eq(take & src_data.any()),
        ]
        with m.If(take):
            with m.If(in_crc):
                m.d.sync += crc_idx.eq(crc_idx + 1)
                with m.If(src_last):
                    m.d.sync += [in_crc.eq(0), crc_idx.eq(0), sof.eq(1)]
            with m.Else():
                m.d.sync += sof.eq(0)
                with m.If(self.frame.payload.last):
                    m.d.sync += in_crc.eq(1)
            with m.If(~src_data.any()):
                m.d.sync += [closed.eq(1), c_code.eq(fill_len + 1), c_len.eq(fill_len),
                             c_final.eq(0), tail.eq(src_last)]
            with m.Elif(fill_len == COBS_BLOCK - 1):
                m.d.sync += [closed.eq(1), c_code.eq(0xFF), c_len.eq(COBS_BLOCK),
                             c_final.eq(src_last)]
            with m.Else():
                m.d.sync += fill_len.eq(fill_len + 1)
                with m.If(src_last):
                    m.d.sync += [closed.eq(1), c_code.eq(fill_len + 2), c_len.eq(fill_len + 1),
                                 c_final.eq(1)]
        with m.If(tail & ~closed):
            m.d.sync += [closed.eq(1), c_code.eq(1), c_len.eq(0), c_final.eq(1), tail.eq(0)]

        # ---- drain side
        busy = Signal()
        phase = Signal(range(_DELIM + 1), init=_CODE)
        ptr = Signal(range(COBS_BLOCK + 1))
        d_code = Signal(8)
        d_len = Signal(range(COBS_BLOCK + 1))
        d_final = Signal()
        d_bank = Signal()
        wire = self.wire
        sent, ending = Signal(), Signal()
        m.d.comb += [wire.valid.eq(busy), sent.eq(wire.valid & wire.ready)]
        ptr_next = Signal.like(ptr)
        m.d.comb += [ptr_next.eq(ptr), rd.addr.eq(Cat(ptr_next[:8], d_bank))]
        with m.If(phase == _CODE):
            m.d.comb += wire.payload.eq(d_code)
            with m.If(sent):
                with m.If(d_len.any()):
                    m.d.sync += phase.eq(_DATA)
                with m.Elif(d_final):
                    m.d.sync += phase.eq(_DELIM)
                with m.Else():
                    m.d.comb += ending.eq(1)
        with m.Elif(phase == _DATA):
            m.d.comb += wire.payload.eq(rd.data)
            with m.If(sent):
                m.d.comb += ptr_next.eq(ptr + 1)
                with m.If(ptr + 1 == d_len):
                    with m.If(d_final):
                        m.d.sync += phase.eq(_DELIM)
                    with m.Else():
                        m.d.comb += ending.eq(1)
        with m.Else():                            # _DELIM (and any unreachable code)
            m.d.comb += wire.payload.eq(DELIMITER)
            with m.If(sent):
                m.d.comb += ending.eq(1)
        m.d.sync += ptr.eq(ptr_next)
        with m.If(ending):
            m.d.sync += busy.eq(0)

        # ---- hand a closed block to the drain side (in the cycle the previous one ends, so
        # blocks follow each other without a gap)
        with m.If(closed & (~busy | ending)):
            m.d.sync += [busy.eq(1), phase.eq(_CODE), ptr.eq(0), d_code.eq(c_code),
                         d_len.eq(c_len), d_final.eq(c_final), d_bank.eq(fill_bank),
                         fill_bank.eq(~fill_bank), fill_len.eq(0), closed.eq(0)]
        return m
