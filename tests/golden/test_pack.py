"""golden.pack / golden.bitfields: the dot unit's stream layouts and their packer."""

import pytest

from bitmix.errors import BitmixError
from golden import pack
from golden.bitfields import Field, Layout
from golden.formats import get_format_set


def test_layout_packs_lsb_first_with_no_gaps():
    lay = Layout("t", (Field("a", 3), Field("b", 4, count=2, signed=True), Field("c", 1)))
    assert lay.size == 3 + 8 + 1 and [lay.offset(n) for n in "abc"] == [0, 3, 11]
    word = lay.pack(a=5, b=[-1, 7], c=1)
    assert word == 5 | (0xF << 3) | (7 << 7) | (1 << 11)
    assert lay.unpack(word) == {"a": 5, "b": [-1, 7], "c": 1}


@pytest.mark.parametrize("values,msg", [({"a": 8, "b": [0, 0], "c": 0}, r"t\.a\[0\] = 8 does not fit"),
                                        ({"a": 0, "b": [-9, 0], "c": 0}, r"t\.b\[0\] = -9"),
                                        ({"a": 0, "b": [0], "c": 0}, "1 values for 2 elements")])
def test_out_of_range_values_are_refused(values, msg):
    lay = Layout("t", (Field("a", 3), Field("b", 4, count=2, signed=True), Field("c", 1)))
    with pytest.raises(BitmixError, match=msg):
        lay.pack(**values)


@pytest.mark.parametrize("fs", ["bitmod3", "bitmod4", "int4", "ant3"])
def test_row_round_trip(fs):
    f = get_format_set(fs)
    wl, gl = pack.weight_beat_layout(4, f, 8), pack.group_layout(f, 6)
    codes = [(7 * i) % (1 << f.bits) for i in range(32)]
    acts = [(-1) ** i * (i * 5 % 128) for i in range(32)]
    beats = pack.pack_beats(wl, codes, acts)
    assert len(beats) == 8 and pack.unpack_beats(wl, beats) == (codes, acts)
    fmt_ids, u = [i % len(f.formats) for i in range(4)], [0, 1, 63, 17]
    assert pack.unpack_groups(gl, pack.pack_groups(gl, fmt_ids, u)) == (fmt_ids, u, [0, 0, 0, 1])
    assert gl.field("fmt_id").width == max(1, f.id_bits)


def test_rows_that_do_not_split_into_beats_are_refused():
    wl = pack.weight_beat_layout(4, get_format_set("int4"), 8)
    with pytest.raises(BitmixError, match="does not split into beats of 4 lanes"):
        pack.pack_beats(wl, [0] * 6, [0] * 6)
