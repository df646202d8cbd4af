"""The wire protocol (golden/protocol.py): framing, CRC, resynchronisation, error reports."""

import numpy as np
import pytest
from amaranth.lib.crc import catalog
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from bitmix.errors import BitmixError
from golden.protocol import (
    CRC,
    CRC_BYTES,
    CRC_RESIDUE,
    FRAME_HEADER,
    HEADER_BYTES,
    MAX_ENCODED,
    MAX_FRAME,
    MAX_PAYLOAD,
    PAYLOADS,
    RESPONSE_FLAG,
    RESPONSES,
    Command,
    ErrorCode,
    Frame,
    FrameDecoder,
    FrameError,
    crc32c,
    decode_frame,
    encode_frame,
    encode_response,
    pack_bytes,
    protocol_table,
    split_response,
    unpack_bytes,
)

seqs = st.integers(0, 255)
cmds = st.integers(0, 255)
payloads = st.binary(max_size=MAX_PAYLOAD)


def _crc_bitwise(data: bytes) -> int:
    """Table-free reflected CRC from ``CRC``'s parameters, one bit per step: what a bit-serial
    gateware CRC computes."""
    assert CRC.reflect_input and CRC.reflect_output
    rev = int(f"{CRC.polynomial:0{CRC.width}b}"[::-1], 2)
    reg = CRC.initial_crc
    for byte in data:
        reg ^= byte
        for _ in range(8):
            reg = (reg >> 1) ^ (rev if reg & 1 else 0)
    return reg ^ CRC.xor_output


def _raw(seq, cmd, payload, length=None):
    """Header | payload | CRC, unchecked (to build frames encode_frame refuses)."""
    raw = pack_bytes(FRAME_HEADER, seq=seq, cmd=cmd, length=len(payload) if length is None else length)
    raw += payload
    return raw + crc32c(raw).to_bytes(CRC_BYTES, "little")


def _wire(raw: bytes) -> bytes:
    return cobs.encode(raw) + b"\0"


# ---------------------------------------------------------------------------- CRC
def test_crc_is_crc32c_with_its_check_value_and_residue():
    assert crc32c(b"123456789") == CRC.check == 0xE3069283     # reveng catalogue: CRC-32/ISCSI
    assert _crc_bitwise(b"123456789") == CRC.check
    # the gateware's byte-parallel CRC (Amaranth's catalogue) has exactly these parameters
    alg = catalog.CRC32_ISCSI
    for name in ("polynomial", "initial_crc", "reflect_input", "reflect_output", "xor_output"):
        assert getattr(alg, name) == getattr(CRC, name), name
    assert alg.crc_width == CRC.width
    assert alg(data_width=8).compute(b"123456789") == CRC.check
    assert alg(data_width=8).residue() ^ CRC.xor_output == CRC_RESIDUE


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=600))
def test_crc_matches_bitwise_reference_and_residue(data):
    c = crc32c(data)
    assert c == _crc_bitwise(data)
    assert crc32c(data + c.to_bytes(4, "little")) == CRC_RESIDUE


def test_no_error_of_up_to_five_bits_escapes_a_maximum_frame():
    """Hamming distance 6 over a whole maximum-length frame (CRC bits included).

    The CRC is linear: flipping bit set E changes the CRC by the CRC-without-init/xor of E, the
    XOR of single-bit syndromes. An error escapes iff its syndromes XOR to 0: weight 1 iff one
    syndrome is 0, 2 iff two are equal, 3 iff a pair XORs to a third, 4 iff two pairs XOR alike.
    Weight 5 (and every odd weight) cannot escape: the polynomial has an even number of terms,
    so x + 1 divides it and every codeword has even weight.
    """
    assert bin((1 << 32) | CRC.polynomial).count("1") % 2 == 0
    n = MAX_FRAME * 8
    syn, v = np.empty(n, np.uint32), 1                 # x^d mod P for d = 0 .. n-1 (MSB-first view)
    poly = CRC.polynomial
    for d in range(n):
        syn[d] = v
        v = ((v << 1) & 0xFFFFFFFF) ^ (poly if v >> 31 else 0)
    assert (syn != 0).all()
    assert len(np.unique(syn)) == n
    pairs = np.sort(np.concatenate([syn[i] ^ syn[i + 1:] for i in range(n - 1)]))   # 8.6 M, 35 MB
    singles = np.sort(syn)
    k = np.minimum(np.searchsorted(singles, pairs), n - 1)
    assert not (singles[k] == pairs).any()
    assert not (pairs[1:] == pairs[:-1]).any()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, MAX_FRAME * 8 - 1), min_size=1, max_size=5, unique=True), payloads)
