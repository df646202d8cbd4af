"""The RTL's stream payloads are the golden packer's layouts: same fields, same offsets."""

import random

import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from golden import pack
from hw.interfaces import dot_unit_signature, payload_shape
from hw.params import DotParams


@pytest.mark.parametrize("fs,lanes,a,s", [("bitmod4", 4, 8, 8), ("ant3", 16, 4, 5), ("int4", 8, 6, 7)])
def test_payload_offsets_equal_the_packer_layouts(fs, lanes, a, s):
    p = DotParams.make(lanes=lanes, group_size=lanes * 4, act_bits=a, scale_bits=s, format_set=fs)
    sig = dot_unit_signature(p)
    for port, gl in (("weights", pack.weight_beat_layout(p.lanes, p.fs, p.act_bits)),
                     ("groups", pack.group_layout(p.fs, p.scale_bits))):
        shape = payload_shape(sig, port)
        assert shape.size == gl.size
        for f in gl.fields:
            amaranth_field = shape[f.name]
            assert amaranth_field.offset == gl.offset(f.name), (port, f.name)
            elem = amaranth_field.shape
            if f.count > 1:
                assert isinstance(elem, data.ArrayLayout) and elem.length == f.count
                elem = elem.elem_shape
            assert Shape.cast(elem) == Shape(f.width, f.signed)


def test_a_packed_beat_reads_back_through_the_amaranth_view():
    p = DotParams.make(lanes=4, group_size=16, act_bits=6, format_set="bitmod3")
    gl = pack.weight_beat_layout(p.lanes, p.fs, p.act_bits)
    rng = random.Random(1)
    codes = [rng.randrange(8) for _ in range(4)]
    acts = [rng.randint(-32, 31) for _ in range(4)]
    word = gl.pack(codes=codes, acts=acts)
    view = payload_shape(dot_unit_signature(p), "weights").from_bits(word)
    assert [view.codes[i] for i in range(4)] == codes
    assert [view.acts[i] for i in range(4)] == acts
