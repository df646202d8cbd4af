"""Formats are derived from their grids: codes, terms, specials and hashes."""

import itertools

import pytest

from bitmix.errors import BitmixError
from golden.formats import (
    FORMAT_SETS,
    FORMATS,
    Format,
    FormatSet,
    format_table_hash,
    get_format,
    get_format_set,
    naf_terms,
)


def _min_signed_digits(v: int, max_exp: int = 8) -> int:
    """Brute force: fewest signed powers of two summing to v."""
    pows = [s * (1 << e) for e in range(max_exp + 1) for s in (1, -1)]
    if v == 0:
        return 0
    for n in range(1, 5):
        for combo in itertools.combinations_with_replacement(pows, n):
            if sum(combo) == v:
                return n
    raise AssertionError(v)


@pytest.mark.parametrize("v", range(-40, 41))
def test_naf_is_exact_and_minimal(v):
    terms = naf_terms(v)
    assert sum(t.value for t in terms) == v
    assert len(terms) == _min_signed_digits(v)
    exps = [t.exp for t in terms]
    assert exps == sorted(exps, reverse=True), "largest term first"
    assert all(a - b >= 2 for a, b in zip(exps, exps[1:])), "non-adjacent form"


@pytest.mark.parametrize("name", FORMATS)
def test_codebook_covers_grid_exactly(name):
    f = FORMATS[name]
    assert len(f.codebook) == 1 << f.bits
    assert set(f.codebook) == set(f.grid)
    for v in f.grid:
        assert f.codebook[f.code_of(v)] == v
    for code, terms in enumerate(f.terms):
        assert sum(t.value for t in terms) == f.codebook[code]


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if not f.zero_point])
def test_sign_magnitude_codes_and_special_on_negative_zero(name):
    f = FORMATS[name]
    half = 1 << (f.bits - 1)
    for m in range(1, half):
        assert f.codebook[half + m] == -f.codebook[m]
    assert f.codebook[half] == (f.special if f.special is not None else 0)


def test_bitmod_variants_match_spec_specials():
    specials = {n: FORMATS[n].special for n in FORMATS if FORMATS[n].special is not None}
    assert specials == {"fp3_er_pos": 3, "fp3_er_neg": -3, "fp3_ea_pos": 6, "fp3_ea_neg": -6,
                        "fp4_er_pos": 10, "fp4_er_neg": -10, "fp4_ea_pos": 16, "fp4_ea_neg": -16}


def test_unified_representation_needs_at_most_two_terms():
    """docs/architecture.md §2.3: every INT3/INT4/FP3/FP4 value, special values included, is <= 2 terms."""
    for name, f in FORMATS.items():
        if not f.zero_point:
            assert f.max_terms <= 2, name


def test_truncated_values_are_nested():
    f = get_format("fp4_er_pos")
    for code in range(16):
        assert f.truncated_value(code, 0) == 0
        assert f.truncated_value(code, f.max_terms) == f.codebook[code]
        # the first term alone is the value's leading power of two
        v1 = f.truncated_value(code, 1)
        assert v1 == 0 or abs(v1) & (abs(v1) - 1) == 0


def test_format_sets_have_one_width_and_id_bits():
    assert get_format_set("bitmod4").id_bits == 2
    assert get_format_set("ant3").id_bits == 1
    assert get_format_set("int4").id_bits == 0
    for fs in FORMAT_SETS.values():
        assert len({f.bits for f in fs.formats}) == 1
    with pytest.raises(ValueError, match="mixed widths"):
        FormatSet("bad", (FORMATS["int3"], FORMATS["int4"]))


def test_hash_follows_the_grid():
    base = get_format_set("bitmod4")
    fmts = list(base.formats)
    grid = tuple(sorted(set(fmts[0].grid) - {10} | {14}))
    fmts[0] = Format(fmts[0].name, 4, grid)
    changed = FormatSet(base.name, tuple(fmts))
    assert changed.hash != base.hash
    assert FormatSet(base.name, base.formats).hash == base.hash
    assert len(format_table_hash()) == 16


def test_bad_grids_and_names_are_rejected():
    with pytest.raises(ValueError, match="magnitudes"):
        _ = Format("x", 3, (-3, -2, -1, 0, 1, 2, 3, 5, -5)).codebook
    with pytest.raises(BitmixError, match="unknown format set 'nope'"):
        get_format_set("nope")
    with pytest.raises(BitmixError, match="not on the grid"):
        get_format("fp3").code_of(3)


# Grids as the BitMoD / ANT release quantizers write them (bitmod_quant/quant_utils/quant_weight.py),
# FP4 in standard E2M1 units (0, 0.5, 1, 1.5, 2, 3, 4, 6): bitmix stores FP4 grids x2 so they are integers.
_E2M1 = (0, 0.5, 1, 1.5, 2, 3, 4, 6)
_PAPER_BASE = {
    "int3": [-3, -2, -1, 0, 1, 2, 3],
    "int4": list(range(-7, 8)),
    "fp3": [-4, -2, -1, 0, 1, 2, 4],
    "fp4": sorted({s * 2 * m for m in _E2M1 for s in (1, -1)}),
    "flint4": [-16, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 16],
}
#: special value of each BitMoD variant, standard units: FP3 +-3 (ER) / +-6 (EA); FP4 +-5 / +-8
_PAPER_SPECIAL = {"fp3_er_pos": 3, "fp3_er_neg": -3, "fp3_ea_pos": 6, "fp3_ea_neg": -6,
                  "fp4_er_pos": 2 * 5, "fp4_er_neg": -2 * 5, "fp4_ea_pos": 2 * 8, "fp4_ea_neg": -2 * 8}


@pytest.mark.parametrize("name", [n for n in FORMATS if not FORMATS[n].zero_point])
def test_grids_match_the_papers_tables(name):
    f = FORMATS[name]
    base = _PAPER_BASE[name.split("_")[0]]
    special = _PAPER_SPECIAL.get(name)
    assert sorted(v for v in f.grid if v != special) == base
    assert f.special == special
    assert f.max_abs == max(abs(v) for v in base + ([special] if special else []))


@pytest.mark.parametrize("name,bits", [("int2_asym", 2), ("int3_asym", 3), ("int4_asym", 4)])
def test_asymmetric_grids_are_the_unsigned_codes(name, bits):
    assert list(FORMATS[name].grid) == list(range(2 ** bits))