def test_up_to_five_flipped_bits_are_detected(bits, payload):
    raw = bytearray(_raw(1, 2, payload + bytes(MAX_PAYLOAD - len(payload))))
    for b in bits:
        raw[b // 8] ^= 1 << (b % 8)
    assert crc32c(raw) != CRC_RESIDUE


# ---------------------------------------------------------------------------- frames
@settings(max_examples=100, deadline=None)
@given(seqs, cmds, payloads)
def test_round_trip(seq, cmd, payload):
    wire = encode_frame(seq, cmd, payload)
    assert wire[-1] == 0 and 0 not in wire[:-1]
    assert len(wire) <= MAX_ENCODED + 1
    assert decode_frame(wire[:-1]) == Frame(seq, cmd, payload)
    assert FrameDecoder().feed(wire) == [Frame(seq, cmd, payload)]


def test_layout_on_the_wire():
    raw = cobs.decode(encode_frame(0x12, Command.READ_MEM, b"\x00\xab")[:-1])
    assert raw[:HEADER_BYTES] == bytes([0x12, 0x04, 0x02, 0x00])        # seq, cmd, length LE
    assert raw[HEADER_BYTES:-CRC_BYTES] == b"\x00\xab"
    assert int.from_bytes(raw[-4:], "little") == _crc_bitwise(raw[:-4])


def test_max_length_frame():
    payload = bytes(range(256)) * 2
    assert len(payload) == MAX_PAYLOAD
    wire = encode_frame(255, 0x7F, payload)
    assert len(wire) - 1 <= MAX_ENCODED
    dec = FrameDecoder()
    assert dec.feed(wire[:300]) == [] and dec.pending == 300
    assert dec.feed(wire[300:]) == [Frame(255, 0x7F, payload)] and dec.pending == 0
    with pytest.raises(BitmixError, match="513 bytes exceeds 512"):
        encode_frame(0, Command.WRITE_MEM, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(BitmixError, match="seq = 256"):
        encode_frame(256, 0)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2 * MAX_ENCODED), seqs, cmds, payloads, st.data())
def test_resynchronises_after_any_garbage(garbage, seq, cmd, payload, data):
    """Garbage, a delimiter, a valid frame, fed in arbitrary chunks: exactly that frame."""
    stream = garbage + b"\0" + encode_frame(seq, cmd, payload)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    dec, out = FrameDecoder(), []
    for a, b in zip([0, *cuts], [*cuts, len(stream)]):
        out += dec.feed(stream[a:b])
    assert [x for x in out if isinstance(x, Frame)] == [Frame(seq, cmd, payload)]
    assert out[-1] == Frame(seq, cmd, payload)
    assert dec.pending == 0


