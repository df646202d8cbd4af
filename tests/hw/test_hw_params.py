"""Parameter validation and derived widths of the dot-product unit (no simulation)."""

import itertools

import pytest

from bitmix.errors import BitmixError
from golden.formats import FORMAT_SETS
from hw.params import DotParams

SYMMETRIC = [n for n, fs in FORMAT_SETS.items() if not fs.zero_point]


@pytest.mark.parametrize("name", SYMMETRIC)
def test_psum_bound_is_tight_and_fits(name):
    p = DotParams.make(lanes=4, group_size=32, format_set=name, max_groups=3)
    fs = p.fs
    vals = [abs(f.truncated_value(c, t)) for f in fs.formats for c in range(1 << fs.bits)
            for t in range(1, fs.max_terms + 1)]
    assert p.max_value == max(vals) >= fs.max_abs
    bound = p.group_size * 2 ** (p.act_bits - 1) * p.max_value
    assert p.psum_max == bound
    assert bound <= 2 ** (p.psum_bits - 1) - 1 and bound > 2 ** (p.psum_bits - 2) - 1
    row = p.max_groups * (2 ** p.scale_bits - 1) * bound
    assert p.row_max == row and row <= 2 ** (p.row_bits - 1) - 1 and row > 2 ** (p.row_bits - 2) - 1


@pytest.mark.parametrize("lanes,group,s",
                         list(itertools.product([1, 2, 4, 8, 16, 32], [32, 64, 128], range(1, 17))))
def test_dequantizer_never_stalls(lanes, group, s):
    p = DotParams.make(lanes=lanes, group_size=group, scale_bits=s, format_set="ant3", max_groups=1)
    # a group takes at least G/L cycles (one term); the dequantizer must be done by then
    assert p.dq_steps <= p.beats_per_group
    assert p.dq_steps * p.dq_bits_per_cycle >= s


@pytest.mark.parametrize("kw,field", [
    (dict(lanes=0), "lanes"), (dict(lanes=300), "lanes"), (dict(group_size=0), "group_size"),
    (dict(act_bits=1), "act_bits"), (dict(act_bits=17), "act_bits"), (dict(scale_bits=0), "scale_bits"),
    (dict(max_groups=0), "max_groups"), (dict(lanes=5), "group_size"), (dict(lanes="4"), "lanes"),
    (dict(format_set="nope"), "format set"), (dict(format_set="int4_asym"), "format_set"),
])
def test_bad_parameters_name_the_field(kw, field):
    args = dict(lanes=4, group_size=32, act_bits=8, scale_bits=8, format_set="bitmod4", max_groups=2)
    args.update(kw)
    with pytest.raises(BitmixError, match=field):
        DotParams.make(**args)


def test_row_length_must_be_multiple_of_group():
    with pytest.raises(BitmixError, match="group_size = 128 does not divide k = 200"):
        DotParams.for_row_length(k=200, group_size=128, lanes=4)
    assert DotParams.for_row_length(k=512, group_size=128, lanes=4).max_groups == 4


def test_parameters_are_validated_before_any_component_exists(recwarn):
    """Bad parameters fail in DotParams.make, so no half-built Elaboratable is left behind
    (Amaranth would warn that it was never used)."""
    from hw.dot_unit import DotProductUnit
    with pytest.raises(BitmixError, match="lanes"):
        DotProductUnit(DotParams.make(lanes=-1, group_size=32))
    assert not [w for w in recwarn if "never used" in str(w.message)]
    p = DotParams.make(lanes=4, group_size=32)
    assert p.replace(format_set="int4").fs.name == "int4" and p.replace(lanes=8).lanes == 8
    assert DotParams.from_dict(p.describe()) == p
    with pytest.raises(BitmixError, match="changed since"):
        DotParams.from_dict({**p.describe(), "format_set_hash": "0" * 16})
