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
           "payload_shape"]


def struct_layout(layout: Layout) -> data.StructLayout:
    """The Amaranth view of a :class:`golden.bitfields.Layout` (same fields, same offsets)."""
    members = {}
    for f in layout.fields:
        shape = signed(f.width) if f.signed else unsigned(f.width)
        members[f.name] = data.ArrayLayout(shape, f.count) if f.count > 1 else shape
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