@settings(max_examples=200, deadline=None)
@given(seqs, cmds, st.binary(max_size=64), st.data())
def test_single_bit_flips_are_always_detected(seq, cmd, payload, data):
    wire = bytearray(encode_frame(seq, cmd, payload))
    bit = data.draw(st.integers(0, 8 * len(wire) - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    out = FrameDecoder().feed(bytes(wire) + b"\0")      # a flip may remove the delimiter
    assert out and all(isinstance(x, FrameError) for x in out)


def test_every_single_bit_flip_of_one_frame_is_detected():
    wire = encode_frame(7, Command.WRITE_MEM, bytes(range(1, 40)) + b"\0\0" + bytes(20))
    for bit in range(8 * len(wire)):
        bad = bytearray(wire)
        bad[bit // 8] ^= 1 << (bit % 8)
        out = FrameDecoder().feed(bytes(bad) + b"\0")
        assert out and all(isinstance(x, FrameError) for x in out), bit


@settings(max_examples=100, deadline=None)
@given(seqs, cmds, payloads, st.data())
def test_truncated_frames_are_rejected_as_truncated(seq, cmd, payload, data):
    wire = encode_frame(seq, cmd, payload)
    cut = data.draw(st.integers(1, len(wire) - 2))       # at least one byte, at least one lost
    (err,) = FrameDecoder().feed(wire[:cut] + b"\0")
    assert err.error is ErrorCode.TRUNCATED


def test_length_field_mismatches():
    assert decode_frame(_wire(_raw(1, 2, b"abc", length=5))[:-1]) == FrameError(ErrorCode.TRUNCATED, 1, 2)
    # a lost delimiter joins two frames: longer than the first one's length field
    joined = _raw(1, 2, b"abc") + _raw(3, 4, b"")
    assert decode_frame(cobs.encode(joined)) == FrameError(ErrorCode.BAD_LENGTH, 1, 2)
    assert decode_frame(cobs.encode(_raw(1, 2, b"", length=MAX_PAYLOAD + 1))) == \
        FrameError(ErrorCode.OVERSIZE, 1, 2)


def test_bad_crc():
    raw = bytearray(_raw(9, 3, b"xyz"))
    raw[-1] ^= 0x80
    assert decode_frame(cobs.encode(bytes(raw))) == FrameError(ErrorCode.BAD_CRC, 9, 3)


@pytest.mark.parametrize("extra", [1, 1000])
def test_oversize_frames_are_rejected_then_the_next_frame_decodes(extra):
    big = _wire(_raw(1, Command.WRITE_MEM, bytes(MAX_PAYLOAD + extra)))   # zeros: COBS expands it
    assert decode_frame(big[:-1]).error is ErrorCode.OVERSIZE
    dec, ok = FrameDecoder(), encode_frame(2, Command.STATUS)
    out = []
    for i in range(0, len(big) - 1, 100):                 # bounded memory while it streams in
        out += dec.feed(big[i:min(i + 100, len(big) - 1)])
        assert dec.pending == min(i + 100, len(big) - 1)
        assert len(dec._buf) <= MAX_ENCODED
    # 1 extra byte: caught by the length field (header known); 1000: by the byte count (dropped)
    expect = FrameError(ErrorCode.OVERSIZE, 1, Command.WRITE_MEM) if extra == 1 else \
        FrameError(ErrorCode.OVERSIZE)
    assert out == [] and dec.feed(b"\0") == [expect]
    assert dec.feed(ok) == [Frame(2, Command.STATUS, b"")]
    # a delimiter-free run longer than any frame is dropped as one oversize frame
    assert FrameDecoder().feed(b"\x55" * (MAX_ENCODED + 1) + b"\0" + ok) == \
        [FrameError(ErrorCode.OVERSIZE), Frame(2, Command.STATUS, b"")]
    assert FrameDecoder().feed(b"\x55" * MAX_ENCODED + b"\0")[0].error is not ErrorCode.OVERSIZE


def test_idle_delimiters_yield_nothing():
    ok = encode_frame(0, Command.RESET)
    assert FrameDecoder().feed(b"\0\0\0" + ok + b"\0\0") == [Frame(0, Command.RESET, b"")]


# ---------------------------------------------------------------------------- codes and layouts
def test_codes_are_distinct_documented_and_fit_their_fields():
    assert all(c.doc for c in Command) and all(e.doc for e in ErrorCode)
    assert all(0 < c < RESPONSE_FLAG for c in Command)
    assert ErrorCode.OK == 0 and max(ErrorCode) < 256
    for lay in [*PAYLOADS.values(), *RESPONSES.values()]:
        assert lay.size % 8 == 0, lay.name


def test_payload_layouts_pack_little_endian():
    b = pack_bytes(PAYLOADS[Command.READ_MEM], region=2, offset=0x01020304, count=0x0506)
    assert b == bytes([2, 4, 3, 2, 1, 6, 5])
    assert unpack_bytes(PAYLOADS[Command.READ_MEM], b + b"junk") == \
        {"region": 2, "offset": 0x01020304, "count": 0x0506}
    with pytest.raises(BitmixError, match="read_mem: 3 bytes, needs 7"):
        unpack_bytes(PAYLOADS[Command.READ_MEM], b[:3])


def test_responses_ack_and_nack():
    (ack,) = FrameDecoder().feed(encode_response(5, Command.READ_MEM, data=b"\x01\x02"))
    assert ack.cmd == Command.READ_MEM | RESPONSE_FLAG
    assert split_response(ack) == (Command.READ_MEM, ErrorCode.OK, b"\x01\x02")
    (nack,) = FrameDecoder().feed(encode_response(6, Command.RUN, ErrorCode.BUSY))
    assert split_response(nack) == (Command.RUN, ErrorCode.BUSY, b"")
    with pytest.raises(BitmixError, match="not a response"):
        split_response(Frame(1, Command.RUN, b""))
    with pytest.raises(BitmixError, match="NACK BUSY"):
        encode_response(6, Command.RUN, ErrorCode.BUSY, b"x")


def test_protocol_table_lists_every_code():
    tables = dict(protocol_table())
    assert [r["command"] for r in tables["commands"]] == [c.name for c in Command]
    assert [r["error"] for r in tables["error codes"]] == [e.name for e in ErrorCode]
    assert [r["field"] for r in tables["frame (before COBS)"]] == ["seq", "cmd", "length", "payload", "crc"]
    assert [r["byte"] for r in tables["READ_MEM request"]] == [0, 1, 5]
